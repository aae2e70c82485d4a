// Split files: parts of at most --split-size, read in place by load, verify and inspect.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SeededImage, seedImage, startRegistry, type TestRegistry } from './harness/index.js';
import { expectErrorLine, expectImageIn, type FerryHome, makeFerryHome, runFerry as runFerryIn } from './helpers/ferry.js';

let reg: TestRegistry;
let home: FerryHome;
let dir: string;
let img: SeededImage;
const env = { SOURCE_DATE_EPOCH: '1700000000' };
const run = (args: string[]) => runFerryIn(args, { home, env });

/** sha256 of the files concatenated, as `cat a b c | sha256sum` would give. */
async function catHash(files: string[]): Promise<string> {
  const h = createHash('sha256');
  for (const f of files) for await (const c of createReadStream(f)) h.update(c as Buffer);
  return h.digest('hex');
}

beforeAll(async () => {
  reg = await startRegistry();
  home = await makeFerryHome();
  dir = await mkdtemp(join(tmpdir(), 'ferry-split-'));
  img = await seedImage(reg, 'team/split:1', { seed: 'split', layers: 2, layerSize: 1536 * 1024 });
});

afterAll(async () => {
  await reg?.stop();
  await home?.remove();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('pack --split-size', () => {
  it('writes only parts of at most the size, whose concatenation is the unsplit bundle', async () => {
    const whole = join(dir, 'whole.tar');
    expect((await run(['pack', `${reg.host}/team/split:1`, '-o', whole, '-q'])).code).toBe(0);
    const out = join(dir, 'parts', 'b.tar');
    const r = await run(['pack', `${reg.host}/team/split:1`, '-o', out, '--split-size', '1M', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const files: string[] = JSON.parse(r.stdout).files;
    expect(files.length).toBeGreaterThanOrEqual(3);
    expect(files).toEqual(files.map((_, i) => `${out}.part-${String(i).padStart(3, '0')}`));
    expect((await readdir(join(dir, 'parts'))).sort()).toEqual(files.map((f) => f.slice(join(dir, 'parts').length + 1)).sort());
    for (const f of files) expect((await stat(f)).size).toBeLessThanOrEqual(1024 * 1024);
    expect(await catHash(files)).toBe(await catHash([whole]));
  });

  it('loads, verifies and inspects from the first part or a quoted glob', async () => {
    const out = join(dir, 'parts', 'b.tar');
    const target = await startRegistry();
    try {
      let r = await run(['verify', `${out}.part-000`, '--json']);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).ok).toBe(true);
      r = await run(['inspect', `${out}.part-*`, '--json']);
      expect(r.code).toBe(0);
      expect(JSON.parse(r.stdout).images[0].digest).toBe(img.digest);
      r = await run(['load', `${out}.part-000`, '--to', `${target.host}/split`, '-q']);
      expect(r.code, r.stderr).toBe(0);
      await expectImageIn(target, 'split/team/split:1', img);
    } finally {
      await target.stop();
    }
  });

  it('removes parts left over from an earlier pack with more of them', async () => {
    const out = join(dir, 'shrink', 'b.tar');
    expect((await run(['pack', `${reg.host}/team/split:1`, '-o', out, '--split-size', '1M', '-q'])).code).toBe(0);
    const many = (await readdir(join(dir, 'shrink'))).length;
    expect((await run(['pack', `${reg.host}/team/split:1`, '-o', out, '--split-size', '2M', '-q'])).code).toBe(0);
    const left = (await readdir(join(dir, 'shrink'))).sort();
    expect(left.length).toBeLessThan(many);
    expect(left).toEqual(left.map((_, i) => `b.tar.part-${String(i).padStart(3, '0')}`));
    expect((await run(['verify', `${out}.part-000`])).code).toBe(0);
  });

  it('says which part is missing', async () => {
    const out = join(dir, 'gap', 'b.tar');
    expect((await run(['pack', `${reg.host}/team/split:1`, '-o', out, '--split-size', '1M', '-q'])).code).toBe(0);
    await rm(`${out}.part-001`);
    const r = await run(['verify', `${out}.part-000`]);
    expect(expectErrorLine(r, 2)).toBe(`ferry: part ${out}.part-001 of the split bundle is missing`);
  });

  it('refuses a nonsense size', async () => {
    const r = await run(['pack', `${reg.host}/team/split:1`, '-o', join(dir, 'x.tar'), '--split-size', 'lots']);
    expect(expectErrorLine(r, 2)).toBe('ferry: invalid size "lots": write a number with an optional unit, e.g. 4G, 700M or 1048576');
  });
});
