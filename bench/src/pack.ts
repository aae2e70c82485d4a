// The pack suite (issue 3): ferry pack vs. the skopeo way vs. a plain tar of
// the same unique blob bytes, all reading one warm registry:2.
import { mkdir, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Corpus } from './corpus.js';
import { measure, type ProcessUsage, run as runCommand } from './proc.js';
import { startRegistry } from './registry.js';
import { corpusRefs, pushCorpus } from './seed.js';
import { ratioTarget, rssTarget, runResult, type Suite, type SuiteContext, type Tool } from './suite.js';
import { packTraceText, summarizeTrace } from './trace-summary.js';

const TRACE_PRELOAD = fileURLToPath(new URL('./trace.js', import.meta.url));
const FETCH_BLOBS = fileURLToPath(new URL('./fetch-blobs.js', import.meta.url));

/** Entry names of a tar, without a leading "./". */
async function tarEntries(file: string): Promise<string[]> {
  const out = await runCommand('tar', ['-tf', file]);
  return out
    .split('\n')
    .filter(Boolean)
    .map((n) => n.replace(/^\.\//, ''));
}

async function tarMember(file: string, name: string): Promise<string> {
  return runCommand('tar', ['-xOf', file, name]);
}

/**
 * Checks that a tar holds an OCI layout with exactly the corpus blobs and an
 * index.json naming every image: a run that produced less does not count.
 */
async function checkLayoutTar(file: string, corpus: Corpus, indexName: string, who: string): Promise<void> {
  const names = await tarEntries(file);
  const blobs = new Set(names.filter((n) => /^blobs\/sha256\/[0-9a-f]{64}$/.test(n)).map((n) => `sha256:${n.slice(13)}`));
  const missing = corpus.blobs.filter((b) => !blobs.has(b.digest));
  if (missing.length || blobs.size !== corpus.blobs.length) {
    throw new Error(`${who}: ${file} holds ${blobs.size} blobs, expected ${corpus.blobs.length} (${missing.length} missing, first ${missing[0]?.digest})`);
  }
  const index = JSON.parse(await tarMember(file, indexName)) as { manifests: Array<{ digest: string }> };
  const want = new Set(corpus.images.map((i) => i.digest));
  const have = new Set(index.manifests.map((m) => m.digest));
  if ([...want].some((d) => !have.has(d))) throw new Error(`${who}: index.json of ${file} does not list every image`);
}

export const packSuite: Suite = {
  name: 'pack',
  description: 'ferry pack vs. skopeo copy --all per image into one OCI layout + tar, vs. tar of the unique blobs',
  async setup(ctx: SuiteContext) {
    const { corpus } = ctx;
    const registry = await startRegistry(join(ctx.workDir, 'registries'));
    const started = Date.now();
    await mkdir(join(ctx.workDir, 'skopeo-tmp'), { recursive: true });
    await pushCorpus(corpus, registry, join(ctx.workDir, 'skopeo-tmp'));
    ctx.log(`pushed ${corpus.images.length} images to ${registry.host} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    const refs = corpusRefs(corpus, registry);
    const runDir = (tool: string) => join(ctx.workDir, 'runs', tool);

    // `ferry-noref` is ferry without the referrer lookups (`--referrers none`): what they cost.
    // `ferry-base` is another build of ferry (FERRY_BENCH_BASE: its packages/cli/dist/main.js),
    // to measure a change against the code before it in the same run. `ferry-exe` is the
    // single file: the same code, bundled, on the Node.js it embeds, with V8's code cache.
    const ferryTool = (name: string, extra: string[], command = [process.execPath, ctx.ferryMain]): Tool => ({
      name,
      async prepare() {
        await rm(runDir(name), { recursive: true, force: true });
        await mkdir(runDir(name), { recursive: true });
      },
      async run() {
        const out = join(runDir(name), 'bundle.tar');
        const [file, ...pre] = command as [string, ...string[]];
        const u = await measure(file, [...pre, 'pack', ...refs, '-o', out, '-q', '-j', String(ctx.jobs), ...extra], {
          scratch: ctx.workDir,
          env: ctx.env,
        });
        return runResult([u], u.wallMs, { outputBytes: (await stat(out)).size });
      },
      async checkAndClean() {
        await checkLayoutTar(join(runDir(name), 'bundle.tar'), corpus, 'index.json', name);
        await rm(runDir(name), { recursive: true, force: true });
      },
    });
    const ferry = ferryTool('ferry', []);
    const ferryNoref = ferryTool('ferry-noref', ['--referrers', 'none']);
    const ferryBase = ferryTool('ferry-base', [], [process.execPath, process.env.FERRY_BENCH_BASE ?? '']);
    const ferryExe = ctx.ferryExe ? ferryTool('ferry-exe', [], [ctx.ferryExe]) : undefined;

    const skopeo: Tool = {
      name: 'skopeo',
      async prepare() {
        await rm(runDir('skopeo'), { recursive: true, force: true });
        await mkdir(join(runDir('skopeo'), 'tmp'), { recursive: true });
      },
      async run() {
        const layout = join(runDir('skopeo'), 'layout');
        const out = join(runDir('skopeo'), 'bundle.tar');
        const usages: ProcessUsage[] = [];
        const t0 = process.hrtime.bigint();
        for (const image of corpus.images) {
          const ref = `${registry.host}/${image.repo}:${image.tag}`;
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
                '--src-tls-verify=false',
                `docker://${ref}`,
                // One shared layout; the image is named by its full reference, as in a ferry bundle.
                `oci:${layout}:${ref}`,
              ],
              { scratch: ctx.workDir, env: ctx.env },
            ),
          );
        }
        const t1 = process.hrtime.bigint();
        usages.push(await measure('tar', ['-cf', out, '-C', layout, '.'], { scratch: ctx.workDir, env: ctx.env }));
        const t2 = process.hrtime.bigint();
        return runResult(usages, Number(t2 - t0) / 1e6, {
          phases: { copy: Number(t1 - t0) / 1e6, tar: Number(t2 - t1) / 1e6 },
          outputBytes: (await stat(out)).size,
        });
      },
      async checkAndClean() {
        await checkLayoutTar(join(runDir('skopeo'), 'bundle.tar'), corpus, './index.json', 'skopeo');
        await rm(runDir('skopeo'), { recursive: true, force: true });
      },
    };

    const floor: Tool = {
      name: 'floor',
      async prepare() {
        await rm(runDir('floor'), { recursive: true, force: true });
        await mkdir(runDir('floor'), { recursive: true });
      },
      async run() {
        // The corpus layout's blobs/ directory holds exactly the unique blobs.
        const out = join(runDir('floor'), 'blobs.tar');
        const u = await measure('tar', ['-cf', out, '-C', corpus.dir, 'blobs'], { scratch: ctx.workDir, env: ctx.env });
        return runResult([u], u.wallMs, { outputBytes: (await stat(out)).size });
      },
      async checkAndClean() {
        const names = await tarEntries(join(runDir('floor'), 'blobs.tar'));
        const n = names.filter((x) => /^blobs\/sha256\/[0-9a-f]{64}$/.test(x)).length;
        if (n !== corpus.blobs.length) throw new Error(`floor: tar holds ${n} blobs, expected ${corpus.blobs.length}`);
        await rm(runDir('floor'), { recursive: true, force: true });
      },
    };

    // Reference points below ferry: the same blob GETs with nothing else
    // (the registry's read floor), and with the hashing and positional writes
    // any verified bundle needs (the least a Node.js client must do).
    const blobList = join(ctx.workDir, 'blobs.json');
    await writeFile(blobList, JSON.stringify({ host: registry.host, blobs: corpus.blobs }));
    const reference = (name: string, flags: (dir: string) => string[]): Tool => ({
      name,
      async prepare() {
        await rm(runDir(name), { recursive: true, force: true });
        await mkdir(runDir(name), { recursive: true });
      },
      async run() {
        const u = await measure(process.execPath, [FETCH_BLOBS, blobList, '-j', String(ctx.jobs), ...flags(runDir(name))], {
          scratch: ctx.workDir,
          env: ctx.env,
        });
        return runResult([u], u.wallMs);
      },
      async checkAndClean() {
        // fetch-blobs checks sizes (and digests with --hash) itself and fails otherwise.
        await rm(runDir(name), { recursive: true, force: true });
      },
    });
    const httpFloor = reference('http-floor', () => []);
    const nodeMinimal = reference('node-minimal', (dir) => ['--hash', '--write', join(dir, 'blobs.bin')]);

    // The performance issue's targets: within 1.15× (a) and 1.2× (d) of node-minimal, the pack floor.
    const targets = [
      ...(corpus.id === 'a' ? [ratioTarget('ferry', 'node-minimal', 1.15), ratioTarget('ferry', 'skopeo', 0.35)] : []),
      ...(corpus.id === 'b' ? [ratioTarget('ferry', 'skopeo', 0.3)] : []),
      ...(corpus.id === 'd' ? [ratioTarget('ferry', 'node-minimal', 1.2)] : []),
      rssTarget('ferry', 200),
    ];
    return {
      // ferry-noref and ferry-base only when named (ferry-base needs FERRY_BENCH_BASE).
      tools: [ferry, ferryExe, ferryNoref, ferryBase, skopeo, floor, httpFloor, nodeMinimal]
        .filter((t): t is Tool => t !== undefined)
        .filter((t) =>
          ctx.only ? ctx.only.includes(t.name) && (t !== ferryBase || process.env.FERRY_BENCH_BASE !== undefined) : t !== ferryNoref && t !== ferryBase,
        ),
      registries: () => [registry],
      subject: 'ferry',
      baselines: ['skopeo', 'floor'],
      targets,
      async diagnose(kind, dir) {
        await ferry.prepare!(0);
        const before = new Set(await readdir(dir).catch(() => []));
        const traceFile = join(dir, 'ferry-trace.json');
        const nodeArgs = kind === 'cpu-prof' ? ['--cpu-prof', '--cpu-prof-dir', dir] : ['--import', TRACE_PRELOAD];
        const env = kind === 'trace' ? { ...ctx.env, FERRY_BENCH_TRACE: traceFile } : ctx.env;
        const out = join(runDir('ferry'), 'bundle.tar');
        await measure(process.execPath, [...nodeArgs, ctx.ferryMain, 'pack', ...refs, '-o', out, '-q', '-j', String(ctx.jobs)], {
          scratch: ctx.workDir,
          env,
        });
        await ferry.checkAndClean(0);
        if (kind === 'trace') return [traceFile];
        return (await readdir(dir)).filter((f) => f.endsWith('.cpuprofile') && !before.has(f)).map((f) => join(dir, f));
      },
      async summarizeTrace(file) {
        const data = await summarizeTrace(file);
        return { data, text: packTraceText(data) };
      },
      async teardown() {
        await registry.stop();
        await rm(join(ctx.workDir, 'runs'), { recursive: true, force: true });
      },
    };
  },
};
