/**
 * The registry-v2 API (OCI distribution-spec) for one registry host: resolve,
 * manifests, blobs (streamed, verified, resumable), uploads, mounts, tags,
 * referrers and catalog. Auth and transport are delegated; every failure is a
 * FerryError that names the registry, repository and operation.
 */
import type { Readable } from 'node:stream';
import { isInsufficientScope, RegistryAuth, repositoryScope } from './auth.js';
import type { CredentialStore } from './credentials.js';
import { DigestVerifier, digestOf, isDigest, parseDigest } from './digest.js';
import { type ErrorKind, FerryError } from './errors.js';
import { type Descriptor, descriptorSchema, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, MediaType, type ParsedManifest, parseManifest } from './manifest.js';
import { registryApiHost } from './reference.js';
import { header, isTransientNetworkError, type RequestBody, type Transport, type TransportResponse, toNetworkError } from './transport.js';

export interface BlobRef {
  digest: string;
  size?: number | undefined;
}

export interface PushBlobOptions {
  /** A repository of the same registry believed to hold the blob: try a cross-repo mount first. */
  mountFrom?: string | undefined;
  /** Chunk size for chunked uploads (PATCH). */
  chunkSize?: number;
  /** Force the chunked protocol (also used when the size is unknown). */
  chunked?: boolean;
}

export type PushResult = 'uploaded' | 'mounted';

interface Operation {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** Path below the registry root, or an absolute URL (upload locations). */
  path: string;
  scopes: string[];
  /** "pushing to", "pulling from", ... for messages. */
  operation: string;
  repository?: string | undefined;
  headers?: Record<string, string>;
  body?: RequestBody;
  /** Statuses that are success; others become errors. */
  expect: number[];
  retry?: boolean;
  followRedirects?: boolean;
}

const DEFAULT_CHUNK = 8 * 1024 * 1024;
/** How often a broken blob download is resumed with Range before giving up. */
const MAX_RESUMES = 5;
/** Attempts of a whole upload (new session each time) on transient failures. */
const UPLOAD_ATTEMPTS = 3;
/** Pages of a listing followed at most. */
const MAX_PAGES = 10_000;

export class RegistryClient {
  readonly apiHost: string;
  private readonly auth: RegistryAuth;
  /** Repositories this client will push to: their scopes always ask for pull+push. */
  private readonly pushRepos = new Set<string>();

  constructor(
    readonly registry: string,
    private readonly transport: Transport,
    credentials: CredentialStore | undefined,
  ) {
    this.apiHost = registryApiHost(registry);
    this.auth = new RegistryAuth(registry, transport, async () => credentials?.get(registry));
  }

  /** Declares that `repository` will be written, so one token covers reads and writes. */
  willPush(repository: string): void {
    this.pushRepos.add(repository);
  }

  private pullScope(repository: string): string[] {
    return [repositoryScope(repository, this.pushRepos.has(repository) ? ['pull', 'push'] : ['pull'])];
  }

  private pushScope(repository: string): string[] {
    return [repositoryScope(repository, ['pull', 'push'])];
  }

  /**
   * Checks that the registry answers the v2 API with the configured credentials
   * (for a bearer registry: a token is obtained, which checks the password).
   */
  async ping(): Promise<void> {
    const res = await this.send({ method: 'GET', path: '/v2/', scopes: [], operation: 'logging in to', expect: [200] });
    await res.body.dump();
  }

  // ---- manifests ----

