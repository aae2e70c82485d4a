// The distribution API of the in-process registry: one handler per route,
// each turning a request into a Reply (status, headers, body) so that faults
// can bend the answer afterwards. Headers and codes follow the OCI
// distribution spec 1.1 and, where the spec leaves room, registry:2.
import type { IncomingHttpHeaders } from 'node:http';
import { OCI_INDEX } from '../media-types.js';
import type { Authenticator, Need } from './auth.js';
import { RegistryError } from './errors.js';
import type { RequestKind } from './faults.js';
import { isDigest, type MemoryStore, rangeHeader, type StoredManifest } from './store.js';

const JSON_TYPE = 'application/json; charset=utf-8';

export interface Reply {
  status: number;
  headers: Record<string, string>;
  body?: Buffer;
}

export interface Route {
  kind: RequestKind;
  repository?: string;
  reference?: string;
}

export interface HandlerOptions {
  referrers: boolean;
  mount: boolean;
  /** Cap and default of `n` for tags and the catalog. */
  pageSize?: number;
  referrersPageSize?: number;
  chunkMinLength?: number;
}

export interface RequestContext {
  method: string;
  url: URL;
  route: Route;
  headers: IncomingHttpHeaders;
  body(): Promise<Buffer>;
  store: MemoryStore;
  auth: Authenticator;
  /** Base URLs: where the API lives, and where upload sessions live. */
  registryOrigin: string;
  uploadOrigin: string;
  options: HandlerOptions;
}

const ROUTES: Array<[RegExp, RequestKind]> = [
  [/^\/v2\/(.+)\/blobs\/uploads\/?$/, 'upload-start'],
  [/^\/v2\/(.+)\/blobs\/uploads\/([^/]+)$/, 'upload'],
  [/^\/v2\/(.+)\/blobs\/([^/]+)$/, 'blob'],
  [/^\/v2\/(.+)\/manifests\/([^/]+)$/, 'manifest'],
  [/^\/v2\/(.+)\/tags\/list$/, 'tags'],
  [/^\/v2\/(.+)\/referrers\/([^/]+)$/, 'referrers'],
];

export function routeOf(pathname: string): Route {
  if (pathname === '/v2/' || pathname === '/v2') return { kind: 'base' };
  if (pathname === '/token') return { kind: 'token' };
  if (pathname === '/v2/_catalog') return { kind: 'catalog' };
  for (const [re, kind] of ROUTES) {
    const m = re.exec(pathname);
    if (!m) continue;
    const repository = m[1]!;
    return m[2] === undefined ? { kind, repository } : { kind, repository, reference: decodeURIComponent(m[2]) };
  }
  return { kind: 'other' };
}

/** The accesses a request needs, as registry:2 derives them from method and route. */
export function needsOf(method: string, route: Route, query: URLSearchParams): Need[] {
  if (route.kind === 'catalog') return [{ type: 'registry', name: 'catalog', action: '*' }];
  if (!route.repository) return [];
  const repo = (action: string, name = route.repository!): Need => ({ type: 'repository', name, action });
  if (method === 'DELETE') return [repo('delete')];
  if (method === 'GET' || method === 'HEAD') return [repo('pull')];
  const needs = [repo('pull'), repo('push')];
  const from = route.kind === 'upload-start' ? query.get('from') : null;
  if (from) needs.push(repo('pull', from));
  return needs;
}

const empty = (status: number, headers: Record<string, string> = {}): Reply => ({ status, headers: { 'content-length': '0', ...headers } });
const json = (status: number, value: unknown, headers: Record<string, string> = {}): Reply => ({
  status,
  headers: { 'content-type': JSON_TYPE, ...headers },
  body: Buffer.from(JSON.stringify(value)),
});

function unsupported(method: string): never {
  throw new RegistryError(405, 'UNSUPPORTED', `${method} is not supported here`);
}

