/**
 * What a place that holds images must do for the copy engine: a source can be
 * read, a sink written. Registries, bundle files, layout directories and memory
 * each implement this small interface (the places live side by side in the
 * bundler's `places/`); mounting is an optional capability of a sink, as
 * regclient's optional scheme interfaces are.
 */
import type { Readable } from 'node:stream';
import type { Descriptor, ParsedManifest } from '../manifest.js';
import type { ImagePlan } from './plan.js';
import type { ReferrerLink, ReferrerLookup } from './referrers.js';

/** Where a place lives in a registry; the engine mounts blobs between places of one registry. */
export interface RegistryLocation {
  registry: string;
  repository: string;
}

export interface BlobReadOptions {
  /** Hears of every chunk (for progress). */
  onBytes?: ((n: number) => void) | undefined;
  /** Stops the read: the stream fails with the signal's reason. */
  signal?: AbortSignal | undefined;
}

export interface ImageSource {
  /** For messages: "127.0.0.1:5000/team/app", "bundle.tar". */
  readonly name: string;
  readonly location?: RegistryLocation | undefined;
  /** A tag or digest to the root manifest's descriptor. */
  resolve(reference: string): Promise<Descriptor>;
  /** A manifest by descriptor, digest-checked. */
  getManifest(desc: Descriptor): Promise<ParsedManifest>;
  /** A manifest by tag or digest in one round trip, where the place can (a registry: one GET). */
  fetchManifest?(reference: string): Promise<ParsedManifest>;
  /** A blob as a stream that fails if its bytes do not match the descriptor. */
  openBlob(desc: Descriptor, opts?: BlobReadOptions): Readable | Promise<Readable>;
  /**
   * The manifests that refer to `subject` (signatures, SBOMs, attestations), where
   * the place can list them: OCI 1.1 referrers and cosign's tags. Optional: a place
   * without it carries none. `onLookup` hears how a registry looked for them.
   */
  referrers?(subject: Descriptor, signal?: AbortSignal, onLookup?: (lookup: ReferrerLookup) => void): Promise<ReferrerLink[]>;
}

export type BlobOutcome = 'uploaded' | 'mounted' | 'skipped';

/** Opens the blob's bytes for a write; called again when a write is retried. */
export type OpenBlob = () => Readable | Promise<Readable>;

export interface ImageSink {
  readonly name: string;
  readonly location?: RegistryLocation | undefined;
  hasBlob(desc: Descriptor, signal?: AbortSignal): Promise<boolean>;
  /** Writes a blob from the stream `open` creates. */
  putBlob(desc: Descriptor, open: OpenBlob, signal?: AbortSignal): Promise<BlobOutcome>;
  /** Writes a manifest by digest, or under `tag` when given. */
  putManifest(manifest: ParsedManifest, tag?: string, signal?: AbortSignal): Promise<void>;
  /**
   * Whether the sink already holds the image's manifests under `tag` (or its
   * digest), so a rerun need not write them again. Blobs are asked about all the
   * same: a manifest that is there does not prove its blobs still are.
   */
  hasImage?(plan: ImagePlan, tag?: string, signal?: AbortSignal): Promise<boolean>;
  /**
   * Makes a referrer (written with its `subject`) listable where the sink cannot
   * list it by itself: a registry without the referrers API keeps the tag-schema
   * fallback index. Idempotent.
   */
  indexReferrer?(subject: string, referrer: ParsedManifest, signal?: AbortSignal): Promise<void>;
}

/** A sink that can take a blob from another repository of its registry without the bytes moving. */
export interface BlobMounter {
  /** Mounts the blob from `fromRepository`, or uploads it from `open` when the registry will not mount it. */
  mountBlob(desc: Descriptor, fromRepository: string, open: OpenBlob, signal?: AbortSignal): Promise<BlobOutcome>;
}

export function canMount(sink: ImageSink): sink is ImageSink & BlobMounter {
  return typeof (sink as Partial<BlobMounter>).mountBlob === 'function';
}