  /** Resolves a tag or digest to the manifest's descriptor (HEAD, falling back to GET). */
  async resolve(repository: string, reference: string): Promise<Descriptor> {
    const res = await this.send({
      method: 'HEAD',
      path: `/v2/${repository}/manifests/${reference}`,
      scopes: this.pullScope(repository),
      operation: 'resolving',
      repository,
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      expect: [200, 404, 405, 400],
    });
    await res.body.dump();
    const digest = header(res.headers, 'docker-content-digest');
    const mediaType = header(res.headers, 'content-type')?.split(';')[0]?.trim();
    const size = Number(header(res.headers, 'content-length'));
    if (res.status === 200 && digest && isDigest(digest) && mediaType && MANIFEST_ACCEPT.includes(mediaType) && size > 0) {
      if (isDigest(reference) && digest !== reference) {
        throw this.integrity(repository, `registry answered digest ${digest} for ${reference}`);
      }
      return { mediaType, digest, size };
    }
    if (res.status === 404) throw this.notFound(repository, reference);
    // Some registries do not answer HEAD properly: GET and compute.
    const m = await this.getManifest(repository, reference);
    return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.byteLength };
  }

  /** Fetches and parses a manifest, checking it against Docker-Content-Digest and a requested digest. */
  async getManifest(repository: string, reference: string): Promise<ParsedManifest> {
    const res = await this.send({
      method: 'GET',
      path: `/v2/${repository}/manifests/${reference}`,
      scopes: this.pullScope(repository),
      operation: 'pulling manifest from',
      repository,
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      expect: [200, 404],
    });
    if (res.status === 404) {
      await res.body.dump();
      throw this.notFound(repository, reference);
    }
    const tooLarge = (size: string): FerryError =>
      new FerryError('unsupported', `manifest ${reference} in ${this.registry}/${repository} is larger than 4 MiB${size}; refusing it`, {
        registry: this.registry,
        repository,
      });
    const length = Number(header(res.headers, 'content-length'));
    if (length > MAX_MANIFEST_BYTES) {
      await res.body.dump();
      throw tooLarge(` (${length} bytes)`);
    }
    // A registry may send no Content-Length: the read itself stops past the limit.
    const bytes = await readLimited(res.body, MAX_MANIFEST_BYTES);
    if (!bytes) throw tooLarge('');
    const parsed = parseManifest(bytes, header(res.headers, 'content-type'));
    const stated = header(res.headers, 'docker-content-digest');
    for (const want of [stated, isDigest(reference) ? reference : undefined]) {
      if (!want || !isDigest(want)) continue;
      const actual = digestOf(bytes, parseDigest(want).algorithm);
      if (actual !== want) {
        throw this.integrity(repository, `manifest ${reference} has digest ${actual}, expected ${want}`);
      }
    }
    return parsed;
  }

  /** Stores a manifest under a tag or its digest; returns the digest the registry computed. */
  async putManifest(repository: string, reference: string, bytes: Uint8Array, mediaType: string): Promise<string> {
    const res = await this.send({
      method: 'PUT',
      path: `/v2/${repository}/manifests/${reference}`,
      scopes: this.pushScope(repository),
      operation: 'pushing to',
      repository,
      headers: { 'content-type': mediaType },
      body: bytes,
      expect: [201, 200],
    });
    await res.body.dump();
    const digest = digestOf(bytes);
    const stated = header(res.headers, 'docker-content-digest');
    if (stated && stated !== digest && stated.startsWith('sha256:')) {
      throw this.integrity(repository, `registry stored the manifest as ${stated}, expected ${digest}`);
    }
    return digest;
  }

  // ---- blobs ----

  /** HEAD a blob: its size when present, undefined when not. */
  async blobSize(repository: string, digest: string): Promise<number | undefined> {
    const res = await this.send({
      method: 'HEAD',
      path: `/v2/${repository}/blobs/${digest}`,
      scopes: this.pullScope(repository),
      operation: 'checking',
      repository,
      expect: [200, 404],
    });
    await res.body.dump();
    return res.status === 200 ? Number(header(res.headers, 'content-length') ?? NaN) : undefined;
  }

  async blobExists(repository: string, digest: string): Promise<boolean> {
    return (await this.blobSize(repository, digest)) !== undefined;
  }

  /**
   * A blob as a stream, checked against its digest and size as it flows. A
   * connection that breaks mid-body is resumed with a Range request.
   */
  getBlob(repository: string, blob: BlobRef, onBytes?: (n: number) => void): Readable {
    const context = `blob ${blob.digest} of ${this.registry}/${repository}`;
    const verifier = new DigestVerifier(blob, context, onBytes);
    const pump = async (): Promise<void> => {
      let received = 0;
      for (let resume = 0; ; resume++) {
        const headers: Record<string, string> = {};
        if (received > 0) headers.range = `bytes=${received}-`;
        const res = await this.send({
          method: 'GET',
          path: `/v2/${repository}/blobs/${blob.digest}`,
          scopes: this.pullScope(repository),
          operation: 'pulling from',
          repository,
          headers,
          expect: [200, 206, 404],
        });
        if (res.status === 404) {
          await res.body.dump();
          throw new FerryError('not-found', `404 BLOB_UNKNOWN pulling from ${this.registry}/${repository}: blob ${blob.digest} is not there`, {
            status: 404,
            codes: ['BLOB_UNKNOWN'],
            registry: this.registry,
            repository,
            operation: 'pulling from',
          });
        }
        // A 200 to a Range request restarts the body: skip what we already have.
        let skip = received > 0 && res.status === 200 ? received : 0;
        if (received > 0 && res.status === 206) {
          const start = /bytes (\d+)-/.exec(header(res.headers, 'content-range') ?? '')?.[1];
          if (start !== undefined && Number(start) !== received) {
            await res.body.dump();
            throw this.integrity(repository, `registry resumed ${blob.digest} at byte ${start}, asked for ${received}`);
          }
        }
        try {
          for await (const chunk of res.body as AsyncIterable<Buffer>) {
            // The reader went away (its upload or disk write failed): free the connection.
            if (verifier.destroyed) {
              res.body.destroy();
              return;
            }
            let c = chunk;
            if (skip > 0) {
              const drop = Math.min(skip, c.length);
              skip -= drop;
              c = c.subarray(drop);
              if (c.length === 0) continue;
            }
            received += c.length;
            if (!verifier.write(c)) await waitDrain(verifier);
          }
          if (verifier.destroyed) return;
          verifier.end();
          return;
        } catch (e) {
          if (verifier.destroyed) return;
          if (resume >= MAX_RESUMES || !isTransientNetworkError(e)) throw toNetworkError(e, `https://${this.apiHost}`);
        }
      }
    };
    pump().catch((e) => verifier.destroy(e instanceof FerryError ? e : toNetworkError(e, `https://${this.apiHost}`)));
    return verifier;
  }

  /**
   * Uploads a blob from a stream that `open` creates (called again for each attempt).
   * Tries a cross-repository mount first when `mountFrom` is given. Uses one monolithic
   * PUT when the size is known, chunked PATCHes otherwise, and falls back from one to
   * the other when a registry refuses it.
   */
  async pushBlob(repository: string, blob: BlobRef, open: () => Readable | Promise<Readable>, opts: PushBlobOptions = {}): Promise<PushResult> {
    let chunked = opts.chunked;
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.pushBlobOnce(repository, blob, open, { ...opts, chunked });
      } catch (e) {
        const transient = e instanceof FerryError ? e.kind === 'network' || (e.status ?? 0) >= 500 : isTransientNetworkError(e);
        if (!transient || attempt >= UPLOAD_ATTEMPTS) throw e;
        // A proxy that refuses a large body often just closes the connection (EPIPE)
        // instead of answering 413: try the chunked protocol next.
        if (e instanceof FerryError && e.kind === 'network') chunked = true;
      }
    }
  }

  private async pushBlobOnce(repository: string, blob: BlobRef, open: () => Readable | Promise<Readable>, opts: PushBlobOptions): Promise<PushResult> {
    const scopes = this.pushScope(repository);
    if (opts.mountFrom && opts.mountFrom !== repository) scopes.push(repositoryScope(opts.mountFrom, ['pull']));
    const query = opts.mountFrom && opts.mountFrom !== repository ? `?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(opts.mountFrom)}` : '';
    const start = await this.send({
      method: 'POST',
      path: `/v2/${repository}/blobs/uploads/${query}`,
      scopes,
      operation: 'pushing to',
      repository,
      headers: { 'content-length': '0' },
      expect: [201, 202],
    });
    await start.body.dump();
    if (start.status === 201) return 'mounted';
    // 202: the mount was not possible (or not asked for); upload into the session.
    let location = this.uploadLocation(start, repository);
    const chunked = opts.chunked || blob.size === undefined;
    if (!chunked) {
      const res = await this.send({
        method: 'PUT',
        path: withQuery(location, { digest: blob.digest }),
        scopes,
        operation: 'pushing to',
        repository,
        headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
        body: open,
        expect: [201, 400, 405, 413, 415, 501],
        retry: false,
      });
      // 400 is a real refusal (DIGEST_INVALID, BLOB_UPLOAD_INVALID): report it with the registry's words.
      if (res.status === 400) throw await this.failure(res, 'pushing to', repository);
      await res.body.dump();
      if (res.status === 201) return 'uploaded';
      // 405/413/415/501 refuse a monolithic upload (proxy body limits, registries wanting chunks): go chunked.
      const again = await this.send({
        method: 'POST',
        path: `/v2/${repository}/blobs/uploads/`,
        scopes,
        operation: 'pushing to',
        repository,
        headers: { 'content-length': '0' },
        expect: [202],
      });
      await again.body.dump();
      location = this.uploadLocation(again, repository);
    }
    const minChunk = Number(header(start.headers, 'oci-chunk-min-length') ?? 0);
    const chunkSize = Math.max(opts.chunkSize ?? DEFAULT_CHUNK, minChunk || 0);
    let offset = 0;
    const source = await open();
    try {
      for await (const chunk of chunksOf(source, chunkSize)) {
        const res = await this.send({
          method: 'PATCH',
          path: location,
          scopes,
          operation: 'pushing to',
          repository,
          headers: {
            'content-type': 'application/octet-stream',
            'content-length': String(chunk.length),
            'content-range': `${offset}-${offset + chunk.length - 1}`,
          },
          body: chunk,
          expect: [202, 204],
          retry: false,
        });
        await res.body.dump();
        offset += chunk.length;
        location = this.uploadLocation(res, repository, location);
      }
    } finally {
      source.destroy();
    }
    const done = await this.send({
      method: 'PUT',
      path: withQuery(location, { digest: blob.digest }),
      scopes,
      operation: 'pushing to',
      repository,
      headers: { 'content-length': '0' },
      expect: [201],
      retry: false,
    });
    await done.body.dump();
    return 'uploaded';
  }

  private uploadLocation(res: TransportResponse, repository: string, previous?: string): string {
    const location = header(res.headers, 'location');
    if (!location) {
      if (previous) return previous;
      throw new FerryError('registry', `${this.registry} started an upload to ${repository} without a Location header`, {
        registry: this.registry,
        repository,
      });
    }
    return new URL(location, res.url).toString();
  }

  // ---- listings ----

  /** All tags of a repository, following `Link` pagination. */
  async listTags(repository: string, pageSize = 1000): Promise<string[]> {
    const tags: string[] = [];
    for await (const page of this.paginate(`/v2/${repository}/tags/list?n=${pageSize}`, this.pullScope(repository), 'listing tags of', repository)) {
      const body = page as { tags?: string[] | null };
      tags.push(...(body.tags ?? []));
    }
    return tags;
  }

  /** All repositories the registry lists (`/v2/_catalog`), following pagination. */
  async catalog(pageSize = 1000): Promise<string[]> {
    const repos: string[] = [];
    for await (const page of this.paginate(`/v2/_catalog?n=${pageSize}`, ['registry:catalog:*'], 'listing the catalog of', undefined)) {
      repos.push(...((page as { repositories?: string[] }).repositories ?? []));
    }
    return repos;
  }

  /**
   * Manifests that refer to `digest` (signatures, SBOMs): the referrers API, or the
   * tag-schema fallback (`sha256-<hex>` index) where the registry lacks it.
   */
  async referrers(repository: string, digest: string, artifactType?: string): Promise<Descriptor[]> {
    const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    const first = await this.send({
      method: 'GET',
      path: `/v2/${repository}/referrers/${digest}${query}`,
      scopes: this.pullScope(repository),
      operation: 'listing referrers in',
      repository,
      headers: { accept: MediaType.OCI_INDEX },
      expect: [200, 404, 400, 405],
    });
    let found: Descriptor[];
    const type = header(first.headers, 'content-type') ?? '';
    if (first.status === 200 && type.startsWith(MediaType.OCI_INDEX)) {
      found = [];
      let res: TransportResponse | undefined = first;
      const pages = new Set<string>();
      while (res) {
        const body = JSON.parse((await readLimited(res.body, MAX_MANIFEST_BYTES))?.toString() ?? '{}') as { manifests?: unknown[] };
        found.push(...(body.manifests ?? []).map((d) => descriptorSchema.parse(d) as Descriptor));
        const next = nextLink(res);
        if (next && (pages.has(next) || pages.size >= MAX_PAGES)) {
          throw new FerryError('registry', `${this.registry} keeps paginating the referrers of ${digest} in ${repository}; giving up`, {
            registry: this.registry,
            repository,
          });
        }
        if (next) pages.add(next);
        res = next
          ? await this.send({
              method: 'GET',
              path: next,
              scopes: this.pullScope(repository),
              operation: 'listing referrers in',
              repository,
              headers: { accept: MediaType.OCI_INDEX },
              expect: [200],
            })
          : undefined;
      }
      if (!artifactType || header(first.headers, 'oci-filters-applied')?.includes('artifactType')) return found;
    } else {
      await first.body.dump();
      const { algorithm, hex } = parseDigest(digest);
      try {
        const index = await this.getManifest(repository, `${algorithm}-${hex}`);
        found = index.kind === 'index' ? index.manifest.manifests : [];
      } catch (e) {
        if (e instanceof FerryError && e.kind === 'not-found') return [];
        throw e;
      }
    }
    return artifactType ? found.filter((d) => d.artifactType === artifactType) : found;
  }

  private async *paginate(path: string, scopes: string[], operation: string, repository: string | undefined): AsyncGenerator<unknown> {
    let next: string | undefined = path;
    const seen = new Set<string>();
    while (next) {
      // A registry whose Link header repeats a page would otherwise loop forever.
      if (seen.has(next) || seen.size >= MAX_PAGES) {
        throw new FerryError('registry', `${this.registry} keeps paginating ${operation} ${repository ?? 'the catalog'} (page ${seen.size + 1}); giving up`, {
          registry: this.registry,
          repository,
        });
      }
      seen.add(next);
      const res = await this.send({ method: 'GET', path: next, scopes, operation, repository, expect: [200] });
      const bytes = await readLimited(res.body, 64 * 1024 * 1024);
      yield JSON.parse(bytes?.toString('utf8') ?? '{}');
      next = nextLink(res);
    }
  }

  // ---- plumbing ----

  /** Sends one API request with auth (answering a 401 challenge once) and maps failures. */
  private async send(op: Operation): Promise<TransportResponse> {
    const base = await this.transport.baseUrl(this.apiHost);
    const url = /^https?:\/\//.test(op.path) ? op.path : base + op.path;
    for (let attempt = 0; ; attempt++) {
      const authorization = await this.auth.authorization(op.scopes);
      const headers = { ...op.headers };
      if (authorization) headers.authorization = authorization;
      let res: TransportResponse;
      try {
        res = await this.transport.request({
          method: op.method,
          url,
          headers,
          body: op.body,
          retry: op.retry,
          followRedirects: op.followRedirects,
        });
      } catch (e) {
        throw toNetworkError(e, url);
      }
      // A 401 teaches the challenge (first request) or says a cached token is stale:
      // answer it once with fresh credentials; a second 401 is a real refusal.
      if (res.status === 401 && attempt === 0 && this.auth.learn(header(res.headers, 'www-authenticate'))) {
        this.auth.invalidate(op.scopes);
        await res.body.dump();
        continue;
      }
      if (op.expect.includes(res.status)) return res;
      throw await this.failure(res, op.operation, op.repository, authorization !== undefined);
    }
  }

  /** Builds the error for an unexpected response, reading the distribution error body. */
  private async failure(res: TransportResponse, operation: string, repository: string | undefined, sentCredentials = true): Promise<FerryError> {
    const text = (await readLimited(res.body, 64 * 1024).catch(() => undefined))?.toString('utf8') ?? '';
    let errors: Array<{ code?: string; message?: string }> = [];
    try {
      errors = (JSON.parse(text) as { errors?: typeof errors }).errors ?? [];
    } catch {
      // not a distribution error body
    }
    const codes = errors.map((e) => e.code).filter((c): c is string => typeof c === 'string');
    const where = repository ? `${this.registry}/${repository}` : this.registry;
    const status = res.status;
    let kind: ErrorKind = 'registry';
    let human: string;
    if (status === 401) {
      kind = 'auth';
      const scope = isInsufficientScope(header(res.headers, 'www-authenticate'));
      human = !sentCredentials
        ? `authentication required; run \`ferry login ${this.registry}\``
        : scope
          ? `credentials were rejected (the registry did not grant the needed rights); run \`ferry login ${this.registry}\` with an account that has them`
          : `credentials were rejected; run \`ferry login ${this.registry}\``;
    } else if (status === 403) {
      kind = 'auth';
      human = `access denied; the account lacks the rights for this${errors[0]?.message ? ` (${errors[0].message})` : ''}`;
    } else if (status === 404) {
      kind = 'not-found';
      human = errors[0]?.message ?? 'not found';
    } else {
      human = errors[0]?.message ?? `the registry answered HTTP ${status}`;
    }
    const code = codes[0] ?? (status === 401 ? 'UNAUTHORIZED' : status === 403 ? 'DENIED' : `HTTP_${status}`);
    return new FerryError(kind, `${status} ${code} ${operation} ${where}: ${human}`, {
      status,
      codes,
      registry: this.registry,
      repository,
      operation,
    });
  }

  private notFound(repository: string, reference: string): FerryError {
    return new FerryError('not-found', `404 MANIFEST_UNKNOWN resolving ${this.registry}/${repository}: ${reference} is not there`, {
      status: 404,
      codes: ['MANIFEST_UNKNOWN'],
      registry: this.registry,
      repository,
      operation: 'resolving',
    });
  }

  private integrity(repository: string, what: string): FerryError {
    return new FerryError('integrity', `integrity check failed for ${this.registry}/${repository}: ${what}`, {
      registry: this.registry,
      repository,
    });
  }
}

