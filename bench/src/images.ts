// `ferry images` on the largest shared chart against `helm template` of it (the real
// helm v4 of the test kit): wall time, CPU time and peak RSS of each, runs
// alternating, medians and their ratio. Markdown on stdout, JSON in bench/results/.
//
// Usage: node bench/dist/main.js images [--runs N] [--chart DIR] [--results DIR]
//        (default: 5 runs, ../shared/charts/openebs-full)
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, release, tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { helmBinary } from '@ferry/test/harness';
import { haveGnuTime, measure, removeOnExit } from './proc.js';
import { median } from './suite.js';

const REPO_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const CLI = join(REPO_DIR, 'packages', 'cli', 'dist', 'main.js');

function log(line: string): void {
  process.stderr.write(`[bench images] ${line}\n`);
}

interface Row {
  tool: string;
  command: string;
  wallMs: number[];
  cpuMs: number[];
  rssMB: number[];
}

export async function imagesBench(argv: string[]): Promise<void> {
  const { values } = parseArgs({
    args: argv,
    options: {
      runs: { type: 'string', default: '5' },
      chart: { type: 'string', default: join(REPO_DIR, '..', 'shared', 'charts', 'openebs-full') },
      results: { type: 'string', default: join(REPO_DIR, 'bench', 'results') },
    },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 3) throw new Error('--runs takes a whole number of at least 3 (medians)');
  const chart = resolve(values.chart);
  if (!existsSync(join(chart, 'Chart.yaml'))) throw new Error(`${chart} is not a chart directory`);
  if (!existsSync(CLI)) throw new Error(`${CLI} does not exist: node scripts/bootstrap.mjs first`);
  if (!haveGnuTime) log('GNU time (/usr/bin/time) is missing: no peak memory');
  const helm = await helmBinary();
  const scratch = await mkdtemp(join(tmpdir(), 'ferry-bench-images-'));
  removeOnExit(scratch);
  // helm with a private home: nothing of the user's is read or written
  const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: scratch, HELM_CONFIG_HOME: join(scratch, 'helm'), HELM_CACHE_HOME: join(scratch, 'helm') };
  const same = ['--namespace', 'default', '--kube-version', '1.31.0'];
  const commands = [
    { tool: 'ferry images', file: process.execPath, args: [CLI, 'images', '--chart', chart, ...same, '-q'] },
    { tool: 'helm template', file: helm, args: ['template', 'release-name', chart, ...same] },
  ];
  const rows: Row[] = commands.map((c) => ({ tool: c.tool, command: `${basename(c.file)} ${c.args.join(' ')}`, wallMs: [], cpuMs: [], rssMB: [] }));
  const loads: number[] = [];
  // Warm the page cache, then alternate: run i of every command before run i + 1 of any.
  for (const c of commands) await measure(c.file, c.args, { scratch, env });
  for (let i = 0; i < runs; i++) {
    loads.push(loadavg()[0]!);
    for (const [k, c] of commands.entries()) {
      const u = await measure(c.file, c.args, { scratch, env });
      rows[k]!.wallMs.push(u.wallMs);
      rows[k]!.cpuMs.push((u.userS + u.sysS) * 1000);
      if (u.maxRssBytes !== undefined) rows[k]!.rssMB.push(u.maxRssBytes / 1e6);
    }
  }
  loads.push(loadavg()[0]!);
  const [ferry, helmRow] = rows as [Row, Row];
  const ratio = (f: (r: Row) => number) => (f(ferry) / f(helmRow)).toFixed(2);
  const med = (xs: number[]) => (xs.length ? median(xs) : Number.NaN);
  const lines = [
    `\`ferry images\` against \`helm template\` on ${basename(chart)}, ${runs} runs each (alternating), same flags (${same.join(' ')}); wall ms from spawn to exit, CPU ms user+sys, peak RSS from GNU time; ${availableParallelism()} CPUs (${cpus()[0]?.model ?? '?'}), kernel ${release()}, Node ${process.version}, 1-min load ${Math.min(...loads).toFixed(1)}–${Math.max(...loads).toFixed(1)}.`,
    '',
    '| tool | median wall ms | min ms | max ms | median CPU ms | median peak RSS MB |',
    '|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.tool} | ${med(r.wallMs).toFixed(0)} | ${Math.min(...r.wallMs).toFixed(0)} | ${Math.max(...r.wallMs).toFixed(0)} | ${med(r.cpuMs).toFixed(0)} | ${med(r.rssMB).toFixed(0)} |`,
    ),
    `| ferry / helm | ${ratio((r) => med(r.wallMs))} | | | ${ratio((r) => med(r.cpuMs))} | ${ratio((r) => med(r.rssMB))} |`,
  ];
  const markdown = `${lines.join('\n')}\n`;
  process.stdout.write(markdown);
  await mkdir(resolve(values.results), { recursive: true });
  const file = join(resolve(values.results), `images-${new Date().toISOString().replace(/[:.]/g, '-')}.json`);
  await writeFile(file, `${JSON.stringify({ runs, chart, loads, rows, markdown }, null, 2)}\n`);
  log(`results: ${file}`);
}
