/**
 * The one walk of an image graph: a root (index or manifest) -> its child
 * manifests -> each manifest's config and layers. Planning a copy, verifying a
 * bundle and inspecting one are visitors of this walk, so the rules that decide
 * what a node is are written here once: how deep indexes may nest, which index
 * children are platforms (not attestations, not `unknown/unknown`), and how a
 * single-platform image's config names its platform.
 *
 * Where the place can list them, the walk goes on to the manifests' referrers
 * (signatures, SBOMs, attestations: referrers.ts), and to theirs, a few levels
 * deep; each is the root of its own small graph, walked by the same rules.
 *
 * A strict walk fails on the first manifest it cannot read; a tolerant walk
 * reports it and goes on with the rest (verify, inspect).
 */
import type { Buffer } from 'node:buffer';
import pLimit from 'p-limit';
import { FerryError } from '../errors.js';
import { type Descriptor, MediaType, type ParsedManifest } from '../manifest.js';
import { type Platform, platformFromConfig, platformFromDescriptor } from '../platform.js';
import type { ReferrerLink } from './referrers.js';

/** Indexes nest at most this deep below the root (an index of indexes of manifests is depth 2). */
export const MAX_INDEX_DEPTH = 4;

/** Referrers are followed at most this deep: a signature of an SBOM of the image is depth 2. */
export const MAX_REFERRER_DEPTH = 3;

/** Docker buildx stores attestations as index children that point at the image they describe. */
export const ATTESTATION_OF = 'vnd.docker.reference.digest';

/** Configs larger than this are not read for their platform (an image config is a few KiB). */
const MAX_CONFIG_FOR_PLATFORM = 1024 * 1024;

/** Manifest reads at once within one walk. */
const WALK_READS = 8;

export function isAttestation(d: Descriptor): boolean {
  return d.annotations?.[ATTESTATION_OF] !== undefined;
}

/**
 * The platform an index child stands for, or undefined when it stands for none:
 * no platform field, an attestation, or `unknown/unknown` (what buildx gives them).
 */
export function indexChildPlatform(d: Descriptor): Platform | undefined {
  if (isAttestation(d)) return undefined;
  const p = platformFromDescriptor(d);
  if (p === undefined || (p.os === 'unknown' && p.architecture === 'unknown')) return undefined;
  return p;
}

/** What a node of the graph is to its parent. */
export type NodeRole = 'root' | 'manifest' | 'referrer' | 'config' | 'layer';

export interface GraphNode {
  descriptor: Descriptor;
  role: NodeRole;
  /** 0 for the root; an index's children are one deeper than it. */
  depth: number;
  /** For an index's children: the platform it stands for (see indexChildPlatform). */
  platform?: Platform | undefined;
  /**
   * For a referrer and everything below it: the referrer's digest, how it was
   * found, the manifest it refers to, and how many referrer steps from the image.
   */
  artifact?: { digest: string; link: ReferrerLink; subject: string; level: number } | undefined;
}

export function isManifestRole(role: NodeRole): boolean {
  return role === 'root' || role === 'manifest' || role === 'referrer';
}

export interface WalkOptions {
  /** Reads a manifest node (digest-checked by the place). */
  read: (d: Descriptor) => Promise<ParsedManifest>;
  /**
   * Hears of every node once per digest, parents before children, in document
   * order. Returning false for a manifest node leaves it unread (e.g. absent).
   */
  onNode?: (node: GraphNode) => unknown;
  /** Hears of every manifest read, after everything below it: children before parents. */
  onManifest?: (node: GraphNode, manifest: ParsedManifest) => void;
  /**
   * Makes the walk tolerant: a manifest that cannot be read (or nests too deep) is
   * reported here and the walk goes on; without it the walk fails with that error.
   */
  onUnreadable?: (node: GraphNode, error: unknown) => void;
  /** For messages: what is being walked ("127.0.0.1:5000/app:1.0"). */
  label?: string;
  /**
   * Lists the referrers of a manifest (the place's `referrers`); without it the
   * walk does not look for them. A failure is a manifest's, as an unreadable one is.
   */
  referrers?: ((subject: Descriptor) => Promise<ReferrerLink[]>) | undefined;
}

/**
 * Walks the graph below `root`: a descriptor to read, or a manifest already read.
 * Child manifests of an index are read concurrently; the visitors still hear of
 * nodes in document order, so what they build is deterministic.
 */
