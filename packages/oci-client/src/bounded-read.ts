/**
 * Every network read of ferry is bounded. Small bodies (tokens, errors, manifests,
 * listings) are read whole with a size limit and a total deadline, so an endless or
 * slowloris body cannot hold memory or time; blob bodies stream for as long as they
 * progress, but a body crawling below a minimum rate is cut (and then resumed).
 */

/** Token and error bodies, and any small body without a limit of its own. */
export const MAX_SMALL_BODY_BYTES = 1024 * 1024;
/** Tag and catalog pages: registry 2.8 sends all tags in one page. */
export const MAX_LISTING_BYTES = 64 * 1024 * 1024;
/** The whole of a non-blob body must arrive within this time of its headers. */
export const BODY_DEADLINE_MS = 60_000;
/** Longest silence in a blob body before the connection counts as stalled. */
export const BLOB_STALL_MS = 60_000;

export interface MinRate {
  bytesPerSecond: number;
  /** The rate is judged over windows of this length. */
  windowMs: number;
}

/** A blob body under 1 KiB/s for 5 minutes is cut: a steadily progressing one never is. */
export const MIN_BLOB_RATE: Readonly<MinRate> = { bytesPerSecond: 1024, windowMs: 5 * 60_000 };

/** An error with a code the retry policy knows (FERRY_BODY_DEADLINE, FERRY_BODY_TOO_SLOW). */
export class BodyReadError extends Error {
  constructor(
    readonly code: 'FERRY_BODY_DEADLINE' | 'FERRY_BODY_TOO_SLOW',
    message: string,
  ) {
    super(message);
  }
}

interface Destroyable extends AsyncIterable<Buffer> {
  destroy(error?: Error): unknown;
  on?(event: 'error', listener: (e: Error) => void): unknown;
}

/**
 * Drops a body that will not be read. undici answers destroy() on an unfinished body
 * with an 'error' event (RequestAbortedError) a tick later: with nobody listening,
 * that event would end the process.
 */
export function dropBody(body: { destroy(error?: Error): unknown; on?(event: 'error', listener: (e: Error) => void): unknown }): void {
  body.on?.('error', () => undefined);
  body.destroy();
}

/**
 * Reads a body whole: undefined when it exceeds `maxBytes` (the stream is destroyed
 * at that point, not drained); fails with FERRY_BODY_DEADLINE when it is not
 * complete within `deadlineMs`.
 */
export async function readBounded(body: Destroyable, maxBytes: number, deadlineMs: number): Promise<Buffer | undefined> {
  const timer = setTimeout(() => {
    body.destroy(new BodyReadError('FERRY_BODY_DEADLINE', `the response was not complete within ${seconds(deadlineMs)} s`));
  }, deadlineMs);
  try {
    const parts: Buffer[] = [];
    let size = 0;
    for await (const chunk of body) {
      size += chunk.length;
      if (size > maxBytes) {
        dropBody(body);
        return undefined;
      }
      parts.push(chunk);
    }
    return Buffer.concat(parts);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Watches a streaming body: at the end of each window, a body that brought fewer
 * bytes than the minimum rate asks for is destroyed with FERRY_BODY_TOO_SLOW.
 */
export class RateGuard {
  private bytes = 0;
  private readonly timer: NodeJS.Timeout;

  constructor(body: { destroy(error?: Error): unknown }, rate: MinRate) {
    const least = (rate.bytesPerSecond * rate.windowMs) / 1000;
    this.timer = setInterval(() => {
      if (this.bytes < least) {
        this.stop();
        body.destroy(new BodyReadError('FERRY_BODY_TOO_SLOW', `it was slower than ${rate.bytesPerSecond} bytes/s for ${seconds(rate.windowMs)} s`));
      }
      this.bytes = 0;
    }, rate.windowMs);
    this.timer.unref();
  }

  add(n: number): void {
    this.bytes += n;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}

export function seconds(ms: number): string {
  const s = ms / 1000;
  return Number.isInteger(s) ? String(s) : s.toFixed(1);
}
