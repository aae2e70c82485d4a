/**
 * `helm dependency build` for a chart directory whose Chart.yaml (or
 * requirements.yaml) lists dependencies that are not under `charts/`: each is
 * fetched as helm's downloader Manager does — the Chart.lock (requirements.lock)
 * version when the lock names the same chart and repository and that version
 * satisfies the constraint, else the newest version matching it — from an HTTP
 * repository URL, a configured repository (`@name`, `alias:name`), `oci://`, or a
 * directory (`file://`, relative to the chart). Fetched archives become
 * `charts/<name>-<version>.tgz`, a `file://` chart `charts/<name>/…`, so whatever
 * reads or carries the chart sees them as vendored.
 */
import { readdir } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { FerryError, type OciClient, parseReference, usageError } from '@ferry/oci-client';
import { chartDirectoryFiles } from '../chart-dir.js';
import { type Chart, type ChartDependency, chartFromArchive, chartFromFiles, loadOciChart, yamlFile } from '../chart-load.js';
import { semverSatisfies } from '../funcs/semver.js';
import { isMap } from '../template/exec.js';
import { pickVersion } from './index-file.js';
import type { HelmRepositories } from './repo-client.js';

export interface DependencyBuildOptions {
  repositories?: HelmRepositories | undefined;
  /** For oci:// dependencies. */
  client?: OciClient | undefined;
  log?: ((line: string) => void) | undefined;
}

interface LockEntry {
  name: string;
  repository: string;
  version: string;
}

function lockEntries(files: Map<string, Buffer>, origin: string): LockEntry[] {
  const path = files.has('Chart.lock') ? 'Chart.lock' : 'requirements.lock';
  const doc = yamlFile(files, path, origin);
  if (!isMap(doc) || !Array.isArray(doc.dependencies)) return [];
  return doc.dependencies.filter(isMap).map((d) => ({ name: String(d.name ?? ''), repository: String(d.repository ?? ''), version: String(d.version ?? '') }));
}

function satisfies(constraint: string | undefined, version: string): boolean {
  if (!constraint || constraint === version) return true;
  try {
    return semverSatisfies(constraint, version);
  } catch {
    return false;
  }
}

/** The chart's files with every missing dependency added under `charts/`; the same map when nothing is missing. */
export async function buildDependencies(dir: string, files: Map<string, Buffer>, origin: string, opts: DependencyBuildOptions): Promise<Map<string, Buffer>> {
  const chart = chartFromFiles(files, origin);
  const present = new Set(chart.subcharts.map((s) => s.name));
  const missing = chart.dependencies.filter((d) => !present.has(d.name));
  if (missing.length === 0) return files;
  const lock = lockEntries(files, origin);
  const out = new Map(files);
  for (const dep of missing) {
    if (!dep.repository) throw usageError(`${origin}: dependency ${dep.name} is not in charts/ and has no repository to fetch it from`);
    const locked = lock.find((l) => l.name === dep.name && l.repository === dep.repository);
    let version = dep.version;
    if (locked && satisfies(dep.version, locked.version)) version = locked.version;
    else if (locked) opts.log?.(`${origin}: Chart.lock has ${dep.name} ${locked.version}, which does not satisfy "${dep.version}"; resolving it again`);
    if (dep.repository.startsWith('file://')) {
      await addDirectory(out, dir, dep, origin);
      continue;
    }
    const fetched = await fetchDependency(dep, version, origin, opts);
    if (fetched.name !== dep.name) {
      throw new FerryError('not-found', `${origin}: dependency ${dep.name} from ${dep.repository} is a chart named ${fetched.name}`);
    }
    opts.log?.(`${origin}: fetched dependency ${dep.name} ${fetched.version} from ${dep.repository}`);
    out.set(`charts/${dep.name}-${fetched.version}.tgz`, fetched.archive!);
  }
  return out;
}

async function addDirectory(out: Map<string, Buffer>, dir: string, dep: ChartDependency, origin: string): Promise<void> {
  const rel = dep.repository!.slice('file://'.length);
  const path = isAbsolute(rel) ? rel : join(dir, rel);
  try {
    await readdir(path);
  } catch {
    throw usageError(`${origin}: dependency ${dep.name}: ${dep.repository} is not a directory`);
  }
  const files = await chartDirectoryFiles(path);
  const sub = chartFromFiles(files, `${origin}/${rel}`);
  if (sub.name !== dep.name) throw usageError(`${origin}: dependency ${dep.name}: ${dep.repository} holds chart ${sub.name}`);
  if (!satisfies(dep.version, sub.version)) {
    throw usageError(`${origin}: dependency ${dep.name}: ${dep.repository} is version ${sub.version}, which does not satisfy "${dep.version}"`);
  }
  for (const [p, data] of files) out.set(`charts/${dep.name}/${p}`, data);
}

async function fetchDependency(dep: ChartDependency, version: string | undefined, origin: string, opts: DependencyBuildOptions): Promise<Chart> {
  const repository = dep.repository!;
  if (repository.startsWith('oci://')) {
    if (!opts.client) throw usageError(`${origin}: dependency ${dep.name} is in ${repository}; no registry client`);
    const base = `${repository.replace(/\/+$/, '')}/${dep.name}`;
    const parsed = parseReference(base.slice('oci://'.length));
    const tags = await opts.client.registry(parsed.registry).listTags(parsed.repository);
    // OCI tags cannot hold `+`: helm pushes 1.0.0+x as 1.0.0_x
    const versions = tags.map((t) => ({ name: dep.name, version: t.replaceAll('_', '+'), urls: [t] }));
    const picked = pickVersion(versions, version, `${origin}: dependency ${dep.name} in ${repository}`);
    if (!picked) {
      throw new FerryError(
        'not-found',
        `${origin}: dependency ${dep.name} in ${repository} has no version "${version ?? '*'}"; tags: ${tags.join(', ') || 'none'}`,
      );
    }
    return loadOciChart(`${base}:${picked.urls[0]}`, opts.client);
  }
  const repos = opts.repositories;
  if (!repos) throw usageError(`${origin}: dependency ${dep.name} is in ${repository}; no Helm repository client`);
  const named = /^(?:@|alias:)(.+)$/.exec(repository);
  let entry;
  if (named) {
    entry = await repos.find(named[1]!);
    if (!entry)
      throw usageError(`${origin}: dependency ${dep.name} names repository "${named[1]}", which is not configured (--repo ${named[1]}=URL, or helm repo add)`);
  } else if (/^https?:\/\//i.test(repository)) {
    entry = await repos.forUrl(repository);
  } else {
    throw usageError(`${origin}: dependency ${dep.name}: repository "${repository}" is not an http(s):// or oci:// URL, @name, alias:name or file://`);
  }
  const got = await repos.pull(entry, dep.name, version);
  return chartFromArchive(got.archive, `${origin}!charts/${dep.name}-${got.version}.tgz`);
}
