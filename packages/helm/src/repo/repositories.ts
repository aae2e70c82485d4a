/**
 * Helm chart repositories by name: helm's own `repositories.yaml` (what `helm repo
 * add` writes; `$HELM_REPOSITORY_CONFIG`, else `$XDG_CONFIG_HOME/helm` or
 * `~/.config/helm`) and `--repo NAME=URL` flags, which win over it. The entry's
 * fields are helm's pkg/repo Entry: url, username/password, caFile,
 * insecure_skip_tls_verify, pass_credentials_all.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { usageError } from '@ferry/oci-client';
import { parseYamlValue } from '../encoding.js';
import { isMap } from '../template/exec.js';

export interface RepoEntry {
  /** The name charts are addressed by (`NAME/CHART`); for a repository given only by URL, the URL. */
  name: string;
  /** The repository URL, without credentials. */
  url: string;
  username?: string;
  password?: string;
  /** A PEM CA bundle trusted for this repository. */
  caFile?: string;
  /** Accept any TLS certificate of this repository's host. */
  insecure?: boolean;
  /** Send the credentials to chart URLs on other hosts too (helm's pass_credentials_all). */
  passCredentialsAll?: boolean;
}

/** Where helm keeps repositories.yaml. */
export function helmRepositoryConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.HELM_REPOSITORY_CONFIG) return env.HELM_REPOSITORY_CONFIG;
  const config = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config');
  return join(config, 'helm', 'repositories.yaml');
}

function text(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Parses repositories.yaml; entries without a name or URL are errors naming the file. */
export function parseRepositoriesYaml(source: string, file: string): RepoEntry[] {
  let doc: unknown;
  try {
    doc = parseYamlValue(source);
  } catch (e) {
    throw usageError(`${file} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return [];
  if (!isMap(doc)) throw usageError(`${file}: expected a map with "repositories"`);
  const list = doc.repositories ?? [];
  if (!Array.isArray(list)) throw usageError(`${file}: "repositories" must be a list`);
  return list.map((r, i) => {
    const name = isMap(r) ? text(r.name) : undefined;
    const url = isMap(r) ? text(r.url) : undefined;
    if (!isMap(r) || !name || !url) throw usageError(`${file}: repositories[${i}] needs a name and a url`);
    if (text(r.certFile) || text(r.keyFile)) {
      throw usageError(`${file}: repository ${name} uses a client certificate (certFile/keyFile), which ferry does not support`);
    }
    const entry: RepoEntry = { name, url: checkedUrl(url, `${file}: repository ${name}`) };
    const username = text(r.username);
    const password = text(r.password);
    const caFile = text(r.caFile);
    if (username !== undefined) entry.username = username;
    if (password !== undefined) entry.password = password;
    if (caFile !== undefined) entry.caFile = caFile;
    if (r.insecure_skip_tls_verify === true) entry.insecure = true;
    if (r.pass_credentials_all === true) entry.passCredentialsAll = true;
    return entry;
  });
}

function checkedUrl(url: string, what: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw usageError(`${what}: "${url}" is not a URL`);
  }
  if (u.protocol !== 'https:' && u.protocol !== 'http:') throw usageError(`${what}: ${u.protocol}// is not a Helm repository scheme (http:// or https://)`);
  return url;
}

/**
 * `--repo NAME=URL`. Credentials may be written in the URL (`https://USER:PASSWORD@host/…`);
 * they are taken out of it, so no message ever shows them.
 */
export function parseRepoFlag(flag: string): RepoEntry {
  const eq = flag.indexOf('=');
  const name = eq > 0 ? flag.slice(0, eq) : '';
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]*$/.test(name)) throw usageError(`--repo ${JSON.stringify(flag.replace(/\/\/[^@/]*@/, '//…@'))}: use --repo NAME=URL`);
  const raw = flag.slice(eq + 1);
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw usageError(`--repo ${name}: "${raw.replace(/\/\/[^@/]*@/, '//…@')}" is not a URL`);
  }
  const entry: RepoEntry = { name, url: '' };
  if (u.username) entry.username = decodeURIComponent(u.username);
  if (u.password) entry.password = decodeURIComponent(u.password);
  u.username = '';
  u.password = '';
  entry.url = checkedUrl(u.toString(), `--repo ${name}`);
  return entry;
}

/** The configured repositories: --repo flags first (they win), then helm's repositories.yaml when it exists. */
export async function configuredRepositories(flags: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<RepoEntry[]> {
  const out = flags.map(parseRepoFlag);
  const file = helmRepositoryConfigPath(env);
  let source: string | undefined;
  try {
    source = await readFile(file, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // an explicitly named file must exist; helm's default one need not
    if (code !== 'ENOENT' || env.HELM_REPOSITORY_CONFIG) throw usageError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  if (source !== undefined) {
    for (const entry of parseRepositoriesYaml(source, file)) if (!out.some((o) => o.name === entry.name)) out.push(entry);
  }
  return out;
}
