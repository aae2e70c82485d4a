/**
 * `ferry serve`: a read-only OCI distribution pull API answered straight from
 * bundle files, with node:http or node:https. This module routes requests to
 * the content (content.ts), the blob guard (blobs.ts), listings, referrers and
 * auth, writes every answer with registry:2's headers and error bodies, and
 * refuses every push or delete with 405 UNSUPPORTED (after 401 when auth is on).
 */
import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createPool, DEFAULT_JOBS, isDigest } from '@ferry/oci-client';
import type { ByteRange } from '../places/layout-files.js';
import type { Htpasswd } from './auth.js';
import { BlobGuard } from './blobs.js';
import type { ServedContent } from './content.js';
import { ServeError, sendError } from './errors.js';
import { paginate } from './listing.js';
import { negotiate } from './manifests.js';
import { referrersIndex } from './referrers.js';
import { isValidName, parseRoute } from './routes.js';

export interface ServeOptions {
  content: ServedContent;
  /** Blob streams (and start-up checks) at once; DEFAULT_JOBS unless given. */
  jobs?: number | undefined;
  htpasswd?: Htpasswd | undefined;
  tls?: { cert: Buffer; key: Buffer } | undefined;
  /** Damaged blobs and other server-side problems. */
  log?: (line: string) => void;
  /** One call per answered request. */
  onAccess?: (entry: AccessEntry) => void;
}

export interface AccessEntry {
  method: string;
  path: string;
  status: number;
  bytes: number;
  ms: number;
}

const API_VERSION = { 'docker-distribution-api-version': 'registry/2.0' };
const CHALLENGE = { 'www-authenticate': 'Basic realm="ferry serve"' };
/** How long a shutdown waits for responses under way before cutting them. */
export const SHUTDOWN_GRACE_MS = 10_000;

export class BundleServer {
  readonly guard: BlobGuard;
  readonly server: Server;
  private readonly log: (line: string) => void;

  constructor(private readonly opts: ServeOptions) {
    this.log = opts.log ?? (() => undefined);
    this.guard = new BlobGuard(opts.content.blobs, createPool(opts.jobs ?? DEFAULT_JOBS), this.log);
    const handler = (req: IncomingMessage, res: ServerResponse): void => {
      this.handle(req, res);
    };
    this.server = opts.tls ? createHttpsServer({ cert: opts.tls.cert, key: opts.tls.key }, handler) : createHttpServer(handler);
    // Bounded reads: a client that sends headers too slowly is dropped.
    this.server.headersTimeout = 30_000;
    this.server.requestTimeout = 0;
  }

