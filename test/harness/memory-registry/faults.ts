// What a test can make the in-process registry do instead of (or on top of)
// answering a request properly, and the rules that choose which requests:
// "the 2nd PUT of a manifest gets 429", "reset every PATCH after 1 KiB".
import type { IncomingHttpHeaders } from 'node:http';

/** The route a request took, for rules and counters. */
export type RequestKind =
  | 'base' // GET /v2/
  | 'token' // the token endpoint
  | 'catalog' // /v2/_catalog
  | 'blob' // /v2/<name>/blobs/<digest>
  | 'upload-start' // POST /v2/<name>/blobs/uploads/
  | 'upload' // /v2/<name>/blobs/uploads/<id>
  | 'manifest' // /v2/<name>/manifests/<reference>
  | 'tags' // /v2/<name>/tags/list
  | 'referrers' // /v2/<name>/referrers/<digest>
  | 'other';

export type MemoryFault =
  /** Answer this status instead; the body defaults to distribution error JSON with `code` (or the status's usual code). */
  | { type: 'status'; status: number; headers?: Record<string, string>; code?: string; message?: string; body?: string | Buffer }
  /** Reset the connection (ECONNRESET), at once or after this many request body bytes arrived. */
  | { type: 'reset'; afterBodyBytes?: number }
  /** Send the real answer's status and headers, then nothing more until the registry stops. */
  | { type: 'stall' }
  /** Send the real answer, but end the connection after this many body bytes. */
  | { type: 'cut'; afterBytes: number }
  /** Send the real answer with one byte in the middle of its body flipped. */
  | { type: 'corrupt' }
  /** Wait, then answer properly. */
  | { type: 'delay'; ms: number };

/** A request as hooks and rules see it. */
export interface MemoryRequestInfo {
  /** 1-based position among all requests this registry received. */
  seq: number;
  method: string;
  /** Path and query, as received. */
  path: string;
  kind: RequestKind;
  repository?: string;
  /** Tag or digest (manifests), digest (blobs, referrers), session id (uploads). */
  reference?: string;
  headers: IncomingHttpHeaders;
  /** 'upload' when the request came to the second listener (option uploadOrigin). */
  origin: 'registry' | 'upload';
  /** The whole request body, read on first call (the handler then reuses it). */
  readBody(): Promise<Buffer>;
}

/** Called for every request before it is handled; returning a fault applies it. */
export type MemoryRequestHook = (req: MemoryRequestInfo) => MemoryFault | undefined | Promise<MemoryFault | undefined>;

export interface MemoryFaultRule {
  /** Any method when absent. */
  method?: string;
  kind?: RequestKind;
  repository?: string;
  /** Tested against path and query (avoid the g and y flags: they make test() stateful). */
  path?: RegExp;
  /** Matching requests let through before the rule applies; default 0. */
  skip?: number;
  /** How many matching requests (after `skip`) get the fault; default Infinity. */
  times?: number;
  fault: MemoryFault;
}

/** Rules in the order added; the first that matches and has turns left applies. */
export class FaultRules {
  private rules: Array<{ rule: MemoryFaultRule; seen: number; applied: number }> = [];

  add(rule: MemoryFaultRule): void {
    this.rules.push({ rule, seen: 0, applied: 0 });
  }

  clear(): void {
    this.rules = [];
  }

  take(req: MemoryRequestInfo): MemoryFault | undefined {
    for (const entry of this.rules) {
      const { rule } = entry;
      if (rule.method !== undefined && rule.method.toUpperCase() !== req.method) continue;
      if (rule.kind !== undefined && rule.kind !== req.kind) continue;
      if (rule.repository !== undefined && rule.repository !== req.repository) continue;
      if (rule.path !== undefined && !rule.path.test(req.path)) continue;
      entry.seen++;
      if (entry.seen <= (rule.skip ?? 0) || entry.applied >= (rule.times ?? Infinity)) continue;
      entry.applied++;
      return rule.fault;
    }
    return undefined;
  }
}
