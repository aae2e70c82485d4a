/**
 * The walk of an image graph: a root (index or manifest) resolved to every child
 * manifest, config and layer, optionally narrowed to some platforms. Planning
 * reads only manifests (and, for a filtered single-platform image, its config),
 * so every size is known before a layer byte moves.
 */
import { Buffer } from 'node:buffer';
import { FerryError } from '../errors.js';
import { type Descriptor, MediaType, type ParsedManifest, parseManifest, referencedDescriptors } from '../manifest.js';
import { formatPlatform, type Platform, platformFromConfig, platformFromDescriptor, platformMatches } from '../platform.js';
import type { ImageSource } from './places.js';

export interface ImagePlan {
  /** The root as it will be written: upstream bytes, or a filtered index. */
  root: ParsedManifest;
  /** The root's digest upstream (differs from root.digest when filtered). */
  upstreamDigest: string;
  /** Every manifest below the root, children before parents, root last. */
  manifests: ParsedManifest[];
  /** Every config and layer, once each, in first-seen order. */
  blobs: Descriptor[];
  /** Platforms of the image's manifests ("linux/amd64"), in index order. */
  platforms: string[];
  /** True when a platform filter dropped children of the upstream index. */
  filtered: boolean;
  /**
   * Blobs read (and digest-checked) while planning, by digest: a single-platform
   * image's config. The copy takes them from here instead of fetching them again.
   */
  fetched: Map<string, Buffer>;
}

export interface PlanOptions {
  /** Keep only these platforms (from an index); undefined keeps everything. */
  platforms?: Platform[] | undefined;
}

/** Docker buildx stores attestations as index children that point at the image they describe. */
const ATTESTATION_OF = 'vnd.docker.reference.digest';

export async function planImage(source: ImageSource, reference: string, opts: PlanOptions = {}): Promise<ImagePlan> {
  // A registry answers a GET by tag with the manifest and its digest: no HEAD first.
  const upstream = source.fetchManifest ? await source.fetchManifest(reference) : await source.getManifest(await source.resolve(reference));
  const manifests: ParsedManifest[] = [];
  const blobs = new Map<string, Descriptor>();
  const platforms: string[] = [];
  const fetched = new Map<string, Buffer>();
  let root = upstream;
  let filtered = false;

  if (upstream.kind === 'index' && opts.platforms?.length) {
    const keep = selectPlatforms(upstream, opts.platforms, `${source.name}:${reference}`);
    if (keep.length !== upstream.manifest.manifests.length) {
      root = filteredIndex(upstream, keep);
      filtered = true;
    }
  } else if (upstream.kind === 'image') {
    // A single-platform image says its platform only in its config.
    const actual = await configPlatform(source, upstream, fetched);
    if (actual) platforms.push(formatPlatform(actual));
    if (opts.platforms?.length && actual && !opts.platforms.some((w) => platformMatches(w, actual))) {
      throw new FerryError(
        'usage',
        `${source.name}:${reference} has none of the platforms ${opts.platforms.map(formatPlatform).join(', ')}; it has ${formatPlatform(actual)}`,
      );
    }
  }

  const seen = new Set<string>();
  const visit = async (m: ParsedManifest, depth: number): Promise<void> => {
    if (depth > 4) throw new FerryError('unsupported', `index nesting deeper than 4 levels in ${source.name}:${reference}`);
    for (const child of referencedDescriptors(m)) {
      if (m.kind === 'index') {
        if (seen.has(child.digest)) continue;
        seen.add(child.digest);
        const p = platformFromDescriptor(child);
        if (p && !child.annotations?.[ATTESTATION_OF]) platforms.push(formatPlatform(p));
        const cm = await source.getManifest(child);
        await visit(cm, depth + 1);
        manifests.push(cm);
      } else if (!blobs.has(child.digest)) {
        blobs.set(child.digest, child);
      }
    }
  };
  await visit(root, 0);
  manifests.push(root);
  return { root, upstreamDigest: upstream.digest, manifests, blobs: [...blobs.values()], platforms, filtered, fetched };
}

/** The children of an index to keep for `wanted` platforms, with the attestations of kept images. */
function selectPlatforms(index: ParsedManifest & { kind: 'index' }, wanted: Platform[], name: string): Descriptor[] {
  const children = index.manifest.manifests;
  const kept = children.filter((d) => {
    const p = platformFromDescriptor(d);
    return p !== undefined && !d.annotations?.[ATTESTATION_OF] && wanted.some((w) => platformMatches(w, p));
  });
  if (kept.length === 0) {
    const has = children
      .filter((d) => !d.annotations?.[ATTESTATION_OF])
      .map((d) => platformFromDescriptor(d))
      .filter((p): p is Platform => p !== undefined)
      .map(formatPlatform);
    throw new FerryError(
      'usage',
      `${name} has none of the platforms ${wanted.map(formatPlatform).join(', ')}; it has ${has.join(', ') || 'no platform information'}`,
    );
  }
  const keptDigests = new Set(kept.map((d) => d.digest));
  return children.filter((d) => keptDigests.has(d.digest) || keptDigests.has(d.annotations?.[ATTESTATION_OF] ?? ''));
}

/** A new index with only `keep` children; other fields stay as they were upstream. */
function filteredIndex(index: ParsedManifest & { kind: 'index' }, keep: Descriptor[]): ParsedManifest {
  const doc = JSON.parse(Buffer.from(index.bytes).toString('utf8')) as Record<string, unknown>;
  const keepSet = new Set(keep.map((d) => d.digest));
  doc.manifests = (doc.manifests as Array<{ digest: string }>).filter((d) => keepSet.has(d.digest));
  return parseManifest(Buffer.from(JSON.stringify(doc)), index.mediaType);
}

/** The platform an image config names, for image manifests (not artifacts). */
async function configPlatform(source: ImageSource, m: ParsedManifest & { kind: 'image' }, fetched: Map<string, Buffer>): Promise<Platform | undefined> {
  const config = m.manifest.config;
  if (config.mediaType !== MediaType.OCI_CONFIG && config.mediaType !== MediaType.DOCKER_CONFIG) return undefined;
  if (config.size > 1024 * 1024) return undefined;
  const chunks: Buffer[] = [];
  try {
    for await (const c of await source.openBlob(config)) chunks.push(c as Buffer);
  } catch (e) {
    // A delta bundle may rely on its base for the config: then the platform is unknown here.
    if (e instanceof FerryError && (e.kind === 'integrity' || e.kind === 'not-found')) return undefined;
    throw e;
  }
  const bytes = Buffer.concat(chunks);
  fetched.set(config.digest, bytes);
  return platformFromConfig(bytes);
}
