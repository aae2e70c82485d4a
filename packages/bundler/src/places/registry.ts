/**
 * A repository of a registry, as a source and as a sink, over the registry
 * client. It mounts blobs from other repositories of its registry.
 */
import type { Readable } from 'node:stream';
import {
  type BlobMounter,
  type BlobOutcome,
  type BlobReadOptions,
  type Descriptor,
  FerryError,
  type ImagePlan,
  type ImageSink,
  type ImageSource,
  type OpenBlob,
  type ParsedManifest,
  type RegistryClient,
  type RegistryLocation,
} from '@ferry/oci-client';

export class RegistryPlace implements ImageSource, ImageSink, BlobMounter {
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

  openBlob(desc: Descriptor, opts: BlobReadOptions = {}): Readable {
    return this.client.getBlob(this.repository, desc, opts.onBytes, { signal: opts.signal });
  }

  hasBlob(desc: Descriptor, signal?: AbortSignal): Promise<boolean> {
    return this.client.blobExists(this.repository, desc.digest, { signal });
  }

  putBlob(desc: Descriptor, open: OpenBlob, signal?: AbortSignal): Promise<BlobOutcome> {
    return this.client.pushBlob(this.repository, desc, open, { signal });
  }

  mountBlob(desc: Descriptor, fromRepository: string, open: OpenBlob, signal?: AbortSignal): Promise<BlobOutcome> {
    return this.client.pushBlob(this.repository, desc, open, { mountFrom: fromRepository, signal });
  }

  async putManifest(manifest: ParsedManifest, tag?: string, signal?: AbortSignal): Promise<void> {
    await this.client.putManifest(this.repository, tag ?? manifest.digest, manifest.bytes, manifest.mediaType, { signal });
  }

  /** The tag names the same root and every child manifest is there. */
  async hasImage(plan: ImagePlan, tag?: string, signal?: AbortSignal): Promise<boolean> {
    const present = async (reference: string, digest: string): Promise<boolean> => {
      try {
        return (await this.client.resolve(this.repository, reference, { signal })).digest === digest;
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
