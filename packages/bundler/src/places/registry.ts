/**
 * A repository of a registry, as a source and as a sink, over the registry
 * client. It mounts blobs from other repositories of its registry. It lists an
 * image's referrers (OCI 1.1 and cosign's tags) and, written to a registry
 * without the referrers API, keeps the tag-schema fallback index for them.
 */
import type { Readable } from 'node:stream';
import { setTimeout } from 'node:timers/promises';
import {
  type BlobMounter,
  type BlobOutcome,
  type BlobReadOptions,
  cosignSuffixes,
  cosignTags,
  type Descriptor,
  FerryError,
  fallbackTag,
  type ImagePlan,
  type ImageSink,
  type ImageSource,
  mergeFallbackIndex,
  needsManifestToClassify,
  type OpenBlob,
  type ParsedManifest,
  type ReferrerLink,
  type ReferrerLookup,
  type RegistryClient,
  type RegistryLocation,
  referrerDescriptor,
} from '@ferry/oci-client';

/** Wait (plus up to as much again) before reading a fallback index back after writing it. */
const SETTLE_MS = 50;
/** Read-merge-writes of one fallback index before giving up on a writer that keeps overwriting it. */
const MAX_INDEX_MERGES = 6;

export class RegistryPlace implements ImageSource, ImageSink, BlobMounter {
  readonly name: string;
  readonly location: RegistryLocation;
  /** Referrer lookups, per subject digest. */
  private readonly listed = new Map<string, Promise<{ links: ReferrerLink[]; lookup: ReferrerLookup }>>();
  /** The repository's tags, read once for referrer lookups (undefined: it pages them). */
  private tags: Promise<Set<string> | undefined> | undefined;
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

  /**
   * cosign's tags first (so a referrer found both ways keeps its tag), then OCI 1.1
   * referrers. The repository's tag list, read once, says which of cosign's tags and
   * fallback tags exist, so a subject with none costs no request on a registry
   * without the referrers API (one, the listing, on one with it); a registry that
   * pages its tags is asked tag by tag. Each subject is looked up once per place.
   */
  referrers(subject: Descriptor, signal?: AbortSignal, onLookup?: (lookup: ReferrerLookup) => void): Promise<ReferrerLink[]> {
    let found = this.listed.get(subject.digest);
    if (!found) {
      found = this.lookUpReferrers(subject.digest, signal);
      this.listed.set(subject.digest, found);
      found.catch(() => this.listed.delete(subject.digest));
    }
    return found.then(({ links, lookup }) => {
      onLookup?.(lookup);
      return links;
    });
  }

  private async lookUpReferrers(subject: string, signal: AbortSignal | undefined): Promise<{ links: ReferrerLink[]; lookup: ReferrerLookup }> {
    this.tags ??= this.client.tagsOnOnePage(this.repository, undefined, { signal }).catch(() => undefined);
    const tags = await this.tags;
    const tagged = await Promise.all(
      cosignTags(subject)
        .filter((tag) => tags === undefined || tags.has(tag))
        .map(async (tag): Promise<ReferrerLink | undefined> => {
          try {
            return { descriptor: await this.client.resolve(this.repository, tag, { signal }), tag };
          } catch (e) {
            if (e instanceof FerryError && e.kind === 'not-found') return undefined;
            throw e;
          }
        }),
    );
    const listed = await this.client.referrers(this.repository, subject, undefined, {
      signal,
      fallbackTagListed: tags === undefined ? undefined : tags.has(fallbackTag(subject)),
    });
    // A Sigstore bundle listed without its predicate says what it is in its manifest.
    const links = await Promise.all(
      [...tagged.filter((l): l is ReferrerLink => l !== undefined), ...listed.map((descriptor): ReferrerLink => ({ descriptor }))].map(async (link) => {
        if (!needsManifestToClassify(link)) return link;
        const m = await this.getManifest(link.descriptor);
        return { ...link, descriptor: { ...link.descriptor, annotations: { ...m.manifest.annotations, ...link.descriptor.annotations } } };
      }),
    );
    const api = await this.client.supportsReferrers(this.repository, subject, { signal });
    return { links, lookup: { listing: api ? 'referrers-api' : 'fallback-tag', cosignTags: cosignSuffixes() } };
  }

  /**
   * Lists a referrer written by digest in the tag-schema fallback index of its
   * subject, when the registry does not answer the referrers API: read, add, put
   * back; nothing is written when it is listed already. Another writer (a second
   * load) may do the same at once, and the last PUT wins: so after a pause the
   * index is read again, and merged again while it lacks what this write listed,
   * a few times at most (the distribution spec's read-append-push, without the
   * conditional requests registry:2 does not have).
   */
  async indexReferrer(subject: string, referrer: ParsedManifest, signal?: AbortSignal): Promise<void> {
    if (await this.client.supportsReferrers(this.repository, subject, { signal })) return;
    const tag = fallbackTag(subject);
    const entry = referrerDescriptor(referrer);
    const read = async (): Promise<ParsedManifest | undefined> => {
      try {
        return await this.client.getManifest(this.repository, tag, { signal });
      } catch (e) {
        if (e instanceof FerryError && e.kind === 'not-found') return undefined;
        throw e;
      }
    };
    const update = async (): Promise<void> => {
      let existing = await read();
      for (let attempt = 1; ; attempt++) {
        const merged = mergeFallbackIndex(existing, entry);
        if (!merged) return;
        if (attempt > MAX_INDEX_MERGES) {
          throw new FerryError(
            'registry',
            `the referrers fallback index ${tag} in ${this.name} kept changing under ferry (another writer at the same time), and ${entry.digest} is not in it: run the same command again`,
            { registry: this.client.registry, repository: this.repository },
          );
        }
        await this.client.putManifest(this.repository, tag, merged.bytes, merged.mediaType, { signal });
        await setTimeout(SETTLE_MS + Math.random() * SETTLE_MS, undefined, { signal });
        existing = await read();
      }
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
