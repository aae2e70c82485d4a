/**
 * `verify`: is the bundle whole and, with a key, ours? Checks the signature,
 * the structure (index.json and ferry.json valid and in agreement), that every
 * descriptor reachable from index.json is carried (or, in a delta, declared as
 * carried by the base), and re-hashes every blob concurrently by offset.
 * Helm charts are index.json entries like images: their manifest, config and
 * chart layer are checked the same way, and their config (Chart.yaml as helm
 * pushes it) must name the chart ferry.json lists.
 */
import type { KeyObject } from 'node:crypto';
import { createPool, DEFAULT_JOBS, type Descriptor, FerryError, MediaType, walkGraph } from '@ferry/oci-client';
import { isRunnableRoot } from '../cluster/containerd-names.js';
import { DOCKER_MANIFEST_FILE, dockerManifest, dockerPlatform } from '../cluster/docker-manifest.js';
import type { BundleReader } from '../places/bundle-reader.js';
import { checkSignature } from './keys.js';

export interface BlobProblem {
  digest: string;
  problem: string;
  /** References of the images that need this blob. */
  images: string[];
}

export interface VerifyReport {
  bundle: string;
  kind: BundleReader['kind'];
  bundleId: string | null;
  signature: 'verified' | 'present, not checked' | 'none';
  delta: string | null;
  images: Array<{ ref: string; digest: string; ok: boolean }>;
  /** The Helm charts, by their name in index.json (`charts/<name>:<tag>`). */
  charts: Array<{ ref: string; digest: string; ok: boolean }>;
  blobsChecked: number;
  bytesChecked: number;
  /** Blobs carried whose bytes or size are wrong, or that are needed and absent. */
  badBlobs: BlobProblem[];
  /** Disagreements between index.json and ferry.json, unreadable manifests. */
  problems: string[];
  ok: boolean;
  seconds: number;
}

export interface VerifyOptions {
  publicKey?: KeyObject | undefined;
  /** Blobs hashed at once (default 4). */
  concurrency?: number;
}

export async function verifyBundle(bundle: BundleReader, opts: VerifyOptions = {}): Promise<VerifyReport> {
  const started = Date.now();
  if (opts.publicKey) checkSignature(bundle.name, bundle.bundleId, bundle.signature, opts.publicKey);
  const problems: string[] = [];
  const images = bundle.images();
  const charts = bundle.charts();
  const reliesOn = new Map((bundle.ferry?.base?.reliesOn ?? []).map((b) => [b.digest, b.size]));

  // Walk every image's graph: which blobs it needs, and which manifests are unreadable.
  const needs = new Map<string, { desc: Descriptor; images: Set<string> }>();
  const badBlobs = new Map<string, BlobProblem>();
  const need = (desc: Descriptor, image: string): void => {
    const n = needs.get(desc.digest) ?? { desc, images: new Set<string>() };
    n.images.add(image);
    needs.set(desc.digest, n);
  };
  const bad = (digest: string, problem: string, image?: string): void => {
    const b = badBlobs.get(digest) ?? { digest, problem, images: [] };
    if (image && !b.images.includes(image)) b.images.push(image);
    badBlobs.set(digest, b);
  };
  for (const { ref, descriptor } of bundle.entries()) {
    await walkGraph(
      { descriptor },
      {
        read: (d) => bundle.getManifest(d),
        // Signatures and SBOMs named in ferry.json are checked like the image.
        referrers: (d) => bundle.referrers(d),
        onNode: (node) => {
          need(node.descriptor, ref);
          // An absent manifest is reported below as missing or relied on.
          return bundle.hasBlob(node.descriptor.digest);
        },
        onUnreadable: (node, e) => bad(node.descriptor.digest, (e as Error).message, ref),
      },
    );
  }
  for (const { digest, desc, images: users } of [...needs.values()].map((n) => ({ digest: n.desc.digest, ...n }))) {
    if (bundle.hasBlob(digest)) {
      if (bundle.blobSize(digest) !== desc.size) bad(digest, `size ${bundle.blobSize(digest)} in the bundle, ${desc.size} in its descriptor`);
    } else if (reliesOn.has(digest)) {
      if (reliesOn.get(digest) !== desc.size)
        problems.push(`ferry.json declares ${digest} with size ${reliesOn.get(digest)}, its descriptor says ${desc.size}`);
    } else {
      bad(digest, 'missing from the bundle');
    }
    const b = badBlobs.get(digest);
    if (b) for (const u of users) if (!b.images.includes(u)) b.images.push(u);
  }

  problems.push(...ferryJsonDisagreements(bundle));
  problems.push(...(await chartProblems(bundle)));
  problems.push(...(await dockerManifestProblems(bundle)));

  // Re-hash every carried blob (reachable or not), concurrently by offset.
  const limit = createPool(opts.concurrency ?? DEFAULT_JOBS);
  let bytesChecked = 0;
  const carried = bundle.blobs();
  await Promise.all(
    carried.map((blob) =>
      limit(async () => {
        try {
          for await (const chunk of bundle.openBlob(blob) as AsyncIterable<Buffer>) bytesChecked += chunk.length;
        } catch (e) {
          const users = [...(needs.get(blob.digest)?.images ?? [])];
          const problem = e instanceof FerryError && e.kind === 'integrity' ? 'bytes do not match the digest' : (e as Error).message;
          const b = badBlobs.get(blob.digest);
          if (b) b.problem = problem;
          else badBlobs.set(blob.digest, { digest: blob.digest, problem, images: users });
        }
      }),
    ),
  );

  const broken = new Set([...badBlobs.values()].flatMap((b) => b.images));
  const report: VerifyReport = {
    bundle: bundle.name,
    kind: bundle.kind,
    bundleId: bundle.bundleId ?? null,
    signature: opts.publicKey ? 'verified' : bundle.signature ? 'present, not checked' : 'none',
    delta: bundle.ferry?.base?.id ?? null,
    images: images.map((i) => ({ ref: i.ref, digest: i.descriptor.digest, ok: !broken.has(i.ref) })),
    charts: charts.map((c) => ({ ref: c.ref, digest: c.descriptor.digest, ok: !broken.has(c.ref) })),
    blobsChecked: carried.length,
    bytesChecked,
    badBlobs: [...badBlobs.values()].sort((a, b) => a.digest.localeCompare(b.digest)),
    problems,
    ok: badBlobs.size === 0 && problems.length === 0,
    seconds: (Date.now() - started) / 1000,
  };
  return report;
}