  /** Hashes every blob; resolves with one line per damaged blob. */
  verifyAll(): Promise<string[]> {
    return this.guard.verifyAll();
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  /** Stops accepting, lets responses under way finish (at most `graceMs`), then cuts what is left. */
  close(graceMs = SHUTDOWN_GRACE_MS): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => this.server.closeAllConnections(), graceMs);
      timer.unref();
      this.server.close(() => {
        clearTimeout(timer);
        resolve();
      });
      this.server.closeIdleConnections();
    });
  }

  private handle(req: IncomingMessage, res: ServerResponse): void {
    const started = Date.now();
    const method = req.method ?? 'GET';
    let path = req.url ?? '/';
    let sent = 0;
    const write = res.write.bind(res);
    res.write = ((chunk: Uint8Array | string, ...rest: never[]) => {
      sent += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
      return write(chunk, ...rest);
    }) as typeof res.write;
    res.once('close', () => {
      this.opts.onAccess?.({ method, path, status: res.statusCode, bytes: sent, ms: Date.now() - started });
    });
    // The request body of a push is never read: drop it.
    req.resume();
    this.route(req, res, method, (p) => {
      path = p;
    }).catch((e: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (e instanceof ServeError) {
        sendError(res, method, e, { ...API_VERSION, ...(e.code === 'UNAUTHORIZED' ? CHALLENGE : {}), ...e.headers });
        return;
      }
      this.log(`ferry serve: ${method} ${path}: ${(e as Error).message}`);
      sendError(res, method, new ServeError('UNKNOWN', 'internal error'), API_VERSION);
    });
  }

  private async route(req: IncomingMessage, res: ServerResponse, method: string, setPath: (p: string) => void): Promise<void> {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://serve.invalid');
    } catch {
      throw new ServeError('NAME_INVALID', 'invalid request path', undefined, 400);
    }
    setPath(url.pathname);
    if (this.opts.htpasswd && !(await this.opts.htpasswd.check(req.headers.authorization))) {
      throw new ServeError('UNAUTHORIZED', 'authentication required');
    }
    const route = parseRoute(url.pathname);
    if (route.kind === 'unknown') throw new ServeError('UNSUPPORTED', 'unknown route', undefined, 404);
    if (method !== 'GET' && method !== 'HEAD') {
      throw new ServeError('UNSUPPORTED', `ferry serve is read-only: ${method} is not supported`);
    }
    if (route.kind === 'base') return this.json(res, method, 200, Buffer.from('{}'));
    if (route.kind === 'catalog') {
      const page = paginate(this.opts.content.repos.keys(), url.searchParams, '/v2/_catalog');
      return this.json(res, method, 200, Buffer.from(JSON.stringify({ repositories: page.items })), page.link ? { link: page.link } : {});
    }
    if (!isValidName(route.name)) throw new ServeError('NAME_INVALID', `invalid repository name ${route.name}`, { name: route.name });
    if (route.kind === 'upload') throw new ServeError('UNSUPPORTED', 'ferry serve is read-only: uploads are not supported');
    const repo = this.opts.content.repos.get(route.name);
    if (route.kind === 'referrers') {
      if (!isDigest(route.digest)) throw new ServeError('DIGEST_INVALID', `invalid digest ${route.digest}`, { digest: route.digest });
      const answer = referrersIndex(repo, route.digest, url.searchParams.get('artifactType'));
      return this.json(res, method, 200, answer.body, {
        'content-type': 'application/vnd.oci.image.index.v1+json',
        ...(answer.filtered ? { 'oci-filters-applied': 'artifactType' } : {}),
      });
    }
    if (!repo) throw new ServeError('NAME_UNKNOWN', 'repository name not known to registry', { name: route.name });
    if (route.kind === 'tags') {
      const page = paginate(repo.tags.keys(), url.searchParams, `/v2/${repo.name}/tags/list`);
      return this.json(res, method, 200, Buffer.from(JSON.stringify({ name: repo.name, tags: page.items })), page.link ? { link: page.link } : {});
    }
    if (route.kind === 'manifest') {
      const digest = isDigest(route.reference) ? route.reference : repo.tags.get(route.reference);
      const m = digest === undefined ? undefined : repo.manifests.get(digest);
      if (!m) throw new ServeError('MANIFEST_UNKNOWN', 'manifest unknown', { name: repo.name, reference: route.reference });
      negotiate(m, req.headers.accept);
      const etag = `"${m.digest}"`;
      const headers = { ...API_VERSION, 'docker-content-digest': m.digest, etag };
      const match = req.headers['if-none-match'];
      if (match !== undefined && (match === etag || match === m.digest)) {
        res.writeHead(304, headers);
        res.end();
        return;
      }
      res.writeHead(200, { ...headers, 'content-type': m.mediaType, 'content-length': String(m.bytes.byteLength) });
      res.end(method === 'HEAD' ? undefined : m.bytes);
      return;
    }
    // blob
    if (!isDigest(route.digest)) throw new ServeError('DIGEST_INVALID', `invalid digest ${route.digest}`, { digest: route.digest });
    const at = this.opts.content.blobs.get(route.digest);
    if (!repo.blobs.has(route.digest) || !at) throw new ServeError('BLOB_UNKNOWN', 'blob unknown to registry', { digest: route.digest });
    const refused = this.guard.refusal(route.digest);
    if (refused) throw refused;
    const headers = {
      ...API_VERSION,
      'docker-content-digest': route.digest,
      etag: `"${route.digest}"`,
      'accept-ranges': 'bytes',
      'content-type': 'application/octet-stream',
      'cache-control': 'max-age=31536000',
    };
    const range = parseRange(req.headers.range, at.size);
    if (range === 'unsatisfiable') {
      throw new ServeError('RANGE_INVALID', `range ${req.headers.range} is not satisfiable for a blob of ${at.size} bytes`, undefined, 416, {
        'content-range': `bytes */${at.size}`,
      });
    }
    if (method === 'HEAD') {
      res.writeHead(200, { ...headers, 'content-length': String(at.size) });
      res.end();
      return;
    }
    if (at.size === 0) {
      res.writeHead(200, { ...headers, 'content-length': '0' });
      res.end();
      return;
    }
    await this.guard.send(route.digest, res, range, () => {
      if (range) {
        res.writeHead(206, {
          ...headers,
          'content-length': String(range.end - range.start + 1),
          'content-range': `bytes ${range.start}-${range.end}/${at.size}`,
        });
      } else {
        res.writeHead(200, { ...headers, 'content-length': String(at.size) });
      }
    });
  }

  private json(res: ServerResponse, method: string, status: number, body: Buffer, extra: Record<string, string> = {}): void {
    res.writeHead(status, { ...API_VERSION, 'content-type': 'application/json', ...extra, 'content-length': String(body.length) });
    res.end(method === 'HEAD' ? undefined : body);
  }
}

/**
 * A single `bytes=` range of a blob of `size` bytes: undefined for none (or one
 * ferry ignores, as RFC 9110 allows: several ranges, another unit, bad syntax),
 * 'unsatisfiable' for one that lies outside the blob.
 */
export function parseRange(header: string | undefined, size: number): ByteRange | 'unsatisfiable' | undefined {
  if (header === undefined) return undefined;
  const m = /^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$/i.exec(header);
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0 || size === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (m[2] !== '' && Number(m[2]) < start) return undefined;
  if (start >= size) return 'unsatisfiable';
  return { start, end };
}
