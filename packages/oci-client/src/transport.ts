/**
 * HTTP transport for registries: connection pooling, scheme choice, TLS trust,
 * proxies, redirects and retries. Knows nothing of auth or of the registry API;
 * `request` sends one logical request and returns the final response.
 */
import { readFileSync } from 'node:fs';
import type { Readable } from 'node:stream';
import { rootCertificates } from 'node:tls';
import { Agent, type Dispatcher, EnvHttpProxyAgent, request as undiciRequest } from 'undici';
import { FerryError } from './errors.js';
import { isLoopbackHost } from './reference.js';

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** No new attempt starts after this much time since the first one. */
  maxElapsedMs: number;
}

export interface TransportOptions {
  /** Hosts (host[:port]) that may be reached over plain HTTP or unverified TLS. */
  insecureRegistries?: string[];
  /** Extra PEM CA bundle trusted for TLS (in addition to the system roots). */
  caFile?: string;
  userAgent?: string;
  retry?: Partial<RetryPolicy>;
  /** Time allowed for connecting and for the response headers. */
  headersTimeoutMs?: number;
  /** Longest silence allowed while a body streams; progress resets it. */
  bodyIdleTimeoutMs?: number;
  /** Parallel connections per origin (keep-alive pool). */
  connectionsPerHost?: number;
  /** Environment for HTTP(S)_PROXY / NO_PROXY; defaults to process.env. */
  env?: NodeJS.ProcessEnv;
  /** Called before each retry; for logs. */
  onRetry?: (info: { url: string; attempt: number; delayMs: number; reason: string }) => void;
}

export type RequestBody = Uint8Array | string | (() => Readable | Promise<Readable>);

export interface TransportRequest {
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  url: string;
  headers?: Record<string, string>;
  /** A function body can be re-created, so the request can be retried. */
  body?: RequestBody;
  /** Retry on 5xx/429/connection errors (default true). */
  retry?: boolean;
  /** Follow redirects (default true). */
  followRedirects?: boolean;
}

export interface TransportResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Readable & { text(): Promise<string>; arrayBuffer(): Promise<ArrayBuffer>; dump(): Promise<void> };
  /** The URL that answered, after redirects. */
  url: string;
}

const DEFAULT_RETRY: RetryPolicy = { attempts: 5, baseDelayMs: 250, maxDelayMs: 8_000, maxElapsedMs: 120_000 };
const RETRY_STATUS = new Set([429, 500, 502, 503, 504]);
const REDIRECT_STATUS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;
/** Longest Retry-After we honour; a registry asking for more is treated as failing. */
const MAX_RETRY_AFTER_MS = 60_000;

export function header(headers: TransportResponse['headers'], name: string): string | undefined {
  const v = headers[name.toLowerCase()];
  return Array.isArray(v) ? v[0] : v;
}

export class Transport {
  private readonly verified: Dispatcher;
  private readonly unverified: Dispatcher;
  private readonly insecure: Set<string>;
  private readonly retryPolicy: RetryPolicy;
  private readonly userAgent: string;
  /** Scheme chosen per host once probed (loopback and insecure hosts try HTTPS first). */
  private readonly schemes = new Map<string, Promise<'https' | 'http'>>();

