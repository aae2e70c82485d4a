// Turns a trace (see trace.ts) into phases: start-up, resolving manifests,
// moving blobs, finishing; with the achieved concurrency and throughput.
import { readFile } from 'node:fs/promises';
import type { Trace, TraceRequest } from './trace.js';

export interface TraceSummary {
  /** ms from process start to the first HTTP request (node + module loading + argument handling). */
  startupMs: number;
  /** ms from the first request to the first blob request (resolving tags, reading manifests, planning). */
  resolveMs: number;
  /** ms from the first to the last blob byte (all blob requests). */
  blobsMs: number;
  /** ms from the end of the last request to process exit (final writes, sync, rename, teardown). */
  finishMs: number;
  totalMs: number;
  requests: { manifests: number; blobs: number; other: number };
  /** Mean number of blob requests in flight during the blob phase. */
  meanBlobConcurrency: number;
  /** Mean ms from a blob request's start to its response headers. */
  meanBlobTtfbMs: number;
  eventLoopUtilization: number;
  cpuUserS: number;
  cpuSysS: number;
}

const isBlob = (r: TraceRequest) => r.path.includes('/blobs/');
const isManifest = (r: TraceRequest) => r.path.includes('/manifests/');

export async function summarizeTrace(file: string): Promise<TraceSummary> {
  const t = JSON.parse(await readFile(file, 'utf8')) as Trace;
  const reqs = t.requests;
  const blobs = reqs.filter((r) => isBlob(r) && r.method === 'GET');
  const first = Math.min(...reqs.map((r) => r.start));
  const lastEnd = Math.max(...reqs.map((r) => r.end ?? r.start));
  const blobStart = blobs.length ? Math.min(...blobs.map((r) => r.start)) : lastEnd;
  const blobEnd = blobs.length ? Math.max(...blobs.map((r) => r.end ?? r.start)) : lastEnd;
  const busy = blobs.reduce((n, r) => n + ((r.end ?? r.start) - r.start), 0);
  const ttfb = blobs.filter((r) => r.headers !== undefined).map((r) => r.headers! - r.start);
  return {
    startupMs: first,
    resolveMs: blobStart - first,
    blobsMs: blobEnd - blobStart,
    finishMs: t.exitAt - lastEnd,
    totalMs: t.exitAt,
    requests: {
      manifests: reqs.filter(isManifest).length,
      blobs: reqs.filter(isBlob).length,
      other: reqs.filter((r) => !isBlob(r) && !isManifest(r)).length,
    },
    meanBlobConcurrency: blobEnd > blobStart ? busy / (blobEnd - blobStart) : 0,
    meanBlobTtfbMs: ttfb.length ? ttfb.reduce((a, b) => a + b, 0) / ttfb.length : 0,
    eventLoopUtilization: t.eventLoopUtilization,
    cpuUserS: t.resourceUsage.userCPUTime / 1e6,
    cpuSysS: t.resourceUsage.systemCPUTime / 1e6,
  };
}

export interface LoadTraceSummary {
  /** ms from process start to the first HTTP request (node, modules, reading the bundle's index, planning). */
  startupMs: number;
  /** ms from the first request to the first blob upload (POST). */
  beforeUploadsMs: number;
  /** ms from the first to the end of the last blob request (HEAD, POST, PUT). */
  blobsMs: number;
  /** ms from the end of the last blob request to the end of the last request (the last manifests and tags). */
  manifestTailMs: number;
  /** ms from the end of the last request to process exit. */
  finishMs: number;
  totalMs: number;
  requests: { blobHeads: number; uploadPosts: number; mounts: number; blobPuts: number; manifestPuts: number; other: number };
  /** Mean number of blob transfers (HEAD, POST, PUT of one blob into one repository) under way during the blob phase. */
  meanBlobConcurrency: number;
  /** Mean number of blob PUTs in flight between the first and the last. */
  meanPutConcurrency: number;
  /** Mean ms of one monolithic blob PUT, and of the time from its start to the registry's answer after the last byte. */
  meanPutMs: number;
  eventLoopUtilization: number;
  cpuUserS: number;
  cpuSysS: number;
}

