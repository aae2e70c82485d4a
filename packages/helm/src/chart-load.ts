/**
 * Loads a Helm chart into memory: from a directory, a `.tgz` archive, an OCI
 * registry (`oci://REGISTRY/REPO[:VERSION]`, the layer `helm push` writes), or a
 * classic Helm repository (`NAME/CHART[@VERSION]`, a chart URL; repo/).
 * A directory is read by the one chart-directory walk (chart-dir.ts: `.helmignore`
 * as helm reads it). Subcharts come from `charts/` (directories and `.tgz`
 * files), recursively.
 * Nothing is extracted to disk; archives are read by the tar safety rule of
 * @ferry/oci-client (no `..`, no absolute paths, no links).
 */
import { readFile, stat } from 'node:fs/promises';
import { posix } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { FerryError, type OciClient, parseReference, TarFormatError, tarEntriesOf, usageError } from '@ferry/oci-client';
import { chartDirectoryFiles, MAX_CHART_BYTES } from './chart-dir.js';
import { parseYamlValue } from './encoding.js';
import { buildDependencies } from './repo/dependencies.js';
import { type HelmRepositories, parseRepoChartName } from './repo/repo-client.js';
import { isMap } from './template/exec.js';
import type { Values } from './values.js';

export const HELM_CHART_CONTENT_MEDIA_TYPE = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip';
export const HELM_CHART_CONFIG_MEDIA_TYPE = 'application/vnd.cncf.helm.config.v1+json';
/** Older charts pushed before the media type settled. */
const LEGACY_CHART_MEDIA_TYPES = ['application/tar+gzip'];

/** Helm's limit on one file of a chart archive (MAX_CHART_BYTES on the whole). */
const MAX_FILE_BYTES = 20 * 1024 * 1024;

export interface ChartDependency {
  name: string;
  alias?: string;
  condition?: string;
  tags: string[];
  version?: string;
  repository?: string;
}

export interface Chart {
  /** Chart.yaml as written. */
  metadata: Record<string, unknown>;
  name: string;
  version: string;
  appVersion: string | undefined;
  apiVersion: string;
  type: string | undefined;
  /** `dependencies` of Chart.yaml, or of `requirements.yaml` for apiVersion v1 charts. */
  dependencies: ChartDependency[];
  /** values.yaml (empty if absent). */
  defaults: Values;
  /** Every file of this chart, without its `charts/` directory; posix paths relative to the chart root. */
  files: Map<string, Buffer>;
  /** Files under `templates/`, as text. */
  templates: Array<{ path: string; text: string }>;
  subcharts: Chart[];
  /** Where it was read from: a directory, an archive (with `!charts/x.tgz` for nested ones), or an oci:// reference. */
  origin: string;
  /** The archive bytes when the chart came from a `.tgz` or a registry. */
  archive?: Buffer;
  /** For charts from a registry: the manifest digest and chart layer digest. */
  oci?: { reference: string; manifestDigest: string; layerDigest: string };
  /** For charts from a Helm repository: the archive's URL, the repository, and its `.prov` file when it has one. */
  repo?: { url: string; repository: string; provenance?: Buffer };
}

export interface LoadChartOptions {
  /** Needed for oci:// charts. */
  client?: OciClient;
  /** Needed for charts from Helm repositories (`NAME/CHART`, `https://…`). */
  repositories?: HelmRepositories;
  /** The chart is `spec` in the repository at this URL (the spec's `repo:`). */
  repo?: string;
  /** The version or constraint of a repository chart (`--chart-version`, the spec's `version:`). */
  version?: string;
  /** Fetch the dependencies a chart directory lists but does not vendor, as `helm dependency build` (repo/dependencies.ts). */
  dependencyUpdate?: boolean;
  log?: (line: string) => void;
}

function str(v: unknown): string | undefined {
  if (v === null || v === undefined) return undefined;
  return typeof v === 'string' ? v : String(v);
}