export async function handle(ctx: RequestContext): Promise<Reply> {
  const { method, route } = ctx;
  switch (route.kind) {
    case 'token':
      return token(ctx);
    case 'base':
      ctx.auth.check(ctx.headers, []);
      if (method !== 'GET' && method !== 'HEAD') unsupported(method);
      return json(200, {});
    case 'other':
      return notFoundPage();
    default:
      break;
  }
  // registry:2.8 has no referrers route: its router answers before any auth.
  if (route.kind === 'referrers' && !ctx.options.referrers) return notFoundPage();
  ctx.auth.check(ctx.headers, needsOf(method, route, ctx.url.searchParams));
  switch (route.kind) {
    case 'catalog':
      if (method !== 'GET') unsupported(method);
      return listing(ctx, ctx.store.repositories(), '/v2/_catalog', (page) => ({ repositories: page }));
    case 'tags': {
      if (method !== 'GET') unsupported(method);
      const name = route.repository!;
      const tags = ctx.store.tags(name);
      if (!tags) throw new RegistryError(404, 'NAME_UNKNOWN', undefined, { name });
      return listing(ctx, tags, `/v2/${name}/tags/list`, (page) => ({ name, tags: page }));
    }
    case 'blob':
      return blob(ctx);
    case 'upload-start':
      return startUpload(ctx);
    case 'upload':
      return upload(ctx);
    case 'manifest':
      return manifest(ctx);
    case 'referrers':
      return referrers(ctx);
  }
}

async function token(ctx: RequestContext): Promise<Reply> {
  if (ctx.method !== 'GET' && ctx.method !== 'POST') unsupported(ctx.method);
  const { status, json: body } = ctx.auth.issue(ctx.method, ctx.url.searchParams, ctx.headers, await ctx.body());
  return json(status, body);
}

/** `n` and `last` pagination with a `Link: <…>; rel="next"` header, as the spec's tags list. */
function listing(ctx: RequestContext, all: string[], path: string, shape: (page: string[]) => object): Reply {
  const query = ctx.url.searchParams;
  const raw = query.get('n');
  let n: number | undefined;
  if (raw !== null) {
    if (!/^\d+$/.test(raw)) throw new RegistryError(400, 'PAGINATION_NUMBER_INVALID', undefined, { n: raw });
    n = Number(raw);
  }
  if (ctx.options.pageSize !== undefined) n = Math.min(n ?? ctx.options.pageSize, ctx.options.pageSize);
  const last = query.get('last');
  const rest = last === null ? all : all.filter((x) => x > last);
  const page = n === undefined ? rest : rest.slice(0, n);
  const headers: Record<string, string> = {};
  if (n !== undefined && page.length > 0 && rest.length > page.length) {
    headers.link = `<${path}?n=${n}&last=${encodeURIComponent(page.at(-1)!)}>; rel="next"`;
  }
  return json(200, shape(page), headers);
}

function checkDigest(digest: string | undefined): string {
  if (digest === undefined || !isDigest(digest)) throw new RegistryError(400, 'DIGEST_INVALID', `${digest ?? '(none)'} is not a digest`, { digest });
  return digest;
}

function blob(ctx: RequestContext): Reply {
  const { method } = ctx;
  const repository = ctx.route.repository!;
  const digest = checkDigest(ctx.route.reference);
  if (method === 'DELETE') {
    if (!ctx.store.deleteBlob(repository, digest)) throw new RegistryError(404, 'BLOB_UNKNOWN', undefined, { digest });
    return empty(202);
  }
  if (method !== 'GET' && method !== 'HEAD') unsupported(method);
  const bytes = ctx.store.blob(repository, digest);
  if (!bytes) throw new RegistryError(404, 'BLOB_UNKNOWN', undefined, { digest });
  const headers: Record<string, string> = {
    'content-type': 'application/octet-stream',
    'docker-content-digest': digest,
    'accept-ranges': 'bytes',
    etag: `"${digest}"`,
  };
  const range = method === 'GET' ? parseRange(ctx.headers.range, bytes.length) : undefined;
  if (range === 'unsatisfiable') {
    return {
      status: 416,
      headers: { 'content-range': `bytes */${bytes.length}`, 'content-type': 'text/plain; charset=utf-8' },
      body: Buffer.from('invalid range'),
    };
  }
  if (range) {
    const part = bytes.subarray(range.start, range.end + 1);
    return { status: 206, headers: { ...headers, 'content-range': `bytes ${range.start}-${range.end}/${bytes.length}` }, body: part };
  }
  return { status: 200, headers: { ...headers, 'content-length': String(bytes.length) }, body: bytes };
}

