// The load suite (issue 4): ferry load vs. the skopeo way (untar, then skopeo
// copy --all oci:DIR:REF docker://... per image) vs. the registry's write floor
// (POST + monolithic PUT of the unique blobs, nothing else) vs. that floor plus
// a client-side sha256 (node-minimal), each run into a fresh registry:2 started
// before the timing.
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { OCI_INDEX, OCI_MANIFEST } from '@ferry/test/harness';
import type { Corpus } from './corpus.js';
import { measure, type ProcessUsage, run as runCommand } from './proc.js';
import { manifestDigest, type Registry, startRegistry } from './registry.js';
import { corpusRefs, pushCorpus } from './seed.js';
import { ratioTarget, rssTarget, runResult, type Suite, type SuiteContext, type Tool } from './suite.js';
import { loadTraceText, summarizeLoadTrace } from './trace-summary.js';

const TRACE_PRELOAD = fileURLToPath(new URL('./trace.js', import.meta.url));
const FETCH_BLOBS = fileURLToPath(new URL('./fetch-blobs.js', import.meta.url));

/** Every target repository goes under this first path part: `--to 127.0.0.1:PORT/x`. */
const PREFIX = 'x';

const ACCEPT = [
  OCI_INDEX,
  OCI_MANIFEST,
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** An image of the bundle: its name there (ref.name) and where ferry's default mapping puts it. */
interface BundleImage {
  refName: string;
  /** "x/bench/a/app01:TAG": the source host dropped, as `ferry load` does by default. */
  target: string;
  repo: string;
  tag: string;
  digest: string;
}

export const loadSuite: Suite = {
  name: 'load',
  description:
    'ferry load into a fresh registry:2 vs. untar + skopeo copy --all oci:DIR:REF docker://… per image, vs. the registry floor (POST + monolithic PUT of the unique blobs)',
  async setup(ctx: SuiteContext) {
    const { corpus } = ctx;
    const runDir = (tool: string) => join(ctx.workDir, 'runs', tool);
    const bundle = join(ctx.workDir, 'bundle.tar');

    // The input, once per corpus and not timed: the corpus pushed into a source
    // registry by skopeo, then `ferry pack`ed from it. The source is stopped before
    // the timed runs, so it takes no CPU from them.
    const source = await startRegistry(join(ctx.workDir, 'registries'));
    const started = Date.now();
    try {
      await mkdir(join(ctx.workDir, 'skopeo-tmp'), { recursive: true });
      await pushCorpus(corpus, source, join(ctx.workDir, 'skopeo-tmp'));
      await measure(process.execPath, [ctx.ferryMain, 'pack', ...corpusRefs(corpus, source), '-o', bundle, '-q'], {
        scratch: ctx.workDir,
        env: ctx.env,
      });
    } finally {
      await source.stop();
    }
    const images = await bundleImages(bundle, corpus);
    ctx.log(`bundle ${bundle}: ${images.length} images, made in ${((Date.now() - started) / 1000).toFixed(1)} s (not timed)`);

    // Each run gets a fresh target, started in prepare() and stopped after the checks.
    let target: Registry | undefined;
    const freshTarget = async (): Promise<Registry> => {
      await target?.stop();
      target = await startRegistry(join(ctx.workDir, 'registries'));
      return target;
    };
    const stopTarget = async (): Promise<void> => {
      await target?.stop();
      target = undefined;
    };
    const host = (): string => {
      if (!target) throw new Error('no target registry');
      return target.host;
    };

    /** Every image under its target name with the bundle's digest (HEAD by tag), else the run fails. */
    const checkImages = async (who: string): Promise<void> => {
      for (const i of images) {
        const got = await manifestDigest(host(), i.repo, i.tag, ACCEPT);
        if (got !== i.digest) throw new Error(`${who}: ${host()}/${i.target} is ${got ?? 'missing'}, expected ${i.digest}`);
      }
    };

    const ferryArgs = (): string[] => ['load', bundle, '--to', `${host()}/${PREFIX}`, '-q', '-j', String(ctx.jobs)];

    // `ferry-exe` is the single file: the same code, bundled, on the Node.js it embeds.
    const ferryTool = (name: string, command: string[]): Tool => ({
      name,
      async prepare() {
        await freshTarget();
      },
      async run() {
        const [file, ...pre] = command as [string, ...string[]];
        const u = await measure(file, [...pre, ...ferryArgs()], { scratch: ctx.workDir, env: ctx.env });
        // ferry's own summary line: what it uploaded, mounted and found already there.
        const s = /blobs (\d+) uploaded, (\d+) mounted, (\d+) already there/.exec(u.stdout);
        return runResult([u], u.wallMs, s ? { counts: { uploaded: Number(s[1]), mounted: Number(s[2]), skipped: Number(s[3]) } } : {});
      },
      async checkAndClean() {
        await checkImages(name);
        await stopTarget();
      },
    });
    const ferry = ferryTool('ferry', [process.execPath, ctx.ferryMain]);
    const ferryExe = ctx.ferryExe ? ferryTool('ferry-exe', [ctx.ferryExe]) : undefined;

    const skopeo: Tool = {
      name: 'skopeo',
      async prepare() {
        await rm(runDir('skopeo'), { recursive: true, force: true });
        await mkdir(join(runDir('skopeo'), 'tmp'), { recursive: true });
        await mkdir(join(runDir('skopeo'), 'layout'), { recursive: true });
        await freshTarget();
      },
      async run() {
        const layout = join(runDir('skopeo'), 'layout');
        const usages: ProcessUsage[] = [];
        const t0 = process.hrtime.bigint();
        usages.push(await measure('tar', ['-xf', bundle, '-C', layout], { scratch: ctx.workDir, env: ctx.env }));
        const t1 = process.hrtime.bigint();
        for (const i of images) {
          usages.push(
            await measure(
              'skopeo',
              [
                '--insecure-policy',
                '--tmpdir',
                join(runDir('skopeo'), 'tmp'),
                'copy',
                '--quiet',
                '--all',
                '--dest-tls-verify=false',
                `oci:${layout}:${i.refName}`,
                `docker://${host()}/${i.target}`,
              ],
              { scratch: ctx.workDir, env: ctx.env },
            ),
          );
        }
        const t2 = process.hrtime.bigint();
        return runResult(usages, Number(t2 - t0) / 1e6, { phases: { untar: Number(t1 - t0) / 1e6, copy: Number(t2 - t1) / 1e6 } });
      },
      async checkAndClean() {
        await checkImages('skopeo');
        await stopTarget();
        await rm(runDir('skopeo'), { recursive: true, force: true });
      },
    };

    // The registry's write floor: what registry:2 needs to take in the unique
    // blobs (it hashes and writes every byte), with a client that does nothing
    // else. `node-minimal` adds the one thing a verifying client cannot skip, a
    // sha256 of every blob on the way out: the least a Node.js `load` must do.
    const blobList = join(ctx.workDir, 'blobs.json');
    await writeFile(blobList, JSON.stringify({ host: '127.0.0.1:0', blobs: corpus.blobs }));
    const blobCount = corpus.blobs.filter((b) => b.kind === 'blob').length;
    const pusher = (name: string, flags: string[]): Tool => ({
      name,
      async prepare() {
        await freshTarget();
      },
      async run() {
        const u = await measure(
          process.execPath,
          [FETCH_BLOBS, blobList, '--push', '--from', corpus.dir, '--host', host(), '--prefix', PREFIX, '-j', String(ctx.jobs), ...flags],
          { scratch: ctx.workDir, env: ctx.env },
        );
        if (!u.stdout.startsWith(`pushed ${blobCount} blobs`)) throw new Error(`${name}: ${u.stdout.trim()}, expected ${blobCount} blobs`);
        return runResult([u], u.wallMs);
      },
      async checkAndClean() {
        // fetch-blobs counts only 201s: the registry itself checked every digest.
        await stopTarget();
      },
    });
    const floor = pusher('floor', []);
    const nodeMinimal = pusher('node-minimal', ['--hash']);

    const targets =
      corpus.id === 'a'
        ? [ratioTarget('ferry', 'floor', 1.2), ratioTarget('ferry', 'skopeo', 0.6)]
        : corpus.id === 'b'
          ? [ratioTarget('ferry', 'skopeo', 0.5)]
          : [rssTarget('ferry', 200)];
    return {
      tools: [ferry, ferryExe, skopeo, floor, nodeMinimal].filter((t): t is Tool => t !== undefined && (!ctx.only || ctx.only.includes(t.name))),
      registries: () => (target ? [target] : []),
      subject: 'ferry',
      baselines: ['skopeo', 'floor', 'node-minimal'],
      targets,
      async diagnose(kind, dir) {
        await freshTarget();
        try {
          const before = new Set(await readdir(dir).catch(() => []));
          const traceFile = join(dir, 'ferry-load-trace.json');
          const nodeArgs = kind === 'cpu-prof' ? ['--cpu-prof', '--cpu-prof-dir', dir] : ['--import', TRACE_PRELOAD];
          const env = kind === 'trace' ? { ...ctx.env, FERRY_BENCH_TRACE: traceFile } : ctx.env;
          await measure(process.execPath, [...nodeArgs, ctx.ferryMain, ...ferryArgs()], { scratch: ctx.workDir, env });
          await checkImages('ferry');
          if (kind === 'trace') return [traceFile];
          return (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile') && !before.has(f)).map((f) => join(dir, f));
        } finally {
          await stopTarget();
        }
      },
      async summarizeTrace(file) {
        const data = await summarizeLoadTrace(file);
        return { data, text: loadTraceText(data) };
      },
      async teardown() {
        await stopTarget();
        await rm(join(ctx.workDir, 'runs'), { recursive: true, force: true });
        await rm(bundle, { force: true });
      },
    };
  },
};

/** The images of a bundle from its index.json, checked against the corpus. */
async function bundleImages(bundle: string, corpus: Corpus): Promise<BundleImage[]> {
  const index = JSON.parse(await runCommand('tar', ['-xOf', bundle, 'index.json'])) as {
    manifests: Array<{ digest: string; annotations?: Record<string, string> }>;
  };
  const images: BundleImage[] = [];
  for (const m of index.manifests) {
    const refName = m.annotations?.['org.opencontainers.image.ref.name'];
    if (!refName) throw new Error(`${bundle}: index.json lists ${m.digest} without a ref.name`);
    // "127.0.0.1:PORT/bench/a/app01:TAG" -> repository "bench/a/app01", tag "TAG".
    const m2 = /^[^/]+\/(.+):([^:/]+)$/.exec(refName);
    if (!m2) throw new Error(`${bundle}: unexpected ref.name ${refName}`);
    const repo = `${PREFIX}/${m2[1]}`;
    images.push({ refName, target: `${repo}:${m2[2]}`, repo, tag: m2[2]!, digest: m.digest });
  }
  const want = new Set(corpus.images.map((i) => i.digest));
  if (images.length !== corpus.images.length || images.some((i) => !want.has(i.digest))) {
    throw new Error(`${bundle} does not hold exactly the corpus images`);
  }
  return images;
}
