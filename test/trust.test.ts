// Signed bundles and `ferry verify`: keys, tampering of each part, refusal under --key.
import { copyFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { indexTar } from '@ferry/bundler';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registryFetch, type SeededImage, seedImage, startRegistry, type TestRegistry } from './harness/index.js';
import { expectErrorLine, type FerryHome, makeFerryHome, runFerry as runFerryIn } from './helpers/ferry.js';
import { changeByte } from './helpers/tamper.js';

let reg: TestRegistry;
let target: TestRegistry;
let home: FerryHome;
let dir: string;
let app: SeededImage;
let signed: string;
let unsigned: string;
const run = (args: string[]) => runFerryIn(args, { home });

beforeAll(async () => {
  [reg, target] = await Promise.all([startRegistry(), startRegistry()]);
  home = await makeFerryHome();
  dir = await mkdtemp(join(tmpdir(), 'ferry-trust-'));
  app = await seedImage(reg, 'team/app:1.0', { seed: 'trust', layers: 2 });
  expect((await run(['key', 'generate', join(dir, 'ours')])).code).toBe(0);
  expect((await run(['key', 'generate', join(dir, 'theirs')])).code).toBe(0);
  signed = join(dir, 'signed.tar');
  unsigned = join(dir, 'unsigned.tar');
  expect((await run(['pack', `${reg.host}/team/app:1.0`, '-o', signed, '--sign', join(dir, 'ours.key'), '-q'])).code).toBe(0);
  expect((await run(['pack', `${reg.host}/team/app:1.0`, '-o', unsigned, '-q'])).code).toBe(0);
});

