// An OCI distribution registry inside the test process (as go-containerregistry's
// pkg/registry or regclient's olareg): node:http on 127.0.0.1, storage in
// memory, with hooks that fail chosen requests and counters of what clients
// asked. Fast enough for unit tests; real registry:2 stays the reference in
// the integration tests.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { buildImage, type ImageSpec, type SeededImage, topBytes } from '../images.js';
import { closeServer, listen } from '../net.js';
import { Authenticator, type MemoryAuth, type TokenGrant } from './auth.js';
import { codeForStatus, ERROR_MESSAGES, errorBody, RegistryError } from './errors.js';
import { FaultRules, type MemoryFault, type MemoryFaultRule, type MemoryRequestHook, type MemoryRequestInfo, type RequestKind } from './faults.js';
import { handle, type Reply, routeOf } from './handlers.js';
import { MemoryStore } from './store.js';

export { MEMORY_TOKEN_SERVICE, type MemoryAuth, type TokenGrant } from './auth.js';
export { ERROR_MESSAGES, type ErrorCode } from './errors.js';
export type { MemoryFault, MemoryFaultRule, MemoryRequestHook, MemoryRequestInfo, RequestKind } from './faults.js';
export { MemoryStore, type StoredManifest } from './store.js';

export interface MemoryRegistryOptions {
  /** No auth by default. */
  auth?: MemoryAuth;
  /** The OCI 1.1 referrers API; false answers it with 404 as registry:2.8 does. Default true. */
  referrers?: boolean;
  /** Cross-repository mounts (`POST ?mount=&from=`); false always falls back to 202. Default true. */
  mount?: boolean;
  /** Answer uploads with a Location on a second listener (another origin, no auth there). */
  uploadOrigin?: boolean;
  /** Cap (and default) of `n` for tags/list and _catalog. */
  pageSize?: number;
  /** Referrers per page (Link pagination); default all in one. */
  referrersPageSize?: number;
  /** Sent as OCI-Chunk-Min-Length when an upload starts. */
  chunkMinLength?: number;
  /** Largest request body read; default 256 MiB. */
  maxBodyBytes?: number;
}

/** A request as hooks saw it (without its body), with what was answered. */
export interface MemoryRequestRecord extends Omit<MemoryRequestInfo, 'readBody'> {
  /** The status sent; 0 when the connection was reset or no answer was sent. */
  status: number;
  /** The fault applied, if any. */
  fault?: MemoryFault['type'];
}

export interface RequestFilter {
  method?: string;
  kind?: RequestKind;
  repository?: string;
  origin?: 'registry' | 'upload';
}

export interface MemoryRegistry {
  /** "127.0.0.1:PORT" */
  host: string;
  /** "http://127.0.0.1:PORT" */
  url: string;
  /** The second listener's base URL (option uploadOrigin). */
  uploadUrl?: string;
  auth: 'none' | 'basic' | 'token';
  users: Record<string, string>;
  /** The content, for seeding and asserting without HTTP (not counted). */
  store: MemoryStore;
  /** Every request, in arrival order. */
  requests: MemoryRequestRecord[];
  /** Every token request (token auth). */
  tokenRequests: TokenGrant[];
  /** How many requests match (all when no filter). */
  count(filter?: RequestFilter): number;
  /** Requests counted by "METHOD kind", e.g. { "HEAD blob": 2, "PUT upload": 1 }. */
  counts(filter?: RequestFilter): Record<string, number>;
  /** Forgets the recorded requests (the counters start again from zero). */
  clearRequests(): void;
  addFault(rule: MemoryFaultRule): void;
  /** Removes every rule and every hook. */
  clearFaults(): void;
  /** Adds a hook run before each request (before the rules); returns its removal. */
  onRequest(hook: MemoryRequestHook): () => void;
  /** Stores a generated image (see buildImage) under "repo:tag", as a push would. */
  seedImage(repoAndTag: string, spec?: ImageSpec): SeededImage;
  stop(): Promise<void>;
}

const DEFAULT_MAX_BODY = 256 * 1024 * 1024;

