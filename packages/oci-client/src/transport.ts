/**
 * HTTP transport for registries: connection pooling, scheme choice, TLS trust,
 * proxies, redirects, retries (by the policy of retry-policy.ts) and bounded body
 * reads. Knows nothing of auth or of the registry API; `request` sends one logical
 * request and returns the final response.
 */
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { Agent, type Dispatcher, EnvHttpProxyAgent, request as undiciRequest } from 'undici';
import { BLOB_STALL_MS, BODY_DEADLINE_MS, dropBody, MAX_SMALL_BODY_BYTES, MIN_BLOB_RATE, type MinRate, readBounded, seconds } from './bounded-read.js';
import { FerryError } from './errors.js';
import { isLoopbackHost } from './reference.js';
import {
  abortable,
  Backoff,
  cancelledError,
  errorCode,
  isTransientNetworkError,
  isTransientStatus,
  parseRetryAfter,
  type RetryPolicy,
  retryPolicy,
  sleep,
  throwIfAborted,
} from './retry-policy.js';

export interface TransportOptions {
  /** Hosts (host[:port]) that may be reached over plain HTTP or unverified TLS. */
  insecureRegistries?: string[];
  /** Extra PEM CA bundle trusted for TLS (in addition to the system roots). */
  caFile?: string;
  userAgent?: string;
  /** Replaces numbers of the retry policy (retry-policy.ts). */
  retry?: Partial<RetryPolicy>;
  /** Time allowed for connecting and for the response headers. */
  headersTimeoutMs?: number;
  /** Longest silence allowed while a blob body streams; progress resets it. */
  bodyIdleTimeoutMs?: number;
  /** Time allowed for the whole of a non-blob body (manifests, tokens, errors, listings). */
  bodyDeadlineMs?: number;
  /** A blob body slower than this is cut (and resumed). */
  minBlobRate?: MinRate;
  /** Parallel connections per origin (keep-alive pool). */
  connectionsPerHost?: number;
  /** Environment for HTTP(S)_PROXY / NO_PROXY; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Called before each retry; for logs. */
  onRetry?: (info: RetryInfo) => void;
  /**
   * Lines the user should see: a registry unreachable, a long Retry-After cut to the
   * cap, a resumed or restarted transfer, credentials sent to another host or in clear.
   */
  onWarning?: (message: string) => void;
}

export interface RetryInfo {
  url: string;
  attempt: number;
  delayMs: number;
  reason: string;
}

export type RequestBody = Uint8Array | string | (() => Readable | Promise<Readable>);

export interface TransportRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  /** A function body can be re-created, so the request can be retried. */
  body?: RequestBody;
  /** Retry transient statuses and network failures (default true). */
  retry?: boolean;
  /** Follow redirects (default true). */
  followRedirects?: boolean;
  /**
   * Hand the body over as it streams (blobs). Otherwise the body is read whole, within
   * the retry loop, bounded by `maxBodyBytes` and the body deadline.
   */
  stream?: boolean;
  /** Size limit of a body read whole; default 1 MiB. */
  maxBodyBytes?: number;
  /** Stops the request, its body and any wait between attempts. */
  signal?: AbortSignal | undefined;
}

export type ResponseBody = Readable & { text(): Promise<string>; arrayBuffer(): Promise<ArrayBuffer>; dump(): Promise<void> };

export interface TransportResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** The live body (stream requests), else a replay of `bytes`. */
  body: ResponseBody;
  /**
   * The whole body, for requests that are not streamed; undefined when it exceeded
   * the request's `maxBodyBytes` (and was not read further).
   */
  bytes?: Buffer | undefined;
  /** The URL that answered, after redirects. */
  url: string;
}

const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

