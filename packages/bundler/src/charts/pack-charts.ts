/**
 * Charts for `pack --chart`: each chart is read (directory, `.tgz`, `oci://…`,
 * a Helm repository's `NAME/CHART[@VERSION]` or a chart URL), its images discovered, and the chart itself prepared as the Helm
 * OCI artifact `helm push` would store. A chart directory is packaged
 * deterministically first and discovery runs on that archive, so the images
 * found are those of exactly what is carried. A `.tgz` (a file, or from a Helm
 * repository, with its `.prov` as a second layer) keeps its bytes; a chart
 * from a registry keeps its upstream manifest, config and layer, digests included.
 *
 * In the bundle a chart is an index.json entry named `charts/<name>:<tag>` (the
 * `org.opencontainers.image.ref.name` annotation; `<tag>` is the version with `+`
 * as `_`, helm's tag convention) and marked with `artifactType`
 * `application/vnd.cncf.helm.config.v1+json` (its config's media type, as
 * image-spec 1.1 defines the field for manifests). Image references are always
 * `host/…`, so the name cannot be mistaken for an image; the artifactType is what
 * readers go by. It carries no `io.containerd.image.name`: containerd and
 * `docker load` should not take a chart for an image.
 */
import { stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { buildDependencies, type Chart, chartDirectoryFiles, chartFromArchive, type HelmRepositories, loadChart } from '@ferry/helm';
import { FerryError, type ImageSource, MediaType, type OciClient, parseReference, usageError } from '@ferry/oci-client';
import { MemoryPlace } from '../places/memory.js';
import { RegistryPlace } from '../places/registry.js';
import { discoverImages, type ImageUsage, originOf } from './discover.js';
import { chartArchive, chartYamlOf, helmArtifact, helmChartConfig, rfc3339 } from './helm-artifact.js';
import type { SkippedImages } from './skip-images.js';

/** Marks a chart's entry in index.json (descriptor `artifactType`). */
export const CHART_ARTIFACT_TYPE = MediaType.HELM_CONFIG;
/** The first path part of a chart's name in the bundle, and of its default place on load. */
export const CHARTS_PATH = 'charts';

export interface ChartRequest {
  /** A chart directory, a `.tgz` file, `oci://REGISTRY/REPO[:VERSION]`, `REPO/CHART[@VERSION]`, a chart URL, or with `repo` the chart's name. */
  chart: string;
  /** The Helm repository URL `chart` is in (the spec's `repo:`). */
  repo?: string | undefined;
  /** The version or constraint of a repository chart (`--chart-version`, the spec's `version:`). */
  version?: string | undefined;
  /** Values files (as `helm --values`), in order: they decide which images are used. */
  valuesFiles?: string[] | undefined;
  /** `--set K=V` expressions, in order. */
  set?: string[] | undefined;
  /** Pack the images only optional features use, too. */
  optionalImages?: boolean | undefined;
  /** Pack only the images the render puts in pod specs (not runtime or declared ones). */
  onlyUsedImages?: boolean | undefined;
  /** `--skip-image PATTERN`: globs on the normalized reference of images not to pack. */
  skipImages?: string[] | undefined;
  /** Fetch and vendor the dependencies a chart directory lists but does not carry under `charts/` (helm's --dependency-update). */
  dependencyUpdate?: boolean | undefined;
  /** The release namespace and Kubernetes version the chart is rendered for (helm's --namespace, --kube-version). */
  namespace?: string | undefined;
  kubeVersion?: string | undefined;
}

export interface ChartImage {
  ref: string;
  usage: ImageUsage;
  /** Whether the bundle carries it (used, runtime and declared ones by default; optional ones with --chart-optional-images). */
  packed: boolean;
  /** Used only by `helm test` pods. */
  testHook?: true;
  /** Where discovery found it (chart, template, field or annotation): for the error when it cannot be pulled. */
  from?: string;
}

export interface PreparedChart {
  request: ChartRequest;
  name: string;
  version: string;
  appVersion: string | null;
  /** The registry tag: the version with `+` as `_` (helm's convention). */
  tag: string;
  /** Its name in the bundle's index.json: `charts/<name>:<tag>`. */
  ref: string;
  /** Where it came from: the directory or `.tgz` as given, or `oci://REGISTRY/REPO:TAG` as resolved. */
  source: string;
  /** Its manifest and blobs. */
  place: ImageSource;
  digest: string;
  /** The manifest digest at the registry, for a chart from one (kept in the bundle); else null. */
  upstreamDigest: string | null;
  images: ChartImage[];
  /** `skipImages`: each pattern and the images it left out. */
  skipped: SkippedImages[];
}

export interface PrepareChartsOptions {
  client: OciClient;
  /** For charts from Helm repositories. */
  repositories?: HelmRepositories | undefined;
  /** Seconds since the epoch for a packaged directory's mtimes and created annotation (0 when unset). */
  sourceDateEpoch?: number | undefined;
  log?: (line: string) => void;
}

const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|[-]+)[a-z0-9]+)*$/;

