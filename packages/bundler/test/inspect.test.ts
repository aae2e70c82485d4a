import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type InspectReport, inspectBundle } from '../src/inspect.js';
import { openBundle } from '../src/places/bundle-reader.js';
import { BlobSet, type Desc, ferryBundle, ferryJsonFor, indexJson, named, sha256, twoImages, writeLayoutDir } from './reader-fixtures.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ferry-inspect-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

let counter = 0;
async function inspectTar(bytes: Buffer): Promise<InspectReport> {
  const p = join(tmp, `b${++counter}.tar`);
  await writeFile(p, bytes);
  return inspectPath(p);
}

async function inspectPath(p: string): Promise<InspectReport> {
  const reader = await openBundle(p);
  try {
    return await inspectBundle(reader);
  } finally {
    await reader.close();
  }
}

const total = (...ds: Desc[]) => ds.reduce((n, d) => n + d.size, 0);

/** Sizes of the fixture's images, computed from its descriptors. */
function expected(fx: ReturnType<typeof twoImages>) {
  const m = (d: Desc) => JSON.parse(fx.blobs.blobs.get(d.digest)!.toString()) as { config: Desc; layers: Desc[]; manifests: Desc[] };
  const children = m(fx.app).manifests;
  const appBlobs = new Map<string, Desc>([[fx.app.digest, fx.app]]);
  for (const c of children) {
    appBlobs.set(c.digest, c);
    for (const d of [m(c).config, ...m(c).layers]) appBlobs.set(d.digest, d);
  }
  const toolBlobs = new Map<string, Desc>([[fx.tool.digest, fx.tool]]);
  for (const d of [m(fx.tool).config, ...m(fx.tool).layers]) toolBlobs.set(d.digest, d);
  const union = new Map([...appBlobs, ...toolBlobs]);
  return {
    appSize: total(...appBlobs.values()),
    appBlobs: appBlobs.size,
    toolSize: total(...toolBlobs.values()),
    toolBlobs: toolBlobs.size,
    unique: total(...union.values()),
    uniqueBlobs: union.size,
    toolOwnLayer: m(fx.tool).layers[1]!,
  };
}

