// A fresh registry:2 (Debian's docker-registry, CNCF Distribution 2.8) on
// 127.0.0.1 with an ephemeral port and its own temporary storage.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { cpuSecondsOf, removeOnExit, stop, track } from './proc.js';

export const LOOPBACK = '127.0.0.1';

export interface Registry {
  /** "127.0.0.1:PORT" */
  host: string;
  pid: number;
  storageDir: string;
  /** CPU seconds the registry process has used so far. */
  cpuSeconds(): Promise<number>;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, LOOPBACK, () => {
      const address = probe.address();
      probe.close(() => (address && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Starts a registry with storage under `parent` (removed again on stop). */
export async function startRegistry(parent: string): Promise<Registry> {
  await mkdir(parent, { recursive: true });
  const dir = await mkdtemp(join(parent, 'registry-'));
  removeOnExit(dir);
  const storageDir = join(dir, 'storage');
  await mkdir(storageDir);
  const configFile = join(dir, 'config.yml');
  // REGISTRY_* variables would override the config file.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('REGISTRY_')));
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    const host = `${LOOPBACK}:${port}`;
    // JSON is YAML. Same settings as the registry:2 image's default config
    // (in-memory blob descriptor cache), with access logs off.
    const config = {
      version: 0.1,
      log: { level: 'warn', accesslog: { disabled: true } },
      storage: { filesystem: { rootdirectory: storageDir }, cache: { blobdescriptor: 'inmemory' }, delete: { enabled: true } },
      http: { addr: host, secret: 'ferry-bench-not-a-secret' },
    };
    await writeFile(configFile, JSON.stringify(config, null, 2));
    const child = spawn('docker-registry', ['serve', configFile], { stdio: ['ignore', 'pipe', 'pipe'], env });
    track(child);
    let log = '';
    const append = (c: Buffer) => (log = (log + c.toString('utf8')).slice(-8192));
    child.stdout?.on('data', append);
    child.stderr?.on('data', append);
    try {
      await waitReady(`http://${host}/v2/`, child);
    } catch (e) {
      await stop(child);
      if (attempt < 5 && /address already in use/.test(log)) continue;
      await rm(dir, { recursive: true, force: true });
      throw new Error(`docker-registry did not start: ${String(e)}\n${log}`);
    }
    return {
      host,
      pid: child.pid!,
      storageDir,
      cpuSeconds: () => cpuSecondsOf(child.pid!),
      async stop() {
        await stop(child);
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
}

async function waitReady(url: string, child: ChildProcess): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`exited with ${child.exitCode ?? child.signalCode}`);
    try {
      const res = await fetch(url);
      await res.arrayBuffer();
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`no answer from ${url} within 15 s`);
    await sleep(50);
  }
}

/** Digest of the manifest a tag points at, as the registry reports it. */
export async function manifestDigest(host: string, repo: string, tag: string, accept: string): Promise<string | undefined> {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept } });
  return res.ok ? (res.headers.get('docker-content-digest') ?? undefined) : undefined;
}
