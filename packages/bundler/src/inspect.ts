/**
 * `ferry inspect`: what a bundle holds, image by image, and what de-duplication
 * saved. Walks each image's manifests from the bundle itself (so it works on OCI
 * archives other tools wrote, which have no ferry.json); blobs an image references
 * that the bundle does not carry (a delta bundle's base) are counted as missing.
 * The report is plain JSON data: it is the `--json` output.
 */
import {
  configPlatform,
  type Descriptor,
  formatPlatform,
  isManifestMediaType,
  isManifestRole,
  type ParsedManifest,
  type Platform,
  platformFromDescriptor,
  type ReferrerKind,
  referrerArtifactType,
  referrerKind,
  walkGraph,
} from '@ferry/oci-client';
import type { BundleChart, BundleReferrerSearch } from './format/ferry-json.js';
import type { BundleKind, BundleReader } from './places/bundle-reader.js';

export interface InspectImage {
  /** The name in index.json (the full source reference in a ferry bundle); the digest when unnamed. */
  reference: string;
  /** The root manifest's digest in the bundle. */
  digest: string;
  mediaType: string;
  /** `linux/amd64`, … in index order; empty when unknown (e.g. an artifact). */
  platforms: string[];
  /** Bytes of the root manifest, child manifests, configs and layers the bundle carries for this image. */
  size: number;
  /** Distinct blobs (manifests included) the bundle carries for this image. */
  blobs: number;
  /** What the image references but the bundle does not carry (a delta's base holds them). */
  missing: { blobs: number; bytes: number };
  /**
   * False when a manifest is missing, so what lies below it is unknown (and not
   * counted anywhere).
   */
  complete: boolean;
  /** Its signatures, SBOMs and attestations the bundle carries (ferry.json names them), in walk order. */
  referrers: InspectReferrer[];
  /** How pack looked for them (ferry.json), so "none found" reads apart from "not looked for"; null when not recorded. */
  referrerSearch: BundleReferrerSearch | null;
}

export interface InspectReferrer {
  kind: ReferrerKind;
  artifactType: string | null;
  digest: string;
  /** The manifest it refers to. */
  subject: string;
  /** cosign's tag for it, when it is one. */
  tag: string | null;
}

/** A Helm chart the bundle carries (an index.json entry marked as a chart). */
export interface InspectChart {
  /** Its name, `charts/<name>:<tag>` (ferry.json; index.json for format 1 bundles). */
  reference: string;
  name: string;
  version: string;
  /** From ferry.json, when present. */
  appVersion: string | null;
  /** Where pack read it (ferry.json), when known. */
  source: string | null;
  digest: string;
  /** Bytes of its manifest, config and chart layer the bundle carries. */
  size: number;
  blobs: number;
  missing: { blobs: number; bytes: number };
  complete: boolean;
  /**
   * The images ferry.json says the chart needs: how many of each class (used, runtime, declared, optional),
   * how many are carried, and each with its class (bundles of earlier ferry have used and optional only).
   */
  images: {
    used: number;
    runtime: number;
    declared: number;
    optional: number;
    packed: number;
    list: Array<{ ref: string; usage: string; packed: boolean; testHook?: true; skippedBy?: string }>;
  } | null;
}

export interface InspectReport {
  path: string;
  kind: BundleKind;
  /** `sha256:…` of index.json + ferry.json; null without ferry.json. */
  bundleId: string | null;
  /** From ferry.json, when present. */
  created: string | null;
  tool: string | null;
  /** The base bundle's id for a delta bundle, else null. */
  delta: string | null;
  /** Whether ferry.sig is present (not whether it verifies: that is `verify --key`). */
  signed: boolean;
  images: InspectImage[];
  charts: InspectChart[];
  totals: {
    images: number;
    /** Distinct blobs over all images that the bundle carries. */
    blobs: number;
    /** Bytes of those distinct blobs. */
    bytes: number;
    /** Sum of the images' (and charts') sizes: what they would take without de-duplication. */
    logicalBytes: number;
    /** logicalBytes - bytes. */
    saved: number;
    /** Distinct blobs referenced but not carried. */
    missing: { blobs: number; bytes: number };
    /** Blobs the bundle carries that no image (or chart) references. */
    unreferenced: { blobs: number; bytes: number };
  };
}

