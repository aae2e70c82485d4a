/**
 * Registry credentials from the Docker client configuration (DESIGN.md §4):
 * `~/.docker/config.json` (or `$DOCKER_CONFIG/config.json`) with its `auths`,
 * `credsStore` and `credHelpers`, the same file `docker login` writes.
 *
 * Resolution follows docker/cli (`cli/config/configfile`, `cli/config/credentials`),
 * the docker-credential-helpers client protocol and go-containerregistry's
 * `authn.DefaultKeychain`:
 *  - Docker Hub is stored under the historical key `https://index.docker.io/v1/`,
 *    and that key is also what credential helpers get as ServerURL for Docker Hub;
 *    every other registry is keyed (and sent to helpers) by its bare host[:port].
 *  - `auths` keys are matched exactly first, then by their hostname, as docker's
 *    `ConvertToHostname` does for legacy keys such as `https://host/v1/`.
 *  - `auth` is base64("user:password"); it wins over `username`/`password` fields.
 *  - A helper that answers `Username: "<token>"` hands out an identity token.
 *  - A helper exiting non-zero with "credentials not found" means: none there.
 *
 * Secrets never reach a log line or an error message: helper output is only quoted
 * when it cannot hold one, and JSON parse errors are reduced to a line and column.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { promises as fs, constants as fsConstants } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { FerryError, usageError } from './errors.js';

/** What a registry login needs: a username and password, or an OAuth2 identity (refresh) token. */
export type Credential = { username: string; password: string } | { identityToken: string; username?: string };

export interface CredentialStoreOptions {
  /** The docker config file; default `dockerConfigPath(env)`. */
  configPath?: string;
  /** Environment for `DOCKER_CONFIG` and for finding and running credential helpers; default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Credentials given directly (e.g. on the command line), keyed by registry host[:port]; they win over the config file. */
  explicit?: Map<string, Credential>;
}

/** The key Docker uses for Docker Hub in `auths` and towards credential helpers. */
export const DOCKER_HUB_AUTH_KEY = 'https://index.docker.io/v1/';

/** Registry names that all mean Docker Hub. The normalized name is `docker.io`. */
const DOCKER_HUB_HOSTS: readonly string[] = ['docker.io', 'index.docker.io', 'registry-1.docker.io'];

/** Docker's standard "not found" answer is "credentials not found in native keychain". */
const NOT_FOUND_RE = /credentials not found/i;

const TOKEN_USERNAME = '<token>';

/** `$DOCKER_CONFIG/config.json` if DOCKER_CONFIG is set, else `~/.docker/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG;
  if (dir !== undefined && dir !== '') return path.resolve(dir, 'config.json');
  return path.join(os.homedir(), '.docker', 'config.json');
}

/**
 * Decodes a config `auth` field, base64("user:password"), as docker's `decodeAuth`
 * does: split at the first colon, the username must not be empty, trailing NULs of
 * the password are dropped. Throws a FerryError('usage') that never quotes the value.
 */
export function parseBasicAuth(auth: string): { username: string; password: string } {
  const trimmed = auth.trim();
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(trimmed) || trimmed.length % 4 === 1) {
    throw usageError('the auth value is not base64');
  }
  const decoded = Buffer.from(trimmed, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) throw usageError('the auth value is not base64 of "username:password"');
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1).replace(/\0+$/, '') };
}

/** base64("user:password"), the `auth` field docker writes. */
export function encodeBasicAuth(username: string, password: string): string {
  return Buffer.from(`${username}:${password}`, 'utf8').toString('base64');
}

/**
 * The registry a config key or user string names, as host[:port] in lower case, with
 * every Docker Hub alias mapped to `docker.io`. Like docker's `ConvertToHostname`:
 * `https://host:5000/v1/` → `host:5000`.
 */
