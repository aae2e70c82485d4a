/**
 * What `ferry serve` serves, worked out once at start-up from the bundles:
 * repositories named as `load --to HOST` names them (TargetMapper), each with
 * its tags, the manifests and blobs its images reach (one graph walk,
 * walkGraph, over all the bundles at once so a delta finds its base's
 * blobs), and the referrers of its manifests. Manifests are small and already
 * digest-checked by the walk, so their bytes are kept; blobs stay in the files.
 */
import { type Descriptor, type ParsedManifest, usageError, walkGraph } from '@ferry/oci-client';
import { TargetMapper } from '../load/mapping.js';
import type { BundleReader } from '../places/bundle-reader.js';

export interface ServedManifest {
  digest: string;
  mediaType: string;
  bytes: Uint8Array;
}

export interface ServedRepo {
  name: string;
  /** tag -> manifest digest */
  tags: Map<string, string>;
  /** Every manifest the repository's images reach, by digest. */
  manifests: Map<string, ServedManifest>;
  /** Every config and layer (and manifest) digest the repository's images reach. */
  blobs: Set<string>;
  /** subject digest -> descriptors of the manifests that name it as their subject. */
  referrers: Map<string, Descriptor[]>;
}

export interface BlobLocation {
  bundle: BundleReader;
  size: number;
}

export interface ServedContent {
  repos: Map<string, ServedRepo>;
  /** Where each blob is read from: the first bundle given that carries it. */
  blobs: Map<string, BlobLocation>;
  images: number;
  charts: number;
}

/** The host the mapper is given: only the repository part of its answers is used. */
const NO_HOST = 'localhost';

export async function buildContent(bundles: BundleReader[], opts: { prefix?: string | undefined } = {}): Promise<ServedContent> {
  const blobs = new Map<string, BlobLocation>();
  for (const bundle of bundles) {
    for (const b of bundle.blobs()) if (!blobs.has(b.digest)) blobs.set(b.digest, { bundle, size: b.size });
  }
  for (const bundle of bundles) {
    const base = bundle.ferry?.base;
    if (!base) continue;
    const missing = base.reliesOn.find((b) => !blobs.has(b.digest));
    if (missing) {
      throw usageError(
        `${bundle.name} is a delta of bundle ${base.id} and relies on blob ${missing.digest} that no bundle given carries; serve it together with its base`,
      );
    }
  }

  const prefix = (opts.prefix ?? '').replace(/^\/+|\/+$/g, '');
  const mapper = new TargetMapper({ to: prefix ? `${NO_HOST}/${prefix}` : NO_HOST });
  const parsed = new Map<string, Promise<ParsedManifest>>();
  const read = (d: Descriptor): Promise<ParsedManifest> => {
    let p = parsed.get(d.digest);
    if (!p) {
      const at = blobs.get(d.digest);
      p = at ? at.bundle.getManifest(d) : Promise.reject(usageError(`no bundle given carries manifest ${d.digest}`));
      parsed.set(d.digest, p);
    }
    return p;
  };

  const repos = new Map<string, ServedRepo>();
  /** `repo:tag` -> where it was first named, to refuse one name with two digests. */
  const named = new Map<string, { digest: string; bundle: string }>();
  let images = 0;
  let charts = 0;
  for (const bundle of bundles) {
    const entries = bundle.images();
    const unnamed = entries.find((e) => !e.named);
    if (unnamed)
      throw usageError(
        `${bundle.name} lists image ${unnamed.ref} without a name (no org.opencontainers.image.ref.name annotation), so it has no name to serve`,
      );
    const chartRefs = bundle.charts();
    const mapped = mapper.mapBundle(
      entries.map((e) => e.ref),
      chartRefs,
    );
    const roots = [
      ...mapped.images.map((m, i) => ({ target: m.target, descriptor: entries[i]!.descriptor })),
      ...mapped.charts.map((target, i) => ({ target, descriptor: chartRefs[i]!.descriptor })),
    ];
    images += mapped.images.length;
    charts += mapped.charts.length;
    for (const { target, descriptor } of roots) {
      const repo = repoOf(repos, target.repository);
      if (target.tag) {
        const key = `${target.repository}:${target.tag}`;
        const earlier = named.get(key);
        if (earlier && earlier.digest !== descriptor.digest) {
          throw usageError(
            `${key} is ${earlier.digest} in ${earlier.bundle} but ${descriptor.digest} in ${bundle.name}; refusing to serve two images under one name`,
          );
        }
        named.set(key, { digest: descriptor.digest, bundle: bundle.name });
        repo.tags.set(target.tag, descriptor.digest);
      }
      await walkGraph(
        { descriptor },
        {
          label: `${bundle.name}: ${target.repository}`,
          read,
          // The signatures, SBOMs and attestations the bundle carries for the image, served beside it.
          referrers: (subject) => bundle.referrers(subject),
          onNode: (node) => {
            if (!blobs.has(node.descriptor.digest)) {
              throw usageError(`${target.repository} needs blob ${node.descriptor.digest}, which no bundle given carries`);
            }
            repo.blobs.add(node.descriptor.digest);
            // cosign finds a signature by its tag (sha256-<hex>.sig).
            const tag = node.artifact?.digest === node.descriptor.digest ? node.artifact.link.tag : undefined;
            if (tag) repo.tags.set(tag, node.descriptor.digest);
          },
          onManifest: (_node, m) => addManifest(repo, m),
        },
      );
    }
  }
  return { repos, blobs, images, charts };
}

function repoOf(repos: Map<string, ServedRepo>, name: string): ServedRepo {
  let repo = repos.get(name);
  if (!repo) {
    repo = { name, tags: new Map(), manifests: new Map(), blobs: new Set(), referrers: new Map() };
    repos.set(name, repo);
  }
  return repo;
}

function addManifest(repo: ServedRepo, m: ParsedManifest): void {
  if (repo.manifests.has(m.digest)) return;
  repo.manifests.set(m.digest, { digest: m.digest, mediaType: m.mediaType, bytes: m.bytes });
  const doc = m.manifest as { subject?: Descriptor; artifactType?: string; config?: Descriptor; annotations?: Record<string, string> };
  if (!doc.subject) return;
  // The referrers API's descriptor: artifactType is the manifest's, else its config's media type (distribution-spec 1.1).
  const artifactType = doc.artifactType ?? (m.kind === 'image' ? doc.config?.mediaType : undefined);
  const d: Descriptor = { mediaType: m.mediaType, digest: m.digest, size: m.bytes.byteLength };
  if (artifactType) d.artifactType = artifactType;
  if (doc.annotations && Object.keys(doc.annotations).length) d.annotations = doc.annotations;
  const list = repo.referrers.get(doc.subject.digest) ?? [];
  list.push(d);
  repo.referrers.set(doc.subject.digest, list);
}
