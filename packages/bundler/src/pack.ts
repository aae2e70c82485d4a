/**
 * `pack`: resolve every image, plan the whole bundle, then copy all blobs from
 * the registries into it concurrently (copy engine: registry -> bundle writer).
 * Images' referrers (signatures, SBOMs, attestations) are carried as ordinary
 * blobs and named in ferry.json, so index.json stays what other tools import.
 */
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { HelmRepositories } from '@ferry/helm';
import {
  abortReason,
  CopyEngine,
  type CopyEvent,
  createPool,
  DEFAULT_JOBS,
  type Descriptor,
  FerryError,
  formatPlatform,
  type ImagePlan,
  type ImageSource,
  MediaType,
  type OciClient,
  type ParsedManifest,
  type Platform,
  type Pool,
  parseReference,
  planImage,
  planManifests,
  type ReferrerMode,
  usageError,
} from '@ferry/oci-client';
import type { ChartRequest, PreparedChart } from './charts/pack-charts.js';
import { containerdAliases, isRunnableRoot } from './cluster/containerd-names.js';
import { DOCKER_MANIFEST_FILE, dockerManifest, dockerPlatform } from './cluster/docker-manifest.js';
import { type BundleChart, type BundleImage, type FerryJson, FORMAT_VERSION, serializeFerryJson } from './format/ferry-json.js';
import type { BundleReader } from './places/bundle-reader.js';
import { BundleWriter } from './places/bundle-writer.js';
import { RegistryPlace } from './places/registry.js';
import { type MetaFile, type PlannedBlob, planLayout } from './tar-plan.js';
import { fingerprint, signBundleId } from './trust/keys.js';

export const TOOL = 'ferry 0.1.0';
export const OCI_LAYOUT = Buffer.from('{"imageLayoutVersion":"1.0.0"}');
export const REF_NAME = 'org.opencontainers.image.ref.name';
export const CONTAINERD_NAME = 'io.containerd.image.name';

export interface PackOptions {
  client: OciClient;
  /** Normalized references, in the order the bundle lists them. */
  references: string[];
  /**
   * Helm charts: each is carried as a Helm OCI artifact (after the images in
   * index.json), and the images found in it are packed after `references`
   * (duplicates collapse to the first).
   */
  charts?: ChartRequest[] | undefined;
  /** For charts from Helm repositories. */
  repositories?: HelmRepositories | undefined;
  platforms?: Platform[] | undefined;
  /** Which referrers of each image to carry (default all). */
  referrers?: ReferrerMode | undefined;
  /** Only referrers of these artifactTypes. */
  referrersType?: string[] | undefined;
  /** The platform of manifest.json (docker load); default the first of `platforms`, else linux/amd64. */
  dockerPlatform?: Platform | undefined;
  output: string;
  concurrency?: number | undefined;
  /** Seconds since the epoch for mtimes and the creation time (SOURCE_DATE_EPOCH). */
  sourceDateEpoch?: number | undefined;
  /** Write parts of at most this many bytes (`BUNDLE.part-000`, …) instead of one file. */
  splitSize?: number | undefined;
  /** An earlier bundle: write only the blobs it does not carry (a delta). */
  base?: BundleReader | undefined;
  /** Ed25519 private key: ferry.sig signs the bundle id. */
  signingKey?: KeyObject | undefined;
  onEvent?: (e: CopyEvent) => void;
  /** Stops the pack (Ctrl-C): transfers end, the journal is flushed, `.partial` stays for a rerun. */
  signal?: AbortSignal | undefined;
  /** Called once everything is resolved, before any blob moves. */
  onPlanned?: (p: { images: number; blobs: number; bytes: number }) => void;
  /** Plan-time messages for stderr (filtered indexes, resume). */
  log?: (line: string) => void;
}

export interface PackResult {
  output: string;
  /** The file(s) written: the output, or its parts. */
  files: string[];
  bundleId: string;
  ferry: FerryJson;
  /** Blobs a previous interrupted run had already written. */
  resumedBlobs: number;
  downloadedBytes: number;
}

/** Parses SOURCE_DATE_EPOCH as reproducible-builds.org defines it. */
export function sourceDateEpoch(env: NodeJS.ProcessEnv): number | undefined {
  const v = env.SOURCE_DATE_EPOCH;
  return v && /^\d+$/.test(v) ? Number(v) : undefined;
}

