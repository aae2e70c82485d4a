// ferry benchmarks: node bench/dist/main.js [pack|load|all ...] [--corpus a,b,c] [--runs N] [-j N] ...
// Generates (or reuses) the corpora, starts a fresh registry:2 on 127.0.0.1 for
// each, and times the tools in alternating order. Markdown on stdout, JSON in
// bench/results/.
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { type Corpus, type CorpusId, ensureCorpus, MB } from './corpus.js';
import { loadSuite } from './load.js';
import { packSuite } from './pack.js';
import { haveGnuTime, removeOnExit, run } from './proc.js';
import { type ProfileSummary, summarizeProfile } from './profile.js';
import { serveSuite } from './serve-suite.js';
import { type Measurement, median, medianWall, type Suite, type SuiteInstance } from './suite.js';

const BENCH_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const REPO_DIR = resolve(BENCH_DIR, '..');

/** Suites by name: each runs over the same cached corpora with the same runner. */
const SUITES: Record<string, Suite> = { pack: packSuite, load: loadSuite, serve: serveSuite };

const USAGE = `usage: node bench/dist/main.js [SUITE...] [options]

SUITE            ${Object.keys(SUITES).join(' | ')} | all (default pack); several run one after another
images           ferry images against helm template on a chart: images [--runs N] [--chart DIR] [--results DIR]
--corpus LIST    corpora to run, from a,b,c,d (default a,b,c; d: 300 small images)
--runs N         timed runs per tool and corpus, alternating tools (default 3)
-j, --jobs N     ferry's -j (default 8)
--tools LIST     only these tools (default all; pack: ferry,skopeo,floor,http-floor,node-minimal, and
                 ferry-noref (pack --referrers none) when named, and ferry-base (pack with the
                 ferry whose packages/cli/dist/main.js FERRY_BENCH_BASE names) when named;
                 load: ferry,skopeo,floor,node-minimal; serve: ferry-serve,registry:2)
--cpu-prof       after the timed runs, one untimed ferry run under node --cpu-prof; summary in the results
--trace          after the timed runs, one untimed ferry run with a request trace: time per phase
--work DIR       cache and scratch directory (default bench/.work)
--results DIR    where the JSON results go (default bench/results)
--ferry FILE     ferry's CLI entry point (default: a snapshot of packages/*/dist taken at start)
--exe FILE       the single-file ferry, timed as ferry-exe in pack and load (default: a copy of
                 dist/ferry-linux-ARCH taken at start, when npm run build:exe has made it)
`;

function log(line: string): void {
  process.stderr.write(`[bench] ${line}\n`);
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(2);
}

interface CorpusResult {
  corpus: Omit<Corpus, 'dir' | 'blobs'> & { blobCount: number };
  measurements: Measurement[];
  medians: Record<string, number>;
  targets: Array<{ description: string; value: string; met: boolean | undefined }>;
  profile?: ProfileSummary | undefined;
  trace?: unknown;
  traceText?: string | undefined;
}

async function versionOf(cmd: string, args: string[]): Promise<string> {
  try {
    return (await run(cmd, args)).split('\n')[0]!.trim();
  } catch {
    return 'unknown';
  }
}

/**
 * A private copy of ferry's built packages (dist, package.json and the
 * workspace's node_modules links), so that others rebuilding packages/NAME/dist
 * during a run cannot change the program under test halfway. Third-party
 * dependencies stay shared through a link to the root node_modules.
 */
async function snapshotFerry(workDir: string): Promise<string> {
  const dir = join(workDir, `ferry-snapshot-${process.pid}`);
  await rm(dir, { recursive: true, force: true });
  removeOnExit(dir);
  await mkdir(join(dir, 'packages'), { recursive: true });
  await symlink(join(REPO_DIR, 'node_modules'), join(dir, 'node_modules'));
  for (const pkg of await readdir(join(REPO_DIR, 'packages'))) {
    const from = join(REPO_DIR, 'packages', pkg);
    if (!existsSync(join(from, 'dist'))) continue;
    for (const part of ['package.json', 'dist', 'node_modules']) {
      if (existsSync(join(from, part))) {
        await cp(join(from, part), join(dir, 'packages', pkg, part), { recursive: true, verbatimSymlinks: true });
      }
    }
  }
  return join(dir, 'packages', 'cli', 'dist', 'main.js');
}