  constructor(private readonly opts: TransportOptions = {}) {
    this.insecure = new Set((opts.insecureRegistries ?? []).map((h) => h.toLowerCase()));
    this.retryPolicy = { ...DEFAULT_RETRY, ...opts.retry };
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
      bodyTimeout: opts.bodyIdleTimeoutMs ?? 60_000,
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
  async baseUrl(host: string): Promise<string> {
    const mayBePlain = this.isInsecure(host) || isLoopbackHost(host);
    if (!mayBePlain) return `https://${host}`;
    let scheme = this.schemes.get(host);
    if (!scheme) {
      scheme = this.probeScheme(host);
      this.schemes.set(host, scheme);
    }
    return `${await scheme}://${host}`;
  }

  /**
   * Loopback and insecure registries: HTTPS first (so credentials never travel in
   * clear to a TLS server), plain HTTP when the server does not speak TLS.
   */
  private async probeScheme(host: string): Promise<'https' | 'http'> {
    try {
      const res = await undiciRequest(`https://${host}/v2/`, {
        method: 'GET',
        dispatcher: this.dispatcherFor(host),
        headers: { 'user-agent': this.userAgent },
      });
      await res.body.dump();
      return 'https';
    } catch (e) {
      if (isNotTlsError(e)) return 'http';
      // A TLS server whose certificate we cannot verify: say so rather than fall back to HTTP.
      if (isCertificateError(e)) return 'https';
      // Connection refused and the like: let the real request report it, and probe
      // again next time (the registry may be starting).
      this.schemes.delete(host);
      return 'https';
    }
  }

  private dispatcherFor(host: string): Dispatcher {
    return this.isInsecure(host) ? this.unverified : this.verified;
  }

  /** Sends a request, following redirects and retrying transient failures. */
  async request(req: TransportRequest): Promise<TransportResponse> {
    const started = Date.now();
    const policy = this.retryPolicy;
    const retry = req.retry !== false;
    for (let attempt = 1; ; attempt++) {
      let res: TransportResponse | undefined;
      let failure: unknown;
      try {
        res = await this.sendFollowingRedirects(req);
      } catch (e) {
        failure = e;
      }
      const retryable = res ? RETRY_STATUS.has(res.status) : isTransientNetworkError(failure);
      const elapsed = Date.now() - started;
      if (!retry || !retryable || attempt >= policy.attempts) {
        if (res) return res;
        throw toNetworkError(failure, req.url);
      }
      let delay = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      delay = delay / 2 + Math.random() * (delay / 2); // jitter: spread clients apart
      if (res) {
        const after = parseRetryAfter(header(res.headers, 'retry-after'));
        if (after !== undefined) {
          if (after > MAX_RETRY_AFTER_MS) return res;
          delay = Math.max(delay, after);
        }
        await res.body.dump().catch(() => undefined);
      }
      if (elapsed + delay > policy.maxElapsedMs) {
        if (res) return res;
        throw toNetworkError(failure, req.url);
      }
      const reason = res ? `HTTP ${res.status}` : describeNetworkError(failure);
      this.opts.onRetry?.({ url: redactUrl(req.url), attempt, delayMs: Math.round(delay), reason });
      await sleep(delay);
    }
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
        // undici closes the connection after a HEAD by default (for servers that send a
        // body anyway); registries do not, and a load sends a HEAD per blob.
        ...(method === 'HEAD' ? { reset: false } : {}),
      });
      const location = header(res.headers, 'location');
      if (req.followRedirects === false || !REDIRECT_STATUS.has(res.statusCode) || !location) {
        return { status: res.statusCode, headers: res.headers, body: res.body as TransportResponse['body'], url };
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

function errorCode(e: unknown): string {
  const err = e as { code?: string; cause?: { code?: string } } | undefined;
  return err?.code ?? err?.cause?.code ?? '';
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

const TRANSIENT_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'EPIPE',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  // Not UND_ERR_CLOSED: that is our own dispatcher, closed; no retry can succeed.
]);

export function isTransientNetworkError(e: unknown): boolean {
  return e !== undefined && !(e instanceof FerryError) && TRANSIENT_CODES.has(errorCode(e));
}

function describeNetworkError(e: unknown): string {
  return errorCode(e) || (e as Error)?.message || String(e);
}

/** Turns a low-level failure into a FerryError that says what could not be reached. */
export function toNetworkError(e: unknown, url: string): FerryError {
  if (e instanceof FerryError) return e;
  const host = safeHost(url);
  const code = errorCode(e);
  let why: string;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') why = `cannot resolve host ${host}`;
  else if (code === 'ECONNREFUSED') why = `connection refused by ${host}`;
  else if (isCertificateError(e)) why = `TLS certificate of ${host} is not trusted (${code}); pass --ca-file with its CA, or --insecure-registry ${host}`;
  else if (code.startsWith('UND_ERR_') && code.includes('TIMEOUT')) why = `timed out talking to ${host}`;
  else why = `network error talking to ${host}: ${describeNetworkError(e)}`;
  return new FerryError('network', why, { registry: host, cause: e });
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

export function parseRetryAfter(value: string | undefined): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
