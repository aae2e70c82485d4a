/**
 * The registry-v2 API (OCI distribution-spec) for one registry host: resolve,
 * manifests, blobs (streamed, verified, resumable), uploads, mounts, tags,
 * referrers and catalog. Auth and transport are delegated; every failure is a
 * FerryError that names the registry, repository and operation.
 */
import type { Readable } from 'node:stream';
import { isInsufficientScope, RegistryAuth, repositoryScope } from './auth.js';
import { dropBody, MAX_LISTING_BYTES, RateGuard, seconds } from './bounded-read.js';
import type { CredentialStore } from './credentials.js';
import { DigestVerifier, digestOf, isDigest, parseDigest } from './digest.js';
import { type ErrorKind, FerryError } from './errors.js';
import { parseBoundedJson } from './json.js';
import { type Descriptor, descriptorSchema, MANIFEST_ACCEPT, MAX_MANIFEST_BYTES, MediaType, type ParsedManifest, parseManifest } from './manifest.js';
import { registryApiHost } from './reference.js';
import {
  Backoff,
  cancelledError,
  errorCode,
  isTransientFailure,
  isTransientNetworkError,
  isTransientStatus,
  parseRetryAfter,
  sleep,
  TRANSIENT_STATUS,
  throwIfAborted,
} from './retry-policy.js';
import { describeNetworkError, header, type RequestBody, type Transport, type TransportResponse, toNetworkError } from './transport.js';

export interface BlobRef {
  digest: string;
  size?: number | undefined;
}

/** What every network method of the client accepts. */
export interface RequestOptions {
  /** Stops the request, its body stream and any retry wait, with the 'cancelled' error. */
  signal?: AbortSignal | undefined;
}

export interface PushBlobOptions extends RequestOptions {
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
  /** Blob downloads: the body is handed over as it streams. */
  stream?: boolean;
  /** Other bodies are read whole, up to this (default 1 MiB). */
  maxBodyBytes?: number;
  signal?: AbortSignal | undefined;
}

const DEFAULT_CHUNK = 8 * 1024 * 1024;
/** Pages of a listing followed at most. */
const MAX_PAGES = 10_000;

export class RegistryClient {
  readonly apiHost: string;
  private readonly auth: RegistryAuth;
  /** Repositories this client will push to: their scopes always ask for pull+push. */
  private readonly pushRepos = new Set<string>();
  /** Per repository: whether it answers the referrers API (see supportsReferrers). */
  private readonly referrersApi = new Map<string, Promise<boolean>>();
  /** What GET /v2/ answered, asked once after an unexpected 404 (is this a registry at all?). */
  private v2Answer: Promise<number | undefined> | undefined;

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
  async ping(opts: RequestOptions = {}): Promise<void> {
    await this.send({ method: 'GET', path: '/v2/', scopes: [], operation: 'logging in to', expect: [200], signal: opts.signal });
  }

  // ---- manifests ----