export function registryOfAuthKey(key: string): string {
  let s = key.trim();
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(s);
  if (scheme) s = s.slice(scheme[0].length);
  s = s.split(/[/?#]/, 1)[0] ?? '';
  const at = s.lastIndexOf('@');
  if (at >= 0) s = s.slice(at + 1);
  s = s.toLowerCase();
  return DOCKER_HUB_HOSTS.includes(s) ? 'docker.io' : s;
}

/** The key `docker login` uses for a registry: the bare host, or the historical URL for Docker Hub. */
function authKeyFor(registry: string): string {
  return registry === 'docker.io' ? DOCKER_HUB_AUTH_KEY : registry;
}

// ---------------------------------------------------------------------------
// The config file

const nullableString = z.string().nullish();

const authEntrySchema = z.looseObject({
  auth: nullableString,
  username: nullableString,
  password: nullableString,
  identitytoken: nullableString,
});

const configSchema = z.looseObject({
  auths: z.record(z.string(), authEntrySchema.nullable()).nullish(),
  credsStore: nullableString,
  credHelpers: z.record(z.string(), z.string()).nullish(),
});

type AuthEntry = z.infer<typeof authEntrySchema>;

interface DockerConfig {
  /** Entries in file order; their `auth` already checked to decode. */
  auths: [key: string, entry: AuthEntry][];
  credsStore: string | undefined;
  credHelpers: [key: string, helper: string][];
}

const EMPTY_CONFIG: DockerConfig = { auths: [], credsStore: undefined, credHelpers: [] };

/**
 * Go's encoding/json matches object keys case-insensitively (an exact match wins).
 * Renames the known keys of `obj` to their canonical spelling so zod sees them.
 */
function canonicalKeys(obj: Record<string, unknown>, names: readonly string[]): Record<string, unknown> {
  const out: Record<string, unknown> = { ...obj };
  for (const name of names) {
    if (Object.hasOwn(obj, name)) continue;
    const other = Object.keys(obj).find((k) => k.toLowerCase() === name.toLowerCase());
    if (other !== undefined) out[name] = obj[other];
  }
  return out;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The top-level key that holds `name` in a raw config object (case-insensitive like Go), or `name`. */
function existingKey(obj: Record<string, unknown>, name: string): string {
  if (Object.hasOwn(obj, name)) return name;
  return Object.keys(obj).find((k) => k.toLowerCase() === name.toLowerCase()) ?? name;
}

function configError(configPath: string, what: string): FerryError {
  return usageError(`cannot read docker config ${configPath}: ${what}. Fix the file or point DOCKER_CONFIG at another directory.`);
}

/** A JSON syntax error as "line L, column C", never quoting the text (it may hold a password). */
function describeJsonError(text: string, err: unknown): string {
  const m = err instanceof Error ? /position (\d+)/.exec(err.message) : null;
  if (m?.[1] === undefined) return 'it is not valid JSON';
  const pos = Math.min(Number(m[1]), text.length);
  const before = text.slice(0, pos).split('\n');
  const line = before.length;
  const column = (before[before.length - 1]?.length ?? 0) + 1;
  return `it is not valid JSON (line ${line}, column ${column})`;
}

function describePath(p: readonly PropertyKey[]): string {
  let s = '';
  for (const part of p) {
    if (typeof part === 'number') s += `[${part}]`;
    else if (s === '' && /^[A-Za-z_][A-Za-z0-9_]*$/.test(String(part))) s += String(part);
    else if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(String(part))) s += `.${String(part)}`;
    else s += `[${JSON.stringify(String(part))}]`;
  }
  return s === '' ? 'the top level' : s;
}

/** Reads the raw JSON object; undefined when the file does not exist. Empty file = `{}` (as docker). */
async function readRawConfig(configPath: string): Promise<Record<string, unknown> | undefined> {
  let text: string;
  try {
    text = await fs.readFile(configPath, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw configError(configPath, code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (code ?? String(e)));
  }
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  if (text.trim() === '') return {};
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw configError(configPath, describeJsonError(text, e));
  }
  if (!isPlainObject(raw)) throw configError(configPath, 'it is not a JSON object');
  return raw;
}

function parseConfig(configPath: string, raw: Record<string, unknown>): DockerConfig {
  const top = canonicalKeys(raw, ['auths', 'credsStore', 'credHelpers']);
  const rawAuths = top.auths;
  if (isPlainObject(rawAuths)) {
    const fixed: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(rawAuths)) {
      fixed[k] = isPlainObject(v) ? canonicalKeys(v, ['auth', 'username', 'password', 'identitytoken']) : v;
    }
    top.auths = fixed;
  }
  const parsed = configSchema.safeParse(top);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    // zod messages name the expected and received types, never the value.
    const what = issue ? `${describePath(issue.path)}: ${issue.message}` : 'unexpected content';
    throw configError(configPath, what);
  }
  const auths: [string, AuthEntry][] = [];
  for (const [key, entry] of Object.entries(parsed.data.auths ?? {})) {
    if (entry === null) continue;
    if (entry.auth) {
      try {
        parseBasicAuth(entry.auth);
      } catch {
        throw configError(configPath, `${describePath(['auths', key, 'auth'])} is not base64 of "username:password"`);
      }
    }
    auths.push([key, entry]);
  }
  return {
    auths,
    credsStore: parsed.data.credsStore || undefined,
    credHelpers: Object.entries(parsed.data.credHelpers ?? {}).filter(([, h]) => h !== ''),
  };
}

