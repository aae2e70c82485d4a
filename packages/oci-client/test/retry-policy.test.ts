// The retry policy on its own: what is transient, how the waits grow, how the budget
// and Retry-After cap bound them, and that waits end at once on cancellation.
import { describe, expect, it } from 'vitest';
import { FerryError } from '../src/errors.js';
import {
  abortable,
  Backoff,
  DEFAULT_RETRY_POLICY,
  isTransientFailure,
  isTransientNetworkError,
  isTransientStatus,
  MAX_RETRY_AFTER_MS,
  RETRY_BUDGET_MS,
  retryPolicy,
  sleep,
} from '../src/retry-policy.js';

const netError = (code: string) => Object.assign(new Error(code), { code });

/** A clock the test moves, and a Backoff that sleeps on it. */
function clocked(overrides: Parameters<typeof retryPolicy>[0] = {}, random = () => 1) {
  let now = 1_000_000;
  const backoff = new Backoff(retryPolicy(overrides), () => now, random);
  return {
    backoff,
    /** Takes the next step and, as a caller would, waits it out. */
    step(retryAfterMs?: number) {
      const s = backoff.next(retryAfterMs);
      if (s) now += s.delayMs;
      return s;
    },
    advance(ms: number) {
      now += ms;
    },
  };
}

describe('what is transient', () => {
  it('retries 408, 429 and the 5xx that mean "not now", not other statuses', () => {
    expect([408, 429, 500, 502, 503, 504].filter(isTransientStatus)).toEqual([408, 429, 500, 502, 503, 504]);
    expect([200, 201, 400, 401, 403, 404, 405, 413, 416, 501, 505].filter(isTransientStatus)).toEqual([]);
  });

  it('retries resets, refusals, timeouts and cut bodies, not unknown hosts or a closed pool', () => {
    for (const code of [
      'ECONNRESET',
      'ECONNREFUSED',
      'EPIPE',
      'ETIMEDOUT',
      'UND_ERR_SOCKET',
      'UND_ERR_CONNECT_TIMEOUT',
      'UND_ERR_HEADERS_TIMEOUT',
      'UND_ERR_BODY_TIMEOUT',
      'FERRY_BODY_DEADLINE',
    ]) {
      expect(isTransientNetworkError(netError(code)), code).toBe(true);
    }
    // undici puts the socket's code on the cause.
    expect(isTransientNetworkError(Object.assign(new TypeError('fetch failed'), { cause: netError('ECONNREFUSED') }))).toBe(true);
    for (const code of ['ENOTFOUND', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED', 'CERT_HAS_EXPIRED', '']) {
      expect(isTransientNetworkError(netError(code)), code).toBe(false);
    }
    expect(isTransientNetworkError(new FerryError('network', 'already mapped'))).toBe(false);
  });

  it('treats mapped network errors and transient statuses as worth another attempt', () => {
    expect(isTransientFailure(new FerryError('network', 'x'))).toBe(true);
    expect(isTransientFailure(new FerryError('registry', 'x', { status: 429 }))).toBe(true);
    expect(isTransientFailure(new FerryError('registry', 'x', { status: 400 }))).toBe(false);
    expect(isTransientFailure(new FerryError('cancelled', 'cancelled'))).toBe(false);
  });
});

describe('backoff', () => {
  it('doubles from the base to the cap, with equal jitter (between half and all of each step)', () => {
    const high = new Backoff(
      retryPolicy({ baseDelayMs: 100, maxDelayMs: 1000, budgetMs: 1e9 }),
      () => 0,
      () => 1,
    );
    expect(Array.from({ length: 6 }, () => high.next()?.delayMs)).toEqual([100, 200, 400, 800, 1000, 1000]);
    const low = new Backoff(
      retryPolicy({ baseDelayMs: 100, maxDelayMs: 1000, budgetMs: 1e9 }),
      () => 0,
      () => 0,
    );
    expect(Array.from({ length: 6 }, () => low.next()?.delayMs)).toEqual([50, 100, 200, 400, 500, 500]);
  });

  it('keeps retrying a registry that is down for the whole default budget of 60 s, the last attempt at its end', () => {
    const c = clocked({}, () => 1);
    const delays: number[] = [];
    for (let s = c.step(); s; s = c.step()) delays.push(s.delayMs);
    expect(delays.slice(0, 6)).toEqual([250, 500, 1000, 2000, 4000, 8000]);
    expect(delays.reduce((a, b) => a + b, 0)).toBe(RETRY_BUDGET_MS);
    expect(Math.max(...delays)).toBe(8000);
  });

  it('counts the budget from the first failure, not from the start of the request', () => {
    const c = clocked({ budgetMs: 1000, baseDelayMs: 100 });
    c.advance(50_000); // a long first attempt
    expect(c.step()?.delayMs).toBe(100);
    c.advance(2000);
    expect(c.step()).toBeUndefined();
  });

  it('stops at the attempt cap', () => {
    const c = clocked({ attempts: 3, baseDelayMs: 1 });
    expect([c.step(), c.step(), c.step()].map((s) => s?.delayMs)).toEqual([1, 2, undefined]);
  });

  it('honours Retry-After over a shorter backoff, up to the cap, and says what was asked beyond it', () => {
    const c = clocked({ baseDelayMs: 100 });
    expect(c.step(3000)).toEqual({ delayMs: 3000 });
    expect(c.step(120_000)).toEqual({ delayMs: MAX_RETRY_AFTER_MS, askedMs: 120_000 });
    // A Retry-After shorter than the backoff does not shorten it.
    expect(c.step(1)?.delayMs).toBe(400);
  });

  it('gives up when the wait a registry asks for does not fit in what is left of the budget', () => {
    const c = clocked({ budgetMs: 5000, maxRetryAfterMs: 10_000 });
    expect(c.step(4000)).toEqual({ delayMs: 4000 });
    expect(c.step(4000)).toBeUndefined();
  });

  it('refuses a policy with a negative or missing number', () => {
    expect(() => retryPolicy({ budgetMs: -1 })).toThrow(/budgetMs must be a number of 0 or more/);
    expect(retryPolicy()).toEqual(DEFAULT_RETRY_POLICY);
  });
});

describe('waits end on cancellation', () => {
  it('sleep rejects with the cancelled error at once when the signal aborts, and at the start when it already has', async () => {
    const ac = new AbortController();
    const started = Date.now();
    const waiting = sleep(10_000, ac.signal);
    setTimeout(() => ac.abort(), 20);
    const e = await waiting.catch((err: unknown) => err);
    expect(e).toBeInstanceOf(FerryError);
    expect((e as FerryError).kind).toBe('cancelled');
    expect((e as FerryError).exitCode).toBe(130);
    expect(Date.now() - started).toBeLessThan(1000);
    await expect(sleep(10, ac.signal)).rejects.toMatchObject({ kind: 'cancelled' });
  });

  it('abortable stops waiting for shared work without stopping it', async () => {
    const ac = new AbortController();
    let finish: (v: string) => void = () => undefined;
    const work = new Promise<string>((r) => (finish = r));
    const waiting = abortable(work, ac.signal);
    ac.abort();
    await expect(waiting).rejects.toMatchObject({ kind: 'cancelled' });
    finish('done');
    await expect(abortable(work, new AbortController().signal)).resolves.toBe('done');
  });
});
