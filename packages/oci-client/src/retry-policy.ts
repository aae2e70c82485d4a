/**
 * What ferry retries, how long it waits and when it gives up: the one statement of
 * the retry policy, used by the transport for every request and by blob uploads
 * for their restarts. The numbers are named here; `OciClientOptions.retry` replaces
 * any of them (tests use short ones).
 */
import { abortReason, FerryError } from './errors.js';

/** The first wait; each later one doubles, up to MAX_DELAY_MS. */
export const BASE_DELAY_MS = 250;
/** The longest wait between two attempts that ferry chooses itself. */
export const MAX_DELAY_MS = 8_000;
/** How long after its first failure a request keeps being retried: a registry restart fits. */
export const RETRY_BUDGET_MS = 60_000;
/** The longest Retry-After honoured; a registry asking for more is waited on this long, and told so. */
export const MAX_RETRY_AFTER_MS = 30_000;
/** A safety cap on attempts (the first included); the budget is what normally ends retries. */
export const MAX_ATTEMPTS = 30;
/** How often a broken blob download is resumed with a Range request before it fails. */
export const MAX_BLOB_RESUMES = 5;

/** Statuses that say "not now" rather than "no": retried (RFC 9110 15.5.9, 6585 4, 15.6). */
export const TRANSIENT_STATUS: ReadonlySet<number> = new Set([408, 429, 500, 502, 503, 504]);

/**
 * Network failures a later attempt can cure: resets, refusals, timeouts, a peer that
 * closed mid-response. Not UND_ERR_CLOSED/DESTROYED: that is our own pool, shut.
 */
const TRANSIENT_CODES: ReadonlySet<string> = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'EPIPE',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  // ferry's own read bounds (bounded-read.ts): a stalled or crawling body.
  'FERRY_BODY_DEADLINE',
  'FERRY_BODY_TOO_SLOW',
]);

export interface RetryPolicy {
  /** Attempts in all, the first included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
  /** No retry starts later than this after the request's first failure. */
  budgetMs: number;
  maxRetryAfterMs: number;
  /** Range resumes of one blob download. */
  maxBlobResumes: number;
}

export const DEFAULT_RETRY_POLICY: Readonly<RetryPolicy> = {
  attempts: MAX_ATTEMPTS,
  baseDelayMs: BASE_DELAY_MS,
  maxDelayMs: MAX_DELAY_MS,
  budgetMs: RETRY_BUDGET_MS,
  maxRetryAfterMs: MAX_RETRY_AFTER_MS,
  maxBlobResumes: MAX_BLOB_RESUMES,
};

export function retryPolicy(overrides: Partial<RetryPolicy> = {}): RetryPolicy {
  const p = { ...DEFAULT_RETRY_POLICY, ...overrides };
  for (const [k, v] of Object.entries(p)) {
    if (typeof v !== 'number' || Number.isNaN(v) || v < 0) throw new FerryError('usage', `retry policy: ${k} must be a number of 0 or more`);
  }
  return p;
}

export function isTransientStatus(status: number): boolean {
  return TRANSIENT_STATUS.has(status);
}

/** The error code of a Node or undici error, looking into its cause. */
export function errorCode(e: unknown): string {
  const err = e as { code?: unknown; cause?: { code?: unknown } } | undefined;
  const code = err?.code ?? err?.cause?.code;
  return typeof code === 'string' ? code : '';
}

export function isTransientNetworkError(e: unknown): boolean {
  return e !== undefined && !(e instanceof FerryError) && TRANSIENT_CODES.has(errorCode(e));
}

/** A FerryError worth another attempt: a network failure or a transient status. */
export function isTransientFailure(e: unknown): boolean {
  if (!(e instanceof FerryError)) return isTransientNetworkError(e);
  return e.kind === 'network' || (e.status !== undefined && isTransientStatus(e.status));
}

/** Retry-After in milliseconds (delta-seconds or an HTTP date), undefined when absent or unreadable. */
export function parseRetryAfter(value: string | undefined): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

export interface RetryStep {
  /** How long to wait before the next attempt. */
  delayMs: number;
  /** Set when the registry asked for a longer wait than the cap allows. */
  askedMs?: number;
}

/**
 * The retry state of one logical request (or one blob upload): exponential backoff
 * with equal jitter, Retry-After honoured up to the cap, within the budget counted
 * from the first failure.
 */
export class Backoff {
  private failures = 0;
  private firstFailure: number | undefined;

  constructor(
    readonly policy: RetryPolicy,
    private readonly now: () => number = Date.now,
    private readonly random: () => number = Math.random,
  ) {}

  /** Failures seen so far. */
  get attempt(): number {
    return this.failures;
  }

  /** Records a failure; the wait before the next attempt, or undefined to give up. */
  next(retryAfterMs?: number): RetryStep | undefined {
    this.failures++;
    const now = this.now();
    this.firstFailure ??= now;
    if (this.failures >= this.policy.attempts) return undefined;
    const left = this.policy.budgetMs - (now - this.firstFailure);
    if (left <= 0) return undefined;
    const p = this.policy;
    const full = Math.min(p.maxDelayMs, p.baseDelayMs * 2 ** (this.failures - 1));
    // Equal jitter: never less than half the step, so clients that failed together spread out.
    let delayMs = full / 2 + this.random() * (full / 2);
    let askedMs: number | undefined;
    if (retryAfterMs !== undefined) {
      if (retryAfterMs > p.maxRetryAfterMs) askedMs = retryAfterMs;
      const honoured = Math.min(retryAfterMs, p.maxRetryAfterMs);
      // Retrying sooner than asked is pointless; when the ask does not fit the budget, stop.
      if (honoured > left) return undefined;
      delayMs = Math.max(delayMs, honoured);
    }
    // The last attempt lands at the end of the budget, not short of it.
    delayMs = Math.round(Math.min(delayMs, left));
    return askedMs === undefined ? { delayMs } : { delayMs, askedMs };
  }
}

/** Waits `ms`, or rejects with the 'cancelled' error as soon as `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.reject(cancelledError(signal));
  return new Promise((resolve, reject) => {
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(cancelledError(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** The error an abort stands for: the signal's reason when it gives one (Ctrl-C, another image's failure). */
export function cancelledError(signal?: AbortSignal): Error {
  return signal ? abortReason(signal) : new FerryError('cancelled', 'cancelled');
}

/** Throws the 'cancelled' error when `signal` has aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw cancelledError(signal);
}

/** `promise`, or the 'cancelled' error as soon as `signal` aborts (the work itself goes on). */
export function abortable<T>(promise: Promise<T>, signal: AbortSignal | undefined): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(cancelledError(signal));
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(cancelledError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
