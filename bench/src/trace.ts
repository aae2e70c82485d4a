// A preload (node --import bench/dist/trace.js) that records, without touching
// ferry's code, when each HTTP request of the process started, got its headers
// and finished (undici's diagnostics channels), plus the main thread's event
// loop utilization; written as JSON to $FERRY_BENCH_TRACE at exit.
import { subscribe } from 'node:diagnostics_channel';
import { writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

export interface TraceRequest {
  method: string;
  path: string;
  /** ms since process start */
  start: number;
  headers?: number;
  end?: number;
  status?: number;
  error?: string;
}

export interface Trace {
  /** ms since process start when this preload ran (node start-up before it). */
  preloadAt: number;
  exitAt: number;
  requests: TraceRequest[];
  /** Main-thread event loop utilization over the whole run (0..1). */
  eventLoopUtilization: number;
  resourceUsage: NodeJS.ResourceUsage;
}

const file = process.env.FERRY_BENCH_TRACE;
if (file) {
  const preloadAt = performance.now();
  const requests: TraceRequest[] = [];
  const byRequest = new WeakMap<object, TraceRequest>();
  interface UndiciRequest {
    method: string;
    path: string;
  }
  subscribe('undici:request:create', (m) => {
    const { request } = m as { request: UndiciRequest };
    const r: TraceRequest = { method: request.method, path: request.path, start: performance.now() };
    byRequest.set(request, r);
    requests.push(r);
  });
  subscribe('undici:request:headers', (m) => {
    const { request, response } = m as { request: object; response: { statusCode: number } };
    const r = byRequest.get(request);
    if (r) {
      r.headers = performance.now();
      r.status = response.statusCode;
    }
  });
  subscribe('undici:request:trailers', (m) => {
    const r = byRequest.get((m as { request: object }).request);
    if (r) r.end = performance.now();
  });
  subscribe('undici:request:error', (m) => {
    const { request, error } = m as { request: object; error: Error };
    const r = byRequest.get(request);
    if (r) {
      r.end = performance.now();
      r.error = error.message;
    }
  });
  process.on('exit', () => {
    const trace: Trace = {
      preloadAt,
      exitAt: performance.now(),
      requests,
      eventLoopUtilization: performance.eventLoopUtilization().utilization,
      resourceUsage: process.resourceUsage(),
    };
    writeFileSync(file, JSON.stringify(trace));
  });
}