export async function inspectBundle(reader: BundleReader): Promise<InspectReport> {
  const manifests = new Map<string, Promise<ParsedManifest>>();
  const getManifest = (d: Descriptor): Promise<ParsedManifest> => {
    let p = manifests.get(d.digest);
    if (p === undefined) {
      p = reader.getManifest(d);
      manifests.set(d.digest, p);
    }
    return p;
  };
  const ferryImages = reader.ferry?.images ?? [];

  const carried = new Map<string, number>();
  const missingAll = new Map<string, number>();
  const images: InspectImage[] = [];
  const charts: InspectChart[] = [];
  const chartRefs = new Map(reader.charts().map((c) => [c.descriptor, c]));

  for (const { ref: name, bareTag, descriptor: root } of reader.entries()) {
    // An image named by a tag alone shows that tag (load needs --name for its repository).
    const ref = bareTag ?? name;
    const present = new Map<string, number>();
    const missing = new Map<string, number>();
    const platforms: string[] = [];
    const referrers: InspectReferrer[] = [];
    let complete = true;

    await walkGraph(
      { descriptor: root },
      {
        read: getManifest,
        referrers: (d) => reader.referrers(d),
        onNode: (node) => {
          const { digest, size } = node.descriptor;
          if (node.platform && !node.artifact) platforms.push(formatPlatform(node.platform));
          if (node.role === 'referrer') {
            const { link, subject } = node.artifact!;
            referrers.push({ kind: referrerKind(link), artifactType: referrerArtifactType(link) ?? null, digest, subject, tag: link.tag ?? null });
          }
          if (!reader.hasBlob(digest)) {
            missing.set(digest, size);
            if (isManifestRole(node.role)) complete = false;
            return false;
          }
          present.set(digest, size);
        },
        // What lies below an unreadable manifest is unknown, and counted nowhere.
        onUnreadable: () => {
          complete = false;
        },
      },
    );

    const fromFerry = ferryImages.find((i) => i.digest === root.digest && i.ref === ref) ?? ferryImages.find((i) => i.digest === root.digest);
    if (platforms.length === 0) {
      if (fromFerry?.platforms.length) platforms.push(...fromFerry.platforms);
      else if (isManifestMediaType(root.mediaType) || root.platform) {
        const p = root.platform ? platformFromDescriptor(root) : await rootConfigPlatform(reader, root, getManifest);
        if (p && p.os !== 'unknown') platforms.push(formatPlatform(p));
      }
    }

    for (const [digest, size] of present) carried.set(digest, size);
    for (const [digest, size] of missing) missingAll.set(digest, size);
    const chart = chartRefs.get(root);
    if (chart) {
      const listed = reader.ferry?.charts.find((c) => c.digest === root.digest && c.ref === ref);
      charts.push({
        reference: ref,
        name: chart.name,
        version: chart.version,
        appVersion: listed?.appVersion ?? null,
        source: chart.source ?? null,
        digest: root.digest,
        size: sum(present),
        blobs: present.size,
        missing: { blobs: missing.size, bytes: sum(missing) },
        complete,
        images: listed ? chartImages(listed) : null,
      });
      continue;
    }
    images.push({
      reference: ref,
      digest: root.digest,
      mediaType: root.mediaType,
      platforms: [...new Set(platforms)],
      size: sum(present),
      blobs: present.size,
      missing: { blobs: missing.size, bytes: sum(missing) },
      complete,
      referrers,
      referrerSearch: fromFerry?.referrerSearch ?? null,
    });
  }

  const unreferenced = reader.blobs().filter((b) => !carried.has(b.digest));
  const bytes = sum(carried);
  const logicalBytes = [...images, ...charts].reduce((n, i) => n + i.size, 0);
  return {
    path: reader.path,
    kind: reader.kind,
    bundleId: reader.bundleId ?? null,
    created: reader.ferry?.created ?? null,
    tool: reader.ferry?.tool ?? null,
    delta: reader.ferry?.base?.id ?? null,
    signed: reader.signature !== undefined,
    images,
    charts,
    totals: {
      images: images.length,
      blobs: carried.size,
      bytes,
      logicalBytes,
      saved: logicalBytes - bytes,
      missing: { blobs: missingAll.size, bytes: sum(missingAll) },
      unreferenced: { blobs: unreferenced.length, bytes: unreferenced.reduce((n, b) => n + b.size, 0) },
    },
  };
}

function sum(m: Map<string, number>): number {
  let n = 0;
  for (const v of m.values()) n += v;
  return n;
}

/** The platform a single-platform image's config declares, when the bundle carries both. */
async function rootConfigPlatform(
  reader: BundleReader,
  root: Descriptor,
  getManifest: (d: Descriptor) => Promise<ParsedManifest>,
): Promise<Platform | undefined> {
  if (!reader.hasBlob(root.digest)) return undefined;
  const m = await getManifest(root);
  const found = await configPlatform(m, async (config) => (reader.hasBlob(config.digest) ? reader.readBlob(config) : undefined));
  return found?.platform;
}

/** A chart's images as ferry.json lists them, with the --skip-image patterns that dropped some. */
function chartImages(chart: BundleChart): NonNullable<InspectChart['images']> {
  const n = (usage: string) => chart.images.filter((i) => i.usage === usage).length;
  const list: NonNullable<InspectChart['images']>['list'] = chart.images.map((i) => ({ ...i }));
  for (const s of chart.skipped ?? []) {
    for (const ref of s.references) list.push({ ref, usage: 'skipped', packed: false, skippedBy: s.pattern });
  }
  list.sort((a, b) => (a.ref < b.ref ? -1 : a.ref > b.ref ? 1 : 0));
  return {
    used: n('used'),
    runtime: n('runtime'),
    declared: n('declared'),
    optional: n('optional'),
    packed: chart.images.filter((i) => i.packed).length,
    list,
  };
}
