// `ferry pack` and `ferry load` through a registry outage of a few seconds (the fault
// proxy refusing, or resetting, every connection, then back): both complete with the
// digests they would have had, and say once that the registry was unreachable. The
// budget is made short with FERRY_RETRY_BUDGET so the give-up case ends quickly.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type FaultProxy, type SeededImage, seedImage, startFaultProxy, startRegistry, type TestRegistry } from './harness/index.js';
import { expectErrorLine, expectImageIn, type FerryHome, makeFerryHome, runFerry as runFerryIn } from './helpers/ferry.js';

let source: TestRegistry;
let target: TestRegistry;
let home: FerryHome;
let dir: string;
let app: SeededImage;

beforeAll(async () => {
  [source, target, home] = await Promise.all([startRegistry(), startRegistry(), makeFerryHome()]);
  dir = await mkdtemp(join(tmpdir(), 'ferry-outage-'));
  app = await seedImage(source, 'team/app:1.0', { seed: 'outage', layers: 2, layerSize: 32 * 1024 });
});
afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop(), home?.remove()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

const run = (args: string[], budget: string) => runFerryIn(args, { home, env: { FERRY_RETRY_BUDGET: budget }, timeoutMs: 60_000 });

/** The stderr lines that announce an outage. */
const outageLines = (stderr: string) => stderr.split('\n').filter((l) => l.includes('unreachable'));

describe('an outage of the source during pack', () => {
  let proxy: FaultProxy;
  beforeAll(async () => {
    proxy = await startFaultProxy(source.url);
  });
  afterAll(() => proxy?.stop());

  it('is waited for (5 s of refused connections), and the bundle holds the same digests', async () => {
    const layer = app.manifests[0]!.layerDigests[1]!;
    // The first GET of a layer takes the registry down for 5 s: longer than the 4 s the old retries lasted.
    proxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${layer}$`), times: 1, action: { type: 'outage', ms: 5000, mode: 'refuse' } });
    const out = join(dir, 'outage.tar');
    const r = await run(['pack', `${proxy.host}/team/app:1.0`, '-o', out, '--json'], '20');
    expect(r.code, r.stderr).toBe(0);
    const summary = JSON.parse(r.stdout) as { images: Array<{ digest: string }> };
    expect(summary.images.map((i) => i.digest)).toEqual([app.digest]);
    expect(outageLines(r.stderr)).toEqual([`registry ${proxy.host} unreachable (connection reset by ${proxy.host}), retrying for up to 20 s`]);
    expect(r.ms).toBeGreaterThan(4500);
    await proxy.restored();

    // What the bundle carries loads into another registry whole, byte for byte.
    const loaded = await run(['load', out, '--to', `${target.host}/packed`, '-q'], '20');
    expect(loaded.code, loaded.stderr).toBe(0);
    await expectImageIn(target, 'packed/team/app:1.0', app);
  });
});

describe('an outage of the target during load', () => {
  let proxy: FaultProxy;
  let bundle: string;
  beforeAll(async () => {
    proxy = await startFaultProxy(target.url);
    bundle = join(dir, 'direct.tar');
    const packed = await run(['pack', `${source.host}/team/app:1.0`, '-o', bundle, '-q'], '20');
    expect(packed.code, packed.stderr).toBe(0);
  });
  afterAll(() => proxy?.stop());

  it('is waited for (5 s of reset connections, from the middle of the uploads), and the target holds the same digests', async () => {
    proxy.addRule({ method: 'PUT', path: /\/blobs\/uploads\//, after: 1, times: 1, action: { type: 'outage', ms: 5000, mode: 'reset' } });
    const r = await run(['load', bundle, '--to', `${proxy.host}/mirror`], '20');
    expect(r.code, r.stderr).toBe(0);
    expect(outageLines(r.stderr)).toEqual([expect.stringMatching(new RegExp(`^registry ${proxy.host} unreachable \\(.+\\), retrying for up to 20 s$`))]);
    expect(r.ms).toBeGreaterThan(4500);
    await proxy.restored();
    await expectImageIn(target, 'mirror/team/app:1.0', app);
  });

  it('longer than the budget ends in one error line', async () => {
    proxy.addRule({ method: 'POST', path: /\/blobs\/uploads\//, times: 1, action: { type: 'outage', ms: 6000, mode: 'refuse' } });
    const r = await run(['load', bundle, '--to', `${proxy.host}/late`, '-q'], '1.5');
    expect(expectErrorLine(r, 1)).toMatch(new RegExp(`^ferry: .*(connection refused by|connection reset by) ${proxy.host}`));
    expect(r.ms).toBeLessThan(6000);
    await proxy.restored();
  });
});