/**
 * The single file to time, copied (as snapshotFerry does) so that a rebuild during
 * the run cannot change it: --exe FILE, else this machine's dist/ferry-linux-ARCH if built.
 */
async function singleFile(given: string | undefined, workDir: string): Promise<string | undefined> {
  const arch = process.arch === 'arm64' ? 'arm64' : 'x64';
  const file = resolve(given ?? join(REPO_DIR, 'dist', `ferry-linux-${arch}`));
  if (!existsSync(file)) {
    if (given) throw new Error(`--exe ${given} does not exist`);
    log(`no ${file} (npm run build:exe makes it): ferry-exe is not timed`);
    return undefined;
  }
  const copy = join(workDir, 'ferry-exe');
  await rm(copy, { force: true });
  await cp(file, copy);
  log(`ferry-exe: ${file}, built ${(await stat(file)).mtime.toISOString()}; ${(await run(copy, ['--version'])).trim().replace(/\n/g, ', ')}`);
  return copy;
}

/** When ferry was last built: the newest .js under packages/NAME/dist. */
async function ferryBuiltAt(): Promise<string | undefined> {
  let newest = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.js')) newest = Math.max(newest, (await stat(p)).mtimeMs);
    }
  };
  for (const pkg of await readdir(join(REPO_DIR, 'packages')).catch(() => [])) await walk(join(REPO_DIR, 'packages', pkg, 'dist'));
  return newest ? new Date(newest).toISOString() : undefined;
}

async function machine() {
  const git = async (args: string[]) => (await run('git', ['-C', REPO_DIR, ...args]).catch(() => '')).trim();
  const dirty = await git(['status', '--porcelain', '--', 'packages']);
  return {
    cpus: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryGB: Math.round(totalmem() / 1e9),
    kernel: release(),
    node: process.version,
    skopeo: await versionOf('skopeo', ['--version']),
    registry: await versionOf('docker-registry', ['--version']),
    tar: await versionOf('tar', ['--version']),
    ferryCommit: await git(['rev-parse', '--short', 'HEAD']),
    /** Uncommitted changes under packages/ when the run started (others may be editing). */
    ferrySourcesModified: dirty ? dirty.split('\n').length : 0,
    ferryDistBuiltAt: await ferryBuiltAt(),
  };
}

/** Environment for measured processes: no proxies (loopback only), no user docker config. */
function benchEnv(dockerConfig: string): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const k of Object.keys(env)) if (/^(https?|all|no)_proxy$/i.test(k)) delete env[k];
  env.DOCKER_CONFIG = dockerConfig;
  return env;
}