export async function startMemoryRegistry(opts: MemoryRegistryOptions = {}): Promise<MemoryRegistry> {
  const store = new MemoryStore();
  const requests: MemoryRequestRecord[] = [];
  let seq = 0;
  const rules = new FaultRules();
  const hooks = new Set<MemoryRequestHook>();
  let registryOrigin = '';
  let uploadOrigin = '';
  const auth = new Authenticator(opts.auth, () => `${registryOrigin}/token`);
  const options = {
    referrers: opts.referrers ?? true,
    mount: opts.mount ?? true,
    pageSize: opts.pageSize,
    referrersPageSize: opts.referrersPageSize,
    chunkMinLength: opts.chunkMinLength,
  };
  const maxBody = opts.maxBodyBytes ?? DEFAULT_MAX_BODY;

  const serve = (origin: 'registry' | 'upload') => async (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const url = new URL(path, 'http://memory-registry.invalid');
    const route = routeOf(url.pathname);
    const record: MemoryRequestRecord = { seq: ++seq, method, path, kind: route.kind, origin, headers: req.headers, status: 0 };
    if (route.repository !== undefined) record.repository = route.repository;
    if (route.reference !== undefined) record.reference = route.reference;
    requests.push(record);
    res.once('finish', () => (record.status = res.statusCode));

    let body: Promise<Buffer> | undefined;
    const readBody = () => (body ??= collect(req, maxBody));
    const info: MemoryRequestInfo = { ...record, readBody };
    try {
      let fault: MemoryFault | undefined;
      for (const hook of hooks) {
        fault = await hook(info);
        if (fault) break;
      }
      fault ??= rules.take(info);
      if (fault) record.fault = fault.type;
      if (fault?.type === 'reset') {
        await resetAfter(req, fault.afterBodyBytes ?? 0, body !== undefined);
        return;
      }
      if (fault?.type === 'delay') await sleep(fault.ms);
      let reply: Reply;
      if (fault?.type === 'status') {
        await readBody().catch(() => undefined);
        reply = statusReply(fault);
      } else if (origin === 'upload' && route.kind !== 'upload') {
        reply = { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: Buffer.from('the upload origin serves upload sessions only\n') };
      } else {
        reply = await answer({
          method,
          url,
          route,
          headers: req.headers,
          body: readBody,
          store,
          // The upload origin has no auth: its session URLs are the secret, as signed storage URLs are.
          auth: origin === 'upload' ? noAuth : auth,
          registryOrigin,
          uploadOrigin,
          options,
        });
      }
      // A body nobody read must still be drained, or the connection cannot be reused.
      if (!body) req.resume();
      send(res, method, reply, fault, record);
    } catch (e) {
      res.destroy(e as Error);
    }
  };

  const noAuth = new Authenticator(undefined, () => '');
  const servers: Server[] = [createServer(serve('registry'))];
  const host = await listen(servers[0]!);
  registryOrigin = `http://${host}`;
  uploadOrigin = registryOrigin;
  let uploadUrl: string | undefined;
  if (opts.uploadOrigin) {
    const second = createServer(serve('upload'));
    servers.push(second);
    uploadUrl = `http://${await listen(second)}`;
    uploadOrigin = uploadUrl;
  }

  const matches = (r: MemoryRequestRecord, f: RequestFilter = {}) =>
    (f.method === undefined || f.method.toUpperCase() === r.method) &&
    (f.kind === undefined || f.kind === r.kind) &&
    (f.repository === undefined || f.repository === r.repository) &&
    (f.origin === undefined || f.origin === r.origin);

  return {
    host,
    url: registryOrigin,
    ...(uploadUrl ? { uploadUrl } : {}),
    auth: opts.auth?.type ?? 'none',
    users: auth.users,
    store,
    requests,
    tokenRequests: auth.grants,
    count: (filter) => requests.filter((r) => matches(r, filter)).length,
    counts(filter) {
      const out: Record<string, number> = {};
      for (const r of requests) {
        if (!matches(r, filter)) continue;
        const key = `${r.method} ${r.kind}`;
        out[key] = (out[key] ?? 0) + 1;
      }
      return out;
    },
    clearRequests: () => {
      requests.length = 0;
      auth.grants.length = 0;
    },
    addFault: (rule) => rules.add(rule),
    clearFaults: () => {
      rules.clear();
      hooks.clear();
    },
    onRequest(hook) {
      hooks.add(hook);
      return () => hooks.delete(hook);
    },
    seedImage(repoAndTag, spec = {}) {
      const colon = repoAndTag.lastIndexOf(':');
      if (colon <= repoAndTag.lastIndexOf('/')) throw new Error(`"${repoAndTag}" has no tag`);
      const repo = repoAndTag.slice(0, colon);
      const image = buildImage({ ...spec, tag: repoAndTag.slice(colon + 1) });
      for (const bytes of image.blobs.values()) store.putBlob(repo, bytes);
      for (const m of image.manifests) store.putManifest(repo, m.digest, m.bytes);
      store.putManifest(repo, repoAndTag.slice(colon + 1), topBytes(image));
      return image;
    },
    async stop() {
      await Promise.all(servers.map((s) => closeServer(s)));
    },
  };
}

