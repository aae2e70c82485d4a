/**
 * Fetches charts from classic Helm repositories over ferry's transport (proxies,
 * retries, bounded bodies, TLS trust per repository): the index once per
 * repository and command, the chosen archive checked against the index's
 * digest, and its `.prov` file when the repository has one. Credentials go only
 * to the repository's own origin (helm's rule, unless pass_credentials_all), and
 * never into a message.
 */
import { createHash } from 'node:crypto';
import { FerryError, Transport, type TransportOptions, usageError } from '@ferry/oci-client';
import { MAX_CHART_BYTES } from '../chart-dir.js';
import { indexUrl, parseRepoIndex, pickVersion, type RepoIndex, resolveChartUrl } from './index-file.js';
import { configuredRepositories, type RepoEntry } from './repositories.js';

/** Largest index.yaml read (the biggest public repositories' indexes are tens of MiB). */
export const MAX_INDEX_BYTES = 64 * 1024 * 1024;
const MAX_PROVENANCE_BYTES = 1024 * 1024;
/** How many versions an error lists. */
const LISTED_VERSIONS = 15;

export interface RepoChart {
  /** The `.tgz` bytes. */
  archive: Buffer;
  /** The `.prov` file beside it, when the repository has one. */
  provenance?: Buffer;
  /** The archive's URL. */
  url: string;
  /** The repository, as messages name it. */
  repository: string;
  /** The version chosen from the index (for a chart named by URL: undefined). */
  version?: string;
}

export interface HelmRepositoriesOptions {
  /** `--repo NAME=URL` flags; they win over repositories.yaml. */
  repoFlags?: readonly string[];
  /** Entries already parsed (tests, libraries); used instead of reading repositories.yaml. */
  entries?: RepoEntry[];
  /** For HELM_REPOSITORY_CONFIG / XDG_CONFIG_HOME / HOME, and the proxies. */
  env?: NodeJS.ProcessEnv;
  /** The transport options of the command (CA file, insecure hosts, retries, proxies, logs). */
  transport?: TransportOptions;
  signal?: AbortSignal | undefined;
}

/** The repository as messages name it: `NAME (URL)`, or the URL of a repository given only by URL. */
export function repoLabel(repo: RepoEntry): string {
  return repo.name === repo.url ? repo.url : `${repo.name} (${repo.url})`;
}

function sameOrigin(a: string, b: string): boolean {
  return new URL(a).origin === new URL(b).origin;
}

function redact(url: string): string {
  const u = new URL(url);
  u.username = '';
  u.password = '';
  return u.toString();
}

export class HelmRepositories {
  private entries: Promise<RepoEntry[]> | undefined;
  private readonly transports = new Map<string, Transport>();
  private readonly indexes = new Map<string, Promise<RepoIndex>>();

  constructor(private readonly opts: HelmRepositoriesOptions = {}) {
    if (opts.entries) this.entries = Promise.resolve(opts.entries);
  }

  /** The configured repositories; repositories.yaml is read on first use only. */
  list(): Promise<RepoEntry[]> {
    this.entries ??= configuredRepositories(this.opts.repoFlags ?? [], this.opts.env);
    return this.entries;
  }

  async find(name: string): Promise<RepoEntry | undefined> {
    return (await this.list()).find((r) => r.name === name);
  }

  /** The configured repository a URL is under (its credentials and TLS settings apply), else one for the URL alone. */
  async forUrl(url: string): Promise<RepoEntry> {
    const list = await this.list();
    const under = list.find((r) => url === r.url || url.startsWith(`${r.url.replace(/\/+$/, '')}/`));
    if (under) return under;
    return { name: url, url };
  }

  /** The repository's index, read once per command. */
  index(repo: RepoEntry): Promise<RepoIndex> {
    let index = this.indexes.get(repo.url);
    if (!index) {
      index = this.get(repo, indexUrl(repo.url), 'index.yaml', MAX_INDEX_BYTES).then((bytes) =>
        parseRepoIndex(bytes!.toString('utf8'), `repository ${repoLabel(repo)}`),
      );
      this.indexes.set(repo.url, index);
      index.catch(() => this.indexes.delete(repo.url));
    }
    return index;
  }