/** One `bytes=` range (`a-b`, `a-`, `-suffix`); undefined means "send it all" (absent or not understood). */
function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const m = header === undefined ? null : /^bytes=(\d*)-(\d*)$/.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '')) return undefined;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) return 'unsatisfiable';
    return { start: Math.max(0, size - suffix), end: size - 1 };
  }
  const start = Number(m[1]);
  const end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  if (start >= size || end < start) return 'unsatisfiable';
  return { start, end };
}

function blobCreated(ctx: RequestContext, digest: string): Reply {
  return empty(201, { location: `${ctx.registryOrigin}/v2/${ctx.route.repository}/blobs/${digest}`, 'docker-content-digest': digest });
}

function uploadAnswer(ctx: RequestContext, status: number, id: string, size: number, extra: Record<string, string> = {}): Reply {
  return empty(status, {
    location: `${ctx.uploadOrigin}/v2/${ctx.route.repository}/blobs/uploads/${id}`,
    range: rangeHeader(size),
    'docker-upload-uuid': id,
    ...extra,
  });
}

async function startUpload(ctx: RequestContext): Promise<Reply> {
  if (ctx.method !== 'POST') unsupported(ctx.method);
  const repository = ctx.route.repository!;
  const query = ctx.url.searchParams;
  const mount = query.get('mount');
  const from = query.get('from');
  // Mount when asked and possible; otherwise start a session, as registry:2 falls back (202).
  if (ctx.options.mount && mount && from && isDigest(mount) && ctx.store.mount(repository, mount, from)) {
    return blobCreated(ctx, mount);
  }
  const digest = query.get('digest');
  const body = await ctx.body();
  const session = ctx.store.startUpload(repository);
  if (digest !== null) {
    // The single-POST monolithic upload.
    ctx.store.appendUpload(session, body);
    return blobCreated(ctx, ctx.store.finishUpload(session, digest));
  }
  const extra: Record<string, string> = ctx.options.chunkMinLength ? { 'oci-chunk-min-length': String(ctx.options.chunkMinLength) } : {};
  return uploadAnswer(ctx, 202, session.id, 0, extra);
}

async function upload(ctx: RequestContext): Promise<Reply> {
  const { method, store } = ctx;
  const session = store.upload(ctx.route.repository!, ctx.route.reference!);
  switch (method) {
    case 'GET':
      return uploadAnswer(ctx, 204, session.id, session.size);
    case 'DELETE':
      store.cancelUpload(session);
      return empty(204);
    case 'PATCH': {
      const body = await ctx.body();
      const header = ctx.headers['content-range'];
      let range: { start: number; end: number } | undefined;
      if (header !== undefined) {
        const m = /^(?:bytes )?(\d+)-(\d+)$/.exec(header.trim());
        if (!m) throw new RegistryError(400, 'BLOB_UPLOAD_INVALID', `Content-Range "${header}" is not <start>-<end>`);
        range = { start: Number(m[1]), end: Number(m[2]) };
      }
      store.appendUpload(session, body, range);
      return uploadAnswer(ctx, 202, session.id, session.size);
    }
    case 'PUT': {
      const body = await ctx.body();
      if (body.length > 0) store.appendUpload(session, body);
      return blobCreated(ctx, store.finishUpload(session, ctx.url.searchParams.get('digest')));
    }
    default:
      unsupported(method);
  }
}