function withQuery(url: string, params: Record<string, string>): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

function nextLink(res: TransportResponse): string | undefined {
  const link = header(res.headers, 'link');
  const m = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
  return m ? new URL(m[1]!, res.url).toString() : undefined;
}

/** Reads a body up to `max` bytes; undefined when it is larger. */
export async function readLimited(body: AsyncIterable<Buffer> & { destroy?: () => void }, max: number): Promise<Buffer | undefined> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > max) {
      body.destroy?.();
      return undefined;
    }
    parts.push(chunk);
  }
  return Buffer.concat(parts);
}

/** Regroups a stream into chunks of exactly `size` bytes (the last may be shorter). */
async function* chunksOf(source: Readable, size: number): AsyncGenerator<Buffer> {
  let parts: Buffer[] = [];
  let have = 0;
  for await (const chunk of source as AsyncIterable<Buffer>) {
    let c = chunk;
    while (have + c.length >= size) {
      const take = size - have;
      parts.push(c.subarray(0, take));
      yield Buffer.concat(parts);
      parts = [];
      have = 0;
      c = c.subarray(take);
    }
    if (c.length) {
      parts.push(c);
      have += c.length;
    }
  }
  if (have > 0) yield Buffer.concat(parts);
}

/** Resolves when the stream wants more, or has ended for good (destroyed, closed or failed). */
function waitDrain(stream: NodeJS.WritableStream & { destroyed?: boolean }): Promise<void> {
  if (stream.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      stream.off('drain', done);
      stream.off('close', done);
      stream.off('error', done);
      resolve();
    };
    stream.on('drain', done);
    stream.on('close', done);
    stream.on('error', done);
  });
}