export function header(headers: TransportResponse['headers'], name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export class Transport {
  private readonly verified: Dispatcher;
  private readonly unverified: Dispatcher;
  private readonly insecure: Set<string>;
  readonly policy: RetryPolicy;
  readonly bodyDeadlineMs: number;
  readonly blobStallMs: number;
  readonly minBlobRate: MinRate;
  private readonly userAgent: string;
  /** Scheme chosen per host once probed (loopback and insecure hosts try HTTPS first). */
  private readonly schemes = new Map<string, Promise<'https' | 'http'>>();
  /** Hosts said to be unreachable, until they answer again: the line is printed once per outage. */
  private readonly unreachable = new Set<string>();
  private readonly warned = new Set<string>();

  constructor(private readonly opts: TransportOptions = {}) {
    this.insecure = new Set((opts.insecureRegistries ?? []).map((h) => h.toLowerCase()));
    this.policy = retryPolicy(opts.retry);
    this.bodyDeadlineMs = opts.bodyDeadlineMs ?? BODY_DEADLINE_MS;
    this.minBlobRate = opts.minBlobRate ?? MIN_BLOB_RATE;
    this.blobStallMs = opts.bodyIdleTimeoutMs ?? BLOB_STALL_MS;
    this.userAgent = opts.userAgent ?? 'ferry';
    let ca: string | undefined;
    if (opts.caFile) {
      try {
        ca = readFileSync(opts.caFile, 'utf8');
      } catch (e) {
        throw new FerryError('usage', `cannot read CA file ${opts.caFile}: ${(e as Error).message}`);
      }
    }
    const base = {
      keepAliveTimeout: 30_000,
      connections: opts.connectionsPerHost ?? 16,
      headersTimeout: opts.headersTimeoutMs ?? 60_000,
      bodyTimeout: this.blobStallMs,
    };
    // Node's default roots plus the user's CA: passing `ca` alone would replace the roots.
    const caList = ca ? [...rootCertificates, ca] : undefined;
    this.verified = makeDispatcher(base, { ca: caList, rejectUnauthorized: true }, opts.env);
    this.unverified = makeDispatcher(base, { rejectUnauthorized: false }, opts.env);
  }

  isInsecure(host: string): boolean {
    return this.insecure.has(host.toLowerCase());
  }

  /** Base URL (scheme://host) of a registry host, probing the scheme once when it may be plain HTTP. */
  async baseUrl(host: string, signal?: AbortSignal): Promise<string> {
    const mayBePlain = this.isInsecure(host) || isLoopbackHost(host);
    if (!mayBePlain) return `https://${host}`;
    let scheme = this.schemes.get(host);
    if (!scheme) {
      scheme = this.probeScheme(host, signal);
      this.schemes.set(host, scheme);
      // A probe that failed (the registry down past the budget, or cancelled) is not remembered.
      scheme.catch(() => this.schemes.delete(host));
    }
    return `${await abortable(scheme, signal)}://${host}`;
  }

  /**
   * Loopback and insecure registries: HTTPS first (so credentials never travel in
   * clear to a TLS server), plain HTTP when the server does not speak TLS. A registry
   * that is down is waited for as any request would wait: guessing a scheme now
   * would stick to the wrong one once it is back.
   */
  private async probeScheme(host: string, signal: AbortSignal | undefined): Promise<'https' | 'http'> {
    const backoff = new Backoff(this.policy);
    for (;;) {
      try {
        const res = await undiciRequest(`https://${host}/v2/`, {
          method: 'GET',
          dispatcher: this.dispatcherFor(host),
          headers: { 'user-agent': this.userAgent },
          signal,
        });
        await res.body.dump();
        this.unreachable.delete(host);
        return 'https';
      } catch (e) {
        if (isNotTlsError(e)) {
          this.unreachable.delete(host);
          return 'http';
        }
        // A TLS server whose certificate we cannot verify: say so rather than fall back to HTTP.
        if (isCertificateError(e)) return 'https';
        throwIfAborted(signal);
        const step = isTransientNetworkError(e) ? backoff.next() : undefined;
        if (!step) throw toNetworkError(e, `https://${host}/`);
        this.announceUnreachable(host, e);
        await sleep(step.delayMs, signal);
      }
    }
  }

  /** The one line for an outage of `host`, said when it starts. */
  private announceUnreachable(host: string, e: unknown): void {
    if (this.unreachable.has(host)) return;
    this.unreachable.add(host);
    this.warn(`registry ${host} unreachable (${describeNetworkError(e, host)}), retrying for up to ${seconds(this.policy.budgetMs)} s`);
  }

  private dispatcherFor(host: string): Dispatcher {
    return this.isInsecure(host) ? this.unverified : this.verified;
  }

  /**
   * Sends a request, following redirects and retrying transient failures (retry-policy.ts)
   * until the budget is spent; then the last response, or the one-line network error.
   * Bodies that are not streamed are read whole inside the loop, so a body cut or
   * stalled after its headers is retried like any other failure.
   */
  async request(req: TransportRequest): Promise<TransportResponse> {
    const backoff = new Backoff(this.policy);
    const host = safeHost(req.url);
    for (;;) {
      throwIfAborted(req.signal);
      let res: TransportResponse | undefined;
      let failure: unknown;
      let inBody = false;
      try {
        res = await this.sendFollowingRedirects(req);
        if (!req.stream) {
          inBody = true;
          res = await this.readWhole(res, req);
        }
      } catch (e) {
        failure = e;
        res = undefined;
      }
      if (req.signal?.aborted) {
        if (res) dropBody(res.body);
        throw cancelledError(req.signal);
      }
      if (res) this.unreachable.delete(host);
      const transient = res ? isTransientStatus(res.status) : isTransientNetworkError(failure);
      const step = req.retry !== false && transient ? backoff.next(res ? parseRetryAfter(header(res.headers, 'retry-after')) : undefined) : undefined;
      if (!step) {
        if (res) return res;
        throw toNetworkError(failure, req.url);
      }
      if (res && req.stream) await this.discard(res);
      const reason = res ? `HTTP ${res.status}` : describeNetworkError(failure, host);
      if (step.askedMs !== undefined) {
        this.warn(
          `${host} asked to wait ${seconds(step.askedMs)} s before retrying (Retry-After); ferry waits at most ${seconds(this.policy.maxRetryAfterMs)} s`,
        );
      }
      if (!res && !inBody) {
        // Connection-level failures: one line for the outage, not one per attempt.
        this.announceUnreachable(host, failure);
      } else {
        this.opts.onRetry?.({ url: redactUrl(req.url), attempt: backoff.attempt, delayMs: step.delayMs, reason });
      }
      await sleep(step.delayMs, req.signal);
    }
  }

  /** A line for the user (onWarning). */
  warn(message: string): void {
    this.opts.onWarning?.(message);
  }

  /** A line for the user, said once per client however often it applies. */
  warnOnce(message: string): void {
    if (this.warned.has(message)) return;
    this.warned.add(message);
    this.warn(message);
  }

  /** Announces a retry that a caller runs itself (blob uploads): the same line the transport prints. */
  retrying(info: RetryInfo): void {
    this.opts.onRetry?.({ ...info, url: redactUrl(info.url) });
  }

  /** Reads a streamed body whole, bounded as a small body (error bodies of blob requests). */
  async readSmall(res: TransportResponse, maxBytes = MAX_SMALL_BODY_BYTES): Promise<Buffer | undefined> {
    if (res.bytes) return res.bytes;
    return readBounded(res.body, maxBytes, this.bodyDeadlineMs);
  }

  private async readWhole(res: TransportResponse, req: TransportRequest): Promise<TransportResponse> {
    const max = req.maxBodyBytes ?? MAX_SMALL_BODY_BYTES;
    let bytes: Buffer | undefined;
    if (req.method === 'HEAD') {
      await res.body.dump();
      bytes = Buffer.alloc(0);
    } else if (Number(header(res.headers, 'content-length')) > max) {
      dropBody(res.body);
    } else {
      bytes = await readBounded(res.body, max, this.bodyDeadlineMs);
    }
    return { ...res, bytes, body: replay(bytes ?? Buffer.alloc(0)) };
  }

  /** Drops a streamed body that will not be used, without waiting on a slow one. */
  private async discard(res: TransportResponse): Promise<void> {
    await readBounded(res.body, MAX_SMALL_BODY_BYTES, Math.min(this.bodyDeadlineMs, 5_000)).catch(() => undefined);
  }

  private async sendFollowingRedirects(req: TransportRequest): Promise<TransportResponse> {
    let url = req.url;
    let method = req.method;
    let headers: Record<string, string> = { 'user-agent': this.userAgent, ...req.headers };
    let body = req.body;
    const origin = new URL(req.url).origin;
    for (let hop = 0; ; hop++) {
      const target = new URL(url);
      const res = await undiciRequest(url, {
        method,
        headers,
        body: await materialize(body),
        dispatcher: this.dispatcherFor(target.host),
        signal: req.signal,
        // undici closes the connection after a HEAD by default (for servers that send a
        // body anyway); registries do not, and a load sends a HEAD per blob.
        ...(method === 'HEAD' ? { reset: false } : {}),
      });
      const location = header(res.headers, 'location');
      if (req.followRedirects === false || !REDIRECT_STATUS.has(res.statusCode) || !location) {
        return { status: res.statusCode, headers: res.headers, body: res.body as ResponseBody, url };
      }
      await res.body.dump();
      if (hop >= MAX_REDIRECTS) {
        throw new FerryError('registry', `too many redirects fetching ${redactUrl(req.url)}`);
      }
      url = new URL(location, url).toString();
      if (new URL(url).origin !== origin) {
        // Blob storage (S3, a CDN) must never see the registry's credentials.
        headers = Object.fromEntries(Object.entries(headers).filter(([k]) => k.toLowerCase() !== 'authorization'));
      }
      if (res.statusCode === 303) {
        method = 'GET';
        body = undefined;
      }
    }
  }

  /**
   * Closes the connection pools, waiting for requests under way; after a short grace
   * period any still open are torn down, so a command always ends (and says why).
   */
  async close(graceMs = 2_000): Promise<void> {
    const closing = Promise.all([this.verified.close(), this.unverified.close()]);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), graceMs).unref()));
    if ((await Promise.race([closing, late])) === 'late') {
      await Promise.all([this.verified.destroy(), this.unverified.destroy()]).catch(() => undefined);
    }
    clearTimeout(timer);
  }
}