  /** Resolves a tag or digest to the manifest's descriptor (HEAD, falling back to GET). */
  async resolve(repository: string, reference: string, opts: RequestOptions = {}): Promise<Descriptor> {
    const res = await this.send({
      method: 'HEAD',
      path: `/v2/${repository}/manifests/${reference}`,
      scopes: this.pullScope(repository),
      operation: 'resolving',
      repository,
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      expect: [200, 404, 405, 400],
      signal: opts.signal,
    });
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
    const m = await this.getManifest(repository, reference, opts);
    return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.byteLength };
  }

  /** Fetches and parses a manifest, checking it against Docker-Content-Digest and a requested digest. */
  async getManifest(repository: string, reference: string, opts: RequestOptions = {}): Promise<ParsedManifest> {
    const res = await this.send({
      method: 'GET',
      path: `/v2/${repository}/manifests/${reference}`,
      scopes: this.pullScope(repository),
      operation: 'pulling manifest from',
      repository,
      headers: { accept: MANIFEST_ACCEPT.join(', ') },
      expect: [200, 404],
      maxBodyBytes: MAX_MANIFEST_BYTES,
      signal: opts.signal,
    });
    if (res.status === 404) throw this.notFound(repository, reference);
    // The transport stops reading past the limit, whether or not a Content-Length said so.
    const bytes = res.bytes;
    if (!bytes) {
      const length = Number(header(res.headers, 'content-length'));
      throw new FerryError(
        'unsupported',
        `manifest ${reference} in ${this.registry}/${repository} is larger than 4 MiB${length > MAX_MANIFEST_BYTES ? ` (${length} bytes)` : ''}; refusing it`,
        { registry: this.registry, repository },
      );
    }
    // Bytes first, then meaning: a manifest damaged on the way is an integrity failure, not an unreadable one.
    const stated = header(res.headers, 'docker-content-digest');
    for (const want of [stated, isDigest(reference) ? reference : undefined]) {
      if (!want || !isDigest(want)) continue;
      const actual = digestOf(bytes, parseDigest(want).algorithm);
      if (actual !== want) {
        throw this.integrity(repository, `manifest ${reference} has digest ${actual}, expected ${want}`);
      }
    }
    return parseManifest(bytes, header(res.headers, 'content-type'));
  }

  /** Stores a manifest under a tag or its digest; returns the digest the registry computed. */
  async putManifest(repository: string, reference: string, bytes: Uint8Array, mediaType: string, opts: RequestOptions = {}): Promise<string> {
    const res = await this.send({
      method: 'PUT',
      path: `/v2/${repository}/manifests/${reference}`,
      scopes: this.pushScope(repository),
      operation: 'pushing to',
      repository,
      headers: { 'content-type': mediaType },
      body: bytes,
      expect: [201, 200],
      signal: opts.signal,
    });
    const digest = digestOf(bytes);
    const stated = header(res.headers, 'docker-content-digest');
    if (stated && stated !== digest && stated.startsWith('sha256:')) {
      throw this.integrity(repository, `registry stored the manifest as ${stated}, expected ${digest}`);
    }
    return digest;
  }

  // ---- blobs ----

  /** HEAD a blob: its size when present, undefined when not. */
  async blobSize(repository: string, digest: string, opts: RequestOptions = {}): Promise<number | undefined> {
    const res = await this.send({
      method: 'HEAD',
      path: `/v2/${repository}/blobs/${digest}`,
      scopes: this.pullScope(repository),
      operation: 'checking',
      repository,
      expect: [200, 404],
      signal: opts.signal,
    });
    return res.status === 200 ? Number(header(res.headers, 'content-length') ?? NaN) : undefined;
  }

  async blobExists(repository: string, digest: string, opts: RequestOptions = {}): Promise<boolean> {
    return (await this.blobSize(repository, digest, opts)) !== undefined;
  }

  /**
   * A blob as a stream, checked against its digest and size as it flows. A
   * connection that breaks, stalls or crawls mid-body is resumed with a Range
   * request, with a line saying so.
   */
  getBlob(repository: string, blob: BlobRef, onBytes?: (n: number) => void, opts: RequestOptions = {}): Readable {
    const context = `blob ${blob.digest} of ${this.registry}/${repository}`;
    const verifier = new DigestVerifier(blob, context, onBytes);
    const signal = opts.signal;
    const onAbort = (): void => {
      verifier.destroy(cancelledError(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
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
          stream: true,
          signal,
        });
        if (res.status === 404) {
          dropBody(res.body);
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
            dropBody(res.body);
            throw this.integrity(repository, `registry resumed ${blob.digest} at byte ${start}, asked for ${received}`);
          }
        }
        const guard = new RateGuard(res.body, this.transport.minBlobRate);
        try {
          for await (const chunk of res.body as AsyncIterable<Buffer>) {
            // The reader went away (its upload or disk write failed): free the connection.
            if (verifier.destroyed) {
              dropBody(res.body);
              return;
            }
            guard.add(chunk.length);
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
          throwIfAborted(signal);
          if (resume >= this.transport.policy.maxBlobResumes || !isTransientNetworkError(e)) throw toNetworkError(e, res.url);
          this.transport.warn(`resuming blob ${blob.digest} of ${this.registry}/${repository} at byte ${received} after ${this.interruption(e, res.url)}`);
        } finally {
          guard.stop();
        }
      }
    };
    pump()
      .catch((e) => verifier.destroy(e instanceof FerryError ? e : toNetworkError(e, `https://${this.apiHost}`)))
      .finally(() => signal?.removeEventListener('abort', onAbort));
    return verifier;
  }

  /** Why a body stopped, for a resume line. */
  private interruption(e: unknown, url: string): string {
    const code = errorCode(e);
    if (code === 'UND_ERR_BODY_TIMEOUT') return `a ${seconds(this.transport.blobStallMs)} s stall`;
    if (code === 'FERRY_BODY_TOO_SLOW') return (e as Error).message.replace(/^it was /, 'the transfer was ');
    return describeNetworkError(e, new URL(url).host);
  }

  /**
   * Uploads a blob from a stream that `open` creates (called again whenever the upload
   * restarts). Tries a cross-repository mount first when `mountFrom` is given. Uses one
   * monolithic PUT when the size is known, chunked PATCHes otherwise, and falls back
   * from one to the other when a registry refuses it.
   *
   * Transient failures (408, 429, 5xx, resets) of any of its requests are retried by
   * the retry policy: a chunked upload resumes at the offset the registry reports for
   * its session where it can; otherwise the upload restarts from a new session, the
   * blob read again from `open`.
   */
  async pushBlob(repository: string, blob: BlobRef, open: () => Readable | Promise<Readable>, opts: PushBlobOptions = {}): Promise<PushResult> {
    const signal = opts.signal;
    const where = `${this.registry}/${repository}`;
    const backoff = new Backoff(this.transport.policy);
    const scopes = this.pushScope(repository);
    let mountFrom = opts.mountFrom && opts.mountFrom !== repository ? opts.mountFrom : undefined;
    if (mountFrom) scopes.push(repositoryScope(mountFrom, ['pull']));
    let chunked = opts.chunked || blob.size === undefined;
    let chunkSize = opts.chunkSize ?? DEFAULT_CHUNK;
    /** The session, and what it holds: `offset` bytes; `pending` starts there. */
    let location: string | undefined;
    let offset = 0;
    let pending: Buffer | undefined;
    let chunks: AsyncIterator<Buffer> | undefined;
    let source: Readable | undefined;
    let failedBefore = false;
    let resumedAt: number | undefined;
    const closeSource = (): void => {
      source?.destroy();
      source = undefined;
      chunks = undefined;
    };
    const op = (o: Omit<Operation, 'scopes' | 'operation' | 'repository' | 'signal'>): Operation => ({
      ...o,
      scopes,
      operation: 'pushing to',
      repository,
      signal,
    });
    try {
      for (;;) {
        try {
          if (!location) {
            const query = mountFrom ? `?mount=${encodeURIComponent(blob.digest)}&from=${encodeURIComponent(mountFrom)}` : '';
            const start = await this.send(
              op({ method: 'POST', path: `/v2/${repository}/blobs/uploads/${query}`, headers: { 'content-length': '0' }, expect: [201, 202] }),
            );
            if (start.status === 201) return 'mounted';
            // 202: the mount was not possible (or not asked for); upload into the session.
            mountFrom = undefined;
            location = this.uploadLocation(start, repository);
            offset = 0;
            pending = undefined;
            chunkSize = Math.max(chunkSize, Number(header(start.headers, 'oci-chunk-min-length') ?? 0) || 0);
            if (!chunked) {
              const res = await this.send(
                op({
                  method: 'PUT',
                  path: withQuery(location, { digest: blob.digest }),
                  headers: { 'content-type': 'application/octet-stream', 'content-length': String(blob.size) },
                  body: open,
                  expect: [201, 400, 404, 405, 413, 415, 501, ...TRANSIENT],
                  retry: false,
                }),
              );
              if (res.status === 201) return 'uploaded';
              if (isTransientStatus(res.status) || (failedBefore && isLostSession(res))) throw await this.interrupted(res, repository);
              // 400 is a real refusal (DIGEST_INVALID, BLOB_UPLOAD_INVALID): report it with the registry's words.
              if (res.status === 400 || res.status === 404) throw await this.failure(res, 'pushing to', repository);
              // 405/413/415/501 refuse a monolithic upload (proxy body limits, registries wanting chunks): go chunked.
              chunked = true;
              location = undefined;
              continue;
            }
          }
          if (!chunks) {
            source = await open();
            chunks = chunksOf(source, chunkSize)[Symbol.asyncIterator]();
          }
          for (;;) {
            if (!pending) {
              const next = await chunks.next();
              if (next.done) break;
              pending = next.value;
            }
            const res = await this.send(
              op({
                method: 'PATCH',
                path: location,
                headers: {
                  'content-type': 'application/octet-stream',
                  'content-length': String(pending.length),
                  'content-range': `${offset}-${offset + pending.length - 1}`,
                },
                body: pending,
                expect: [202, 204, 400, 404, 416, ...TRANSIENT],
                retry: false,
              }),
            );
            if (res.status !== 202 && res.status !== 204) {
              if (isTransientStatus(res.status) || res.status === 416 || (failedBefore && isLostSession(res))) throw await this.interrupted(res, repository);
              throw await this.failure(res, 'pushing to', repository);
            }
            offset += pending.length;
            pending = undefined;
            location = this.uploadLocation(res, repository, location);
          }
          const done = await this.send(
            op({ method: 'PUT', path: withQuery(location, { digest: blob.digest }), headers: { 'content-length': '0' }, expect: [201, 400, 404] }),
          );
          if (done.status === 201) return 'uploaded';
          if (failedBefore && isLostSession(done)) throw await this.interrupted(done, repository);
          throw await this.failure(done, 'pushing to', repository);
        } catch (e) {
          throwIfAborted(signal);
          const interruption = e instanceof UploadInterrupted ? e : undefined;
          const error = interruption?.error ?? (e instanceof FerryError ? e : toNetworkError(e, location ?? `https://${this.apiHost}`));
          if (!interruption && !isTransientFailure(error)) throw error;
          // A proxy that refuses a large body often just closes the connection (EPIPE)
          // instead of answering 413: the chunked protocol comes next.
          if (!interruption && !chunked && error.kind === 'network') chunked = true;
          failedBefore = true;
          const step = backoff.next(interruption?.retryAfterMs);
          if (!step) throw error;
          if (step.askedMs !== undefined) {
            this.transport.warn(
              `${this.registry} asked to wait ${seconds(step.askedMs)} s before retrying (Retry-After); ferry waits at most ${seconds(this.transport.policy.maxRetryAfterMs)} s`,
            );
          }
          const reason = interruption?.reason ?? error.message;
          await sleep(step.delayMs, signal);
          // Resume a chunked session where the registry says it stands, once per position.
          if (location && pending && chunks) {
            const at = await this.uploadOffset(location, scopes, repository, signal);
            if (at !== undefined && at >= offset && at <= offset + pending.length && at !== resumedAt) {
              pending = pending.subarray(at - offset);
              offset = at;
              resumedAt = at;
              if (pending.length === 0) pending = undefined;
              this.transport.warn(`resuming the upload of ${blob.digest} to ${where} at byte ${at} after ${reason} (attempt ${backoff.attempt + 1})`);
              continue;
            }
          }
          // The registry may have the blob after all (the answer to the last PUT was lost).
          if (await this.blobExists(repository, blob.digest, { signal })) return 'uploaded';
          closeSource();
          location = undefined;
          pending = undefined;
          offset = 0;
          resumedAt = undefined;
          this.transport.warn(`restarting the upload of ${blob.digest} to ${where} after ${reason} (attempt ${backoff.attempt + 1})`);
        }
      }
    } finally {
      closeSource();
    }
  }

  /** The failure of an upload request that a new attempt may cure, with the wait the registry asked for. */
  private async interrupted(res: TransportResponse, repository: string): Promise<UploadInterrupted> {
    const error = await this.failure(res, 'pushing to', repository);
    return new UploadInterrupted(error, `HTTP ${res.status}`, parseRetryAfter(header(res.headers, 'retry-after')));
  }

  /** How many bytes an upload session holds (GET on its URL -> Range: 0-N), undefined when it is gone. */
  private async uploadOffset(location: string, scopes: string[], repository: string, signal: AbortSignal | undefined): Promise<number | undefined> {
    try {
      const res = await this.send({ method: 'GET', path: location, scopes, operation: 'pushing to', repository, expect: [200, 204, 400, 404, 416], signal });
      if (res.status !== 200 && res.status !== 204) return undefined;
      const range = /^\s*0-(\d+)\s*$/.exec(header(res.headers, 'range') ?? '');
      // "0-0" is what distribution says for an empty session (and for one byte): start over from 0.
      return range ? (range[1] === '0' ? 0 : Number(range[1]) + 1) : undefined;
    } catch (e) {
      throwIfAborted(signal);
      if (e instanceof FerryError && isTransientFailure(e)) return undefined;
      throw e;
    }
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
  async listTags(repository: string, pageSize = 1000, opts: RequestOptions = {}): Promise<string[]> {
    const tags: string[] = [];
    for await (const page of this.paginate(
      `/v2/${repository}/tags/list?n=${pageSize}`,
      this.pullScope(repository),
      'listing tags of',
      repository,
      opts.signal,
    )) {
      const body = page as { tags?: unknown } | null;
      tags.push(...(Array.isArray(body?.tags) ? body.tags.filter((t): t is string => typeof t === 'string') : []));
    }
    return tags;
  }

  /** All repositories the registry lists (`/v2/_catalog`), following pagination. */
  async catalog(pageSize = 1000, opts: RequestOptions = {}): Promise<string[]> {
    const repos: string[] = [];
    for await (const page of this.paginate(`/v2/_catalog?n=${pageSize}`, ['registry:catalog:*'], 'listing the catalog of', undefined, opts.signal)) {
      const body = page as { repositories?: unknown } | null;
      repos.push(...(Array.isArray(body?.repositories) ? body.repositories.filter((r): r is string => typeof r === 'string') : []));
    }
    return repos;
  }

  /**
   * Whether the registry answers the OCI 1.1 referrers API for `repository` (asked
   * once per repository): where it does not (registry:2.8), a writer of referrers
   * keeps the tag-schema fallback index itself.
   */
  supportsReferrers(repository: string, subject: string, opts: RequestOptions = {}): Promise<boolean> {
    let known = this.referrersApi.get(repository);
    if (!known) {
      known = this.referrersPage(repository, `/v2/${repository}/referrers/${subject}`, [200, 404, 400, 405], opts.signal).then(isReferrersAnswer);
      this.referrersApi.set(repository, known);
      known.catch(() => this.referrersApi.delete(repository));
    }
    return known;
  }

  private referrersPage(repository: string, path: string, expect: number[], signal: AbortSignal | undefined): Promise<TransportResponse> {
    return this.send({
      method: 'GET',
      path,
      scopes: this.pullScope(repository),
      operation: 'listing referrers in',
      repository,
      headers: { accept: MediaType.OCI_INDEX },
      expect,
      maxBodyBytes: MAX_MANIFEST_BYTES,
      signal,
    });
  }

  /**
   * Manifests that refer to `digest` (signatures, SBOMs): the referrers API, or the
   * tag-schema fallback (`sha256-<hex>` index) where the registry lacks it. Once a
   * repository is known to lack the API it is not asked again; `fallbackTagListed:
   * false` (the caller read the tag list) spares the GET of a fallback tag that is not there.
   */
  async referrers(
    repository: string,
    digest: string,
    artifactType?: string,
    opts: RequestOptions & { fallbackTagListed?: boolean | undefined } = {},
  ): Promise<Descriptor[]> {
    const signal = opts.signal;
    const query = artifactType ? `?artifactType=${encodeURIComponent(artifactType)}` : '';
    const path = `/v2/${repository}/referrers/${digest}${query}`;
    // The first lookup in a repository finds out whether it has the API; the others wait for that.
    let probe: Promise<TransportResponse> | undefined;
    let known = this.referrersApi.get(repository);
    if (!known) {
      probe = this.referrersPage(repository, path, [200, 404, 400, 405], signal);
      known = probe.then(isReferrersAnswer);
      this.referrersApi.set(repository, known);
      known.catch(() => this.referrersApi.delete(repository));
    }
    const first = probe
      ? await probe
      : (await known.catch(() => undefined)) === false
        ? undefined
        : await this.referrersPage(repository, path, [200, 404, 400, 405], signal);
    let found: Descriptor[];
    if (first && isReferrersAnswer(first)) {
      found = [];
      let res: TransportResponse | undefined = first;
      const pages = new Set<string>();
      while (res) {
        const body = this.json(res, 'the referrers of', repository, digest) as { manifests?: unknown } | null;
        found.push(...(Array.isArray(body?.manifests) ? body.manifests : []).map((d) => descriptorSchema.parse(d) as Descriptor));
        const next = nextLink(res);
        if (next && (pages.has(next) || pages.size >= MAX_PAGES)) {
          throw new FerryError('registry', `${this.registry} keeps paginating the referrers of ${digest} in ${repository}; giving up`, {
            registry: this.registry,
            repository,
          });
        }
        if (next) pages.add(next);
        res = next ? await this.referrersPage(repository, next, [200], signal) : undefined;
      }
      if (!artifactType || header(first.headers, 'oci-filters-applied')?.includes('artifactType')) return found;
    } else {
      if (opts.fallbackTagListed === false) return [];
      const { algorithm, hex } = parseDigest(digest);
      try {
        const index = await this.getManifest(repository, `${algorithm}-${hex}`, { signal });
        found = index.kind === 'index' ? index.manifest.manifests : [];
      } catch (e) {
        if (e instanceof FerryError && e.kind === 'not-found') return [];
        throw e;
      }
    }
    return artifactType ? found.filter((d) => d.artifactType === artifactType) : found;
  }

  /**
   * The repository's tags when one page of `pageSize` holds them all (one request);
   * undefined when the registry pages them or will not list them, so that the
   * caller asks for the tags it wants one by one instead.
   */
  async tagsOnOnePage(repository: string, pageSize = 1000, opts: RequestOptions = {}): Promise<Set<string> | undefined> {
    const res = await this.send({
      method: 'GET',
      path: `/v2/${repository}/tags/list?n=${pageSize}`,
      scopes: this.pullScope(repository),
      operation: 'listing tags of',
      repository,
      expect: [200, 403, 404, 405],
      maxBodyBytes: MAX_LISTING_BYTES,
      signal: opts.signal,
    });
    if (res.status !== 200 || nextLink(res) !== undefined) return undefined;
    const body = this.json(res, 'listing tags of', repository) as { tags?: unknown } | null;
    if (!Array.isArray(body?.tags) && body?.tags !== null && body?.tags !== undefined) return undefined;
    return new Set((Array.isArray(body?.tags) ? body.tags : []).filter((t): t is string => typeof t === 'string'));
  }

  private async *paginate(
    path: string,
    scopes: string[],
    operation: string,
    repository: string | undefined,
    signal: AbortSignal | undefined,
  ): AsyncGenerator<unknown> {
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
      const res = await this.send({ method: 'GET', path: next, scopes, operation, repository, expect: [200], maxBodyBytes: MAX_LISTING_BYTES, signal });
      yield this.json(res, operation, repository);
      next = nextLink(res);
    }
  }

  /** The JSON of a listing page, refusing one too large or nested too deep. */
  private json(res: TransportResponse, operation: string, repository: string | undefined, what?: string): unknown {
    const where = `${operation} ${repository ? `${this.registry}/${repository}` : this.registry}${what ? ` (${what})` : ''}`;
    const refuse = (why: string) => new FerryError('registry', `${this.registry} sent ${why} ${where}; refusing it`, { registry: this.registry, repository });
    if (!res.bytes) throw refuse('a page that is too large');
    if (res.bytes.length === 0) return {};
    return parseBoundedJson(
      res.bytes,
      () => refuse('a page that is not JSON'),
      () => refuse('a page nested too deep'),
    );
  }

  // ---- plumbing ----

  /**
   * Sends one API request with auth (answering a 401 challenge once) and maps failures.
   * Credentials go only to the registry's own origin: not to an upload Location, a
   * Link page or a redirect on another host, port or scheme (as Docker's
   * endpointAuthorizer keys them by the host it pinged).
   */
  private async send(op: Operation): Promise<TransportResponse> {
    const base = await this.transport.baseUrl(this.apiHost, op.signal);
    const url = /^https?:\/\//.test(op.path) ? op.path : base + op.path;
    const ownOrigin = new URL(url).origin === new URL(base).origin;
    for (let attempt = 0; ; attempt++) {
      const authorization = ownOrigin ? await this.auth.authorization(op.scopes, op.signal) : undefined;
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
          stream: op.stream,
          maxBodyBytes: op.maxBodyBytes,
          signal: op.signal,
        });
      } catch (e) {
        throw toNetworkError(e, url);
      }
      // A 401 teaches the challenge (first request) or says a cached token is stale:
      // answer it once with fresh credentials; a second 401 is a real refusal.
      if (res.status === 401 && ownOrigin && attempt === 0 && this.auth.learn(header(res.headers, 'www-authenticate'))) {
        this.auth.invalidate(op.scopes);
        dropBody(res.body);
        continue;
      }
      if (op.expect.includes(res.status)) return res;
      if (res.status === 404 && ownOrigin) {
        // A bare 404 may mean there is no registry at all (a web server on that port): say so.
        const v2 = op.path === '/v2/' ? 404 : await this.v2Status(base, op.signal);
        if (v2 !== undefined && v2 !== 200 && v2 !== 401) {
          dropBody(res.body);
          throw new FerryError('registry', `${this.registry} is not a registry (GET /v2/ answered ${v2})`, {
            status: v2,
            registry: this.registry,
            repository: op.repository,
            operation: op.operation,
          });
        }
      }
      throw await this.failure(res, op.operation, op.repository, authorization !== undefined);
    }
  }

  /** The status `GET /v2/` answers (asked once, and only after a 404), or undefined when it cannot be asked. */
  private async v2Status(base: string, signal: AbortSignal | undefined): Promise<number | undefined> {
    this.v2Answer ??= this.transport.request({ method: 'GET', url: `${base}/v2/`, headers: {}, signal }).then(
      (r) => {
        dropBody(r.body);
        return r.status;
      },
      () => undefined,
    );
    return this.v2Answer;
  }

  /** Builds the error for an unexpected response, reading the distribution error body (bounded). */
  private async failure(res: TransportResponse, operation: string, repository: string | undefined, sentCredentials = true): Promise<FerryError> {
    const text = (await this.transport.readSmall(res).catch(() => undefined))?.toString('utf8') ?? '';
    let errors: Array<{ code?: string; message?: string }> = [];
    try {
      const body = parseBoundedJson(
        text,
        () => new Error('not JSON'),
        () => new Error('too deep'),
      ) as { errors?: unknown } | null;
      if (Array.isArray(body?.errors)) errors = body.errors.filter((e): e is { code?: string; message?: string } => typeof e === 'object' && e !== null);
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

/** The statuses an upload request expects so that it can handle them itself. */
const TRANSIENT = [...TRANSIENT_STATUS];

/** An upload request failed in a way a new attempt may cure. Never leaves pushBlob. */
class UploadInterrupted extends Error {
  constructor(
    readonly error: FerryError,
    readonly reason: string,
    readonly retryAfterMs: number | undefined,
  ) {
    super(error.message);
  }
}

/** The registry no longer knows the session (after an interrupted request): start a new one. */
function isLostSession(res: TransportResponse): boolean {
  if (res.status !== 404 && res.status !== 400) return false;
  const text = res.bytes?.toString('utf8') ?? '';
  return /BLOB_UPLOAD_UNKNOWN|BLOB_UPLOAD_INVALID/.test(text) || res.status === 404;
}

function withQuery(url: string, params: Record<string, string>): string {
  const u = new URL(url);
  for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
  return u.toString();
}

/** A referrers API answer (an OCI index), not a registry without the API (404, 400, 405, or HTML). */
function isReferrersAnswer(res: TransportResponse): boolean {
  return res.status === 200 && (header(res.headers, 'content-type') ?? '').startsWith(MediaType.OCI_INDEX);
}

function nextLink(res: TransportResponse): string | undefined {
  const link = header(res.headers, 'link');
  const m = link ? /<([^>]+)>\s*;\s*rel="?next"?/.exec(link) : null;
  return m ? new URL(m[1]!, res.url).toString() : undefined;
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
