/**
 * Planning a copy: a root (index or manifest) resolved to every child manifest,
 * config and layer, optionally narrowed to some platforms. Planning reads only
 * manifests (and, for a single-platform image, its config), so every size is
 * known before a layer byte moves. A visitor of the one graph walk (graph.ts),
 * which also brings the image's referrers (signatures, SBOMs, attestations) when
 * asked to: they are planned beside the image, to be written after their subject.
 */
import { Buffer } from 'node:buffer';
import { FerryError } from '../errors.js';
import { type Descriptor, type ParsedManifest, parseManifest } from '../manifest.js';
import { formatPlatform, type Platform, platformMatches } from '../platform.js';
import { ATTESTATION_OF, configPlatform, indexChildPlatform, isAttestation, walkGraph } from './graph.js';
import type { ImageSource } from './place.js';
import { type ReferrerKind, type ReferrerLookup, type ReferrerMode, referrerArtifactType, referrerKind, wantsReferrer } from './referrers.js';

/** A referrer to carry: its manifests, written once its subject is. */
export interface ReferrerPlan {
  /** The referrer's own manifest. */
  root: ParsedManifest;
  /** Its manifests, children before parents, `root` last (an artifact is mostly one manifest). */
  manifests: ParsedManifest[];
  /** The manifest it refers to: the image's, or another referrer's (a signature of an SBOM). */
  subject: string;
  /** cosign's tag for it (`sha256-<hex>.sig`), to be written as a tag; undefined for an OCI 1.1 referrer. */
  tag: string | undefined;
  artifactType: string | undefined;
  kind: ReferrerKind;
}

/** What was looked for to find an image's referrers, whatever was found. */
export interface ReferrerSearch {
  mode: ReferrerMode;
  /** `--referrers-type`: only these artifactTypes were carried; null for any. */
  types: string[] | null;
  /** Manifests whose referrers were asked for: the image's and, within the depth bound, its referrers'. */
  subjects: number;
  /** How OCI 1.1 referrers were listed (see ReferrerLookup); empty when the source did not say. */
  listing: Array<ReferrerLookup['listing']>;
  /** cosign's tag suffixes looked for. */
  cosignTags: string[];
}

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
  /** The referrers carried, each after its subject (their blobs are in `blobs`). */
  referrers: ReferrerPlan[];
  /** How they were looked for. */
  referrerSearch: ReferrerSearch;
}

export interface PlanOptions {
  /** Keep only these platforms (from an index); undefined keeps everything. */
  platforms?: Platform[] | undefined;
  /** Which referrers to carry (default none): found through the source's `referrers`. */
  referrers?: ReferrerMode | undefined;
  /** Carry only referrers of these artifactTypes. */
  referrersType?: string[] | undefined;
}

/** Every manifest a plan writes: the image's, then its referrers'. */
export function planManifests(plan: ImagePlan): ParsedManifest[] {
  return [...plan.manifests, ...plan.referrers.flatMap((r) => r.manifests)];
}

