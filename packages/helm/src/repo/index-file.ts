/**
 * A Helm repository's `index.yaml` (helm's pkg/repo IndexFile): the versions of
 * each chart, with their archive `urls` and `digest`. Version choice follows
 * IndexFile.Get: an exact version string first, else the newest version that
 * satisfies the constraint with Masterminds/semver's rules (the constraint
 * engine of funcs/semver.ts); no constraint means `*`, the newest release
 * without a prerelease part.
 */
import { usageError } from '@ferry/oci-client';
import { parseYamlValue } from '../encoding.js';
import { compareSemver, parseSemver, semverSatisfies } from '../funcs/semver.js';
import { isMap } from '../template/exec.js';

export interface IndexVersion {
  name: string;
  version: string;
  urls: string[];
  /** The archive's sha256, hex (as `helm repo index` writes it), when the index has one. */
  digest?: string;
}

export type RepoIndex = Map<string, IndexVersion[]>;

/** Parses index.yaml; `where` names the repository in errors. Versions are sorted newest first, as helm sorts them. */
export function parseRepoIndex(source: string, where: string): RepoIndex {
  let doc: unknown;
  try {
    doc = parseYamlValue(source);
  } catch (e) {
    throw usageError(`${where}: index.yaml is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (!isMap(doc) || !isMap(doc.entries)) throw usageError(`${where}: index.yaml has no "entries"; is it a Helm chart repository?`);
  const out: RepoIndex = new Map();
  for (const [name, list] of Object.entries(doc.entries)) {
    if (!Array.isArray(list)) continue;
    const versions: IndexVersion[] = [];
    for (const v of list) {
      if (!isMap(v) || v.version === undefined || v.version === null) continue;
      const urls = Array.isArray(v.urls) ? v.urls.filter((u): u is string => typeof u === 'string' && u !== '') : [];
      const entry: IndexVersion = { name, version: String(v.version), urls };
      if (typeof v.digest === 'string' && v.digest !== '') entry.digest = v.digest;
      versions.push(entry);
    }
    out.set(name, versions.sort(newestFirst));
  }
  return out;
}

function newestFirst(a: IndexVersion, b: IndexVersion): number {
  const x = parseSemver(a.version);
  const y = parseSemver(b.version);
  if (x && y) return -compareSemver(x, y);
  return x ? -1 : y ? 1 : 0;
}

/** The version helm would pick, or undefined. Throws a usage error for a constraint that does not parse. */
export function pickVersion(versions: readonly IndexVersion[], constraint: string | undefined, where: string): IndexVersion | undefined {
  const wanted = constraint?.trim() || undefined;
  if (wanted) {
    const exact = versions.find((v) => v.version === wanted);
    if (exact) return exact;
  }
  const c = wanted ?? '*';
  try {
    semverSatisfies(c, '0.0.0');
  } catch (e) {
    throw usageError(`${where}: version "${c}" is neither a version nor a constraint (${(e as Error).message})`);
  }
  return versions.find((v) => parseSemver(v.version) !== undefined && semverSatisfies(c, v.version));
}

/**
 * helm's ResolveReferenceURL: an absolute chart URL as it is; a relative one
 * against the repository URL taken as a directory, keeping the repository's query.
 */
export function resolveChartUrl(repoUrl: string, ref: string): string {
  if (/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(ref)) return ref;
  const base = new URL(repoUrl);
  const query = base.search;
  base.search = '';
  base.hash = '';
  base.pathname = `${base.pathname.replace(/\/+$/, '')}/`;
  const resolved = new URL(ref, base);
  resolved.search = query;
  return resolved.toString();
}

/** The index URL of a repository: `index.yaml` joined to its path, query kept (helm's ChartRepository.DownloadIndexFile). */
export function indexUrl(repoUrl: string): string {
  const u = new URL(repoUrl);
  u.pathname = `${u.pathname.replace(/\/+$/, '')}/index.yaml`;
  return u.toString();
}