describe('inspectBundle', () => {
  it('reports images, unique vs. logical size and the savings of two images sharing a layer', async () => {
    const fx = twoImages();
    const e = expected(fx);
    const images = [named(fx.app, fx.refs[0]!), named(fx.tool, fx.refs[1]!)];
    const ferryJson = ferryJsonFor(
      [
        { ref: fx.refs[0]!, desc: fx.app, platforms: ['linux/amd64', 'linux/arm64/v8'], size: e.appSize },
        { ref: fx.refs[1]!, desc: fx.tool, platforms: ['linux/amd64'], size: e.toolSize },
      ],
      { images: 2, blobs: e.uniqueBlobs, bytes: e.unique, logicalBytes: e.appSize + e.toolSize },
    );
    const { tar, indexJson: idx } = ferryBundle({ images, blobs: fx.blobs, ferryJson, signature: randomBytes(64) });
    const r = await inspectTar(tar);

    expect(r.kind).toBe('ferry');
    expect(r.bundleId).toBe(sha256(Buffer.concat([idx, ferryJson])));
    expect(r.delta).toBeNull();
    expect(r.signed).toBe(true);
    expect(r.created).toBe('2024-01-01T00:00:00Z');
    expect(r.tool).toBe('ferry 0.1.0');
    expect(r.images).toEqual([
      {
        reference: fx.refs[0],
        digest: fx.app.digest,
        mediaType: fx.app.mediaType,
        platforms: ['linux/amd64', 'linux/arm64/v8'],
        size: e.appSize,
        blobs: e.appBlobs,
        missing: { blobs: 0, bytes: 0 },
        complete: true,
        referrers: [],
        referrerSearch: null,
      },
      {
        reference: fx.refs[1],
        digest: fx.tool.digest,
        mediaType: fx.tool.mediaType,
        platforms: ['linux/amd64'],
        size: e.toolSize,
        blobs: e.toolBlobs,
        missing: { blobs: 0, bytes: 0 },
        complete: true,
        referrers: [],
        referrerSearch: null,
      },
    ]);
    expect(r.totals).toEqual({
      images: 2,
      blobs: e.uniqueBlobs,
      bytes: e.unique,
      logicalBytes: e.appSize + e.toolSize,
      saved: fx.base.size, // the one layer both images share
      missing: { blobs: 0, bytes: 0 },
      unreferenced: { blobs: 0, bytes: 0 },
    });
    expect(r.totals.bytes).toBeLessThan(r.totals.logicalBytes);
    expect(r.totals.saved).toBe(r.totals.logicalBytes - r.totals.bytes);
    // The report is the --json output: plain data.
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });

  it('inspects an OCI archive without ferry.json: platforms from the index and from the config', async () => {
    const fx = twoImages();
    const e = expected(fx);
    const blobs = fx.blobs;
    const stray = blobs.add(Buffer.from('nobody points at me'), 'application/octet-stream');
    const { tar } = ferryBundle({ images: [named(fx.app, fx.refs[0]!), named(fx.tool, fx.refs[1]!)], blobs });
    const r = await inspectTar(tar);
    expect(r.kind).toBe('oci-archive');
    expect(r.bundleId).toBeNull();
    expect(r.created).toBeNull();
    expect(r.signed).toBe(false);
    expect(r.delta).toBeNull();
    expect(r.images.map((i) => i.platforms)).toEqual([['linux/amd64', 'linux/arm64/v8'], ['linux/amd64']]);
    expect(r.totals).toMatchObject({ blobs: e.uniqueBlobs, bytes: e.unique, unreferenced: { blobs: 1, bytes: stray.size } });
  });

  it('counts what a delta bundle leaves to its base as missing, not as size', async () => {
    const fx = twoImages();
    const e = expected(fx);
    const baseId = sha256(Buffer.from('the base bundle'));
    const ferryJson = ferryJsonFor(
      [
        { ref: fx.refs[0]!, desc: fx.app, platforms: ['linux/amd64', 'linux/arm64/v8'], size: e.appSize },
        { ref: fx.refs[1]!, desc: fx.tool, platforms: ['linux/amd64'], size: e.toolSize },
      ],
      { images: 2, blobs: e.uniqueBlobs - 1, bytes: e.unique - fx.base.size, logicalBytes: e.appSize + e.toolSize },
      { id: baseId, reliesOn: [{ digest: fx.base.digest, size: fx.base.size }] },
    );
    const { tar } = ferryBundle({
      images: [named(fx.app, fx.refs[0]!), named(fx.tool, fx.refs[1]!)],
      blobs: fx.blobs,
      ferryJson,
      omit: new Set([fx.base.digest]),
    });
    const r = await inspectTar(tar);
    expect(r.delta).toBe(baseId);
    expect(r.signed).toBe(false);
    expect(r.images.map((i) => [i.size, i.missing, i.complete])).toEqual([
      [e.appSize - fx.base.size, { blobs: 1, bytes: fx.base.size }, true],
      [e.toolSize - fx.base.size, { blobs: 1, bytes: fx.base.size }, true],
    ]);
    expect(r.totals).toMatchObject({
      blobs: e.uniqueBlobs - 1,
      bytes: e.unique - fx.base.size,
      logicalBytes: e.appSize + e.toolSize - 2 * fx.base.size,
      saved: 0,
      missing: { blobs: 1, bytes: fx.base.size },
    });
  });

  it('marks an image whose manifest is missing as incomplete and takes its platforms from ferry.json', async () => {
    const fx = twoImages();
    const e = expected(fx);
    const ferryJson = ferryJsonFor(
      [{ ref: fx.refs[1]!, desc: fx.tool, platforms: ['linux/amd64'], size: e.toolSize }],
      { images: 1, blobs: 0, bytes: 0, logicalBytes: e.toolSize },
      { id: sha256(Buffer.from('base')), reliesOn: [{ digest: fx.tool.digest, size: fx.tool.size }] },
    );
    const { tar } = ferryBundle({ images: [named(fx.tool, fx.refs[1]!)], blobs: new BlobSet(), ferryJson });
    const r = await inspectTar(tar);
    expect(r.images[0]).toMatchObject({
      platforms: ['linux/amd64'],
      size: 0,
      blobs: 0,
      missing: { blobs: 1, bytes: fx.tool.size },
      complete: false,
    });
  });

  it('leaves buildx attestation manifests out of the platforms', async () => {
    const blobs = new BlobSet();
    const layer = blobs.layer(1000);
    const amd = blobs.image({ os: 'linux', architecture: 'amd64' }, [layer]);
    const att = blobs.image({ os: 'unknown', architecture: 'unknown' }, [blobs.layer(100)]);
    const idx = blobs.index([
      { ...amd, platform: { os: 'linux', architecture: 'amd64' } },
      {
        ...att,
        platform: { os: 'unknown', architecture: 'unknown' },
        annotations: { 'vnd.docker.reference.digest': amd.digest, 'vnd.docker.reference.type': 'attestation-manifest' },
      },
    ]);
    const r = await inspectTar(ferryBundle({ images: [named(idx, 'registry.test/x:1')], blobs }).tar);
    expect(r.images[0]!.platforms).toEqual(['linux/amd64']);
    expect(r.images[0]!.blobs).toBe(blobs.blobs.size); // attestations still count in size
  });

  it('inspects an OCI archive that skopeo wrote', async () => {
    const fx = twoImages();
    const e = expected(fx);
    const dir = join(tmp, 'layout');
    await writeLayoutDir(dir, [named(fx.app, 'app')], fx.blobs);
    const archive = join(tmp, 'skopeo.tar');
    execFileSync('skopeo', ['--insecure-policy', 'copy', '--quiet', '--all', `oci:${dir}:app`, `oci-archive:${archive}:app`]);
    await writeFile(join(dir, 'index.json'), indexJson([named(fx.tool, 'tool')]));
    execFileSync('skopeo', ['--insecure-policy', 'copy', '--quiet', '--all', `oci:${dir}:tool`, `oci-archive:${archive}.2:tool`]);
    const r = await inspectPath(archive);
    expect(r.kind).toBe('oci-archive');
    expect(r.images).toEqual([
      {
        reference: 'app',
        digest: fx.app.digest,
        mediaType: fx.app.mediaType,
        platforms: ['linux/amd64', 'linux/arm64/v8'],
        size: e.appSize,
        blobs: e.appBlobs,
        missing: { blobs: 0, bytes: 0 },
        complete: true,
        referrers: [],
        referrerSearch: null,
      },
    ]);
    expect(r.totals).toMatchObject({ images: 1, blobs: e.appBlobs, bytes: e.appSize, saved: 0 });
    const r2 = await inspectPath(`${archive}.2`);
    expect(r2.images[0]).toMatchObject({ reference: 'tool', platforms: ['linux/amd64'], size: e.toolSize });
  });

  it('inspects an OCI layout directory', async () => {
    const fx = twoImages();
    const e = expected(fx);
    const dir = join(tmp, 'layout-dir');
    await writeLayoutDir(dir, [named(fx.app, fx.refs[0]!), named(fx.tool, fx.refs[1]!)], fx.blobs);
    const r = await inspectPath(dir);
    expect(r.kind).toBe('oci-dir');
    expect(r.totals).toMatchObject({ images: 2, blobs: e.uniqueBlobs, bytes: e.unique, saved: fx.base.size });
  });
});