/** helm's tag for a chart version: OCI tags cannot hold `+`. */
export function chartTag(version: string): string {
  return version.replaceAll('+', '_');
}

/** The name of a chart in a bundle's index.json. */
export function chartRefName(name: string, version: string): string {
  return `${CHARTS_PATH}/${name}:${chartTag(version)}`;
}

/** Name and tag of a `charts/<name>:<tag>` index.json name, or undefined. */
export function parseChartRefName(ref: string): { name: string; tag: string } | undefined {
  const m = /^charts\/([^/:@]+):([^/:@]+)$/.exec(ref);
  return m ? { name: m[1]!, tag: m[2]! } : undefined;
}

interface Artifact {
  chart: Chart;
  source: string;
  place: ImageSource;
  digest: string;
  upstreamDigest: string | null;
}

async function localArtifact(request: ChartRequest, opts: PrepareChartsOptions): Promise<Artifact> {
  const spec = request.chart;
  const s = request.repo === undefined ? await stat(spec).catch(() => undefined) : undefined;
  let archive: Buffer;
  let chart: Chart;
  if (s?.isDirectory()) {
    if (request.version) throw usageError(`${spec} is a local chart; a version applies to repository charts only`);
    const origin = posix.normalize(spec.replaceAll('\\', '/'));
    let files = await chartDirectoryFiles(spec);
    if (!files.has('Chart.yaml')) throw usageError(`${spec} is not a Helm chart directory: it has no Chart.yaml`);
    // the carried archive holds the fetched dependencies, so helm installs it offline
    if (request.dependencyUpdate) files = await buildDependencies(spec, files, origin, { repositories: opts.repositories, client: opts.client, log: opts.log });
    const { chartYaml } = chartYamlOf(files, origin);
    const name = typeof chartYaml.name === 'string' ? chartYaml.name : '';
    if (!name) throw usageError(`${origin}: Chart.yaml has no name`);
    archive = chartArchive(name, files, opts.sourceDateEpoch ?? 0);
    chart = chartFromArchive(archive, origin);
  } else {
    // a .tgz file, a repository chart or a chart URL: its archive as it is
    chart = await loadChart(spec, {
      ...(opts.repositories ? { repositories: opts.repositories } : {}),
      ...(request.repo !== undefined ? { repo: request.repo } : {}),
      ...(request.version ? { version: request.version } : {}),
    });
    archive = chart.archive!;
  }
  const { chartYaml, requirements } = chartYamlOf(chart.files, chart.origin);
  const artifact = helmArtifact(helmChartConfig(chartYaml, requirements), archive, rfc3339(opts.sourceDateEpoch ?? 0), chart.repo?.provenance);
  const blobs = [artifact.config, artifact.layer, ...(artifact.provenance ? [artifact.provenance] : [])];
  const source = chart.repo?.url ?? spec;
  const place = MemoryPlace.of(`chart ${source}`, artifact.manifest, blobs);
  return { chart, source, place, digest: artifact.manifest.digest, upstreamDigest: null };
}

async function ociArtifact(spec: string, opts: PrepareChartsOptions): Promise<Artifact> {
  const chart = await loadChart(spec, { client: opts.client });
  const oci = chart.oci!;
  const ref = parseReference(oci.reference.slice('oci://'.length));
  const place = new RegistryPlace(opts.client.registry(ref.registry), ref.repository);
  const manifest = await place.getManifest({ mediaType: '', digest: oci.manifestDigest, size: 0 });
  if (manifest.kind !== 'image' || manifest.manifest.config.mediaType !== MediaType.HELM_CONFIG) {
    const got = manifest.kind === 'image' ? manifest.manifest.config.mediaType : manifest.mediaType;
    throw new FerryError('unsupported', `${oci.reference} is not a chart helm can pull: its config is ${got}, not ${MediaType.HELM_CONFIG}`);
  }
  return { chart, source: oci.reference, place, digest: oci.manifestDigest, upstreamDigest: oci.manifestDigest };
}

