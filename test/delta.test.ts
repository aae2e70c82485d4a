// Delta bundles: pack --base carries only what the base lacks; load checks the target first.
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registryFetch, type SeededImage, seedImage, startRegistry, type TestRegistry } from './harness/index.js';
import { run as runTool } from './harness/process.js';
import { expectErrorLine, expectImageIn, type FerryHome, makeFerryHome, runFerry as runFerryIn } from './helpers/ferry.js';

let src: TestRegistry;
let home: FerryHome;
let dir: string;
const img: Record<string, SeededImage> = {};
const run = (args: string[]) => runFerryIn(args, { home });
const ref = (r: string) => `${src.host}/${r}`;
let v1: string;
let delta: string;
let v2full: string;

beforeAll(async () => {
  src = await startRegistry();
  home = await makeFerryHome();
  dir = await mkdtemp(join(tmpdir(), 'ferry-delta-'));
  img.a = await seedImage(src, 'team/a:1', { seed: 'a', sharedBaseLayer: true, layers: 2, layerSize: 256 * 1024 });
  img.b = await seedImage(src, 'team/b:1', { seed: 'b', layers: 2, layerSize: 256 * 1024 });
  // b:2 keeps b:1's first two layers per platform and adds one; c shares a's layers.
  img.b2 = await seedImage(src, 'team/b:2', { seed: 'b', layers: 3, layerSize: 256 * 1024 });
  img.c = await seedImage(src, 'team/c:1', { seed: 'a', sharedBaseLayer: true, layers: 3, layerSize: 256 * 1024 });
  v1 = join(dir, 'v1.tar');
  delta = join(dir, 'v2-delta.tar');
  v2full = join(dir, 'v2-full.tar');
  expect((await run(['pack', ref('team/a:1'), ref('team/b:1'), '-o', v1, '-q'])).code).toBe(0);
  expect((await run(['pack', ref('team/a:1'), ref('team/b:2'), ref('team/c:1'), '-o', delta, '--base', v1, '-q'])).code).toBe(0);
  expect((await run(['pack', ref('team/a:1'), ref('team/b:2'), ref('team/c:1'), '-o', v2full, '-q'])).code).toBe(0);
});

afterAll(async () => {
  await src?.stop();
  await home?.remove();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('pack --base', () => {
  it('carries every manifest but only the blobs the base lacks, and says what it relies on', async () => {
    const v1Report = JSON.parse((await run(['inspect', v1, '--json'])).stdout);
    const d = JSON.parse((await run(['inspect', delta, '--json'])).stdout);
    const full = JSON.parse((await run(['inspect', v2full, '--json'])).stdout);
    expect(d.delta).toBe(v1Report.bundleId);

    const v1Blobs = new Map<string, Buffer>([...img.a!.blobs, ...img.b!.blobs]);
    const v2Blobs = new Map<string, Buffer>([...img.a!.blobs, ...img.b2!.blobs, ...img.c!.blobs]);
    const shared = [...v2Blobs.keys()].filter((x) => v1Blobs.has(x));
    const sharedBytes = shared.reduce((n, x) => n + v2Blobs.get(x)!.length, 0);
    expect(shared.length).toBeGreaterThan(4);
    // Smaller by exactly the shared blobs; the relied-on list is exactly them.
    expect(d.totals.bytes).toBe(full.totals.bytes - sharedBytes);
    expect(d.totals.blobs).toBe(full.totals.blobs - shared.length);
    expect((await stat(delta)).size).toBeLessThan((await stat(v2full)).size - sharedBytes + 512 * shared.length + 1);
    const verified = JSON.parse((await run(['verify', delta, '--json'])).stdout);
    expect(verified).toMatchObject({ ok: true, delta: v1Report.bundleId });
    const ferry = JSON.parse((await runTool('tar', ['-xOf', delta, 'ferry.json'])).toString('utf8'));
    expect(ferry.base.id).toBe(v1Report.bundleId);
    expect(ferry.base.reliesOn.map((b: { digest: string }) => b.digest).sort()).toEqual([...shared].sort());
  });
});

describe('load of a delta', () => {
  it('is refused by an empty registry, listing the missing blobs, with nothing pushed', async () => {
    const empty = await startRegistry();
    try {
      const r = await run(['load', delta, '--to', `${empty.host}/m`]);
      const line = expectErrorLine(r, 1);
      expect(line).toMatch(
        /^ferry: the target lacks \d+ blobs that .* does not carry; they are in its base bundle sha256:[0-9a-f]{64}: load that first; nothing was pushed\. Missing: sha256:/,
      );
      const v1Blobs = new Set<string>([...img.a!.blobs.keys(), ...img.b!.blobs.keys()]);
      for (const d of [...img.b2!.blobs.keys()].filter((x) => v1Blobs.has(x))) expect(line).toContain(d);
      expect(await (await registryFetch(empty, '/v2/_catalog')).json()).toEqual({ repositories: [] });
    } finally {
      await empty.stop();
    }
  });

  it('completes every v2 image with upstream digests after v1 was loaded', async () => {
    const target = await startRegistry();
    try {
      expect((await run(['load', v1, '--to', `${target.host}/m`, '-q'])).code).toBe(0);
      const r = await run(['load', delta, '--to', `${target.host}/m`, '--json']);
      expect(r.code, r.stderr).toBe(0);
      const out = JSON.parse(r.stdout);
      // c's blobs that v1 carried (as a's) are mounted from m/team/a.
      expect(out.blobs.mounted).toBeGreaterThan(0);
      await expectImageIn(target, 'm/team/a:1', img.a!);
      await expectImageIn(target, 'm/team/b:2', img.b2!);
      await expectImageIn(target, 'm/team/c:1', img.c!);
    } finally {
      await target.stop();
    }
  });
});