export async function pack(opts: PackOptions): Promise<PackResult> {
  const log = opts.log ?? (() => undefined);
  const pool = createPool(opts.concurrency ?? DEFAULT_JOBS);
  // The chart engine is loaded only when charts are packed: it is most of ferry's start-up.
  const prepared = opts.charts?.length
    ? await (await import('./charts/pack-charts.js')).prepareCharts(opts.charts, {
        client: opts.client,
        repositories: opts.repositories,
        sourceDateEpoch: opts.sourceDateEpoch,
        log,
      })
    : [];
  const references = [...new Set([...opts.references, ...prepared.flatMap((c) => c.images.filter((i) => i.packed).map((i) => i.ref))])];
  // a chart's image that cannot be pulled is named with the chart and where the chart names it
  const origins = new Map(prepared.flatMap((c) => c.images.filter((i) => i.packed && i.from).map((i) => [i.ref, i.from!] as const)));
  const images = await resolveAll(opts, references, pool, origins);
  const charts = await Promise.all(
    prepared.map(async (chart) => ({ chart, ref: chart.ref, source: chart.place, plan: await planImage(chart.place, chart.digest) })),
  );
  const entries: ResolvedImage[] = [...images, ...charts];
  for (const { ref, plan } of images) {
    if (plan.filtered) {
      log(`${ref}: kept ${plan.platforms.join(', ')} of the upstream index ${plan.upstreamDigest}; the bundle holds a filtered index ${plan.root.digest}`);
      // A registry refuses an index whose children are missing, so the pinned digest cannot exist after load.
      if (parseReference(ref).digest === plan.upstreamDigest) {
        log(
          `warning: ${ref} is pinned to ${plan.upstreamDigest}, which the bundle cannot carry filtered: after load, whatever pulls @${plan.upstreamDigest} fails; it will be there as ${plan.root.digest}`,
        );
      }
    }
  }

  const all = orderedBlobs(entries.map((i) => i.plan));
  // A delta carries every manifest (they are small and make it self-describing) and
  // only the other blobs its base does not have.
  const inBase = opts.base ? baseBlobs(opts.base) : new Set<string>();
  const reliesOn = all.filter((b) => !b.bytes && inBase.has(b.digest));
  const blobs = all.filter((b) => b.bytes || !inBase.has(b.digest));
  const indexJson = Buffer.from(JSON.stringify(bundleIndex(images, charts)));
  const forDocker = opts.dockerPlatform ?? dockerPlatform(opts.platforms?.map(formatPlatform));
  const docker = await dockerManifestOf(images, forDocker);
  for (const ref of docker.skipped) log(`${ref}: no ${formatPlatform(forDocker)} image, so manifest.json (docker load) leaves it out`);
  const planId = planFingerprint(opts, indexJson, blobs);
  const previous = await BundleWriter.previousRun(opts.output, planId);
  const created = opts.sourceDateEpoch !== undefined ? isoSeconds(opts.sourceDateEpoch) : (previous?.created ?? isoSeconds(Date.now() / 1000));
  const ferry = ferryJson(opts, images, charts, blobs, created);
  if (opts.base) {
    if (!opts.base.bundleId) throw usageError(`--base ${opts.base.name} is not a ferry bundle (no ferry.json), so a delta cannot name it`);
    ferry.base = { id: opts.base.bundleId, reliesOn: reliesOn.map((b) => ({ digest: b.digest, size: b.size })) };
  }
  const ferryBytes = serializeFerryJson(ferry);
  const bundleId = `sha256:${createHash('sha256').update(indexJson).update(ferryBytes).digest('hex')}`;
  const meta: MetaFile[] = [
    { name: 'oci-layout', bytes: OCI_LAYOUT },
    { name: 'index.json', bytes: indexJson },
    { name: 'ferry.json', bytes: ferryBytes },
  ];
  // Ed25519 signatures are deterministic: a signed pack stays reproducible.
  if (opts.signingKey) meta.push({ name: 'ferry.sig', bytes: signBundleId(bundleId, opts.signingKey) });
  meta.push({ name: DOCKER_MANIFEST_FILE, bytes: docker.bytes });
  const layout = planLayout(meta, blobs, opts.sourceDateEpoch ?? 0);

  // Progress counts what crosses the network: configs and layers (manifests are already here).
  const toFetch = blobs.filter((b) => !b.bytes);
  opts.onPlanned?.({ images: entries.length, blobs: toFetch.length, bytes: toFetch.reduce((n, b) => n + b.size, 0) });
  await mkdir(dirname(opts.output), { recursive: true });
  // The first failure (or the caller's signal: Ctrl-C) stops every transfer; the file is
  // closed only once every transfer has settled, and `.partial` stays for a rerun to resume.
  const stop = new AbortController();
  const signal = opts.signal ? AbortSignal.any([stop.signal, opts.signal]) : stop.signal;
  const writer = await BundleWriter.open(opts.output, layout, { fingerprint: planId, created }, { partSize: opts.splitSize, signal });
  const resumedBlobs = writer.finishedCount;
  if (resumedBlobs) log(`resuming ${opts.output}.partial: ${resumedBlobs} of ${blobs.length} blobs already in place`);
  const engine = new CopyEngine({ pool, signal, onEvent: opts.onEvent });
  let files: string[];
  try {
    const carried = new Set(blobs.map((b) => b.digest));
    let failure: { reason: unknown } | undefined;
    await Promise.allSettled(
      entries.map(({ ref, source, plan }) =>
        engine.copy(source, writer, { ...plan, blobs: plan.blobs.filter((b) => carried.has(b.digest)) }, { label: ref }).catch((e: unknown) => {
          failure ??= { reason: e };
          stop.abort(e);
        }),
      ),
    );
    // A stop from outside is reported as such, not as the transfer it cut short.
    if (opts.signal?.aborted) throw abortReason(opts.signal);
    if (failure) throw failure.reason;
    files = await writer.finish();
  } catch (e) {
    await writer.abandon();
    throw e;
  }
  return { output: opts.output, files, bundleId, ferry, resumedBlobs, downloadedBytes: engine.stats.bytes };
}