/** Reads, packages and discovers every chart, in order. Throws a usage error (exit 2) for a bad chart. */
export async function prepareCharts(requests: ChartRequest[], opts: PrepareChartsOptions): Promise<PreparedChart[]> {
  const out: PreparedChart[] = [];
  for (const request of requests) {
    const a = request.chart.startsWith('oci://') && request.repo === undefined ? await ociArtifact(request.chart, opts) : await localArtifact(request, opts);
    const { chart } = a;
    if (!chart.version) throw usageError(`${chart.origin}: Chart.yaml has no version; helm needs one to push or pull the chart`);
    const tag = chartTag(chart.version);
    if (!PATH_COMPONENT.test(chart.name)) {
      throw usageError(`${chart.origin}: chart name "${chart.name}" cannot be a registry repository name (lowercase letters, digits and . _ - separators)`);
    }
    if (!TAG.test(tag)) throw usageError(`${chart.origin}: chart version "${chart.version}" cannot be a registry tag`);
    if (chart.type === 'library') opts.log?.(`${chart.origin}: a library chart; it is carried, but it installs nothing by itself`);

    const discovery = await discoverImages({
      loadedCharts: [chart],
      valuesFiles: request.valuesFiles ?? [],
      set: request.set ?? [],
      ...(request.namespace !== undefined ? { namespace: request.namespace } : {}),
      ...(request.kubeVersion !== undefined ? { kubeVersion: request.kubeVersion } : {}),
      client: opts.client,
      ...(opts.repositories ? { repositories: opts.repositories } : {}),
      ...(request.skipImages?.length ? { skipImages: request.skipImages } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    });
    const packs = (usage: ImageUsage) => usage === 'used' || (!request.onlyUsedImages && (usage !== 'optional' || request.optionalImages === true));
    const images = discovery.images.map((i) => {
      const img: ChartImage = { ref: i.reference, usage: i.usage, packed: packs(i.usage) };
      if (i.testHook) img.testHook = true;
      img.from = originOf(i);
      return img;
    });
    for (const s of discovery.skipped) {
      if (s.references.length === 0) opts.log?.(`warning: chart ${chart.name}: --skip-image ${s.pattern} matched none of its images`);
      else opts.log?.(`chart ${chart.name}: --skip-image ${s.pattern} left out ${s.references.join(', ')}`);
    }
    const prepared: PreparedChart = {
      request,
      name: chart.name,
      version: chart.version,
      appVersion: chart.appVersion ?? null,
      tag,
      ref: chartRefName(chart.name, chart.version),
      source: a.source,
      place: a.place,
      digest: a.digest,
      upstreamDigest: a.upstreamDigest,
      images,
      skipped: discovery.skipped,
    };
    const same = out.find((c) => c.ref === prepared.ref);
    if (same) {
      if (same.digest !== prepared.digest) {
        throw usageError(
          `${same.source} and ${prepared.source} are both chart ${chart.name} ${chart.version} but differ (${same.digest}, ${prepared.digest}); a bundle holds one chart per name and version`,
        );
      }
      // the same chart twice: one entry, the images of both
      for (const img of images) {
        const had = same.images.find((i) => i.ref === img.ref);
        if (!had) same.images.push(img);
        else had.packed ||= img.packed;
      }
      same.images.sort((x, y) => (x.ref < y.ref ? -1 : x.ref > y.ref ? 1 : 0));
      continue;
    }
    const n = (u: ImageUsage) => images.filter((i) => i.usage === u).length;
    const packed = images.filter((i) => i.packed).length;
    opts.log?.(
      `chart ${chart.name} ${chart.version}: ${n('used')} image${n('used') === 1 ? '' : 's'} used, ${n('runtime')} runtime, ${n('declared')} declared, ${n('optional')} optional; ${packed} packed`,
    );
    out.push(prepared);
  }
  return out;
}
