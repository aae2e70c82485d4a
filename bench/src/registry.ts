// A fresh registry:2 (Debian's docker-registry, CNCF Distribution 2.8) on
// 127.0.0.1 with an ephemeral port and its own storage, started by the test
// kit with the registry:2 image's default cache settings.
import { mkdir } from 'node:fs/promises';
import { startRegistry as startKitRegistry } from '@ferry/test/harness';
import { cpuSecondsOf } from './proc.js';

export interface Registry {
  /** "127.0.0.1:PORT" */
  host: string;
  pid: number;
  storageDir: string;
  /** CPU seconds the registry process has used so far. */
  cpuSeconds(): Promise<number>;
  stop(): Promise<void>;
}

/** Starts a registry with storage under `parent` (removed again on stop, or when the benchmark exits). */
export async function startRegistry(parent: string): Promise<Registry> {
  await mkdir(parent, { recursive: true });
  const reg = await startKitRegistry({ parentDir: parent, blobDescriptorCache: true });
  return { host: reg.host, pid: reg.pid, storageDir: reg.storageDir, cpuSeconds: () => cpuSecondsOf(reg.pid), stop: () => reg.stop() };
}

/** Digest of the manifest a tag points at, as the registry reports it. */
export async function manifestDigest(host: string, repo: string, tag: string, accept: string): Promise<string | undefined> {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${tag}`, { method: 'HEAD', headers: { accept } });
  return res.ok ? (res.headers.get('docker-content-digest') ?? undefined) : undefined;
}