export async function walkGraph(root: { descriptor: Descriptor } | { manifest: ParsedManifest }, opts: WalkOptions): Promise<void> {
  const seen = new Set<string>();
  const limit = pLimit(WALK_READS);
  const label = opts.label ?? 'the image';

  // Manifests read, in walk order, whose referrers are still to be asked for.
  const subjects: GraphNode[] = [];
  const enter = (node: GraphNode): boolean => {
    if (seen.has(node.descriptor.digest)) return false;
    seen.add(node.descriptor.digest);
    return opts.onNode?.(node) !== false;
  };
  const done = (node: GraphNode, m: ParsedManifest): void => {
    if (opts.referrers && (node.artifact?.level ?? 0) < MAX_REFERRER_DEPTH) subjects.push(node);
    opts.onManifest?.(node, m);
  };
  const unreadable = (node: GraphNode, error: unknown): void => {
    if (!opts.onUnreadable) throw error;
    opts.onUnreadable(node, error);
  };
  const tooDeep = (): FerryError => new FerryError('unsupported', `index nesting deeper than ${MAX_INDEX_DEPTH} levels in ${label}`);

  const below = async (node: GraphNode, m: ParsedManifest): Promise<void> => {
    if (m.kind === 'image') {
      enter({ descriptor: m.manifest.config, role: 'config', depth: node.depth + 1 });
      for (const layer of m.manifest.layers) enter({ descriptor: layer, role: 'layer', depth: node.depth + 1 });
      return;
    }
    const children: Array<{ node: GraphNode; read?: Promise<ParsedManifest> }> = [];
    for (const descriptor of m.manifest.manifests) {
      const child: GraphNode = { descriptor, role: 'manifest', depth: node.depth + 1, platform: indexChildPlatform(descriptor), artifact: node.artifact };
      if (!enter(child)) continue;
      if (child.depth > MAX_INDEX_DEPTH) {
        unreadable(child, tooDeep());
        continue;
      }
      const read = limit(() => opts.read(descriptor));
      read.catch(() => undefined); // observed below, in order
      children.push({ node: child, read });
    }
    for (const { node: child, read } of children) {
      let cm: ParsedManifest;
      try {
        cm = await read!;
      } catch (e) {
        unreadable(child, e);
        continue;
      }
      await below(child, cm);
      done(child, cm);
    }
  };

  // Level by level: every manifest's referrers are listed at once, then read and
  // walked in order, and theirs asked for in the next round.
  const followReferrers = async (): Promise<void> => {
    while (subjects.length > 0) {
      const round = subjects.splice(0);
      const lists = round.map((s) => limit(() => opts.referrers!(s.descriptor)));
      for (const l of lists) l.catch(() => undefined); // observed below, in order
      for (const [i, subject] of round.entries()) {
        let links: ReferrerLink[];
        try {
          links = await lists[i]!;
        } catch (e) {
          unreadable(subject, e);
          continue;
        }
        const level = (subject.artifact?.level ?? 0) + 1;
        const found: Array<{ node: GraphNode; read: Promise<ParsedManifest> }> = [];
        for (const link of links) {
          const node: GraphNode = {
            descriptor: link.descriptor,
            role: 'referrer',
            depth: 0,
            artifact: { digest: link.descriptor.digest, link, subject: subject.descriptor.digest, level },
          };
          if (!enter(node)) continue;
          const read = limit(() => opts.read(link.descriptor));
          read.catch(() => undefined);
          found.push({ node, read });
        }
        for (const { node, read } of found) {
          let m: ParsedManifest;
          try {
            m = await read;
          } catch (e) {
            unreadable(node, e);
            continue;
          }
          await below(node, m);
          done(node, m);
        }
      }
    }
  };

  const read = 'manifest' in root ? root.manifest : undefined;
  const descriptor: Descriptor = 'descriptor' in root ? root.descriptor : { mediaType: read!.mediaType, digest: read!.digest, size: read!.bytes.byteLength };
  const node: GraphNode = { descriptor, role: 'root', depth: 0 };
  if (!enter(node)) return;
  let m: ParsedManifest;
  try {
    m = read ?? (await opts.read(descriptor));
  } catch (e) {
    unreadable(node, e);
    return;
  }
  await below(node, m);
  done(node, m);
  await followReferrers();
}

/**
 * The platform a single-platform image's config declares, with the config's
 * bytes (digest-checked by `readBlob`). Undefined for an artifact's config, a
 * config too large to be an image config, or one `readBlob` cannot give.
 */
export async function configPlatform(
  m: ParsedManifest,
  readBlob: (d: Descriptor) => Promise<Buffer | undefined>,
): Promise<{ platform: Platform | undefined; bytes: Buffer } | undefined> {
  if (m.kind !== 'image') return undefined;
  const config = m.manifest.config;
  if (config.mediaType !== MediaType.OCI_CONFIG && config.mediaType !== MediaType.DOCKER_CONFIG) return undefined;
  if (config.size > MAX_CONFIG_FOR_PLATFORM) return undefined;
  const bytes = await readBlob(config);
  if (bytes === undefined) return undefined;
  return { platform: platformFromConfig(bytes), bytes };
}