afterAll(async () => {
  await Promise.all([reg?.stop(), target?.stop()]);
  await home?.remove();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A copy of `bundle` with one byte of `entry`'s data changed at `at` (default: the middle). */
async function tampered(bundle: string, entry: string, name: string, change?: (b: number) => number, at?: number): Promise<string> {
  const out = join(dir, name);
  await copyFile(bundle, out);
  const e = (await indexTar(out)).get(entry);
  if (!e) throw new Error(`no entry ${entry}`);
  await changeByte(out, e.offset + (at ?? Math.floor(e.size / 2)), change);
  return out;
}

const blobEntry = (digest: string) => `blobs/sha256/${digest.slice(7)}`;

describe('keys', () => {
  it('writes NAME.key with mode 0600 and NAME.pub, and never overwrites a key', async () => {
    expect((await stat(join(dir, 'ours.key'))).mode & 0o777).toBe(0o600);
    expect(await readFile(join(dir, 'ours.key'), 'utf8')).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(await readFile(join(dir, 'ours.pub'), 'utf8')).toMatch(/^-----BEGIN PUBLIC KEY-----\n/);
    const before = await readFile(join(dir, 'ours.key'));
    const r = await run(['key', 'generate', join(dir, 'ours')]);
    expect(expectErrorLine(r, 2)).toBe(`ferry: ${join(dir, 'ours')}.key already exists; ferry will not overwrite a key`);
    expect((await readFile(join(dir, 'ours.key'))).equals(before)).toBe(true);
  });
});

describe('ferry verify', () => {
  it('passes an intact signed bundle with its key, re-hashing every blob', async () => {
    const r = await run(['verify', signed, '--key', join(dir, 'ours.pub'), '--json']);
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report).toMatchObject({ ok: true, signature: 'verified', badBlobs: [], problems: [] });
    expect(report.blobsChecked).toBe(1 + app.manifests.length + app.blobs.size);
    expect(report.images).toEqual([{ ref: `${reg.host}/team/app:1.0`, digest: app.digest, ok: true }]);
  });

  it('refuses an unsigned bundle and a bundle signed by another key under --key', async () => {
    let r = await run(['verify', unsigned, '--key', join(dir, 'ours.pub')]);
    expect(expectErrorLine(r, 1)).toBe(`ferry: ${unsigned} is not signed (no ferry.sig); refusing it under --key`);
    r = await run(['verify', signed, '--key', join(dir, 'theirs.pub')]);
    expect(expectErrorLine(r, 1)).toMatch(
      new RegExp(`^ferry: ${signed} is signed by another key \\(sha256:[0-9a-f]{64}\\), not by the given key \\(sha256:[0-9a-f]{64}\\)$`),
    );
  });

  it('names a changed layer and the image it breaks, with or without a key', async () => {
    const layer = app.manifests[0]!.layerDigests[1]!;
    const bad = await tampered(signed, blobEntry(layer), 'bad-layer.tar');
    const r = await run(['verify', bad, '--json']);
    expect(r.code).toBe(1);
    const report = JSON.parse(r.stdout);
    expect(report.badBlobs).toEqual([{ digest: layer, problem: 'bytes do not match the digest', images: [`${reg.host}/team/app:1.0`] }]);
    expect(r.stderr).toBe(`ferry: ${bad} failed verification: blob ${layer} bytes do not match the digest (breaks ${reg.host}/team/app:1.0)\n`);
    expect((await run(['verify', bad, '--key', join(dir, 'ours.pub')])).code).toBe(1);
  });

  it('names a changed config', async () => {
    const config = app.manifests[1]!.configDigest;
    const bad = await tampered(signed, blobEntry(config), 'bad-config.tar');
    const r = await run(['verify', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`blob ${config} bytes do not match the digest`);
  });

  it('catches a changed index.json or ferry.json under --key', async () => {
    // Change a letter inside the reference name: still valid JSON, different bytes.
    const index = await tampered(signed, 'index.json', 'bad-index.tar', (c) => c, undefined);
    const e = (await indexTar(index)).get('index.json')!;
    const text = (await readFile(index)).subarray(e.offset, e.offset + e.size).toString();
    const at = text.indexOf('team/app') + 1;
    const bad = await tampered(signed, 'index.json', 'bad-index.tar', () => 'E'.charCodeAt(0), at);
    let r = await run(['verify', bad, '--key', join(dir, 'ours.pub')]);
    expect(expectErrorLine(r, 1)).toMatch(
      /was changed after signing: index\.json or ferry\.json differ from what was signed \(bundle id sha256:[0-9a-f]{64}, signed sha256:[0-9a-f]{64}\)$/,
    );
    // Without a key, the disagreement with ferry.json is reported.
    r = await run(['verify', bad]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('in ferry.json but');

    const f = (await indexTar(signed)).get('ferry.json')!;
    const ferryText = (await readFile(signed)).subarray(f.offset, f.offset + f.size).toString();
    const badFerry = await tampered(signed, 'ferry.json', 'bad-ferry.tar', (c) => c + 1, ferryText.indexOf('"tool"') + 10);
    r = await run(['verify', badFerry, '--key', join(dir, 'ours.pub')]);
    expect(expectErrorLine(r, 1)).toMatch(/was changed after signing/);
  });

  it('reads OCI archives without ferry.json (no signature possible)', async () => {
    const r = await run(['verify', unsigned]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('signature: none');
  });
});

describe('ferry load --key', () => {
  it('refuses a tampered signed bundle before pushing anything', async () => {
    const layer = app.manifests[0]!.layerDigests[0]!;
    const bad = await tampered(signed, blobEntry(layer), 'bad-load.tar');
    const r = await run(['load', bad, '--to', `${target.host}/keyed`, '--key', join(dir, 'ours.pub')]);
    expect(expectErrorLine(r, 1)).toBe(`ferry: refusing to load ${bad}: blob ${layer} bytes do not match the digest; nothing was pushed`);
    const catalog = (await (await registryFetch(target, '/v2/_catalog')).json()) as { repositories: string[] };
    expect(catalog).toEqual({ repositories: [] });
  });

  it('refuses a signed bundle whose index.json, ferry.json or a config changed, before pushing anything', async () => {
    const text = async (file: string, entry: string): Promise<string> => {
      const e = (await indexTar(file)).get(entry)!;
      return (await readFile(file)).subarray(e.offset, e.offset + e.size).toString();
    };
    const config = app.manifests[1]!.configDigest;
    const cases = [
      // A letter of a reference name (still valid JSON), a letter of the tool name, a config byte.
      await tampered(signed, 'index.json', 'load-index.tar', () => 'E'.charCodeAt(0), (await text(signed, 'index.json')).indexOf('team/app') + 1),
      await tampered(signed, 'ferry.json', 'load-ferry.tar', (c) => c + 1, (await text(signed, 'ferry.json')).indexOf('"tool"') + 10),
      await tampered(signed, blobEntry(config), 'load-config.tar'),
    ];
    const lines = [];
    for (const bad of cases) {
      const r = await run(['load', bad, '--to', `${target.host}/keyed-meta`, '--key', join(dir, 'ours.pub')]);
      lines.push(expectErrorLine(r, 1));
    }
    expect(lines[0]).toMatch(/was changed after signing: index\.json or ferry\.json differ from what was signed/);
    expect(lines[1]).toMatch(/was changed after signing: index\.json or ferry\.json differ from what was signed/);
    expect(lines[2]).toBe(`ferry: refusing to load ${cases[2]}: blob ${config} bytes do not match the digest; nothing was pushed`);
    const catalog = (await (await registryFetch(target, '/v2/_catalog')).json()) as { repositories: string[] };
    expect(catalog.repositories.filter((r: string) => r.startsWith('keyed-meta'))).toEqual([]);
  });

  it('loads an intact signed bundle', async () => {
    const r = await run(['load', signed, '--to', `${target.host}/keyed`, '--key', join(dir, 'ours.pub'), '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).images[0]).toMatchObject({ digest: app.digest, status: 'loaded' });
    expect(r.stderr).toContain('signature verified');
  });

  it('refuses an unsigned bundle under --key', async () => {
    const r = await run(['load', unsigned, '--to', `${target.host}/other`, '--key', join(dir, 'ours.pub')]);
    expect(expectErrorLine(r, 1)).toBe(`ferry: ${unsigned} is not signed (no ferry.sig); refusing it under --key`);
  });
});

describe('ferry verify --against', () => {
  it('reports ok, missing, different and incomplete images after a partial load', async () => {
    const other = await seedImage(reg, 'team/other:1', { seed: 'other', single: true, layers: 1 });
    await seedImage(reg, 'team/third:1', { seed: 'third', single: true, layers: 1 });
    const bundle = join(dir, 'against.tar');
    const refs = ['team/app:1.0', 'team/other:1', 'team/third:1'].map((r) => `${reg.host}/${r}`);
    expect((await run(['pack', ...refs, '-o', bundle, '-q'])).code).toBe(0);
    const to = `${target.host}/against`;
    expect((await run(['load', bundle, '--to', to, '-q'])).code).toBe(0);

    let r = await run(['verify', bundle, '--against', to, '--json']);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout).rows.map((row: { status: string }) => row.status)).toEqual(['ok', 'ok', 'ok']);

    // A platform child gone, an image gone, another image replaced.
    const arm = app.manifests[1]!.digest;
    expect((await registryFetch(target, `/v2/against/team/app/manifests/${arm}`, { method: 'DELETE' })).status).toBe(202);
    expect((await registryFetch(target, `/v2/against/team/other/manifests/${other.digest}`, { method: 'DELETE' })).status).toBe(202);
    const replaced = await seedImage(target, 'against/team/third:1', { seed: 'not-third', single: true, layers: 1 });

    r = await run(['verify', bundle, '--against', to, '--json']);
    expect(r.code).toBe(1);
    const rows = JSON.parse(r.stdout).rows;
    expect(rows).toEqual([
      {
        source: refs[0],
        target: `${to}/team/app:1.0`,
        expected: app.digest,
        actual: app.digest,
        status: 'incomplete',
        missingChildren: [arm],
        missingBlobs: [],
      },
      { source: refs[1], target: `${to}/team/other:1`, expected: other.digest, actual: null, status: 'missing', missingChildren: [], missingBlobs: [] },
      expect.objectContaining({ target: `${to}/team/third:1`, actual: replaced.digest, status: 'different' }),
    ]);
    expect(r.stderr).toBe(
      `ferry: ${to} does not hold what ${bundle} holds: ${to}/team/app:1.0 lacks 1 platform manifest(s): ${arm}, ${to}/team/other:1 missing, ${to}/team/third:1 different\n`,
    );
  });

  it('reports a blob the registry lost after the load, naming the image and the blob; a rerun of load uploads it again', async () => {
    const lost = await seedImage(reg, 'team/lost:1', { seed: 'lost', single: true, layers: 2 });
    const bundle = join(dir, 'lost.tar');
    const refs = [`${reg.host}/team/lost:1`, `${reg.host}/team/app:1.0`];
    expect((await run(['pack', ...refs, '-o', bundle, '-q'])).code).toBe(0);
    const to = `${target.host}/lost`;
    expect((await run(['load', bundle, '--to', to, '-q'])).code).toBe(0);
    expect((await run(['verify', bundle, '--against', to])).code).toBe(0);

    // As garbage collection or a partial restore would: the manifest stays, a layer goes.
    const layer = lost.manifests[0]!.layerDigests[1]!;
    expect((await registryFetch(target, `/v2/lost/team/lost/blobs/${layer}`, { method: 'DELETE' })).status).toBe(202);

    let r = await run(['verify', bundle, '--against', to, '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).rows.map((row: { status: string; missingBlobs: string[] }) => [row.status, row.missingBlobs])).toEqual([
      ['incomplete', [layer]],
      ['ok', []],
    ]);
    expect(r.stderr).toBe(`ferry: ${to} does not hold what ${bundle} holds: ${to}/team/lost:1 lacks 1 blob(s): ${layer}\n`);

    r = await run(['load', bundle, '--to', to, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).blobs).toMatchObject({ uploaded: 1 });
    expect((await registryFetch(target, `/v2/lost/team/lost/blobs/${layer}`, { method: 'HEAD' })).status).toBe(200);
    expect((await run(['verify', bundle, '--against', to])).code).toBe(0);
  });
});

describe('a digest-pinned image packed with --platform', () => {
  it('verifies, loads as its filtered index, and checks out against the registry only with --allow-filtered', async () => {
    const bundle = join(dir, 'pinned.tar');
    const ref = `${reg.host}/team/app@${app.digest}`;
    let r = await run(['pack', ref, '--platform', 'linux/amd64', '-o', bundle, '--json']);
    expect(r.code, r.stderr).toBe(0);
    const packed = JSON.parse(r.stdout).images[0];
    expect(packed).toMatchObject({ ref, upstreamDigest: app.digest });
    expect(packed.digest).not.toBe(app.digest);
    expect((await run(['verify', bundle])).code).toBe(0);
    r = await run(['load', bundle, '--to', `${target.host}/pinned`, '--json']);
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).images[0]).toMatchObject({ target: `${target.host}/pinned/team/app@${packed.digest}`, status: 'loaded' });
    // the digest the user pinned cannot be at the target: whatever pulls it fails
    r = await run(['verify', bundle, '--against', `${target.host}/pinned`, '--json']);
    expect(r.code, r.stdout).toBe(1);
    expect(JSON.parse(r.stdout).rows[0]).toMatchObject({
      status: 'filtered',
      filtered: { reference: `${target.host}/pinned/team/app@${app.digest}`, upstream: app.digest, held: packed.digest },
    });
    r = await run(['verify', bundle, '--against', `${target.host}/pinned`, '--allow-filtered', '--json']);
    expect(r.code, r.stdout).toBe(0);
    expect(JSON.parse(r.stdout).rows[0]).toMatchObject({ status: 'ok', filtered: { upstream: app.digest, held: packed.digest } });
  });
});
