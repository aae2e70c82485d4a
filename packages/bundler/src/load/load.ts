/**
 * `load`: push every image of a bundle into a registry (copy engine: bundle
 * reader -> registry). Names are mapped and checked for collisions first;
 * Harbor projects are created when asked; then blobs, child manifests, indexes
 * and tags, image by image, with one bounded pool of transfers. An image whose
 * blob fails its digest check gets no manifest and no tag; the others go on.
 */
import type { KeyObject } from 'node:crypto';
import {
  abortReason,
  CopyEngine,
  type CopyEvent,
  type CopyStats,
  createPool,
  DEFAULT_JOBS,
  FerryError,
  formatReference,
  type ImagePlan,
  type OciClient,
  type Pool,
  planImage,
  type Reference,
  usageError,
} from '@ferry/oci-client';
import type { BundleChartRef, BundleReader } from '../places/bundle-reader.js';
import { RegistryPlace } from '../places/registry.js';
import { ferryJsonDisagreements, verifyBundle } from '../trust/verify.js';
import { HarborProjects, projectOf } from './harbor.js';
import type { TargetMapper } from './mapping.js';

export interface LoadOptions {
  client: OciClient;
  bundle: BundleReader;
  mapper: TargetMapper;
  concurrency?: number | undefined;
  dryRun?: boolean | undefined;
  harborCreateProjects?: boolean | undefined;
  onEvent?: (e: CopyEvent) => void;
  /** Refuse the bundle, before anything is pushed, unless this key signed it and every byte is intact. */
  publicKey?: KeyObject | undefined;
  /** Stops the load (Ctrl-C): transfers end; a rerun goes on where it stopped. */
  signal?: AbortSignal | undefined;
  onPlanned?: (p: { images: number; bytes: number }) => void;
  log?: (line: string) => void;
}

export interface LoadedImage {
  source: string;
  target: string;
  digest: string;
  platforms: string[];
  status: 'loaded' | 'failed' | 'planned';
  error?: string | undefined;
  /** Dry run: blobs the target lacks and those it has. */
  blobsToPush?: number | undefined;
  blobsPresent?: number | undefined;
}

export interface LoadedChart {
  name: string;
  version: string;
  /** Its name in the bundle (`charts/<name>:<tag>`). */
  ref: string;
  /** Where pack read it (a directory, a .tgz, oci://…), when the bundle says; else its name in the bundle. */
  source: string;
  /** `REGISTRY/REPO:TAG`: `helm pull oci://REGISTRY/REPO --version VERSION` fetches it. */
  target: string;
  digest: string;
  status: 'loaded' | 'failed' | 'planned';
  error?: string | undefined;
  blobsToPush?: number | undefined;
  blobsPresent?: number | undefined;
}

export interface LoadResult {
  images: LoadedImage[];
  /** The Helm charts, pushed like images (blobs, then the manifest under the chart's tag). */
  charts: LoadedChart[];
  stats: CopyStats;
  projectsCreated: string[];
}

interface PlannedLoad {
  /** The image's source reference, or `chart NAME:TAG` for a chart. */
  source: string;
  target: Reference;
  plan: ImagePlan;
  sink: RegistryPlace;
  chart?: BundleChartRef | undefined;
}