/** The credential an `auths` entry holds, or undefined when it holds none (e.g. `{}` next to a credsStore). */
function credentialOfEntry(entry: AuthEntry): Credential | undefined {
  let username = entry.username ?? '';
  let password = entry.password ?? '';
  if (entry.auth) ({ username, password } = parseBasicAuth(entry.auth));
  if (entry.identitytoken) {
    return username === '' ? { identityToken: entry.identitytoken } : { identityToken: entry.identitytoken, username };
  }
  if (username === '' && password === '') return undefined;
  return { username, password };
}

/**
 * Values of a key→value list that apply to `registry`, best first: exact keys in docker's
 * preferred spellings, then any other key naming the same host (file order).
 */
function matching<T>(entries: [string, T][], registry: string): T[] {
  const exact =
    registry === 'docker.io'
      ? [DOCKER_HUB_AUTH_KEY, ...DOCKER_HUB_HOSTS]
      : [registry, `https://${registry}`, `https://${registry}/`, `http://${registry}`, `http://${registry}/`];
  const out: T[] = [];
  const used = new Set<string>();
  for (const k of exact) {
    const hit = entries.find(([key]) => key === k);
    if (hit) {
      out.push(hit[1]);
      used.add(hit[0]);
    }
  }
  for (const [key, value] of entries) {
    if (!used.has(key) && registryOfAuthKey(key) === registry) out.push(value);
  }
  return out;
}

// ---------------------------------------------------------------------------
// Credential helpers (docker-credential-helpers protocol)

const helperGetSchema = z.looseObject({
  ServerURL: z.string().nullish(),
  Username: z.string().nullish(),
  Secret: z.string().nullish(),
});

interface HelperRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

async function isExecutableFile(p: string): Promise<boolean> {
  try {
    const st = await fs.stat(p);
    if (!st.isFile()) return false;
    if (process.platform !== 'win32') await fs.access(p, fsConstants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Finds `name` on the PATH of `env` (PATHEXT on Windows). */
async function findOnPath(name: string, env: NodeJS.ProcessEnv): Promise<string | undefined> {
  const pathVar = env.PATH ?? env.Path ?? '';
  const exts = process.platform === 'win32' ? ['', ...(env.PATHEXT ?? '.EXE;.CMD;.BAT;.COM').split(';').filter(Boolean)] : [''];
  for (const dir of pathVar.split(path.delimiter)) {
    if (dir === '') continue;
    for (const ext of exts) {
      const candidate = path.join(dir, name + ext);
      if (await isExecutableFile(candidate)) return candidate;
    }
  }
  return undefined;
}

function runHelper(file: string, action: string, input: string, env: NodeJS.ProcessEnv): Promise<HelperRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, [action], { env, stdio: ['pipe', 'pipe', 'pipe'], windowsHide: true });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    // A helper may exit without reading its input; that EPIPE is not our failure.
    child.stdin.on('error', () => {});
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
    child.stdin.end(input);
  });
}

