/**
 * An image place in memory, as a source and as a sink: charts packaged on the
 * fly are read from it, and the engine's unit tests copy between two of them.
 * Blobs are kept by digest, manifests by digest, tags by name; everything
 * written is digest-checked, as a registry would.
 */
import { Readable } from 'node:stream';
import {
  abortReason,
  type BlobOutcome,
  type BlobReadOptions,
  type Descriptor,
  digestOf,
  FerryError,
  type ImageSink,
  type ImageSource,
  isDigest,
  type OpenBlob,
  type ParsedManifest,
  verifyBytes,
} from '@ferry/oci-client';

export class MemoryPlace implements ImageSource, ImageSink {
  readonly location = undefined;
  readonly blobs = new Map<string, Buffer>();
  readonly manifests = new Map<string, ParsedManifest>();
  readonly tags = new Map<string, string>();

  constructor(readonly name = 'memory') {}

  /** A place holding one manifest and its blobs (a chart packaged in memory). */
  static of(name: string, manifest: ParsedManifest, blobs: Buffer[], tag?: string): MemoryPlace {
    const place = new MemoryPlace(name);
    for (const b of blobs) place.blobs.set(digestOf(b), b);
    place.manifests.set(manifest.digest, manifest);
    if (tag !== undefined) place.tags.set(tag, manifest.digest);
    return place;
  }

  async resolve(reference: string): Promise<Descriptor> {
    const digest = isDigest(reference) ? reference : this.tags.get(reference);
    const m = digest === undefined ? undefined : this.manifests.get(digest);
    if (!m) throw new FerryError('not-found', `${this.name} has no manifest ${reference}`);
    return { mediaType: m.mediaType, digest: m.digest, size: m.bytes.byteLength };
  }

  async getManifest(desc: Descriptor): Promise<ParsedManifest> {
    const m = this.manifests.get(desc.digest);
    if (!m) throw new FerryError('not-found', `${this.name} has no manifest ${desc.digest}`);
    return m;
  }

  openBlob(desc: Descriptor, opts: BlobReadOptions = {}): Readable {
    const bytes = this.blobs.get(desc.digest);
    if (!bytes) throw new FerryError('not-found', `${this.name} has no blob ${desc.digest}`);
    verifyBytes(bytes, desc, `blob ${desc.digest} of ${this.name}`);
    opts.onBytes?.(bytes.length);
    return Readable.from([bytes]);
  }

  async hasBlob(desc: Descriptor): Promise<boolean> {
    return this.blobs.has(desc.digest);
  }

  async putBlob(desc: Descriptor, open: OpenBlob, signal?: AbortSignal): Promise<BlobOutcome> {
    const chunks: Buffer[] = [];
    for await (const c of await open()) {
      if (signal?.aborted) throw abortReason(signal);
      chunks.push(c as Buffer);
    }
    const bytes = Buffer.concat(chunks);
    verifyBytes(bytes, desc, `blob ${desc.digest} written to ${this.name}`);
    this.blobs.set(desc.digest, bytes);
    return 'uploaded';
  }

  async putManifest(manifest: ParsedManifest, tag?: string): Promise<void> {
    this.manifests.set(manifest.digest, manifest);
    if (tag !== undefined) this.tags.set(tag, manifest.digest);
  }
}