/**
 * Where ferry.json and index.json disagree (nothing to check without ferry.json):
 * the cheap structural checks every load runs before it pushes anything.
 */
export function ferryJsonDisagreements(bundle: BundleReader): string[] {
  const ferry = bundle.ferry;
  if (!ferry) return [];
  const out: string[] = [];
  const listed = bundle.images();
  if (ferry.images.length !== listed.length) {
    out.push(`ferry.json lists ${ferry.images.length} images, index.json ${listed.length}`);
  }
  ferry.images.forEach((img, i) => {
    const entry = listed[i];
    if (!entry) return;
    // Both name annotations must say what ferry.json says.
    const a = entry.descriptor.annotations ?? {};
    for (const name of new Set([entry.ref, a['io.containerd.image.name'] ?? img.ref])) {
      if (name !== img.ref) out.push(`image ${i + 1} is ${img.ref} in ferry.json but ${name} in index.json`);
    }
    if (entry.descriptor.digest !== img.digest) out.push(`${img.ref} has digest ${img.digest} in ferry.json but ${entry.descriptor.digest} in index.json`);
    // A digest-pinned name must name what was packed: the bundled or the upstream digest.
    const pinned = /@([a-z0-9]+:[a-f0-9]+)$/.exec(img.ref)?.[1];
    if (pinned && pinned !== img.digest && pinned !== img.upstreamDigest)
      out.push(`${img.ref} names ${pinned}, but the bundle holds ${img.digest} (upstream ${img.upstreamDigest})`);
  });
  const charts = bundle.charts();
  if (ferry.charts.length !== charts.length) {
    out.push(`ferry.json lists ${ferry.charts.length} charts, index.json ${charts.length}`);
  }
  ferry.charts.forEach((chart, i) => {
    const entry = charts[i];
    if (!entry) return;
    if (entry.ref !== chart.ref) out.push(`chart ${i + 1} is ${chart.ref} in ferry.json but ${entry.ref} in index.json`);
    if (entry.descriptor.digest !== chart.digest)
      out.push(`chart ${chart.ref} has digest ${chart.digest} in ferry.json but ${entry.descriptor.digest} in index.json`);
  });
  for (const chart of ferry.charts) {
    const expected = `charts/${chart.name}:${chart.version.replaceAll('+', '_')}`;
    if (chart.ref !== expected) out.push(`ferry.json names chart ${chart.name} ${chart.version} ${chart.ref}, not ${expected}`);
  }
  const carried = bundle.blobs();
  if (ferry.totals.blobs !== carried.length) out.push(`ferry.json counts ${ferry.totals.blobs} blobs, the bundle carries ${carried.length}`);
  const bytes = carried.reduce((n, b) => n + b.size, 0);
  if (ferry.totals.bytes !== bytes) out.push(`ferry.json counts ${ferry.totals.bytes} bytes of blobs, the bundle carries ${bytes}`);
  for (const b of ferry.base?.reliesOn ?? []) {
    if (bundle.hasBlob(b.digest)) out.push(`ferry.json says the base carries ${b.digest}, but this bundle carries it too`);
  }
  return out;
}

