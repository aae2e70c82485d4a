/**
 * A place that holds images: a source can be read, a sink written. The copy
 * engine moves images between any two of them; registries, bundle files and
 * layout directories each implement this small interface.
 */
import type { Readable } from 'node:stream';
import { FerryError } from '../errors.js';
import type { Descriptor, ParsedManifest } from '../manifest.js';
import type { RegistryClient } from '../registry.js';
import type { ImagePlan } from './plan.js';

/** Where a place lives in a registry; the engine mounts blobs between places of one registry. */
export interface RegistryLocation {
  registry: string;
  repository: string;
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
  /**
   * A blob as a stream that fails if its bytes do not match the descriptor;
   * `onBytes` hears of every chunk (for progress).
   */
  openBlob(desc: Descriptor, onBytes?: (n: number) => void): Readable | Promise<Readable>;
}

export type BlobOutcome = 'uploaded' | 'mounted' | 'skipped';

export interface ImageSink {
  readonly name: string;
  readonly location?: RegistryLocation | undefined;
  hasBlob(desc: Descriptor): Promise<boolean>;
  /**
   * Writes a blob from the stream `open` creates (it may be called again on retry).
   * `mountFrom` names a repository of the same registry that holds the blob.
   */
  putBlob(desc: Descriptor, open: () => Readable | Promise<Readable>, mountFrom?: string): Promise<BlobOutcome>;
  /** Writes a manifest by digest, or under `tag` when given. */
  putManifest(manifest: ParsedManifest, tag?: string): Promise<void>;
  /**
   * Whether the sink already holds the whole image under `tag` (or its digest), so
   * a rerun can skip it without asking about every blob.
   */
  hasImage?(plan: ImagePlan, tag?: string): Promise<boolean>;
}

/** A repository of a registry, as a source and as a sink. */
export class RegistryPlace implements ImageSource, ImageSink {
  readonly name: string;
  readonly location: RegistryLocation;

  constructor(
    readonly client: RegistryClient,
    readonly repository: string,
  ) {
    this.name = `${client.registry}/${repository}`;
    this.location = { registry: client.registry, repository };
  }

  /** Declares the intent to write, so one token serves reads and writes. */
  forWriting(): this {
    this.client.willPush(this.repository);
    return this;
  }

  resolve(reference: string): Promise<Descriptor> {
    return this.client.resolve(this.repository, reference);
  }

  getManifest(desc: Descriptor): Promise<ParsedManifest> {
    return this.client.getManifest(this.repository, desc.digest);
  }

  fetchManifest(reference: string): Promise<ParsedManifest> {
    return this.client.getManifest(this.repository, reference);
  }

  openBlob(desc: Descriptor, onBytes?: (n: number) => void): Readable {
    return this.client.getBlob(this.repository, desc, onBytes);
  }

  hasBlob(desc: Descriptor): Promise<boolean> {
    return this.client.blobExists(this.repository, desc.digest);
  }

  putBlob(desc: Descriptor, open: () => Readable | Promise<Readable>, mountFrom?: string): Promise<BlobOutcome> {
    return this.client.pushBlob(this.repository, desc, open, { mountFrom });
  }

  async putManifest(manifest: ParsedManifest, tag?: string): Promise<void> {
    await this.client.putManifest(this.repository, tag ?? manifest.digest, manifest.bytes, manifest.mediaType);
  }

  /**
   * The tag names the same root and every child manifest is there. A registry takes
   * a manifest only when what it references is stored, so the blobs are there too.
   */
  async hasImage(plan: ImagePlan, tag?: string): Promise<boolean> {
    const present = async (reference: string, digest: string): Promise<boolean> => {
      try {
        return (await this.client.resolve(this.repository, reference)).digest === digest;
      } catch (e) {
        if (e instanceof FerryError && e.kind === 'not-found') return false;
        throw e;
      }
    };
    if (!(await present(tag ?? plan.root.digest, plan.root.digest))) return false;
    for (const m of plan.manifests.slice(0, -1)) if (!(await present(m.digest, m.digest))) return false;
    return true;
  }
}