interface ResolvedImage {
  ref: string;
  source: ImageSource;
  plan: ImagePlan;
}

interface ResolvedChart extends ResolvedImage {
  chart: PreparedChart;
}

async function resolveAll(opts: PackOptions, references: string[], pool: Pool, origins: Map<string, string>): Promise<ResolvedImage[]> {
  // One place per repository: its tag list and referrer lookups serve every image in it.
  const places = new Map<string, RegistryPlace>();
  const placeOf = (registry: string, repository: string): RegistryPlace => {
    const key = `${registry}/${repository}`;
    let place = places.get(key);
    if (!place) {
      place = new RegistryPlace(opts.client.registry(registry), repository);
      places.set(key, place);
    }
    return place;
  };
  return Promise.all(
    references.map((ref) =>
      pool(async () => {
        const r = parseReference(ref);
        const source = placeOf(r.registry, r.repository);
        try {
          const plan = await planImage(source, r.digest ?? r.tag!, {
            platforms: opts.platforms,
            referrers: opts.referrers ?? 'all',
            referrersType: opts.referrersType,
          });
          return { ref, source, plan };
        } catch (e) {
          const from = origins.get(ref);
          if (!from || !(e instanceof FerryError) || e.kind === 'cancelled') throw e;
          throw new FerryError(e.kind, `${e.message} (the image ${ref} of ${from}; --skip-image ${ref} leaves it out)`, e.details());
        }
      }),
    ),
  );
}

/** Manifests (children first), then configs, then layers; each digest once, first appearance wins. */
function orderedBlobs(plans: ImagePlan[]): PlannedBlob[] {
  const seen = new Set<string>();
  const manifests: PlannedBlob[] = [];
  const configs: PlannedBlob[] = [];
  const layers: PlannedBlob[] = [];
  for (const plan of plans) {
    for (const m of planManifests(plan)) {
      if (seen.has(m.digest)) continue;
      seen.add(m.digest);
      manifests.push({ digest: m.digest, size: m.bytes.byteLength, bytes: Buffer.from(m.bytes) });
    }
  }
  for (const plan of plans) {
    const configDigests = new Set(
      planManifests(plan)
        .filter((m) => m.kind === 'image')
        .map((m) => (m as ParsedManifest & { kind: 'image' }).manifest.config.digest),
    );
    for (const b of plan.blobs) {
      if (seen.has(b.digest)) continue;
      seen.add(b.digest);
      (configDigests.has(b.digest) ? configs : layers).push({ digest: b.digest, size: b.size });
    }
  }
  return [...manifests, ...configs, ...layers];
}

/**
 * index.json: the images in order, named for ferry, skopeo and containerd; then
 * the charts and other artifacts, unnamed (ferry.json names them; see
 * cluster/containerd-names.ts); then containerd's aliases of digest-pinned inputs.
 */
function bundleIndex(images: ResolvedImage[], charts: ResolvedChart[]): object {
  const root = (plan: ImagePlan) => ({ mediaType: plan.root.mediaType, digest: plan.root.digest, size: plan.root.bytes.byteLength });
  const runnable = images.filter(({ plan }) => isRunnableRoot(plan.root));
  // A name holds one manifest: an alias never takes a name an input already has.
  const taken = new Set(runnable.map((i) => i.ref));
  const aliases: Descriptor[] = [];
  for (const { ref, plan } of runnable) {
    for (const alias of containerdAliases(ref)) {
      if (taken.has(alias)) continue;
      taken.add(alias);
      aliases.push({ ...root(plan), annotations: { [CONTAINERD_NAME]: alias } });
    }
  }
  return {
    schemaVersion: 2,
    mediaType: MediaType.OCI_INDEX,
    manifests: [
      ...images.map(
        ({ ref, plan }): Descriptor =>
          // Sorted keys, as Go tools write annotation maps.
          isRunnableRoot(plan.root) ? { ...root(plan), annotations: { [CONTAINERD_NAME]: ref, [REF_NAME]: ref } } : root(plan),
      ),
      // Charts: marked by artifactType (see charts/pack-charts.ts), named in ferry.json;
      // fields in the order of Go's ocispec.Descriptor.
      ...charts.map(({ plan }): Descriptor => ({ ...root(plan), artifactType: MediaType.HELM_CONFIG })),
      ...aliases,
    ],
  };
}