/** A body already read, offered as the stream the response type promises. */
function replay(bytes: Buffer): ResponseBody {
  const stream = Readable.from(bytes.length > 0 ? [bytes] : []) as ResponseBody;
  stream.text = async () => bytes.toString('utf8');
  stream.arrayBuffer = async () => bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  stream.dump = async () => {
    stream.destroy();
  };
  return stream;
}

function makeDispatcher(
  base: Agent.Options,
  tls: { ca?: string[] | undefined; rejectUnauthorized: boolean },
  env: NodeJS.ProcessEnv = process.env,
): Dispatcher {
  const connect = { timeout: 30_000, ...tls };
  const httpProxy = env.http_proxy ?? env.HTTP_PROXY;
  const httpsProxy = env.https_proxy ?? env.HTTPS_PROXY;
  if (!httpProxy && !httpsProxy) return new Agent({ ...base, connect });
  // A proxy cannot reach this machine's loopback registries.
  const noProxy = [env.no_proxy ?? env.NO_PROXY, 'localhost,127.0.0.1,[::1]'].filter(Boolean).join(',');
  return new EnvHttpProxyAgent({ ...base, connect, requestTls: tls, httpProxy, httpsProxy, noProxy });
}

async function materialize(body: RequestBody | undefined): Promise<Uint8Array | string | Readable | undefined> {
  if (typeof body === 'function') return await body();
  return body;
}

