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