/** manifest.json for `docker load`/`podman load`, from the manifests the plan already holds. */
async function dockerManifestOf(images: ResolvedImage[], platform: Platform) {
  const byDigest = new Map(images.flatMap(({ plan }) => plan.manifests.map((m) => [m.digest, m] as const)));
  const get = async (d: Descriptor) => {
    const m = byDigest.get(d.digest);
    if (!m) throw new Error(`internal: manifest ${d.digest} is not in the plan`);
    return m;
  };
  const runnable = images.filter(({ plan }) => isRunnableRoot(plan.root)).map(({ ref, plan }) => ({ ref, root: plan.root }));
  return dockerManifest(runnable, get, platform);
}

function imageSize(plan: ImagePlan): number {
  return planManifests(plan).reduce((n, m) => n + m.bytes.byteLength, 0) + plan.blobs.reduce((n, b) => n + b.size, 0);
}

function ferryJson(opts: PackOptions, images: ResolvedImage[], charts: ResolvedChart[], blobs: PlannedBlob[], created: string): FerryJson {
  const bundleImages: BundleImage[] = images.map(({ ref, plan }) => ({
    ref,
    upstreamDigest: plan.upstreamDigest,
    digest: plan.root.digest,
    mediaType: plan.root.mediaType,
    platforms: plan.platforms,
    size: imageSize(plan),
    ...(plan.referrers.length > 0
      ? {
          referrers: plan.referrers.map((r) => ({
            digest: r.root.digest,
            mediaType: r.root.mediaType,
            size: r.root.bytes.byteLength,
            artifactType: r.artifactType ?? null,
            kind: r.kind,
            subject: r.subject,
            tag: r.tag ?? null,
          })),
        }
      : {}),
    referrerSearch: plan.referrerSearch,
  }));
  const bundleCharts: BundleChart[] = charts.map(({ chart, plan }) => ({
    ref: chart.ref,
    name: chart.name,
    version: chart.version,
    appVersion: chart.appVersion,
    source: chart.source,
    upstreamDigest: chart.upstreamDigest,
    digest: plan.root.digest,
    mediaType: plan.root.mediaType,
    size: imageSize(plan),
    images: chart.images.map(({ from: _from, ...image }) => image),
    ...(chart.request.skipImages?.length ? { skipped: chart.skipped } : {}),
  }));
  return {
    formatVersion: FORMAT_VERSION,
    tool: TOOL,
    created,
    inputs: {
      references: opts.references,
      charts: (opts.charts ?? []).map((c) => `${c.repo !== undefined ? `${c.repo} ` : ''}${c.chart}${c.version ? `@${c.version}` : ''}`),
      platforms: opts.platforms ? opts.platforms.map(formatPlatform) : null,
      dockerPlatform: opts.dockerPlatform ? formatPlatform(opts.dockerPlatform) : null,
    },
    images: bundleImages,
    totals: {
      images: images.length,
      blobs: blobs.length,
      bytes: blobs.reduce((n, b) => n + b.size, 0),
      logicalBytes: [...bundleImages, ...bundleCharts].reduce((n, i) => n + i.size, 0),
    },
    base: null,
    charts: bundleCharts,
  };
}

/** Identifies a pack's plan without its creation time, so a rerun can resume it. */
function planFingerprint(opts: PackOptions, indexJson: Buffer, blobs: PlannedBlob[]): string {
  const h = createHash('sha256');
  h.update(`${TOOL}\n`);
  const signer = opts.signingKey ? fingerprint(createPublicKey(opts.signingKey)) : null;
  h.update(JSON.stringify({ refs: opts.references, platforms: opts.platforms ?? null, sde: opts.sourceDateEpoch ?? null, signer }));
  h.update(indexJson);
  h.update(`base ${opts.base?.bundleId ?? '-'} split ${opts.splitSize ?? 0}\n`);
  for (const b of blobs) h.update(`${b.digest} ${b.size}\n`);
  return `sha256:${h.digest('hex')}`;
}

/** What a target loaded with `base` holds: the blobs it carries and those it relied on. */
function baseBlobs(base: BundleReader): Set<string> {
  return new Set([...base.blobs().map((b) => b.digest), ...(base.ferry?.base?.reliesOn ?? []).map((b) => b.digest)]);
}

function isoSeconds(epochSeconds: number): string {
  return new Date(Math.floor(epochSeconds) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