async function answer(ctx: Parameters<typeof handle>[0]): Promise<Reply> {
  try {
    return await handle(ctx);
  } catch (e) {
    if (e instanceof RegistryError) {
      return { status: e.status, headers: { 'content-type': 'application/json; charset=utf-8', ...e.headers }, body: errorBody(e.code, e.message, e.detail) };
    }
    return { status: 500, headers: { 'content-type': 'application/json; charset=utf-8' }, body: errorBody('UNKNOWN', String(e)) };
  }
}

function statusReply(fault: Extract<MemoryFault, { type: 'status' }>): Reply {
  const headers = { ...fault.headers };
  if (fault.body !== undefined) return { status: fault.status, headers, body: Buffer.from(fault.body) };
  const code = fault.code ?? codeForStatus(fault.status);
  const message = fault.message ?? (ERROR_MESSAGES as Record<string, string>)[code] ?? `HTTP ${fault.status}`;
  return { status: fault.status, headers: { 'content-type': 'application/json; charset=utf-8', ...headers }, body: errorBody(code, message) };
}

/** Writes a reply, bent by a stall, cut or corrupt fault. HEAD answers carry the headers only. */
function send(res: ServerResponse, method: string, reply: Reply, fault: MemoryFault | undefined, record: MemoryRequestRecord): void {
  let body = reply.body ?? Buffer.alloc(0);
  const headers: Record<string, string> = { 'docker-distribution-api-version': 'registry/2.0', 'content-length': String(body.length), ...reply.headers };
  if (method === 'HEAD') body = Buffer.alloc(0);
  if (fault?.type === 'stall') {
    record.status = reply.status;
    res.writeHead(reply.status, headers);
    res.flushHeaders();
    return;
  }
  if (fault?.type === 'cut') {
    record.status = reply.status;
    res.writeHead(reply.status, headers);
    res.write(body.subarray(0, fault.afterBytes));
    // end(), not destroy(): the bytes written must still reach the client.
    res.socket?.end();
    return;
  }
  if (fault?.type === 'corrupt' && body.length > 0) {
    body = Buffer.from(body);
    const middle = body.length >> 1;
    body[middle] = (body[middle] as number) ^ 0xff;
  }
  res.writeHead(reply.status, headers);
  res.end(body);
}

/** Reads a request body, refusing one over `max` bytes. */
function collect(req: IncomingMessage, max: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      // Past the limit the rest is read and dropped, so the 413 can still be answered.
      if (size <= max) chunks.push(chunk);
      else if (size - chunk.length <= max) reject(new RegistryError(413, 'SIZE_INVALID', `request body over ${max} bytes`));
    });
    req.once('end', () => resolve(Buffer.concat(chunks)));
    req.once('error', reject);
  });
}

/** Resets the connection (a TCP RST, so the client sees ECONNRESET) once `after` body bytes arrived. */
function resetAfter(req: IncomingMessage, after: number, bodyRead: boolean): Promise<void> {
  const reset = () => req.socket.resetAndDestroy();
  if (after <= 0 || bodyRead || req.readableEnded) {
    reset();
    return Promise.resolve();
  }
  return new Promise((resolve) => {
    let seen = 0;
    const done = () => {
      reset();
      resolve();
    };
    req.on('data', (chunk: Buffer) => {
      seen += chunk.length;
      if (seen >= after) done();
    });
    req.once('end', done);
    req.once('error', () => resolve());
  });
}
