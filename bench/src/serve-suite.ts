// The serve suite (issue 14): every blob of a corpus fetched by 8 keep-alive
// clients (GET + sha256 of each, bench/src/fetch-blobs.ts --hash) from
// `ferry serve BUNDLE` vs. from registry:2 holding the same content. Both
// servers run for the whole suite; one untimed pass first warms both (ferry
// serve checks each blob's digest on its first read, once). A run's CPU counts
// both servers'; ferry serve's peak RSS (VmHWM from /proc) is reported as the
// `ferry-serve` run's peak RSS, the figure the target is about.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cpuSecondsOf, measure, stop, track } from './proc.js';
import { type Registry, startRegistry } from './registry.js';
import { corpusRefs, pushCorpus } from './seed.js';
import { ratioTarget, rssTarget, runResult, type Suite, type SuiteContext, type Tool } from './suite.js';

const FETCH_BLOBS = fileURLToPath(new URL('./fetch-blobs.js', import.meta.url));

/** `ferry serve BUNDLE` on an ephemeral loopback port, once it says where it listens. */
async function startServe(ctx: SuiteContext, bundle: string, nodeArgs: string[] = []): Promise<{ host: string; child: ChildProcess }> {
  const child = spawn(process.execPath, [...nodeArgs, ctx.ferryMain, 'serve', bundle, '--listen', '127.0.0.1:0', '-q', '-j', String(ctx.jobs)], {
    env: ctx.env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  track(child);
  let err = '';
  return new Promise((resolve, reject) => {
    child.stderr!.on('data', (c: Buffer) => {
      err += c.toString('utf8');
      const m = /listening on http:\/\/(127\.0\.0\.1:\d+)/.exec(err);
      if (m) resolve({ host: m[1]!, child });
    });
    child.once('exit', (code) => reject(new Error(`ferry serve exited with ${code}: ${err}`)));
  });
}

/** Peak resident set of a running process so far (VmHWM), bytes. */
async function peakRss(pid: number): Promise<number> {
  const kb = /^VmHWM:\s+(\d+) kB/m.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
  return Number(kb![1]) * 1024;
}

export const serveSuite: Suite = {
  name: 'serve',
  description: 'every blob fetched (GET + sha256, 8 keep-alive connections) from ferry serve BUNDLE vs. from registry:2 holding the same content',
  async setup(ctx: SuiteContext) {
    const { corpus } = ctx;
    const bundle = join(ctx.workDir, 'bundle.tar');
    const registry = await startRegistry(join(ctx.workDir, 'registries'));
    let served: { host: string; child: ChildProcess } | undefined;
    try {
      await mkdir(join(ctx.workDir, 'skopeo-tmp'), { recursive: true });
      await pushCorpus(corpus, registry, join(ctx.workDir, 'skopeo-tmp'));
      await measure(process.execPath, [ctx.ferryMain, 'pack', ...corpusRefs(corpus, registry), '-o', bundle, '-q'], { scratch: ctx.workDir, env: ctx.env });
      served = await startServe(ctx, bundle);
    } catch (e) {
      await registry.stop();
      throw e;
    }
    const serve = served;
    const serveRegistry: Registry = {
      host: serve.host,
      pid: serve.child.pid!,
      storageDir: bundle,
      cpuSeconds: () => cpuSecondsOf(serve.child.pid!),
      stop: () => stop(serve.child),
    };
    // ferry serve names every image by its source reference minus the host: the same repositories.
    const blobList = join(ctx.workDir, 'blobs.json');
    await writeFile(blobList, JSON.stringify({ host: '127.0.0.1:0', blobs: corpus.blobs }));
    const fetch = (host: string) =>
      measure(process.execPath, [FETCH_BLOBS, blobList, '--hash', '--host', host, '-j', String(ctx.jobs)], { scratch: ctx.workDir, env: ctx.env });
    const started = Date.now();
    await fetch(registry.host);
    await fetch(serve.host);
    ctx.log(`warm-up pass from both servers (ferry serve checks each blob once): ${((Date.now() - started) / 1000).toFixed(1)} s (not timed)`);

    const fetcher = (name: string, server: Registry): Tool => ({
      name,
      async run() {
        // fetch-blobs fails (and so the run) on any status but 200, a short body or a wrong sha256.
        const u = await fetch(server.host);
        const r = runResult([u], u.wallMs);
        // The server's peak, not the client's: the figure the serve target is about.
        return name === 'ferry-serve' ? { ...r, maxRssBytes: await peakRss(server.pid) } : r;
      },
      async checkAndClean() {
        // fetch-blobs --hash compares every blob's sha256 with its digest.
      },
    });
    return {
      tools: [fetcher('ferry-serve', serveRegistry), fetcher('registry:2', registry)].filter((t) => !ctx.only || ctx.only.includes(t.name)),
      registries: () => [registry, serveRegistry],
      subject: 'ferry-serve',
      baselines: ['registry:2'],
      targets: [ratioTarget('ferry-serve', 'registry:2', 0.8), rssTarget('ferry-serve', 150)],
      async diagnose(kind, dir) {
        if (kind !== 'cpu-prof') return [];
        // A second server under --cpu-prof: one pass that checks every blob, one that only serves.
        const before = new Set(await readdir(dir).catch(() => []));
        const profiled = await startServe(ctx, bundle, ['--cpu-prof', '--cpu-prof-dir', dir]);
        try {
          await fetch(profiled.host);
          await fetch(profiled.host);
        } finally {
          await stop(profiled.child);
        }
        return (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile') && !before.has(f)).map((f) => join(dir, f));
      },
      async teardown() {
        await Promise.all([serveRegistry.stop(), registry.stop()]);
        await rm(bundle, { force: true });
      },
    };
  },
};