  /** The archive of `chart` at the version helm would choose for `version` (exact, a constraint, or the newest release). */
  async pull(repo: RepoEntry, chart: string, version?: string): Promise<RepoChart> {
    const where = `repository ${repoLabel(repo)}`;
    const index = await this.index(repo);
    const versions = index.get(chart);
    if (!versions) {
      const names = [...index.keys()].sort();
      const shown = names.length > 20 ? `${names.slice(0, 20).join(', ')}, … (${names.length} in all)` : names.join(', ') || 'none';
      throw new FerryError('not-found', `${where} has no chart "${chart}"; its charts: ${shown}`);
    }
    const picked = pickVersion(versions, version, `${where}: chart ${chart}`);
    if (!picked) {
      const listed = versions.map((v) => v.version);
      const shown =
        listed.length > LISTED_VERSIONS ? `${listed.slice(0, LISTED_VERSIONS).join(', ')}, … (${listed.length} in all)` : listed.join(', ') || 'none';
      const wanted = version?.trim() ? `version "${version.trim()}"` : 'release version (only prereleases)';
      throw new FerryError('not-found', `${where}: chart ${chart} has no ${wanted}; versions: ${shown}`);
    }
    const first = picked.urls[0];
    if (!first) throw new FerryError('not-found', `${where}: chart ${chart} ${picked.version} has no urls in index.yaml`);
    const url = resolveChartUrl(repo.url, first);
    const archive = await this.archive(repo, url, `chart ${chart} ${picked.version}`);
    if (picked.digest) {
      const want = picked.digest.replace(/^sha256:/, '').toLowerCase();
      const got = createHash('sha256').update(archive).digest('hex');
      if (got !== want) {
        throw new FerryError(
          'integrity',
          `${where}: chart ${chart} ${picked.version} from ${redact(url)} has digest sha256:${got}, but index.yaml says sha256:${want}`,
        );
      }
    }
    const out: RepoChart = { archive, url: redact(url), repository: repoLabel(repo), version: picked.version };
    const prov = await this.get(repo, `${url}.prov`, 'provenance file', MAX_PROVENANCE_BYTES, true);
    if (prov) out.provenance = prov;
    return out;
  }

  /** A chart archive named by its URL (`https://…/chart-1.2.3.tgz`), with its `.prov` when there is one. */
  async pullUrl(url: string): Promise<RepoChart> {
    const repo = await this.forUrl(url);
    const archive = await this.archive(repo, url, 'chart');
    const out: RepoChart = { archive, url: redact(url), repository: repoLabel(repo) };
    const prov = await this.get(repo, `${url}.prov`, 'provenance file', MAX_PROVENANCE_BYTES, true);
    if (prov) out.provenance = prov;
    return out;
  }

  private async archive(repo: RepoEntry, url: string, what: string): Promise<Buffer> {
    return (await this.get(repo, url, what, MAX_CHART_BYTES))!;
  }

  private transportFor(repo: RepoEntry): Transport {
    const base = this.opts.transport ?? {};
    const caFile = repo.caFile ?? base.caFile;
    const host = new URL(repo.url).host;
    const insecure = [...(base.insecureRegistries ?? []), ...(repo.insecure ? [host] : [])];
    const key = `${caFile ?? ''}\0${insecure.join(',')}`;
    let t = this.transports.get(key);
    if (!t) {
      const env = base.env ?? this.opts.env;
      t = new Transport({ ...base, ...(caFile ? { caFile } : {}), insecureRegistries: insecure, ...(env ? { env } : {}) });
      this.transports.set(key, t);
    }
    return t;
  }

  /** GET within `maxBytes`; `optional` answers undefined for a file the repository does not have. */
  private async get(repo: RepoEntry, url: string, what: string, maxBytes: number, optional = false): Promise<Buffer | undefined> {
    const where = `repository ${repoLabel(repo)}`;
    const transport = this.transportFor(repo);
    const headers: Record<string, string> = {};
    if ((repo.username !== undefined || repo.password !== undefined) && (repo.passCredentialsAll || sameOrigin(url, repo.url))) {
      headers.authorization = `Basic ${Buffer.from(`${repo.username ?? ''}:${repo.password ?? ''}`).toString('base64')}`;
      if (new URL(url).protocol === 'http:') transport.warnOnce(`${where}: credentials are sent in clear over plain HTTP`);
    }
    const res = await transport.request({ method: 'GET', url, headers, maxBodyBytes: maxBytes, signal: this.opts.signal });
    const at = `${where}: ${what} ${redact(url)}`;
    if (optional && (res.status === 404 || res.status === 403 || res.status === 410)) return undefined;
    if (res.status === 401 || res.status === 403) {
      const hint = headers.authorization
        ? 'the credentials were refused'
        : 'it needs credentials: username and password in repositories.yaml (helm repo add --username), or --repo NAME=https://USER:PASSWORD@HOST/PATH';
      throw new FerryError('auth', `${at}: HTTP ${res.status}; ${hint}`, { status: res.status });
    }
    if (res.status === 404) throw new FerryError('not-found', `${at}: not found (HTTP 404)`, { status: 404 });
    if (res.status !== 200) throw new FerryError('registry', `${at}: HTTP ${res.status}`, { status: res.status });
    if (!res.bytes) throw new FerryError('unsupported', `${at} is larger than ${maxBytes / 1024 / 1024} MiB; refusing it`);
    return res.bytes;
  }

  async close(): Promise<void> {
    await Promise.all([...this.transports.values()].map((t) => t.close()));
    this.transports.clear();
  }
}

/** A chart named the way helm users name it: `NAME/CHART[@VERSION]`; undefined for anything else. */
export function parseRepoChartName(spec: string): { repo: string; chart: string; version?: string } | undefined {
  const m = /^([A-Za-z0-9][A-Za-z0-9._-]*)\/([A-Za-z0-9][A-Za-z0-9._-]*)(?:@(.+))?$/.exec(spec);
  if (!m) return undefined;
  const out: { repo: string; chart: string; version?: string } = { repo: m[1]!, chart: m[2]! };
  if (m[3] !== undefined) {
    if (m[3].trim() === '') throw usageError(`chart ${spec}: give a version after @`);
    out.version = m[3];
  }
  return out;
}
