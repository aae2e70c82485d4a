#!/usr/bin/env node
/**
 * The `ferry` executable: runs the program and turns every failure into one
 * clear line on stderr and an exit code (2 bad usage or input, 1 failed work,
 * 130 cancelled).
 */
import { CommanderError } from 'commander';
import { buildProgram } from './program.js';

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  const debug = argv.includes('--debug');
  program.exitOverride();
  for (const c of program.commands) c.exitOverride();
  try {
    await program.parseAsync(argv, { from: 'user' });
    return 0;
  } catch (caught) {
    if (caught instanceof CommanderError) {
      // commander has printed its message already; --help and --version are not failures.
      return caught.exitCode === 0 ? 0 : 2;
    }
    // Loaded here, not at start-up: by the time a command fails, its modules are loaded anyway.
    const { isFerryError, isTransientNetworkError, toNetworkError } = await import('@ferry/oci-client');
    // A network failure that escaped its request still gets the one-line network error.
    const e = isTransientNetworkError(caught) ? toNetworkError(caught, '') : caught;
    if (isFerryError(e)) {
      process.stderr.write(`ferry: ${e.message}\n`);
      if (debug && e.stack) process.stderr.write(`${e.stack}\n`);
      return e.exitCode;
    }
    const err = e as Error;
    process.stderr.write(`ferry: unexpected error: ${err?.message ?? String(e)}${debug ? '' : ' (run with --debug for details)'}\n`);
    if (debug && err?.stack) process.stderr.write(`${err.stack}\n`);
    return 1;
  }
}

// A promise, not top-level await: the single-file build (exe/) bundles this as the CommonJS
// script a Node single executable runs, where top-level await does not exist.
void main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
