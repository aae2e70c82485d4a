/**
 * The copy engine: moves planned images from a source to a sink. Blobs first
 * (each once, however many images share it, within one bounded pool; skipped
 * when the sink has them, mounted when both places are in one registry), then
 * child manifests by digest (image manifests at once, within the pool), then the
 * root, then the tag, so a tag never points at something missing. An image whose manifests the sink holds already has
 * its blobs checked, not trusted, and its manifests are not written again.
 * Its referrers (signatures, SBOMs) follow it, each after its subject.
 *
 * Cancellation is one mechanism, AbortSignal: the engine's signal stops every
 * copy; an image's first failure stops that image (its blobs not yet started
 * are not started; a blob another live image still wants goes on). Failures
 * leave the engine once, carrying their origin (source or sink, operation,
 * place, image).
 */
import { setMaxListeners } from 'node:events';
import { Readable } from 'node:stream';
import { abortReason, type ErrorOrigin, FerryError } from '../errors.js';
import type { Descriptor, ParsedManifest } from '../manifest.js';
import { type BlobOutcome, canMount, type ImageSink, type ImageSource, type OpenBlob } from './place.js';
import type { ImagePlan } from './plan.js';
import { createPool, type Pool } from './pool.js';

/** Blobs up to this size are written without asking the sink first whether it has them. */
export const SEND_WITHOUT_ASKING = 64 * 1024;

export type CopyEvent =
  | { type: 'image-start'; image: string; blobs: number; bytes: number }
  | { type: 'blob-progress'; digest: string; bytes: number }
  | { type: 'blob-done'; digest: string; size: number; outcome: BlobOutcome }
  | { type: 'image-done'; image: string; digest: string };

export interface CopyEngineOptions {
  /** Blob transfers at once across all images (default DEFAULT_JOBS); ignored when `pool` is given. */
  jobs?: number | undefined;
  /** A pool the command shares with its other network or hashing work. */
  pool?: Pool | undefined;
  /** Stops every copy: transfers under way end, nothing new starts. */
  signal?: AbortSignal | undefined;
  onEvent?: ((event: CopyEvent) => void) | undefined;
  /**
   * A repository of the sink's registry known to hold a blob, to mount from when
   * the source is elsewhere (a bundle): e.g. a delta's base blobs.
   */
  mountFrom?: ((sink: ImageSink, blob: Descriptor) => string | undefined) | undefined;
}

export interface CopyImageOptions {
  /** Names the root in the sink (by digest only when undefined). */
  tag?: string | undefined;
  /**
   * Names the image in events and failures (default: where it goes); a failure's
   * message is prefixed with it when `prefixErrors` is set.
   */
  label?: string | undefined;
  prefixErrors?: boolean | undefined;
  /** Stops this image's copy only. */
  signal?: AbortSignal | undefined;
}

export interface CopyStats {
  uploaded: number;
  mounted: number;
  skipped: number;
  /** Bytes that crossed the network into the sink. */
  bytes: number;
}

/** One blob transfer, shared by every image that wants it; it stops once none of them is alive. */
interface Transfer {
  promise: Promise<BlobOutcome>;
  wanted: AbortSignal[];
  controller: AbortController;
}

export class CopyEngine {
  private readonly pool: Pool;
  private readonly inflight = new Map<string, Transfer>();
  /**
   * Per (registry, digest), the repository that first gets the blob in this run:
   * later repositories of that registry wait for it and mount instead of uploading.
   */
  private readonly placed = new Map<string, Promise<string | undefined>>();
  readonly stats: CopyStats = { uploaded: 0, mounted: 0, skipped: 0, bytes: 0 };

  constructor(private readonly opts: CopyEngineOptions = {}) {
    this.pool = opts.pool ?? createPool(opts.jobs);
  }

  private emit(e: CopyEvent): void {
    this.opts.onEvent?.(e);
  }