/** The phases of a `ferry load` run from its request trace. */
export async function summarizeLoadTrace(file: string): Promise<LoadTraceSummary> {
  const t = JSON.parse(await readFile(file, 'utf8')) as Trace;
  const reqs = t.requests;
  const end = (r: TraceRequest) => r.end ?? r.start;
  const blobReqs = reqs.filter(isBlob);
  const posts = blobReqs.filter((r) => r.method === 'POST');
  const puts = blobReqs.filter((r) => r.method === 'PUT');
  const manifestPuts = reqs.filter((r) => isManifest(r) && r.method === 'PUT');
  const first = reqs.length ? Math.min(...reqs.map((r) => r.start)) : t.exitAt;
  const lastEnd = reqs.length ? Math.max(...reqs.map(end)) : t.exitAt;
  const blobStart = blobReqs.length ? Math.min(...blobReqs.map((r) => r.start)) : lastEnd;
  const blobEnd = blobReqs.length ? Math.max(...blobReqs.map(end)) : lastEnd;
  const firstPost = posts.length ? Math.min(...posts.map((r) => r.start)) : blobStart;
  const putStart = puts.length ? Math.min(...puts.map((r) => r.start)) : 0;
  const putEnd = puts.length ? Math.max(...puts.map(end)) : 0;
  const putBusy = puts.reduce((n, r) => n + end(r) - r.start, 0);
  // One transfer: every request naming the same repository and digest.
  const transfers = new Map<string, { start: number; end: number }>();
  for (const r of blobReqs) {
    const path = decodeURIComponent(r.path);
    const digest = /sha256:[0-9a-f]{64}/.exec(path)?.[0];
    const repo = /^\/v2\/(.+?)\/blobs\//.exec(path)?.[1];
    if (!digest || !repo) continue;
    const key = `${repo}@${digest}`;
    const x = transfers.get(key);
    if (x) {
      x.start = Math.min(x.start, r.start);
      x.end = Math.max(x.end, end(r));
    } else transfers.set(key, { start: r.start, end: end(r) });
  }
  const transferBusy = [...transfers.values()].reduce((n, x) => n + x.end - x.start, 0);
  return {
    startupMs: first,
    beforeUploadsMs: firstPost - first,
    blobsMs: blobEnd - blobStart,
    manifestTailMs: lastEnd - blobEnd,
    finishMs: t.exitAt - lastEnd,
    totalMs: t.exitAt,
    requests: {
      blobHeads: blobReqs.filter((r) => r.method === 'HEAD').length,
      uploadPosts: posts.length,
      mounts: posts.filter((r) => r.path.includes('mount=')).length,
      blobPuts: puts.length,
      manifestPuts: manifestPuts.length,
      other: reqs.length - blobReqs.length - manifestPuts.length,
    },
    meanBlobConcurrency: blobEnd > blobStart ? transferBusy / (blobEnd - blobStart) : 0,
    meanPutConcurrency: putEnd > putStart ? putBusy / (putEnd - putStart) : 0,
    meanPutMs: puts.length ? putBusy / puts.length : 0,
    eventLoopUtilization: t.eventLoopUtilization,
    cpuUserS: t.resourceUsage.userCPUTime / 1e6,
    cpuSysS: t.resourceUsage.systemCPUTime / 1e6,
  };
}

const sec = (ms: number) => (ms / 1000).toFixed(2);

/** One line for BENCHMARKS.md: where a traced `ferry pack` run spent its time. */
export function packTraceText(t: TraceSummary): string {
  return (
    `ferry phases (one extra untimed run with a request trace, ${sec(t.totalMs)} s in all): ` +
    `start-up ${sec(t.startupMs)} s, resolve ${sec(t.resolveMs)} s (${t.requests.manifests} manifest requests), ` +
    `blobs ${sec(t.blobsMs)} s (${t.requests.blobs} blob requests, mean ${t.meanBlobConcurrency.toFixed(1)} in flight, ` +
    `mean time to headers ${t.meanBlobTtfbMs.toFixed(0)} ms), finish ${sec(t.finishMs)} s; ` +
    `main thread busy ${(t.eventLoopUtilization * 100).toFixed(0)}%, CPU ${t.cpuUserS.toFixed(2)} s user + ${t.cpuSysS.toFixed(2)} s sys.`
  );
}

/** One line for BENCHMARKS.md: where a traced `ferry load` run spent its time. */
export function loadTraceText(t: LoadTraceSummary): string {
  const r = t.requests;
  return (
    `ferry phases (one extra untimed run with a request trace, ${sec(t.totalMs)} s in all): ` +
    `start-up to the first request ${sec(t.startupMs)} s, to the first upload ${sec(t.beforeUploadsMs)} s, ` +
    `blobs ${sec(t.blobsMs)} s (${r.blobHeads} HEAD, ${r.uploadPosts} POST of which ${r.mounts} mounts, ${r.blobPuts} PUT; ` +
    `mean ${t.meanBlobConcurrency.toFixed(1)} blob transfers under way and ${t.meanPutConcurrency.toFixed(1)} PUTs in flight, ${t.meanPutMs.toFixed(0)} ms per PUT), ` +
    `last manifests after the last blob ${sec(t.manifestTailMs)} s (${r.manifestPuts} manifest PUTs in all), exit ${sec(t.finishMs)} s; ` +
    `main thread busy ${(t.eventLoopUtilization * 100).toFixed(0)}%, CPU ${t.cpuUserS.toFixed(2)} s user + ${t.cpuSysS.toFixed(2)} s sys.`
  );
}