/** A short excerpt of helper output for an error message, or '' when it might carry a secret. */
function safeExcerpt(run: HelperRun, secrets: readonly string[]): string {
  const text = (run.stderr.trim() || run.stdout.trim()).split('\n')[0]?.trim() ?? '';
  if (text === '' || /secret|password|token|[{}]/i.test(text)) return '';
  if (secrets.some((s) => s.length >= 3 && text.includes(s))) return '';
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

function describeExit(run: HelperRun): string {
  return run.signal ? `was killed by ${run.signal}` : `exited with status ${run.code ?? 'unknown'}`;
}

// ---------------------------------------------------------------------------

/**
 * Credentials for registries, resolved like the docker CLI: explicit credentials,
 * then `credHelpers[host]`, then `credsStore`, then `auths`. A helper that has no
 * credentials for the registry lets the next source answer. Results are cached per
 * registry for the life of the store.
 */
export class CredentialStore {
  readonly configPath: string;
  private readonly env: NodeJS.ProcessEnv;
  private readonly explicit = new Map<string, Credential>();
  private readonly cache = new Map<string, Promise<Credential | undefined>>();
  private config: Promise<DockerConfig> | undefined;
  /** Serializes store() calls of this instance (read-modify-write of the file). */
  private writes: Promise<unknown> = Promise.resolve();

  constructor(options: CredentialStoreOptions = {}) {
    this.env = options.env ?? process.env;
    this.configPath = options.configPath ?? dockerConfigPath(this.env);
    for (const [registry, cred] of options.explicit ?? []) {
      this.explicit.set(registryOfAuthKey(registry), cred);
    }
  }

  /** The credential for a registry (normalized host[:port]; Docker Hub is `docker.io`), or undefined for anonymous. */
  get(registry: string): Promise<Credential | undefined> {
    const reg = registryOfAuthKey(registry);
    let hit = this.cache.get(reg);
    if (!hit) {
      hit = this.resolve(reg);
      this.cache.set(reg, hit);
      // A failure is not remembered: a later call may try again.
      hit.catch(() => {
        if (this.cache.get(reg) === hit) this.cache.delete(reg);
      });
    }
    return hit;
  }

  /**
   * Saves a login as `docker login` does: through `credHelpers[host]` or `credsStore`
   * when configured (leaving an empty `auths` entry, as docker does), otherwise as
   * `auths[key].auth` in the config file, rewritten atomically with mode 0600.
   */
  store(registry: string, cred: { username: string; password: string }): Promise<void> {
    const run = this.writes.then(() => this.storeNow(registryOfAuthKey(registry), cred));
    this.writes = run.catch(() => {});
    return run;
  }

  private loadConfig(): Promise<DockerConfig> {
    if (!this.config) {
      const p = readRawConfig(this.configPath).then((raw) => (raw === undefined ? EMPTY_CONFIG : parseConfig(this.configPath, raw)));
      this.config = p;
      p.catch(() => {
        if (this.config === p) this.config = undefined;
      });
    }
    return this.config;
  }

  private async resolve(registry: string): Promise<Credential | undefined> {
    const given = this.explicit.get(registry);
    if (given) return given;
    const config = await this.loadConfig();
    const helpers = matching(config.credHelpers, registry);
    if (config.credsStore) helpers.push(config.credsStore);
    const tried = new Set<string>();
    for (const helper of helpers) {
      if (tried.has(helper)) continue;
      tried.add(helper);
      const cred = await this.helperGet(helper, registry);
      if (cred) return cred;
    }
    for (const entry of matching(config.auths, registry)) {
      const cred = credentialOfEntry(entry);
      if (cred) return cred;
    }
    return undefined;
  }

  private async helperPath(helper: string, registry: string, operation: string): Promise<string> {
    const name = `docker-credential-${helper}`;
    if (/[/\\]/.test(helper)) {
      throw new FerryError('auth', `credential helper name "${helper}" in ${this.configPath} is not valid.`, {
        registry,
        operation,
      });
    }
    const file = await findOnPath(name, this.env);
    if (!file) {
      throw new FerryError(
        'auth',
        `credential helper ${name}, configured in ${this.configPath} for ${registry}, was not found on PATH. ` +
          'Install it, or remove it from the config file.',
        { registry, operation },
      );
    }
    return file;
  }

  /** Runs `docker-credential-<helper> <action>`; a helper that cannot start is an auth error. */
  private async startHelper(helper: string, action: 'get' | 'store', input: string, registry: string, operation: string): Promise<HelperRun> {
    const file = await this.helperPath(helper, registry, operation);
    try {
      return await runHelper(file, action, input, this.env);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      throw new FerryError('auth', `credential helper docker-credential-${helper} could not be started for ${registry} (${code}).`, {
        registry,
        operation,
      });
    }
  }

  private async helperGet(helper: string, registry: string): Promise<Credential | undefined> {
    const name = `docker-credential-${helper}`;
    const operation = 'reading credentials';
    const run = await this.startHelper(helper, 'get', authKeyFor(registry), registry, operation);
    if (run.code !== 0) {
      if (NOT_FOUND_RE.test(run.stdout) || NOT_FOUND_RE.test(run.stderr)) return undefined;
      const excerpt = safeExcerpt(run, []);
      throw new FerryError(
        'auth',
        `credential helper ${name} failed to get credentials for ${registry}: it ${describeExit(run)}` +
          `${excerpt ? ` (${excerpt})` : ''}. Check the helper (is it logged in or unlocked?).`,
        { registry, operation },
      );
    }
    let parsed: z.infer<typeof helperGetSchema>;
    try {
      parsed = helperGetSchema.parse(JSON.parse(run.stdout));
    } catch {
      throw new FerryError('auth', `credential helper ${name} returned malformed output for ${registry} (expected JSON with Username and Secret).`, {
        registry,
        operation,
      });
    }
    const username = parsed.Username ?? '';
    const secret = parsed.Secret ?? '';
    if (username === TOKEN_USERNAME) return secret === '' ? undefined : { identityToken: secret };
    if (username === '' && secret === '') return undefined;
    return { username, password: secret };
  }

  private async helperStore(helper: string, registry: string, cred: { username: string; password: string }): Promise<void> {
    const name = `docker-credential-${helper}`;
    const operation = 'storing credentials';
    const input = `${JSON.stringify({ ServerURL: authKeyFor(registry), Username: cred.username, Secret: cred.password })}\n`;
    const run = await this.startHelper(helper, 'store', input, registry, operation);
    if (run.code !== 0) {
      const excerpt = safeExcerpt(run, [cred.password, cred.username]);
      throw new FerryError(
        'auth',
        `credential helper ${name} failed to store credentials for ${registry}: it ${describeExit(run)}` + `${excerpt ? ` (${excerpt})` : ''}.`,
        { registry, operation },
      );
    }
  }

  private async storeNow(registry: string, cred: { username: string; password: string }): Promise<void> {
    if (registry === '') throw usageError('cannot store credentials: the registry name is empty.');
    if (cred.username === '') throw usageError(`cannot store credentials for ${registry}: the username is empty.`);
    if (cred.username.includes(':')) {
      throw usageError(`cannot store credentials for ${registry}: the username must not contain ":".`);
    }
    const raw = (await readRawConfig(this.configPath)) ?? {};
    const config = parseConfig(this.configPath, raw);
    const key = authKeyFor(registry);
    const helper = matching(config.credHelpers, registry)[0] ?? config.credsStore;
    let entry: Record<string, unknown>;
    let changed = true;
    if (helper !== undefined) {
      await this.helperStore(helper, registry, cred);
      // Like docker, keep an empty entry in the file next to a helper, and drop any
      // plain-text credential left under the same key.
      entry = {};
      const current = config.auths.find(([k]) => k === key)?.[1];
      changed = current === undefined || credentialOfEntry(current) !== undefined;
    } else {
      entry = { auth: encodeBasicAuth(cred.username, cred.password) };
    }
    if (changed) {
      const authsKey = existingKey(raw, 'auths');
      const oldAuths = raw[authsKey];
      const auths: Record<string, unknown> = isPlainObject(oldAuths) ? { ...oldAuths } : {};
      auths[key] = entry;
      await writeConfigAtomically(this.configPath, { ...raw, [authsKey]: auths });
    }
    this.config = undefined;
    this.cache.set(registry, Promise.resolve({ username: cred.username, password: cred.password }));
  }
}

/**
 * Writes the config as docker's `ConfigFile.Save` does: directory created with 0700,
 * a temporary file in the same directory (mode 0600), flushed, then renamed over the
 * target, so a crash leaves the old file or the new one, never half of one. A symlinked
 * config is written through to its target.
 */
async function writeConfigAtomically(configPath: string, data: Record<string, unknown>): Promise<void> {
  let target = configPath;
  try {
    target = await fs.realpath(configPath);
  } catch {
    try {
      // A dangling symlink: write the file it points at.
      const link = await fs.readlink(configPath);
      target = path.resolve(path.dirname(configPath), link);
    } catch {
      target = configPath;
    }
  }
  const dir = path.dirname(target);
  try {
    await fs.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (e) {
    throw usageError(`cannot create ${dir} for the docker config: ${(e as NodeJS.ErrnoException).code ?? 'error'}.`);
  }
  const tmp = path.join(dir, `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
  const text = `${JSON.stringify(data, null, '\t')}\n`;
  let handle: fs.FileHandle | undefined;
  try {
    handle = await fs.open(tmp, 'wx', 0o600);
    await handle.chmod(0o600);
    await handle.writeFile(text, 'utf8');
    await handle.sync();
    await handle.close();
    handle = undefined;
    await fs.rename(tmp, target);
  } catch (e) {
    await handle?.close().catch(() => {});
    await fs.rm(tmp, { force: true }).catch(() => {});
    throw usageError(`cannot write docker config ${target}: ${(e as NodeJS.ErrnoException).code ?? 'error'}. Check the permissions of ${dir}.`);
  }
}
