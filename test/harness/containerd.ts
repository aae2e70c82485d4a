// A private containerd for tests: its own root, state and socket under a temp
// dir, the CRI plugin on (its stream server on loopback), nothing shared with a
// containerd the machine may run. `ctr` runs against its socket.
import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir, removeTempDir, run, stopChild, trackChild } from './process.js';

export interface TestContainerd {
  /** The gRPC socket (for `ctr -a` and CRI). */
  address: string;
  dir: string;
  /** `ctr -a SOCKET ARGS…`: stdout, or a CommandError with ctr's stderr. */
  ctr(args: string[]): Promise<string>;
  stop(): Promise<void>;
}

export async function startContainerd(): Promise<TestContainerd> {
  const dir = await makeTempDir('ferry-containerd-');
  const address = join(dir, 'containerd.sock');
  const config = [
    'version = 2',
    `root = "${join(dir, 'root')}"`,
    `state = "${join(dir, 'state')}"`,
    '[grpc]',
    `  address = "${address}"`,
    '[ttrpc]',
    `  address = "${address}.ttrpc"`,
    '[debug]',
    `  address = "${join(dir, 'debug.sock')}"`,
    '[plugins]',
    // Each namespace fetches its own content: a pull cannot borrow blobs another namespace imported.
    '  [plugins."io.containerd.metadata.v1.bolt"]',
    '    content_sharing_policy = "isolated"',
    '  [plugins."io.containerd.grpc.v1.cri"]',
    '    stream_server_address = "127.0.0.1"',
    '    stream_server_port = "0"',
    '    [plugins."io.containerd.grpc.v1.cri".cni]',
    `      bin_dir = "${join(dir, 'cni-bin')}"`,
    `      conf_dir = "${join(dir, 'cni-conf')}"`,
    '  [plugins."io.containerd.internal.v1.opt"]',
    `    path = "${join(dir, 'opt')}"`,
    '',
  ].join('\n');
  const configFile = join(dir, 'config.toml');
  await writeFile(configFile, config);
  const child: ChildProcess = spawn('containerd', ['--config', configFile], { stdio: ['ignore', 'ignore', 'pipe'] });
  trackChild(child);
  let log = '';
  child.stderr?.on('data', (d: Buffer) => {
    log = (log + d.toString('utf8')).slice(-8192);
  });
  const ctr = async (args: string[]) => (await run('ctr', ['-a', address, ...args], 120_000)).toString('utf8');
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`containerd exited with ${child.exitCode}: ${log}`);
    try {
      await ctr(['version']);
      break;
    } catch (e) {
      if (Date.now() > deadline) throw new Error(`containerd did not answer on ${address} within 30 s: ${(e as Error).message}\n${log}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
  return {
    address,
    dir,
    ctr,
    async stop() {
      await stopChild(child);
      // Unpacked snapshots may be mounts (overlayfs): containerd has unmounted them on exit.
      await removeTempDir(dir);
    },
  };
}
