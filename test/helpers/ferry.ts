// Runs the real `ferry` CLI as a child process, with its own HOME and
// DOCKER_CONFIG, and helpers to check what a copy left in a registry.
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { expect } from 'vitest';
import { registryFetch, type SeededImage, sha256Digest, skopeoInspectRaw, type TestRegistry } from '../harness/index.js';
import { makeTempDir, removeTempDir } from '../harness/process.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FERRY_MAIN = join(ROOT, 'packages', 'cli', 'dist', 'main.js');
const LOOPBACK_ONLY = pathToFileURL(join(ROOT, 'test', 'helpers', 'loopback-only.mjs')).href;

export interface FerryResult {
  code: number | null;
  stdout: string;
  stderr: string;
  /** Wall-clock time of the run. */
  ms: number;
}

export interface RunOptions {
  /** A FerryHome; its DOCKER_CONFIG and HOME are used. */
  home: FerryHome;
  stdin?: string;
  timeoutMs?: number;
  /** Extra environment, e.g. SOURCE_DATE_EPOCH. */
  env?: Record<string, string>;
}

/** Variables that would send traffic elsewhere or point ferry at someone else's config. */
const DROPPED_ENV = /^(https?_proxy|no_proxy|all_proxy|docker_config|home|xdg_config_home|helm_repository_config)$/i;

export function runFerry(args: string[], opts: RunOptions): Promise<FerryResult> {
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !DROPPED_ENV.test(key)));
  env.HOME = opts.home.dir;
  env.DOCKER_CONFIG = opts.home.dockerConfig;
  // Only loopback names resolve in ferry processes started by tests (see loopback-only.mjs).
  env.NODE_OPTIONS = [env.NODE_OPTIONS, `--import=${LOOPBACK_ONLY}`].filter(Boolean).join(' ');
  Object.assign(env, opts.env);
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, [FERRY_MAIN, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 45_000);
    child.on('error', reject);
    // A child that exits without reading its input must not fail the test with EPIPE.
    child.stdin.on('error', () => undefined);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({
        code,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        ms: Date.now() - started,
      });
    });
    child.stdin.end(opts.stdin ?? '');
  });
}

/** A temp HOME with a DOCKER_CONFIG directory inside it. */
export interface FerryHome {
  dir: string;
  dockerConfig: string;
  configFile: string;
  /** Writes config.json with `auths` for these registries (host -> user:password). */
  login(auths: Record<string, { user: string; password: string }>): Promise<void>;
  remove(): Promise<void>;
}

export async function makeFerryHome(): Promise<FerryHome> {
  const dir = await makeTempDir('ferry-home-');
  const dockerConfig = join(dir, 'docker-config');
  await mkdir(dockerConfig);
  const configFile = join(dockerConfig, 'config.json');
  return {
    dir,
    dockerConfig,
    configFile,
    async login(auths) {
      const entries = Object.entries(auths).map(([host, { user, password }]) => [host, { auth: Buffer.from(`${user}:${password}`).toString('base64') }]);
      await mkdir(dirname(configFile), { recursive: true });
      await writeFile(configFile, JSON.stringify({ auths: Object.fromEntries(entries) }));
    },
    remove: () => removeTempDir(dir),
  };
}

export function alice(): { user: string; password: string } {
  return { user: 'alice', password: 'alice-secret' };
}

/** An error run: the exit code, and exactly one line on stderr starting with "ferry: ", no stack. */
export function expectErrorLine(res: FerryResult, code: 1 | 2): string {
  const lines = res.stderr.split('\n').filter((l) => l !== '');
  expect({ code: res.code, lines }).toEqual({ code, lines: [expect.stringMatching(/^ferry: /)] });
  expect(res.stderr).not.toMatch(/^\s+at /m);
  expect(res.stdout).toBe('');
  return lines[0]!;
}

export interface CopyJson {
  source: string;
  destination: string;
  digest: string;
  upstreamDigest: string;
  mediaType: string;
  platforms: string[];
  blobs: { uploaded: number; mounted: number; skipped: number };
  bytes: number;
}

/** Parses the --json output of a successful copy. */
export function copyResult(res: FerryResult): CopyJson {
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout) as CopyJson;
}

/** Every config and layer blob of an image, once each. */
export function blobDigests(image: SeededImage): string[] {
  return [...image.blobs.keys()];
}

/**
 * Checks that `repo:tag` in `reg` is `image` byte for byte: the root manifest and
 * every child as skopeo reads them, and every blob as the registry serves it.
 */
export async function expectImageIn(reg: TestRegistry, repoAndTag: string, image: SeededImage): Promise<void> {
  const repo = repoAndTag.slice(0, repoAndTag.lastIndexOf(':'));
  const root = await skopeoInspectRaw(reg, repoAndTag);
  expect(sha256Digest(root)).toBe(image.digest);
  if (image.indexBytes) expect(root.equals(image.indexBytes)).toBe(true);
  for (const m of image.manifests) {
    const raw = await skopeoInspectRaw(reg, `${repo}@${m.digest}`);
    expect(raw.equals(m.bytes), `manifest ${m.platform}`).toBe(true);
  }
  for (const [digest, bytes] of image.blobs) {
    const res = await registryFetch(reg, `/v2/${repo}/blobs/${digest}`);
    expect(res.status, `blob ${digest}`).toBe(200);
    const body = Buffer.from(await res.arrayBuffer());
    expect(sha256Digest(body)).toBe(digest);
    expect(body.length).toBe(bytes.length);
  }
}

/** HEAD of a blob or manifest path in `reg` (as alice when it has auth): the status. */
export async function headStatus(reg: TestRegistry, path: string, accept?: string): Promise<number> {
  const res = await registryFetch(reg, path, { method: 'HEAD', headers: accept ? { accept } : {} });
  await res.body?.cancel();
  return res.status;
}

/** A long-running `ferry serve` child: its address once it printed its start-up line. */
export interface ServeProcess {
  host: string;
  child: import('node:child_process').ChildProcess;
  stderr(): string;
  /** SIGTERM, then the exit code. */
  stop(): Promise<number | null>;
}

/** Starts `ferry serve ARGS --listen 127.0.0.1:0` and waits for its start-up line. */
export function startServe(args: string[], opts: RunOptions): Promise<ServeProcess> {
  const env: NodeJS.ProcessEnv = Object.fromEntries(Object.entries(process.env).filter(([key]) => !DROPPED_ENV.test(key)));
  env.HOME = opts.home.dir;
  env.DOCKER_CONFIG = opts.home.dockerConfig;
  env.NODE_OPTIONS = [env.NODE_OPTIONS, `--import=${LOOPBACK_ONLY}`].filter(Boolean).join(' ');
  const child = spawn(process.execPath, [FERRY_MAIN, 'serve', ...args, '--listen', '127.0.0.1:0'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return new Promise((resolvePromise, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ferry serve did not start: ${err}`));
    }, opts.timeoutMs ?? 30_000);
    child.stdout!.resume();
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString('utf8');
      const m = /listening on https?:\/\/(127\.0\.0\.1:\d+)/.exec(err);
      if (m) {
        clearTimeout(timer);
        resolvePromise({
          host: m[1]!,
          child,
          stderr: () => err,
          stop: async () => {
            if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
            return exited;
          },
        });
      }
    });
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`ferry serve exited with ${code} before listening: ${err}`));
    });
  });
}