function table(rows: string[][]): string {
  const [head, ...body] = rows;
  return [`| ${head!.join(' | ')} |`, `|${head!.map(() => '---').join('|')}|`, ...body.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

function corpusReport(r: CorpusResult, inst: Pick<SuiteInstance, 'subject' | 'baselines'>, tools: string[]): string {
  const c = r.corpus;
  const head =
    `### (${c.id}) ${c.title}\n\n` +
    `${c.images.length} images, ${c.platforms} image manifests, ${c.blobCount} distinct blobs (${c.layers} layers), ` +
    `${(c.uniqueBytes / MB).toFixed(1)} MB unique, ${(c.logicalBytes / MB).toFixed(1)} MB logical.\n\n`;
  const rows: string[][] = [['tool', 'median s', 'runs s', 'CPU s (user+sys)', 'registry CPU s', 'peak RSS MB', ...inst.baselines.map((b) => `÷ ${b}`)]];
  for (const tool of tools) {
    const ms = r.measurements.filter((m) => m.tool === tool);
    if (!ms.length) continue;
    const rss = ms.map((m) => m.maxRssBytes).filter((x): x is number => x !== undefined);
    const ratios = inst.baselines.map((b) => {
      const base = r.medians[b];
      return tool === b || base === undefined ? '' : `${(r.medians[tool]! / base).toFixed(2)}×`;
    });
    rows.push([
      tool,
      seconds(r.medians[tool]!),
      ms.map((m) => seconds(m.wallMs)).join(', '),
      median(ms.map((m) => m.userS + m.sysS)).toFixed(2),
      median(ms.map((m) => m.registryCpuS)).toFixed(2),
      rss.length ? (Math.max(...rss) / 1e6).toFixed(0) : 'n/a',
      ...ratios,
    ]);
  }
  let notes = '';
  const phased = r.measurements.filter((m) => m.phases);
  for (const tool of new Set(phased.map((m) => m.tool))) {
    const ms = phased.filter((m) => m.tool === tool);
    const names = Object.keys(ms[0]!.phases!);
    notes += `\n${tool} phases (median s): ${names.map((n) => `${n} ${seconds(median(ms.map((m) => m.phases![n]!)))}`).join(', ')}; ${ms[0]!.processes} processes per run.`;
  }
  const counted = r.measurements.filter((m) => m.counts);
  for (const tool of new Set(counted.map((m) => m.tool))) {
    const c = counted.find((m) => m.tool === tool)!.counts!;
    notes += `\n${tool} reported: ${Object.entries(c)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.`;
  }
  const targets = r.targets
    .map((t) => `- target ${t.description}: ${t.value} — ${t.met === undefined ? 'not measured' : t.met ? '**met**' : '**NOT met**'}`)
    .join('\n');
  let profile = '';
  if (r.profile) {
    const p = r.profile;
    profile =
      `\n\nferry main-thread CPU profile (one extra untimed run, ${seconds(p.totalMs)} s sampled):\n\n` +
      table([['area', 's', 'share'], ...p.byArea.slice(0, 10).map((a) => [a.area, seconds(a.ms), `${(a.share * 100).toFixed(1)}%`])]) +
      '\n\n' +
      table([
        ['function (self time)', 's', 'share'],
        ...p.topFunctions.slice(0, 12).map((f) => [`\`${f.fn}\``, seconds(f.ms), `${(f.share * 100).toFixed(1)}%`]),
      ]);
  }
  const trace = r.traceText ? `\n\n${r.traceText}` : '';
  return `${head}${table(rows)}\n${notes}\n\n${targets}${profile}${trace}\n`;
}

async function main(): Promise<void> {
  // `images`: ferry images against helm template on a chart (its own options, no corpora)
  if (process.argv[2] === 'images') return (await import('./images.js')).imagesBench(process.argv.slice(3));
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      corpus: { type: 'string', default: 'a,b,c' },
      runs: { type: 'string', default: '3' },
      jobs: { type: 'string', short: 'j', default: '8' },
      tools: { type: 'string' },
      'cpu-prof': { type: 'boolean', default: false },
      trace: { type: 'boolean', default: false },
      work: { type: 'string', default: join(BENCH_DIR, '.work') },
      results: { type: 'string', default: join(BENCH_DIR, 'results') },
      ferry: { type: 'string' },
      exe: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    process.stdout.write(USAGE);
    return;
  }
  const names = positionals.length ? positionals.flatMap((p) => (p === 'all' ? Object.keys(SUITES) : p.split(','))) : ['pack'];
  const suites = names.map((n) => SUITES[n]);
  const corpora = values.corpus.split(',').map((s) => s.trim()) as CorpusId[];
  const runs = Number(values.runs);
  const jobs = Number(values.jobs);
  const only = values.tools?.split(',').map((s) => s.trim());
  const unknown = names.filter((n) => !SUITES[n]);
  if (unknown.length) throw new Error(`unknown suite "${unknown.join(' ')}"\n${USAGE}`);
  if (corpora.some((c) => !['a', 'b', 'c', 'd'].includes(c))) throw new Error(`--corpus takes a list of a, b, c, d\n${USAGE}`);
  if (!Number.isInteger(runs) || runs < 1 || !Number.isInteger(jobs) || jobs < 1) throw new Error(`--runs and -j take positive whole numbers\n${USAGE}`);
  const builtMain = resolve(values.ferry ?? join(REPO_DIR, 'packages', 'cli', 'dist', 'main.js'));
  if (!existsSync(builtMain)) {
    throw new Error(
      `${builtMain} does not exist: build ferry first (node node_modules/typescript/bin/tsc -b packages/oci-client packages/bundler packages/cli)`,
    );
  }
  if (!haveGnuTime) log('GNU time (/usr/bin/time) not found: CPU time and peak RSS will not be measured');

  const workDir = resolve(values.work);
  const scratch = join(workDir, 'scratch');
  const dockerConfig = join(workDir, 'docker-config');
  await mkdir(dockerConfig, { recursive: true });
  const env = benchEnv(dockerConfig);
  const info = await machine();
  const ferryMain = values.ferry ? builtMain : await snapshotFerry(workDir);
  await run(process.execPath, [ferryMain, '--version']);
  const ferryExe = await singleFile(values.exe, workDir);
  for (const suite of suites as Suite[]) {
    await runSuite(suite, {
      corpora,
      runs,
      jobs,
      only,
      workDir,
      scratch,
      env,
      info,
      ferryMain,
      ferryExe,
      resultsDir: resolve(values.results),
      cpuProf: values['cpu-prof'],
      trace: values.trace,
    });
  }
}

interface RunSettings {
  corpora: CorpusId[];
  runs: number;
  jobs: number;
  only: string[] | undefined;
  workDir: string;
  scratch: string;
  env: NodeJS.ProcessEnv;
  info: Awaited<ReturnType<typeof machine>>;
  ferryMain: string;
  ferryExe: string | undefined;
  resultsDir: string;
  cpuProf: boolean;
  trace: boolean;
}

async function runSuite(suite: Suite, settings: RunSettings): Promise<void> {
  const { corpora, runs, jobs, only, workDir, scratch, env, info, ferryMain, ferryExe } = settings;
  const started = new Date();
  log(`${suite.name}: corpora ${corpora.join(',')}, ${runs} runs each, -j ${jobs}; ${info.cpus} CPUs, ${info.memoryGB} GB`);

  const results: CorpusResult[] = [];
  let baselines: string[] = [];
  let markdown = `## ${suite.name}: ${suite.description}\n\n`;
  for (const id of corpora) {
    const corpus = await ensureCorpus(workDir, id, log);
    const corpusScratch = join(scratch, `${suite.name}-${id}`);
    await mkdir(corpusScratch, { recursive: true });
    const inst = await suite.setup({ corpus, workDir: corpusScratch, cacheDir: workDir, jobs, ferryMain, ferryExe, only, env, log });
    try {
      const measurements: Measurement[] = [];
      for (let i = 1; i <= runs; i++) {
        for (const tool of inst.tools) {
          await tool.prepare?.(i);
          // Dirty pages of the previous run go to disk now, not during this one.
          await run('sync', []);
          const load = loadavg()[0]!;
          const registries = inst.registries();
          const cpu0 = await Promise.all(registries.map((r) => r.cpuSeconds()));
          const r = await tool.run(i);
          const cpu1 = await Promise.all(registries.map((r) => r.cpuSeconds()));
          const registryCpuS = cpu1.reduce((n, c, k) => n + c - cpu0[k]!, 0);
          const m: Measurement = { tool: tool.name, run: i, ...r, registryCpuS, loadAvg: load };
          measurements.push(m);
          log(
            `(${id}) run ${i} ${tool.name}: ${seconds(m.wallMs)} s, CPU ${(m.userS + m.sysS).toFixed(2)} s, registry CPU ${registryCpuS.toFixed(2)} s` +
              (m.maxRssBytes !== undefined ? `, peak RSS ${(m.maxRssBytes / 1e6).toFixed(0)} MB` : '') +
              `, load ${load.toFixed(1)}`,
          );
          await tool.checkAndClean(i);
        }
      }
      const toolNames = inst.tools.map((t) => t.name);
      const medians = Object.fromEntries(toolNames.map((t) => [t, medianWall(measurements, t)!]));
      let profile: ProfileSummary | undefined;
      let trace: { data: unknown; text: string } | undefined;
      const diagDir = join(settings.resultsDir, 'diagnostics', `${started.toISOString().replace(/[:.]/g, '-')}-${suite.name}-${id}`);
      if (settings.cpuProf && inst.diagnose) {
        await mkdir(diagDir, { recursive: true });
        const files = await inst.diagnose('cpu-prof', diagDir);
        if (files[0]) {
          profile = await summarizeProfile(files[0]);
          log(`CPU profile: ${files[0]}`);
        }
      }
      if (settings.trace && inst.diagnose && inst.summarizeTrace) {
        await mkdir(diagDir, { recursive: true });
        const files = await inst.diagnose('trace', diagDir);
        if (files[0]) {
          trace = await inst.summarizeTrace(files[0]);
          log(`request trace: ${files[0]}`);
        }
      }
      const { dir: _dir, blobs, ...stats } = corpus;
      const result: CorpusResult = {
        corpus: { ...stats, blobCount: blobs.length },
        measurements,
        medians,
        targets: inst.targets.map((t) => ({ description: t.description, ...t.evaluate(measurements) })),
        profile,
        trace: trace?.data,
        traceText: trace?.text,
      };
      results.push(result);
      baselines = inst.baselines;
      const section = corpusReport(result, inst, toolNames);
      markdown += `${section}\n`;
      process.stdout.write(`${section}\n`);
    } finally {
      await inst.teardown();
    }
  }

  const finished = new Date();
  const durationS = (finished.getTime() - started.getTime()) / 1000;
  const summary = table([
    ['corpus', 'ferry s', ...baselines.map((b) => `${b} s`), ...baselines.map((b) => `ferry ÷ ${b}`), 'ferry peak RSS MB', 'targets'],
    ...results.map((r) => {
      const f = r.medians.ferry;
      const ratio = (b: string) => (f !== undefined && r.medians[b] !== undefined ? `${(f / r.medians[b]!).toFixed(2)}×` : '');
      const rss = r.measurements.filter((m) => m.tool === 'ferry' && m.maxRssBytes !== undefined).map((m) => m.maxRssBytes!);
      return [
        `(${r.corpus.id}) ${(r.corpus.uniqueBytes / MB).toFixed(0)} MB`,
        f !== undefined ? seconds(f) : '',
        ...baselines.map((b) => (r.medians[b] !== undefined ? seconds(r.medians[b]!) : '')),
        ...baselines.map(ratio),
        rss.length ? (Math.max(...rss) / 1e6).toFixed(0) : '',
        r.targets.map((t) => `${t.description}: ${t.met === undefined ? '?' : t.met ? 'met' : 'NOT met'}`).join('; '),
      ];
    }),
  ]);
  const footer = `### Summary (medians of ${runs} runs)\n\n${summary}\n\nTotal benchmark time ${durationS.toFixed(0)} s.\n`;
  markdown += footer;
  process.stdout.write(footer);

  const resultsDir = settings.resultsDir;
  await mkdir(resultsDir, { recursive: true });
  const file = join(resultsDir, `${suite.name}-${started.toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(
    file,
    `${JSON.stringify(
      {
        suite: suite.name,
        started: started.toISOString(),
        finished: finished.toISOString(),
        durationS,
        options: { corpora, runs, jobs, tools: only ?? null, ferryMain, ferryExe: ferryExe ?? null },
        machine: info,
        results,
        markdown,
      },
      null,
      2,
    )}\n`,
  );
  log(`results: ${file} (${durationS.toFixed(0)} s in all)`);
}

main().catch((e: unknown) => {
  log(e instanceof Error ? (e.stack ?? e.message) : String(e));
  process.exit(1);
});