/** Whether an Accept header lets the client take `mediaType` (no header: anything). */
function accepts(accept: string | undefined, mediaType: string): boolean {
  const types = (accept ?? '')
    .split(',')
    .map((t) => t.split(';')[0]!.trim().toLowerCase())
    .filter(Boolean);
  return types.length === 0 || types.some((t) => t === mediaType || t === '*/*' || t === 'application/*');
}

async function manifest(ctx: RequestContext): Promise<Reply> {
  const { method, store } = ctx;
  const repository = ctx.route.repository!;
  const reference = ctx.route.reference!;
  const unknown = () => new RegistryError(404, 'MANIFEST_UNKNOWN', undefined, isDigest(reference) ? { Digest: reference } : { Tag: reference });
  switch (method) {
    case 'GET':
    case 'HEAD': {
      const m = store.manifest(repository, reference);
      if (!m) throw unknown();
      if (!accepts(ctx.headers.accept, m.mediaType)) {
        // registry:2: "OCI manifest found, but accept header does not support OCI manifests".
        throw new RegistryError(404, 'MANIFEST_UNKNOWN', `${m.mediaType} found, but the Accept header does not allow it`);
      }
      return {
        status: 200,
        headers: { 'content-type': m.mediaType, 'content-length': String(m.bytes.length), 'docker-content-digest': m.digest, etag: `"${m.digest}"` },
        body: m.bytes,
      };
    }
    case 'PUT': {
      const m = store.putManifest(repository, reference, await ctx.body(), ctx.headers['content-type']);
      const headers: Record<string, string> = {
        location: `${ctx.registryOrigin}/v2/${repository}/manifests/${m.digest}`,
        'docker-content-digest': m.digest,
      };
      if (m.subject && ctx.options.referrers) headers['oci-subject'] = m.subject;
      return empty(201, headers);
    }
    case 'DELETE':
      if (!store.deleteManifest(repository, reference)) throw unknown();
      return empty(202);
    default:
      unsupported(method);
  }
}

function referrers(ctx: RequestContext): Reply {
  if (ctx.method !== 'GET') unsupported(ctx.method);
  const repository = ctx.route.repository!;
  const digest = checkDigest(ctx.route.reference);
  const query = ctx.url.searchParams;
  const artifactType = query.get('artifactType');
  let found: StoredManifest[] = ctx.store.referrers(repository, digest);
  if (artifactType !== null) found = found.filter((m) => m.artifactType === artifactType);
  const last = query.get('last');
  if (last !== null) found = found.filter((m) => m.digest > last);
  const size = ctx.options.referrersPageSize;
  const page = size === undefined ? found : found.slice(0, size);
  const headers: Record<string, string> = { 'content-type': OCI_INDEX };
  if (artifactType !== null) headers['oci-filters-applied'] = 'artifactType';
  if (page.length < found.length) {
    const next = new URLSearchParams(artifactType === null ? {} : { artifactType });
    next.set('last', page.at(-1)!.digest);
    headers.link = `</v2/${repository}/referrers/${digest}?${next}>; rel="next"`;
  }
  const manifests = page.map((m) => ({
    mediaType: m.mediaType,
    digest: m.digest,
    size: m.bytes.length,
    ...(m.artifactType === undefined ? {} : { artifactType: m.artifactType }),
    ...(m.annotations === undefined ? {} : { annotations: m.annotations }),
  }));
  return { status: 200, headers, body: Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests })) };
}

/** registry:2's router answers unknown paths (the referrers API in 2.8 too) with Go's plain 404. */
function notFoundPage(): Reply {
  return { status: 404, headers: { 'content-type': 'text/plain; charset=utf-8' }, body: Buffer.from('404 page not found\n') };
}
