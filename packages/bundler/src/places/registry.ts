/**
 * A repository of a registry, as a source and as a sink, over the registry
 * client. It mounts blobs from other repositories of its registry. It lists an
 * image's referrers (OCI 1.1 and cosign's tags) and, written to a registry
 * without the referrers API, keeps the tag-schema fallback index for them.
 */
import type { Readable } from 'node:stream';
import {
  type BlobMounter,
  type BlobOutcome,
  type BlobReadOptions,
  cosignTags,
  type Descriptor,
  FerryError,
  fallbackTag,
  type ImagePlan,
  type ImageSink,
  type ImageSource,
  mergeFallbackIndex,
  type OpenBlob,
  type ParsedManifest,
  type ReferrerLink,
  type RegistryClient,
  type RegistryLocation,
  referrerDescriptor,
} from '@ferry/oci-client';

export class RegistryPlace implements ImageSource, ImageSink, BlobMounter {
  readonly name: string;
  readonly location: RegistryLocation;
  /** Fallback-index updates under way, per tag: one read-merge-write at a time. */
  private readonly indexing = new Map<string, Promise<void>>();

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

  /** cosign's tags first (so a referrer found both ways keeps its tag), then OCI 1.1 referrers. */
  async referrers(subject: Descriptor, signal?: AbortSignal): Promise<ReferrerLink[]> {
    const tagged = await Promise.all(
      cosignTags(subject.digest).map(async (tag): Promise<ReferrerLink | undefined> => {
        try {
          return { descriptor: await this.client.resolve(this.repository, tag, { signal }), tag };
        } catch (e) {
          if (e instanceof FerryError && e.kind === 'not-found') return undefined;
          throw e;
        }
      }),
    );
    const listed = await this.client.referrers(this.repository, subject.digest, undefined, { signal });
    return [...tagged.filter((l): l is ReferrerLink => l !== undefined), ...listed.map((descriptor) => ({ descriptor }))];
  }

  /**
   * Lists a referrer written by digest in the tag-schema fallback index of its
   * subject, when the registry does not answer the referrers API: read, add, put
   * back; nothing is written when it is listed already.
   */
  async indexReferrer(subject: string, referrer: ParsedManifest, signal?: AbortSignal): Promise<void> {
    if (await this.client.supportsReferrers(this.repository, subject, { signal })) return;
    const tag = fallbackTag(subject);
    const update = async (): Promise<void> => {
      let existing: ParsedManifest | undefined;
      try {
        existing = await this.client.getManifest(this.repository, tag, { signal });
      } catch (e) {
        if (!(e instanceof FerryError && e.kind === 'not-found')) throw e;
      }
      const merged = mergeFallbackIndex(existing, referrerDescriptor(referrer));
      if (merged) await this.client.putManifest(this.repository, tag, merged.bytes, merged.mediaType, { signal });
    };
    const run = (this.indexing.get(tag) ?? Promise.resolve()).catch(() => undefined).then(update);
    this.indexing.set(tag, run);
    await run;
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