  /** Copies a planned image. */
  async copy(source: ImageSource, sink: ImageSink, plan: ImagePlan, opts: CopyImageOptions = {}): Promise<void> {
    const image = opts.label ?? `${sink.name}${opts.tag ? `:${opts.tag}` : `@${plan.root.digest}`}`;
    const fail = (e: unknown, origin: Omit<ErrorOrigin, 'image'>): FerryError => withOrigin(e, { ...origin, image }, opts.prefixErrors ? image : undefined);
    const stop = new AbortController();
    const signal = AbortSignal.any([stop.signal, ...[this.opts.signal, opts.signal].filter((s): s is AbortSignal => s !== undefined)]);
    // One listener per blob the image shares: not a leak.
    setMaxListeners(0, signal);
    if (signal.aborted) throw abortReason(signal);

    this.emit({ type: 'image-start', image, blobs: plan.blobs.length, bytes: plan.blobs.reduce((n, b) => n + b.size, 0) });
    let complete: boolean;
    try {
      complete = sink.hasImage ? await sink.hasImage(plan, opts.tag, signal) : false;
    } catch (e) {
      throw fail(e, { side: 'sink', place: sink.name, operation: 'check image', digest: plan.root.digest });
    }
    // Every blob is asked about even when the image looks complete: a registry that
    // lost a blob (garbage collection, a partial restore) is repaired by a rerun.
    // The first failure stops the image; the copy fails only once its transfers
    // under way have ended, so nothing of it runs on after it returns.
    let first: FerryError | undefined;
    let wrote = false;
    await Promise.allSettled(
      plan.blobs.map((blob) =>
        this.copyBlob(source, sink, blob, signal, plan.fetched, complete).then(
          (outcome) => {
            if (outcome !== 'skipped') wrote = true;
          },
          (e: unknown) => {
            first ??= fail(e, (e as FerryError).origin ?? { side: 'sink', place: sink.name, operation: 'write blob', digest: blob.digest });
            stop.abort(first);
          },
        ),
      ),
    );
    if (first) throw first;
    // Children before parents; each level only after the one below it is stored.
    const put = async (m: ParsedManifest, tag?: string): Promise<void> => {
      if (signal.aborted) throw abortReason(signal);
      try {
        await sink.putManifest(m, tag, signal);
      } catch (e) {
        throw fail(e, { side: 'sink', place: sink.name, operation: 'write manifest', digest: m.digest });
      }
    };
    if (!complete || wrote) {
      await this.putChildren(plan.manifests.slice(0, -1), put);
      await put(plan.root, opts.tag);
    }
    // Referrers after their subject (the plan lists each after the one it refers
    // to): by digest, or at cosign's tag; a sink that cannot list referrers by
    // itself is asked to index those with a subject. Rewriting one is harmless.
    for (const r of plan.referrers) {
      for (const m of r.manifests.slice(0, -1)) await put(m);
      await put(r.root, r.tag);
      const subject = r.root.manifest.subject?.digest;
      if (subject !== undefined && sink.indexReferrer) {
        signal.throwIfAborted();
        try {
          await sink.indexReferrer(subject, r.root, signal);
        } catch (e) {
          throw fail(e, { side: 'sink', place: sink.name, operation: 'write manifest', digest: r.root.digest });
        }
      }
    }
    this.emit({ type: 'image-done', image, digest: plan.root.digest });
  }

  /**
   * The manifests below a root: image manifests (they name only blobs, all stored by
   * now) at once within the pool, so a large index does not wait for one round trip
   * per child; then the nested indexes in plan order, each after what it lists.
   */
  private async putChildren(manifests: ParsedManifest[], put: (m: ParsedManifest) => Promise<void>): Promise<void> {
    const results = await Promise.allSettled(manifests.filter((m) => m.kind === 'image').map((m) => this.pool(() => put(m))));
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
    for (const m of manifests) if (m.kind !== 'image') await put(m);
  }

  private copyBlob(
    source: ImageSource,
    sink: ImageSink,
    blob: Descriptor,
    wantedBy: AbortSignal,
    fetched: Map<string, Buffer>,
    askFirst: boolean,
  ): Promise<BlobOutcome> {
    const key = `${sink.name}\0${blob.digest}`;
    const shared = this.inflight.get(key);
    if (shared) {
      this.want(shared, wantedBy);
      return shared.promise;
    }
    const placedKey = sink.location ? `${sink.location.registry}\0${blob.digest}` : undefined;
    const earlier = placedKey ? this.placed.get(placedKey) : undefined;
    const transfer: Transfer = { promise: Promise.resolve('skipped'), wanted: [], controller: new AbortController() };
    this.want(transfer, wantedBy);
    const { signal } = transfer.controller;
    setMaxListeners(0, signal);
    // Waiting happens before taking a slot of the pool, so waiters never starve it.
    const run = async (): Promise<BlobOutcome> => {
      const mountFrom = earlier ? await earlier : undefined;
      return this.pool(() => {
        // Not started once every image that wants it has stopped.
        if (signal.aborted) return Promise.reject(abortReason(signal));
        return this.transfer(source, sink, blob, fetched, signal, askFirst, mountFrom);
      });
    };
    transfer.promise = run();
    if (placedKey && !earlier) {
      const repository = sink.location!.repository;
      this.placed.set(
        placedKey,
        transfer.promise.then(
          () => repository,
          () => undefined,
        ),
      );
    }
    this.inflight.set(key, transfer);
    // A failed transfer may be tried again by a later copy.
    transfer.promise.catch(() => this.inflight.delete(key));
    return transfer.promise;
  }