function parseDeps(raw: unknown, origin: string, file: string): ChartDependency[] {
  if (raw === null || raw === undefined) return [];
  if (!Array.isArray(raw)) throw usageError(`${origin}: ${file} "dependencies" must be a list`);
  return raw.map((d, i) => {
    if (!isMap(d) || typeof d.name !== 'string' || d.name === '') {
      throw usageError(`${origin}: ${file} dependencies[${i}] needs a name`);
    }
    const tags = Array.isArray(d.tags) ? d.tags.map(String) : [];
    const dep: ChartDependency = { name: d.name, tags };
    const alias = str(d.alias);
    if (alias) dep.alias = alias;
    const condition = str(d.condition);
    if (condition) dep.condition = condition;
    const version = str(d.version);
    if (version) dep.version = version;
    const repository = str(d.repository);
    if (repository) dep.repository = repository;
    return dep;
  });
}

/** A YAML file of a chart, parsed; undefined when the chart has no such file. */
export function yamlFile(files: Map<string, Buffer>, path: string, origin: string): unknown {
  const data = files.get(path);
  if (!data) return undefined;
  try {
    return parseYamlValue(data.toString('utf8'));
  } catch (e) {
    throw usageError(`${origin}: ${path} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
}

/** Builds a chart (and its subcharts) from its files, paths relative to the chart root. */
export function chartFromFiles(all: Map<string, Buffer>, origin: string): Chart {
  const meta = yamlFile(all, 'Chart.yaml', origin);
  if (!isMap(meta)) throw usageError(`${origin} is not a Helm chart: it has no Chart.yaml`);
  const name = str(meta.name);
  if (!name) throw usageError(`${origin}: Chart.yaml has no name`);
  const apiVersion = str(meta.apiVersion) ?? 'v1';
  let dependencies = parseDeps(meta.dependencies, origin, 'Chart.yaml');
  if (dependencies.length === 0 && all.has('requirements.yaml')) {
    const req = yamlFile(all, 'requirements.yaml', origin);
    if (isMap(req)) dependencies = parseDeps(req.dependencies, origin, 'requirements.yaml');
  }
  const valuesDoc = yamlFile(all, 'values.yaml', origin);
  if (valuesDoc !== undefined && valuesDoc !== null && !isMap(valuesDoc)) {
    throw usageError(`${origin}: values.yaml must be a YAML map`);
  }
  const files = new Map<string, Buffer>();
  const templates: Chart['templates'] = [];
  const subDirs = new Map<string, Map<string, Buffer>>();
  const subArchives: Array<[string, Buffer]> = [];
  for (const [path, data] of all) {
    if (path.startsWith('charts/')) {
      const rest = path.slice('charts/'.length);
      const slash = rest.indexOf('/');
      if (slash < 0) {
        if (rest.endsWith('.tgz') || rest.endsWith('.tar.gz')) subArchives.push([path, data]);
        continue;
      }
      const dir = rest.slice(0, slash);
      let m = subDirs.get(dir);
      if (!m) subDirs.set(dir, (m = new Map()));
      m.set(rest.slice(slash + 1), data);
      continue;
    }
    files.set(path, data);
    if (path.startsWith('templates/')) templates.push({ path, text: data.toString('utf8') });
  }
  templates.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const subcharts: Chart[] = [];
  for (const [dir, m] of [...subDirs].sort(([a], [b]) => (a < b ? -1 : 1))) {
    if (!m.has('Chart.yaml')) continue; // not a chart (Helm ignores it too)
    subcharts.push(chartFromFiles(m, `${origin}/charts/${dir}`));
  }
  for (const [path, data] of subArchives.sort(([a], [b]) => (a < b ? -1 : 1))) {
    subcharts.push(chartFromArchive(data, `${origin}!${path}`));
  }
  return {
    metadata: meta,
    name,
    version: str(meta.version) ?? '',
    appVersion: str(meta.appVersion),
    apiVersion,
    type: str(meta.type),
    dependencies,
    defaults: (valuesDoc as Values | null | undefined) ?? {},
    files,
    templates,
    subcharts,
    origin,
  };
}

/** Reads a chart archive (`.tgz`) held in memory. Throws a usage error naming the bad entry. */
export function chartFromArchive(data: Buffer, origin: string): Chart {
  let raw: Buffer;
  try {
    raw = gunzipSync(data, { maxOutputLength: MAX_CHART_BYTES });
  } catch (e) {
    throw usageError(`${origin} is not a gzip-compressed chart archive: ${(e as Error).message}`);
  }
  const files = archiveFiles(raw, origin);
  // Helm archives hold one top directory, the chart name: strip it.
  const tops = new Set([...files.keys()].map((p) => p.split('/')[0]));
  let stripped = files;
  if (!files.has('Chart.yaml') && tops.size >= 1) {
    const chartTop = [...tops].find((t) => files.has(`${t}/Chart.yaml`));
    if (!chartTop) throw usageError(`${origin} is not a Helm chart archive: no Chart.yaml found`);
    stripped = new Map();
    for (const [p, d] of files) if (p.startsWith(`${chartTop}/`)) stripped.set(p.slice(chartTop.length + 1), d);
  }
  const chart = chartFromFiles(stripped, origin);
  chart.archive = data;
  return chart;
}

/** The files of a gunzipped chart archive, by the tar safety rule (directories skipped). */
function archiveFiles(raw: Buffer, origin: string): Map<string, Buffer> {
  let entries: ReturnType<typeof tarEntriesOf>;
  try {
    // helm (Go's archive/tar) reads an archive that lacks the end-of-archive blocks
    entries = tarEntriesOf(raw, { container: 'the chart', endOptional: true });
  } catch (e) {
    if (!(e instanceof TarFormatError)) throw e;
    if (e.reason === 'unsafe') throw usageError(`${origin}: refusing archive entry ${JSON.stringify(e.entry)} (it ${e.problem})`);
    if (e.reason === 'not-tar') throw usageError(`${origin} is not a Helm chart archive: it holds no tar archive`);
    throw usageError(`${origin}: the chart archive is ${e.reason}: ${e.message}`);
  }
  const files = new Map<string, Buffer>();
  let total = 0;
  for (const e of entries) {
    if (e.type !== 'file' || e.name === '') continue;
    if (e.size > MAX_FILE_BYTES) throw usageError(`${origin}: ${e.name} is larger than ${MAX_FILE_BYTES / 1024 / 1024} MiB`);
    total += e.size;
    if (total > MAX_CHART_BYTES) throw usageError(`${origin}: the chart is larger than ${MAX_CHART_BYTES / 1024 / 1024} MiB uncompressed`);
    files.set(e.name, Buffer.from(e.data));
  }
  return files;
}

const SEMVERISH = /^v?(\d+)\.(\d+)\.(\d+)(?:[-_+].*)?$/;

function semverKey(tag: string): [number, number, number, number] | undefined {
  const m = SEMVERISH.exec(tag);
  if (!m) return undefined;
  const pre = /^v?\d+\.\d+\.\d+-/.test(tag) ? 0 : 1;
  return [Number(m[1]), Number(m[2]), Number(m[3]), pre];
}

/** Pulls a chart pushed by `helm push` (or ferry) from a registry. */
export async function loadOciChart(ref: string, client: OciClient): Promise<Chart> {
  const rest = ref.slice('oci://'.length);
  const lastSlash = rest.lastIndexOf('/');
  const hasVersion = rest.slice(lastSlash + 1).includes(':') || rest.includes('@');
  let parsed;
  try {
    parsed = parseReference(rest);
  } catch (e) {
    throw usageError(`invalid chart reference "${ref}": ${(e as Error).message.replace(/^invalid reference "[^"]*": /, '')}`);
  }
  if (lastSlash < 0) throw usageError(`invalid chart reference "${ref}": use oci://REGISTRY/REPOSITORY[:VERSION]`);
  const registry = client.registry(parsed.registry);
  let reference = parsed.digest ?? parsed.tag ?? 'latest';
  if (!hasVersion) {
    const tags = await registry.listTags(parsed.repository);
    const best = tags
      .map((t) => ({ t, k: semverKey(t) }))
      .filter((x): x is { t: string; k: [number, number, number, number] } => x.k !== undefined)
      .sort((a, b) => {
        for (let i = 0; i < 4; i++) if (a.k[i] !== b.k[i]) return a.k[i]! - b.k[i]!;
        return 0;
      })
      .at(-1);
    if (!best) throw new FerryError('not-found', `no version of chart ${ref} found (no semantic-version tags); name one: ${ref}:VERSION`);
    reference = best.t;
  }
  const manifest = await registry.getManifest(parsed.repository, reference);
  if (manifest.kind !== 'image') {
    throw new FerryError('unsupported', `${ref} is an image index, not a Helm chart (expected a manifest with a ${HELM_CHART_CONTENT_MEDIA_TYPE} layer)`);
  }
  const layer = manifest.manifest.layers.find((l) => l.mediaType === HELM_CHART_CONTENT_MEDIA_TYPE || LEGACY_CHART_MEDIA_TYPES.includes(l.mediaType));
  if (!layer) {
    throw new FerryError('unsupported', `${ref} is not a Helm chart: its manifest has no ${HELM_CHART_CONTENT_MEDIA_TYPE} layer`);
  }
  if (layer.size > MAX_CHART_BYTES) throw new FerryError('unsupported', `chart ${ref} is larger than ${MAX_CHART_BYTES / 1024 / 1024} MiB; refusing it`);
  const chunks: Buffer[] = [];
  for await (const c of registry.getBlob(parsed.repository, { digest: layer.digest, size: layer.size })) chunks.push(c as Buffer);
  const data = Buffer.concat(chunks);
  const origin = `oci://${parsed.registry}/${parsed.repository}:${reference}`;
  const chart = chartFromArchive(data, origin);
  chart.oci = { reference: origin, manifestDigest: manifest.digest, layerDigest: layer.digest };
  return chart;
}

/** Loads a chart from a directory, a `.tgz` file, `oci://…`, a Helm repository (`NAME/CHART[@VERSION]`) or a chart URL. */
export async function loadChart(spec: string, opts: LoadChartOptions = {}): Promise<Chart> {
  if (spec.startsWith('oci://')) {
    if (!opts.client) throw usageError(`cannot pull ${spec}: no registry client`);
    if (opts.version) throw usageError(`${spec}: name the version in the reference (oci://REGISTRY/REPOSITORY:VERSION)`);
    return loadOciChart(spec, opts.client);
  }
  if (opts.repo !== undefined) {
    const repos = needRepositories(spec, opts);
    return repoChart(await repos.pull(await repos.forUrl(opts.repo), spec, opts.version), spec);
  }
  if (/^https?:\/\//i.test(spec)) {
    if (opts.version) throw usageError(`${spec}: a chart URL names its version; drop the version`);
    const got = await needRepositories(spec, opts).pullUrl(spec);
    return repoChart(got, got.url);
  }
  let s;
  try {
    s = await stat(spec);
  } catch {
    const named = parseRepoChartName(spec);
    const repo = named && opts.repositories ? await opts.repositories.find(named.repo) : undefined;
    if (named && repo) {
      if (named.version !== undefined && opts.version !== undefined) throw usageError(`chart ${spec}: give the version once (@VERSION or --chart-version)`);
      return repoChart(await opts.repositories!.pull(repo, named.chart, named.version ?? opts.version), `${named.repo}/${named.chart}`);
    }
    const hint = named ? `; no repository "${named.repo}" is configured (--repo ${named.repo}=URL, or helm repo add)` : '';
    throw usageError(
      `chart ${spec} not found: give a chart directory, a .tgz file, oci://REGISTRY/REPOSITORY[:VERSION], REPO/CHART[@VERSION] or a chart URL${hint}`,
    );
  }
  if (opts.version) throw usageError(`${spec} is a local chart; a version applies to repository charts only`);
  if (s.isDirectory()) {
    let files = await chartDirectoryFiles(spec);
    if (!files.has('Chart.yaml')) throw usageError(`${spec} is not a Helm chart directory: it has no Chart.yaml`);
    const origin = posix.normalize(spec.replaceAll('\\', '/'));
    if (opts.dependencyUpdate) files = await buildDependencies(spec, files, origin, opts);
    return chartFromFiles(files, origin);
  }
  const data = await readFile(spec);
  return chartFromArchive(data, spec);
}

function needRepositories(spec: string, opts: LoadChartOptions): HelmRepositories {
  if (!opts.repositories) throw usageError(`cannot fetch ${spec}: no Helm repository client`);
  return opts.repositories;
}

function repoChart(got: Awaited<ReturnType<HelmRepositories['pull']>>, origin: string): Chart {
  const chart = chartFromArchive(got.archive, origin);
  chart.repo = { url: got.url, repository: got.repository, ...(got.provenance ? { provenance: got.provenance } : {}) };
  return chart;
}