function isNotTlsError(e: unknown): boolean {
  const msg = String((e as Error)?.message ?? '') + String((e as { cause?: Error })?.cause?.message ?? '');
  return (
    errorCode(e) === 'EPROTO' ||
    /wrong version number|packet length too long|ERR_SSL_WRONG_VERSION_NUMBER|http request/i.test(msg) ||
    errorCode(e) === 'ERR_SSL_WRONG_VERSION_NUMBER'
  );
}

function isCertificateError(e: unknown): boolean {
  const code = errorCode(e);
  return /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS_CERT/.test(code);
}

/** What went wrong, in words: no raw UND_ERR_* code reaches the user. */
export function describeNetworkError(e: unknown, host: string): string {
  const code = errorCode(e);
  switch (code) {
    case 'ENOTFOUND':
      return `cannot resolve host ${host}`;
    case 'EAI_AGAIN':
      return `cannot resolve host ${host} (DNS is not answering)`;
    case 'ECONNREFUSED':
      return `connection refused by ${host}`;
    case 'ECONNRESET':
    case 'EPIPE':
    case 'ECONNABORTED':
      return `connection reset by ${host}`;
    case 'UND_ERR_SOCKET':
      return `connection closed by ${host} before the response was complete`;
    case 'ETIMEDOUT':
    case 'UND_ERR_CONNECT_TIMEOUT':
      return `timed out connecting to ${host}`;
    case 'UND_ERR_HEADERS_TIMEOUT':
      return `timed out waiting for an answer from ${host}`;
    case 'UND_ERR_BODY_TIMEOUT':
      return `${host} stopped sending in the middle of a response`;
    case 'EHOSTUNREACH':
    case 'ENETUNREACH':
    case 'ENETDOWN':
      return `no route to ${host}`;
    case 'FERRY_BODY_DEADLINE':
    case 'FERRY_BODY_TOO_SLOW':
      return `a response from ${host} was too slow: ${(e as Error).message}`;
    case 'UND_ERR_REQ_CONTENT_LENGTH_MISMATCH':
    case 'UND_ERR_RES_CONTENT_LENGTH_MISMATCH':
      return `a message to or from ${host} did not have the length it announced`;
    case 'UND_ERR_CLOSED':
    case 'UND_ERR_DESTROYED':
      return `the connection to ${host} was closed because ferry is shutting down`;
    case 'UND_ERR_RESPONSE_EXCEEDED_MAX_SIZE':
      return `a response from ${host} was too large`;
  }
  if (isCertificateError(e)) return `TLS certificate of ${host} is not trusted (${code}); pass --ca-file with its CA, or --insecure-registry ${host}`;
  if (code.startsWith('UND_ERR_')) return `network error talking to ${host}`;
  const message = (e as Error)?.message ?? String(e);
  return `network error talking to ${host}: ${code && !message.includes(code) ? `${code} ` : ''}${message}`;
}

/** Turns a low-level failure into a FerryError that says what could not be reached. */
export function toNetworkError(e: unknown, url: string): FerryError {
  if (e instanceof FerryError) return e;
  const host = safeHost(url) || 'a registry';
  if (errorCode(e) === 'UND_ERR_ABORTED' || (e as Error)?.name === 'AbortError') return new FerryError('cancelled', 'cancelled', { cause: e });
  return new FerryError('network', describeNetworkError(e, host), { registry: host, cause: e });
}

function safeHost(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}

/** Strips query strings (upload URLs and signed storage URLs carry secrets there). */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return url;
  }
}