export async function load(opts: LoadOptions): Promise<LoadResult> {
  const { bundle, client } = opts;
  const log = opts.log ?? (() => undefined);
  // With a key the whole verify runs (its problems include these); without, the cheap structural checks.
  if (opts.publicKey) await refuseUnlessIntact(bundle, opts.publicKey, opts.concurrency, log);
  else {
    const disagreement = ferryJsonDisagreements(bundle)[0];
    if (disagreement) throw usageError(`refusing to load ${bundle.name}: ${disagreement}; nothing was pushed (ferry verify shows every problem)`);
  }
  const entries = bundle.images();
  const unnamed = entries.find((e) => !e.named);
  if (unnamed)
    throw usageError(
      `${bundle.name} lists image ${unnamed.ref} without a name (no org.opencontainers.image.ref.name annotation), so it has no target to load to`,
    );
  const charts = bundle.charts();
  const unnamedChart = charts.find((c) => !c.named);
  if (unnamedChart)
    throw usageError(
      `${bundle.name} lists a Helm chart ${unnamedChart.descriptor.digest} without a name (no org.opencontainers.image.ref.name annotation), so it has no target to load to`,
    );
  const mappings = opts.mapper.mapBundle(
    entries.map((e) => e.ref),
    charts,
  );

  const planned: PlannedLoad[] = [];
  for (const [i, m] of mappings.images.entries()) {
    // Its referrers (named in ferry.json) are pushed after it.
    const plan = await planImage(bundle, entries[i]!.descriptor.digest, { referrers: 'all' });
    if (m.target.digest && m.target.digest !== plan.root.digest) {
      // A digest-pinned image packed with --platform: the name keeps the upstream digest,
      // the bundle holds the filtered index, which is what gets pushed.
      const packed = bundle.ferry?.images.find((img) => img.ref === m.source);
      if (packed?.upstreamDigest !== m.target.digest || packed.digest !== plan.root.digest) {
        throw new FerryError('integrity', `${bundle.name} names ${m.source} but holds ${plan.root.digest} for it`);
      }
      m.target.digest = plan.root.digest;
    }
    const sink = new RegistryPlace(client.registry(m.target.registry), m.target.repository).forWriting();
    planned.push({ source: m.source, target: m.target, plan, sink });
  }
  for (const [i, target] of mappings.charts.entries()) {
    const chart = charts[i]!;
    const plan = await planImage(bundle, chart.descriptor.digest);
    const sink = new RegistryPlace(client.registry(target.registry), target.repository).forWriting();
    planned.push({ source: `chart ${chart.name}:${chart.tag}`, target, plan, sink, chart });
  }
  const uniqueBytes = new Map<string, number>();
  for (const p of planned) for (const b of p.plan.blobs) uniqueBytes.set(b.digest, b.size);
  opts.onPlanned?.({ images: planned.length, bytes: [...uniqueBytes.values()].reduce((a, b) => a + b, 0) });

  const pool = createPool(opts.concurrency ?? DEFAULT_JOBS);
  const mountFrom = await checkNotCarried(bundle, planned, pool);

  if (opts.dryRun) {
    const rows = await dryRun(planned, pool);
    return { ...split(planned, rows), stats: { uploaded: 0, mounted: 0, skipped: 0, bytes: 0 }, projectsCreated: [] };
  }

  const projectsCreated: string[] = [];
  if (opts.harborCreateProjects) {
    const wanted = new Map<string, Set<string>>();
    for (const p of planned) wanted.set(p.target.registry, (wanted.get(p.target.registry) ?? new Set()).add(projectOf(p.target.repository)));
    for (const [registry, projects] of wanted) {
      const harbor = new HarborProjects(registry, client.transport, client.credentials);
      for (const project of projects) {
        if (await harbor.ensure(project)) {
          projectsCreated.push(`${registry}/${project}`);
          log(`created Harbor project ${project} in ${registry}`);
        }
      }
    }
  }

  const engine = new CopyEngine({
    pool,
    signal: opts.signal,
    onEvent: opts.onEvent,
    mountFrom: (sink, blob) => mountFrom.get(`${sink.location?.registry}\0${blob.digest}`),
  });
  const settled = await Promise.allSettled(
    planned.map((p) => engine.copy(bundle, p.sink, p.plan, { tag: p.target.tag, label: loadLabel(p), prefixErrors: true })),
  );
  if (opts.signal?.aborted) throw abortReason(opts.signal);
  const probe = harborProbe(client);
  const errors = await Promise.all(
    settled.map((r, i) => (r.status === 'rejected' ? explain(r.reason, planned[i]!, opts.harborCreateProjects === true, probe) : undefined)),
  );
  const rows = planned.map((p, i): LoadedImage => {
    const error = errors[i];
    return {
      source: p.source,
      target: formatReference(p.target),
      digest: p.plan.root.digest,
      platforms: p.plan.platforms,
      status: error ? 'failed' : 'loaded',
      error: error?.message,
    };
  });
  const { images, charts: loadedCharts } = split(planned, rows);
  const failed = errors.filter((e): e is FerryError => e !== undefined);
  if (failed.length) {
    // One line per failed image, then the first failure decides kind and exit code.
    const lines = failed.map((e) => e.message);
    const first = failed[0]!;
    throw new FerryError(first.kind, lines.length === 1 ? lines[0]! : `${lines.length} images failed to load: ${lines.join('; ')}`, {
      status: first.status,
      codes: first.codes,
      registry: first.registry,
      repository: first.repository,
    });
  }
  return { images, charts: loadedCharts, stats: engine.stats, projectsCreated };
}

