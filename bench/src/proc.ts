// Child processes: run one to completion with its wall time and, through GNU
// time, its CPU time and peak RSS; keep track of long-lived ones so nothing
// outlives the benchmark.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, rmSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';

const GNU_TIME = '/usr/bin/time';

/** GNU time's -f/-o work only with GNU time, not the shell builtin or BSD time. */
export const haveGnuTime: boolean =
  existsSync(GNU_TIME) && /GNU/.test(((r) => `${r.stdout}${r.stderr}`)(spawnSync(GNU_TIME, ['--version'], { encoding: 'utf8' })));

export interface ProcessUsage {
  wallMs: number;
  /** CPU seconds of the process and the children it waited for (from wait4 rusage). */
  userS: number;
  sysS: number;
  /** ru_maxrss: peak resident set size of the process, in bytes; undefined without GNU time. */
  maxRssBytes: number | undefined;
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly code: number | null,
    readonly stderr: string,
  ) {
    super(`${command} exited with ${code}: ${stderr.trim().slice(-2000)}`);
  }
}

export interface RunOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Directory for GNU time's report file. */
  scratch: string;
}

/** Keeps the last `limit` characters of a stream. */
function tail(stream: NodeJS.ReadableStream | null, limit = 16_384): () => string {
  let text = '';
  stream?.on('data', (c: Buffer) => {
    text = (text + c.toString('utf8')).slice(-limit);
  });
  return () => text;
}

/**
 * Runs `cmd args` to completion under GNU time and returns its usage; throws
 * CommandError with the end of its stderr when it fails. Wall time is measured
 * here (monotonic clock, spawn to exit), so it includes process start-up.
 */
export async function measure(cmd: string, args: string[], opts: RunOptions): Promise<ProcessUsage & { stdout: string }> {
  const report = join(opts.scratch, `.time-${randomBytes(6).toString('hex')}`);
  const [file, argv] = haveGnuTime ? [GNU_TIME, ['-f', '%U %S %M', '-o', report, cmd, ...args]] : [cmd, args];
  const started = process.hrtime.bigint();
  const child = spawn(file, argv, { cwd: opts.cwd, env: opts.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  const out = tail(child.stdout);
  const err = tail(child.stderr);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  const wallMs = Number(process.hrtime.bigint() - started) / 1e6;
  let usage = { userS: 0, sysS: 0, maxRssBytes: undefined as number | undefined };
  if (haveGnuTime) {
    const text = await readFile(report, 'utf8').catch(() => '');
    await rm(report, { force: true });
    // On failure GNU time writes "Command exited with non-zero status N" first.
    const m = /(\d+\.\d+) (\d+\.\d+) (\d+)\s*$/.exec(text);
    if (m) usage = { userS: Number(m[1]), sysS: Number(m[2]), maxRssBytes: Number(m[3]) * 1024 };
  }
  if (code !== 0) throw new CommandError(`${cmd} ${args.join(' ')}`, code, err());
  return { wallMs, ...usage, stdout: out() };
}

/** Runs a command for its output (setup work, not measured). */
export async function run(cmd: string, args: string[], opts: { cwd?: string } = {}): Promise<string> {
  const child = spawn(cmd, args, { cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  track(child);
  let stdout = '';
  child.stdout?.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  const err = tail(child.stderr);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (c) => resolve(c));
  });
  if (code !== 0) throw new CommandError(`${cmd} ${args.join(' ')}`, code, err());
  return stdout;
}

// --- cleanup of what we started ----------------------------------------------

const children = new Set<ChildProcess>();
const dirs = new Set<string>();

export function track(child: ChildProcess): void {
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** Removes `dir` when the benchmark exits, however it exits. */
export function removeOnExit(dir: string): void {
  dirs.add(dir);
}

function cleanupSync(): void {
  for (const c of children) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
}

process.on('exit', cleanupSync);
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.once(signal, () => {
    cleanupSync();
    process.kill(process.pid, signal);
  });
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stop(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** CPU seconds (user + system) a running process has used so far, from /proc. */
export async function cpuSecondsOf(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return ticks / CLOCK_TICKS;
}

const CLOCK_TICKS = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;
