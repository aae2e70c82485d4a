/**
 * The one bound on concurrent work. A command makes one pool from `-j` and
 * every part of it that does network or hashing work (resolving, HEAD checks,
 * transfers, re-hashing) takes its slots from that pool. The CLI reads DEFAULT_JOBS
 * through `@ferry/oci-client/pool` so its start-up loads nothing else of the client.
 */
import pLimit, { type LimitFunction } from 'p-limit';

/** Concurrent transfers, requests or hashes when `-j` is not given. */
export const DEFAULT_JOBS = 8;

export type Pool = LimitFunction;

export function createPool(jobs: number = DEFAULT_JOBS): Pool {
  return pLimit(jobs);
}