/** The signature and every byte checked before anything is pushed. */
async function refuseUnlessIntact(bundle: BundleReader, publicKey: KeyObject, jobs: number | undefined, log: (line: string) => void): Promise<void> {
  const report = await verifyBundle(bundle, { publicKey, concurrency: jobs });
  if (!report.ok) {
    const first = report.badBlobs[0];
    throw new FerryError(
      'integrity',
      `refusing to load ${bundle.name}: ${first ? `blob ${first.digest} ${first.problem}` : report.problems[0]}; nothing was pushed`,
    );
  }
  log(`signature verified, ${report.blobsChecked} blobs intact`);
}

/** The rows of images, and those of charts in their own shape. */
function split(planned: PlannedLoad[], rows: LoadedImage[]): { images: LoadedImage[]; charts: LoadedChart[] } {
  const images: LoadedImage[] = [];
  const charts: LoadedChart[] = [];
  rows.forEach((row, i) => {
    const chart = planned[i]!.chart;
    if (!chart) {
      images.push(row);
      return;
    }
    charts.push({
      name: chart.name,
      version: chart.version,
      ref: chart.ref,
      source: chart.source ?? chart.ref,
      target: row.target,
      digest: row.digest,
      status: row.status,
      ...(row.error !== undefined ? { error: row.error } : {}),
      ...(row.blobsToPush !== undefined ? { blobsToPush: row.blobsToPush, blobsPresent: row.blobsPresent } : {}),
    });
  });
  return { images, charts };
}

/**
 * Whether Harbor's API says a project is missing (true), has it (false), or is not
 * there to ask (undefined: a plain registry). Asked once per registry and project.
 */
type HarborProbe = (registry: string, project: string) => Promise<boolean | undefined>;

function harborProbe(client: OciClient): HarborProbe {
  const answers = new Map<string, Promise<boolean | undefined>>();
  return (registry, project) => {
    const key = `${registry}/${project}`;
    let answer = answers.get(key);
    if (!answer) {
      answer = new HarborProjects(registry, client.transport, client.credentials)
        .listed(project)
        .then((listed) => (listed === undefined ? undefined : !listed))
        .catch(() => undefined);
      answers.set(key, answer);
    }
    return answer;
  };
}

/**
 * Names the image in a failure, and says so when a Harbor project is missing.
 * Harbor 2.x refuses every request into a missing project with 401 UNAUTHORIZED
 * ("project P not found", not readable from a HEAD), as if the credentials were
 * wrong; so on an auth or not-found failure Harbor's project API is asked.
 */
