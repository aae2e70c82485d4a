// podman as the tests run it: vfs storage under a private root and run root,
// no events, so nothing of the machine's own podman is read or written.
import { join } from 'node:path';
import { run } from '../harness/process.js';

/** `podman ARGS…` with its storage under `dir`: stdout, or a CommandError. */
export function privatePodman(dir: string): (args: string[]) => Promise<Buffer> {
  return (args) =>
    run('podman', ['--root', join(dir, 'root'), '--runroot', join(dir, 'run'), '--storage-driver', 'vfs', '--events-backend', 'none', ...args], 180_000);
}