/**
 * manifest.json is outside the bundle id, so it must be exactly what index.json
 * and ferry.json give: otherwise `docker load` could load other blobs of the
 * bundle under an image's name. Format 1 bundles have none.
 */
async function dockerManifestProblems(bundle: BundleReader): Promise<string[]> {
  if (!bundle.ferry || bundle.ferry.formatVersion < 2) return [];
  if (!bundle.dockerManifestBytes) return [`the bundle has no ${DOCKER_MANIFEST_FILE} (docker load, podman load)`];
  const images = [];
  for (const { ref, descriptor } of bundle.images()) {
    try {
      const root = await bundle.getManifest(descriptor);
      if (isRunnableRoot(root)) images.push({ ref, root });
    } catch {
      return []; // an unreadable manifest is reported by the blob checks
    }
  }
  let expected: Buffer;
  try {
    expected = (
      await dockerManifest(
        images,
        (d) => bundle.getManifest(d),
        dockerPlatform(bundle.ferry.inputs.dockerPlatform ? [bundle.ferry.inputs.dockerPlatform] : bundle.ferry.inputs.platforms),
      )
    ).bytes;
  } catch {
    return [];
  }
  return expected.equals(bundle.dockerManifestBytes)
    ? []
    : [`${DOCKER_MANIFEST_FILE} is not the one index.json gives: docker load and podman load would load other images under these names`];
}

/**
 * Each chart's manifest must be what helm pulls (a helm config, a chart layer)
 * and its config must name the chart ferry.json (or its index.json name) says.
 * Unreadable blobs are reported by the blob checks; they are skipped here.
 */
async function chartProblems(bundle: BundleReader): Promise<string[]> {
  const out: string[] = [];
  for (const chart of bundle.charts()) {
    if (!bundle.hasBlob(chart.descriptor.digest)) continue;
    let m;
    try {
      m = await bundle.getManifest(chart.descriptor);
    } catch {
      continue;
    }
    if (m.kind !== 'image') {
      out.push(`chart ${chart.ref} is an image index, not a Helm chart manifest`);
      continue;
    }
    const config = m.manifest.config;
    if (config.mediaType !== MediaType.HELM_CONFIG) out.push(`chart ${chart.ref} has a ${config.mediaType} config, not ${MediaType.HELM_CONFIG}`);
    if (!m.manifest.layers.some((l) => l.mediaType === MediaType.HELM_CHART)) out.push(`chart ${chart.ref} has no ${MediaType.HELM_CHART} layer`);
    if (!bundle.hasBlob(config.digest) || config.size > 1024 * 1024) continue;
    let meta: { name?: unknown; version?: unknown };
    try {
      meta = JSON.parse((await bundle.readBlob(config)).toString('utf8')) as typeof meta;
    } catch (e) {
      // a damaged blob is reported by the blob checks
      if (!(e instanceof FerryError)) out.push(`chart ${chart.ref}: its config is not JSON`);
      continue;
    }
    if (meta.name !== chart.name || meta.version !== chart.version) {
      out.push(`chart ${chart.ref} is ${String(meta.name)} ${String(meta.version)} by its config, not ${chart.name} ${chart.version}`);
    }
  }
  return out;
}