async function explain(reason: unknown, p: PlannedLoad, creating: boolean, probe: HarborProbe): Promise<FerryError> {
  // The engine names the image in its failures; anything else is named here.
  const label = loadLabel(p);
  const e = reason instanceof FerryError ? reason : new FerryError('registry', `${label}: ${(reason as Error)?.message ?? String(reason)}`);
  const project = projectOf(p.target.repository);
  const suspect = !creating && (e.kind === 'not-found' || e.kind === 'auth');
  const missing = suspect ? await probe(p.target.registry, project) : undefined;
  if (missing === true) {
    // The registry's own words ("credentials were rejected") would mislead here.
    // Harbor lists only the projects an account may see.
    const answer = [e.status, e.codes[0]].filter((x) => x !== undefined).join(' ');
    return new FerryError(
      'not-found',
      `${label}: the Harbor project "${project}" does not exist in ${p.target.registry} (or is hidden from this account${answer ? `; it answered ${answer}` : ''}): create it or rerun with --harbor-create-projects`,
      { ...e.details(), cause: e },
    );
  }
  const named = e.kind === 'not-found' && (e.codes.includes('NAME_UNKNOWN') || /project .*not found/i.test(e.message));
  if (!(suspect && missing === undefined && named)) return e;
  return new FerryError(e.kind, `${e.message}; the Harbor project "${project}" may not exist: create it or rerun with --harbor-create-projects`, {
    ...e.details(),
    cause: e,
  });
}

/** How a load names an image in its failures. */
function loadLabel(p: PlannedLoad): string {
  return `loading ${p.source} as ${formatReference(p.target)}`;
}

/** What a load would do: per image, the blobs the target lacks and those it has. */
async function dryRun(planned: PlannedLoad[], pool: Pool): Promise<LoadedImage[]> {
  const limit = pool;
  return Promise.all(
    planned.map(async (p) => {
      const present = await Promise.all(p.plan.blobs.map((b) => limit(() => p.sink.hasBlob(b))));
      const have = present.filter(Boolean).length;
      return {
        source: p.source,
        target: formatReference(p.target),
        digest: p.plan.root.digest,
        platforms: p.plan.platforms,
        status: 'planned' as const,
        blobsToPush: p.plan.blobs.length - have,
        blobsPresent: have,
      };
    }),
  );
}

/**
 * Blobs the bundle does not carry (a delta's base blobs) must already be in the
 * target registry: in the image's own repository, or in another target
 * repository of this load, to be mounted from. Returns those mount sources;
 * throws, before anything is pushed, listing what is missing.
 */
async function checkNotCarried(bundle: BundleReader, planned: PlannedLoad[], pool: Pool): Promise<Map<string, string>> {
  const limit = pool;
  const mountFrom = new Map<string, string>();
  const missing = new Map<string, Set<string>>();
  const absent = planned.flatMap((p) => p.plan.blobs.filter((b) => !bundle.hasBlob(b.digest)).map((b) => ({ p, b })));
  if (absent.length === 0) return mountFrom;
  const has = new Map<string, Promise<boolean>>();
  const holds = (sink: RegistryPlace, digest: string): Promise<boolean> => {
    const key = `${sink.name}\0${digest}`;
    let r = has.get(key);
    if (!r) has.set(key, (r = limit(() => sink.hasBlob({ mediaType: '', digest, size: 0 }))));
    return r;
  };
  await Promise.all(
    absent.map(async ({ p, b }) => {
      if (await holds(p.sink, b.digest)) return;
      for (const other of planned) {
        if (other.sink.location.registry !== p.sink.location.registry || other.sink === p.sink) continue;
        if (await holds(other.sink, b.digest)) {
          mountFrom.set(`${p.sink.location.registry}\0${b.digest}`, other.sink.repository);
          return;
        }
      }
      missing.set(b.digest, (missing.get(b.digest) ?? new Set()).add(p.source));
    }),
  );
  if (missing.size) {
    const base = bundle.ferry?.base?.id;
    const list = [...missing].map(([d, users]) => `${d} (needed by ${[...users].join(', ')})`);
    throw new FerryError(
      'not-found',
      `the target lacks ${missing.size} blob${missing.size === 1 ? '' : 's'} that ${bundle.name} does not carry` +
        (base ? `; they are in its base bundle ${base}: load that first` : '') +
        `; nothing was pushed. Missing: ${list.join(', ')}`,
    );
  }
  return mountFrom;
}