  /** Adds an image that wants a transfer; the transfer is aborted once every such image has stopped. */
  private want(t: Transfer, signal: AbortSignal): void {
    t.wanted.push(signal);
    signal.addEventListener(
      'abort',
      () => {
        if (t.wanted.every((s) => s.aborted)) t.controller.abort(signal.reason);
      },
      { once: true },
    );
  }

  private async transfer(
    source: ImageSource,
    sink: ImageSink,
    blob: Descriptor,
    fetched: Map<string, Buffer>,
    signal: AbortSignal,
    askFirst: boolean,
    mountHint?: string,
  ): Promise<BlobOutcome> {
    const at = (side: 'source' | 'sink', operation: ErrorOrigin['operation']) => (e: unknown) => {
      throw withOrigin(e, { side, place: side === 'source' ? source.name : sink.name, operation, digest: blob.digest });
    };
    const sameRegistry = source.location && sink.location && source.location.registry === sink.location.registry;
    const from = sameRegistry ? source.location!.repository : (mountHint ?? this.opts.mountFrom?.(sink, blob));
    const mounting = from !== undefined && canMount(sink);
    // A mount needs no HEAD first: it answers 201 whether or not the blob was there; nor
    // does a small blob into a registry, which costs about what the HEAD costs to send
    // (POST + PUT instead of HEAD + POST + PUT). An image the sink already seems to hold
    // is asked about blob by blob (and written nothing).
    const ask = askFirst || (!mounting && (blob.size > SEND_WITHOUT_ASKING || sink.location === undefined));
    let outcome: BlobOutcome;
    if (ask && (await sink.hasBlob(blob, signal).catch(at('sink', 'check blob')))) {
      outcome = 'skipped';
    } else {
      // A read error is the source's, whichever side notices it first.
      let sourceFailure: unknown;
      const onBytes = (bytes: number): void => this.emit({ type: 'blob-progress', digest: blob.digest, bytes });
      const open: OpenBlob = async () => {
        if (signal.aborted) throw abortReason(signal);
        // Read and checked while planning (a config): no second fetch.
        const known = fetched.get(blob.digest);
        if (known) {
          onBytes(known.length);
          return Readable.from([known]);
        }
        let stream: Readable;
        try {
          stream = await source.openBlob(blob, { onBytes, signal });
        } catch (e) {
          return at('source', 'read blob')(e);
        }
        stream.once('error', (e) => void (sourceFailure ??= e));
        // However the source reads, a stop ends the stream (and so the write fed by it).
        const stopRead = (): void => void stream.destroy(abortReason(signal));
        signal.addEventListener('abort', stopRead, { once: true });
        stream.once('close', () => signal.removeEventListener('abort', stopRead));
        return stream;
      };
      try {
        outcome = mounting ? await sink.mountBlob(blob, from, open, signal) : await sink.putBlob(blob, open, signal);
      } catch (e) {
        if (sourceFailure !== undefined && !signal.aborted) at('source', 'read blob')(sourceFailure);
        throw withOrigin(e, { side: 'sink', place: sink.name, operation: mounting ? 'mount blob' : 'write blob', digest: blob.digest });
      }
    }
    this.stats[outcome]++;
    if (outcome === 'uploaded') this.stats.bytes += blob.size;
    this.emit({ type: 'blob-done', digest: blob.digest, size: blob.size, outcome });
    return outcome;
  }
}

/**
 * The failure with its origin, set once: an error that already has one keeps it.
 * `prefix` names the image in the message, for commands that copy many.
 */
function withOrigin(e: unknown, origin: ErrorOrigin, prefix?: string): FerryError {
  if (e instanceof FerryError && e.origin) {
    // Known where it happened; the image is added once, by the copy of the image.
    if (e.origin.image !== undefined || origin.image === undefined) return e;
    const message = prefix === undefined ? e.message : `${prefix}: ${e.message}`;
    return new FerryError(e.kind, message, { ...e.details(), origin: { ...e.origin, image: origin.image }, cause: e });
  }
  const where = origin;
  const message = prefix === undefined ? errorMessage(e) : `${prefix}: ${errorMessage(e)}`;
  if (e instanceof FerryError) return new FerryError(e.kind, message, { ...e.details(), origin: where, cause: e });
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  return new FerryError(typeof code === 'string' && code.startsWith('E') && !where.place.includes('/') ? 'io' : 'registry', message, {
    origin: where,
    cause: e,
  });
}

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
