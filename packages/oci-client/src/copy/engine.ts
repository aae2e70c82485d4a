/**
 * The copy engine: moves planned images from a source to a sink. Blobs first
 * (each once, however many images share it, with bounded concurrency; skipped
 * when the sink has them, mounted when both places are in one registry), then
 * child manifests by digest, then the root, then the tag, so a tag never points
 * at something missing.
 */
import { Readable } from 'node:stream';
import pLimit, { type LimitFunction } from 'p-limit';
import type { Descriptor } from '../manifest.js';
import type { BlobOutcome, ImageSink, ImageSource } from './places.js';
import type { ImagePlan } from './plan.js';

export type CopyEvent =
  | { type: 'image-start'; image: string; blobs: number; bytes: number }
  | { type: 'blob-progress'; digest: string; bytes: number }
  | { type: 'blob-done'; digest: string; size: number; outcome: BlobOutcome }
  | { type: 'image-done'; image: string; digest: string };

export interface CopyEngineOptions {
  /** Blob transfers at once across all images (default 8). */
  concurrency?: number;
  onEvent?: (event: CopyEvent) => void;
  /**
   * A repository of the sink's registry known to hold a blob, to mount from when
   * the source is elsewhere (a bundle): e.g. a delta's base blobs.
   */
  mountFrom?: (sink: ImageSink, blob: Descriptor) => string | undefined;
}

export interface CopyStats {
  uploaded: number;
  mounted: number;
  skipped: number;
  /** Bytes that crossed the network into the sink. */
  bytes: number;
}

export class CopyEngine {
  private readonly limit: LimitFunction;
  /** One transfer per (sink, digest), shared by every image that needs the blob. */
  private readonly inflight = new Map<string, { promise: Promise<BlobOutcome>; waiters: Array<{ failure?: unknown }> }>();
  /**
   * Per (registry, digest), the repository that first gets the blob in this run:
   * later repositories of that registry wait for it and mount instead of uploading.
   */
  private readonly placed = new Map<string, Promise<string | undefined>>();
  readonly stats: CopyStats = { uploaded: 0, mounted: 0, skipped: 0, bytes: 0 };

  constructor(private readonly opts: CopyEngineOptions = {}) {
    this.limit = pLimit(opts.concurrency ?? 8);
  }

  private emit(e: CopyEvent): void {
    this.opts.onEvent?.(e);
  }

  /**
   * Copies a planned image; `tag` names the root in the sink (by digest only when
   * undefined); `label` names the image in events (default: where it goes).
   */
  async copy(source: ImageSource, sink: ImageSink, plan: ImagePlan, tag?: string, label?: string): Promise<void> {
    const image = label ?? `${sink.name}${tag ? `:${tag}` : `@${plan.root.digest}`}`;
    this.emit({ type: 'image-start', image, blobs: plan.blobs.length, bytes: plan.blobs.reduce((n, b) => n + b.size, 0) });
    if (sink.hasImage && (await sink.hasImage(plan, tag))) {
      this.alreadyThere(sink, plan);
      this.emit({ type: 'image-done', image, digest: plan.root.digest });
      return;
    }
    // On a failure, blobs not yet started are not started, and the copy fails only
    // once the transfers under way have ended: nothing runs on after it returns.
    const stop: { failure?: unknown } = {};
    const settled = await Promise.allSettled(
      plan.blobs.map((blob) =>
        this.copyBlob(source, sink, blob, stop, plan.fetched).catch((e: unknown) => {
          stop.failure ??= e;
          throw e;
        }),
      ),
    );
    if (settled.some((r) => r.status === 'rejected')) throw stop.failure;
    // Children before parents; each level only after the one below it is stored.
    for (const m of plan.manifests.slice(0, -1)) await sink.putManifest(m);
    await sink.putManifest(plan.root, tag);
    this.emit({ type: 'image-done', image, digest: plan.root.digest });
  }

  /** Counts the blobs of an image the sink already holds, once each, and offers them for mounts. */
  private alreadyThere(sink: ImageSink, plan: ImagePlan): void {
    for (const blob of plan.blobs) {
      const key = `${sink.name}\0${blob.digest}`;
      if (this.inflight.has(key)) continue;
      this.inflight.set(key, { promise: Promise.resolve('skipped'), waiters: [] });
      if (sink.location) {
        const placedKey = `${sink.location.registry}\0${blob.digest}`;
        if (!this.placed.has(placedKey)) this.placed.set(placedKey, Promise.resolve(sink.location.repository));
      }
      this.stats.skipped++;
      this.emit({ type: 'blob-done', digest: blob.digest, size: blob.size, outcome: 'skipped' });
    }
  }

  private copyBlob(source: ImageSource, sink: ImageSink, blob: Descriptor, stop: { failure?: unknown }, fetched: Map<string, Buffer>): Promise<BlobOutcome> {
    const key = `${sink.name}\0${blob.digest}`;
    const shared = this.inflight.get(key);
    if (shared) {
      shared.waiters.push(stop);
      return shared.promise;
    }
    const placedKey = sink.location ? `${sink.location.registry}\0${blob.digest}` : undefined;
    const earlier = placedKey ? this.placed.get(placedKey) : undefined;
    const waiters = [stop];
    // Waiting happens before taking a transfer slot, so waiters never starve the pool.
    const run = async (): Promise<BlobOutcome> => {
      const mountFrom = earlier ? await earlier : undefined;
      return this.limit(() => {
        // Not started once every image that wants it has failed; one live image is enough to go on.
        if (waiters.every((w) => w.failure !== undefined)) return Promise.reject(waiters[0]!.failure as Error);
        return this.transfer(source, sink, blob, fetched, mountFrom);
      });
    };
    const promise = run();
    if (placedKey && !earlier) {
      const repository = sink.location!.repository;
      this.placed.set(
        placedKey,
        promise.then(
          () => repository,
          () => undefined,
        ),
      );
    }
    this.inflight.set(key, { promise, waiters });
    // A failed transfer may be tried again by a later copy.
    promise.catch(() => this.inflight.delete(key));
    return promise;
  }

  private async transfer(source: ImageSource, sink: ImageSink, blob: Descriptor, fetched: Map<string, Buffer>, mountHint?: string): Promise<BlobOutcome> {
    let outcome: BlobOutcome;
    if (await sink.hasBlob(blob)) {
      outcome = 'skipped';
    } else {
      const sameRegistry = source.location && sink.location && source.location.registry === sink.location.registry;
      const progress = (bytes: number): void => this.emit({ type: 'blob-progress', digest: blob.digest, bytes });
      const open = async (): Promise<Readable> => {
        // Read and checked while planning (a config): no second fetch.
        const known = fetched.get(blob.digest);
        if (!known) return source.openBlob(blob, progress);
        progress(known.length);
        return Readable.from([known]);
      };
      const from = sameRegistry ? source.location!.repository : (mountHint ?? this.opts.mountFrom?.(sink, blob));
      outcome = await sink.putBlob(blob, open, from);
    }
    this.stats[outcome]++;
    if (outcome === 'uploaded') this.stats.bytes += blob.size;
    this.emit({ type: 'blob-done', digest: blob.digest, size: blob.size, outcome });
    return outcome;
  }
}