export async function planImage(source: ImageSource, reference: string, opts: PlanOptions = {}): Promise<ImagePlan> {
  const label = `${source.name}:${reference}`;
  // A registry answers a GET by tag with the manifest and its digest: no HEAD first.
  const upstream = source.fetchManifest ? await source.fetchManifest(reference) : await source.getManifest(await source.resolve(reference));
  const platforms: string[] = [];
  const fetched = new Map<string, Buffer>();
  let root = upstream;
  let filtered = false;

  if (upstream.kind === 'index' && opts.platforms?.length) {
    const keep = selectPlatforms(upstream, opts.platforms, label);
    if (keep.length !== upstream.manifest.manifests.length) {
      root = filteredIndex(upstream, keep);
      filtered = true;
    }
  } else if (upstream.kind === 'image') {
    // A single-platform image says its platform only in its config.
    const found = await configPlatform(upstream, (d) => readConfig(source, d));
    if (found) fetched.set(upstream.manifest.config.digest, found.bytes);
    const actual = found?.platform;
    if (actual) platforms.push(formatPlatform(actual));
    if (opts.platforms?.length && actual && !opts.platforms.some((w) => platformMatches(w, actual))) {
      throw new FerryError('usage', `${label} has none of the platforms ${opts.platforms.map(formatPlatform).join(', ')}; it has ${formatPlatform(actual)}`);
    }
  }

  const manifests: ParsedManifest[] = [];
  const blobs: Descriptor[] = [];
  const referrers = new Map<string, ReferrerPlan>();
  const artifactManifests = new Map<string, ParsedManifest[]>();
  const mode = opts.referrers ?? 'none';
  const listReferrers = source.referrers;
  const search: ReferrerSearch = { mode, types: opts.referrersType?.length ? [...opts.referrersType] : null, subjects: 0, listing: [], cosignTags: [] };
  const heard = (l: ReferrerLookup): void => {
    if (!search.listing.includes(l.listing)) search.listing.push(l.listing);
    for (const t of l.cosignTags) if (!search.cosignTags.includes(t)) search.cosignTags.push(t);
  };
  await walkGraph(
    { manifest: root },
    {
      label,
      read: (d) => source.getManifest(d),
      referrers:
        mode !== 'none' && listReferrers
          ? (subject) => {
              search.subjects++;
              return listReferrers.call(source, subject, undefined, heard);
            }
          : undefined,
      onNode: (node) => {
        if (node.role === 'referrer' && !wantsReferrer(node.artifact!.link, mode, opts.referrersType)) return false;
        if (node.role === 'manifest' && node.platform && !node.artifact) platforms.push(formatPlatform(node.platform));
        if (node.role === 'config' || node.role === 'layer') blobs.push(node.descriptor);
        return true;
      },
      onManifest: (node, m) => {
        if (!node.artifact) return void manifests.push(m);
        const { digest, link, subject } = node.artifact;
        const list = artifactManifests.get(digest) ?? [];
        artifactManifests.set(digest, list);
        list.push(m);
        if (node.role === 'referrer') {
          referrers.set(digest, { root: m, manifests: list, subject, tag: link.tag, artifactType: referrerArtifactType(link), kind: referrerKind(link) });
        }
      },
    },
  );
  return { root, upstreamDigest: upstream.digest, manifests, blobs, platforms, filtered, fetched, referrers: [...referrers.values()], referrerSearch: search };
}

/** The children of an index to keep for `wanted` platforms, with the attestations of kept images. */
function selectPlatforms(index: ParsedManifest & { kind: 'index' }, wanted: Platform[], name: string): Descriptor[] {
  const children = index.manifest.manifests;
  const kept = children.filter((d) => {
    const p = indexChildPlatform(d);
    return p !== undefined && wanted.some((w) => platformMatches(w, p));
  });
  if (kept.length === 0) {
    const has = children.map(indexChildPlatform).filter((p): p is Platform => p !== undefined);
    throw new FerryError(
      'usage',
      `${name} has none of the platforms ${wanted.map(formatPlatform).join(', ')}; it has ${has.map(formatPlatform).join(', ') || 'no platform information'}`,
    );
  }
  const keptDigests = new Set(kept.map((d) => d.digest));
  return children.filter((d) => keptDigests.has(d.digest) || (isAttestation(d) && keptDigests.has(d.annotations?.[ATTESTATION_OF] ?? '')));
}

/** A new index with only `keep` children; other fields stay as they were upstream. */
function filteredIndex(index: ParsedManifest & { kind: 'index' }, keep: Descriptor[]): ParsedManifest {
  const doc = JSON.parse(Buffer.from(index.bytes).toString('utf8')) as Record<string, unknown>;
  const keepSet = new Set(keep.map((d) => d.digest));
  doc.manifests = (doc.manifests as Array<{ digest: string }>).filter((d) => keepSet.has(d.digest));
  return parseManifest(Buffer.from(JSON.stringify(doc)), index.mediaType);
}

/** A config's bytes; undefined when a delta bundle relies on its base for it (its platform is then unknown here). */
async function readConfig(source: ImageSource, config: Descriptor): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  try {
    for await (const c of await source.openBlob(config)) chunks.push(c as Buffer);
  } catch (e) {
    if (e instanceof FerryError && (e.kind === 'integrity' || e.kind === 'not-found')) return undefined;
    throw e;
  }
  return Buffer.concat(chunks);
}
