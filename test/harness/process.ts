// Child processes and temp dirs owned by the harness, with a last-resort
// cleanup when the test worker exits, so no registry or temp dir outlives a
// crashed or interrupted test run.
import { type ChildProcess, execFile } from 'node:child_process';
import { rmSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

interface Live {
  children: Set<ChildProcess>;
  dirs: Set<string>;
}

// Kept on globalThis: a test runner may evaluate this module more than once
// in one process, and each copy must neither lose track of the others'
// children nor stack up more exit handlers.
const LIVE = Symbol.for('ferry.test-harness.live');
const globals = globalThis as typeof globalThis & { [LIVE]?: Live };
const live = (globals[LIVE] ??= installCleanup());

function installCleanup(): Live {
  const state: Live = { children: new Set(), dirs: new Set() };
  const cleanupSync = () => {
    for (const child of state.children) child.kill('SIGKILL');
    for (const dir of state.dirs) rmSync(dir, { recursive: true, force: true });
  };
  process.on('exit', cleanupSync);
  // A signal's default action skips 'exit' handlers; clean up, then let the
  // signal take its default course.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(signal, () => {
      cleanupSync();
      process.kill(process.pid, signal);
    });
  }
  return state;
}

/** A fresh directory under `parent` (default the OS temp dir), removed on worker exit if still there. */
export async function makeTempDir(prefix: string, parent = tmpdir()): Promise<string> {
  const dir = await mkdtemp(join(parent, prefix));
  live.dirs.add(dir);
  return dir;
}

export async function removeTempDir(dir: string): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  live.dirs.delete(dir);
}

/** Kills `child` on worker exit unless it has ended by then. */
export function trackChild(child: ChildProcess): void {
  live.children.add(child);
  child.once('exit', () => live.children.delete(child));
}

function hasExited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

/** SIGTERM, then SIGKILL if the process is still there after `graceMs`. */
export async function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (hasExited(child)) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

export class CommandError extends Error {
  constructor(
    readonly command: string,
    readonly stderr: string,
    cause: unknown,
  ) {
    super(`${command} failed: ${stderr.trim() || String(cause)}`, { cause });
  }
}

/** Runs a command to completion and returns its stdout as exact bytes. */
export function run(file: string, args: string[], timeoutMs = 60_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'buffer', maxBuffer: 64 * 1024 * 1024, timeout: timeoutMs }, (error, stdout, stderr) => {
      if (error) reject(new CommandError(`${file} ${args.join(' ')}`, stderr.toString(), error));
      else resolve(stdout);
    });
  });
}
