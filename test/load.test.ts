// `ferry load` against real registry:2 instances (no auth, htpasswd, token)
// and a Harbor fake in front of one, with skopeo as the independent reader
// (inspect --raw) and writer (oci-archive bundles).
import { spawn } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { SEND_WITHOUT_ASKING } from '@ferry/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type HarborFake,
  registryFetch,
  type SeededImage,
  seedImage,
  skopeoInspectRaw,
  startHarborFake,
  startRegistry,
  type TestRegistry,
} from './harness/index.js';
import { run } from './harness/process.js';
import {
  expectErrorLine,
  expectImageIn,
  FERRY_MAIN,
  type FerryHome,
  type FerryResult,
  headStatus,
  makeFerryHome,
  runFerry as runFerryIn,
} from './helpers/ferry.js';
import { changeByte } from './helpers/tamper.js';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const ALICE = { user: 'alice', password: 'alice-secret' };
const ROBOT = { user: 'robot$ci', password: 'r0bot-Secret' };

interface LoadJson {
  bundle: string;
  to: string;
  dryRun: boolean;
  images: Array<{ source: string; target: string; digest: string; platforms: string[]; status: string; blobsToPush?: number; blobsPresent?: number }>;
  blobs: { uploaded: number; mounted: number; skipped: number };
  bytes: number;
  projectsCreated: string[];
}

let src: TestRegistry;
let dir: string;
let home: FerryHome;
/** linux/amd64 + linux/arm64 index; shares its base layer and amd64 layer 1 with `single`. */
let app: SeededImage;
/** One linux/amd64 manifest (no index) with three layers. */
let single: SeededImage;
let appRef: string;
let singleRef: string;
/** ferry pack of app and single. */
let bundle: string;
/** Configs and layers of app and single, once each. */
let uniqueBlobs: Set<string>;
/** Blobs per target repository: what a load into an empty registry must write. */
let repoBlobs: number;

const runFerry = (args: string[], h: FerryHome = home) => runFerryIn(args, { home: h });

/** Parses the --json output of a successful load. */
function loadJson(r: FerryResult): LoadJson {
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as LoadJson;
}

/** The repositories a registry lists in its catalog. */
async function catalog(reg: TestRegistry): Promise<string[]> {
  const res = await registryFetch(reg, '/v2/_catalog');
  expect(res.status).toBe(200);
  return ((await res.json()) as { repositories: string[] }).repositories;
}

/** Checks the loaded images under `prefix` (repo paths team/app, team/single) byte for byte. */
async function expectBothLoaded(reg: TestRegistry, prefix: string): Promise<void> {
  await expectImageIn(reg, `${prefix}/team/app:1.0`, app);
  await expectImageIn(reg, `${prefix}/team/single:1.0`, single);
}

/** YAML is parsed with the library the bundler depends on (the test package has no YAML dependency of its own). */
async function parseYaml(text: string): Promise<unknown> {
  const resolved = createRequire(join(FERRY_MAIN, '..', '..', '..', 'bundler', 'package.json')).resolve('yaml');
  const mod = (await import(pathToFileURL(resolved).href)) as { parse?: (t: string) => unknown; default?: { parse: (t: string) => unknown } };
  return (mod.parse ?? mod.default!.parse)(text);
}

/** Every tar entry: name, data offset and size (ustar, with pax size records honoured). */
async function tarEntries(file: string): Promise<Array<{ name: string; offset: number; size: number }>> {
  const buf = await readFile(file);
  const out: Array<{ name: string; offset: number; size: number }> = [];
  let pos = 0;
  let paxSize: number | undefined;
  while (pos + 512 <= buf.length) {
    const h = buf.subarray(pos, pos + 512);
    if (h.every((b) => b === 0)) break;
    const str = (o: number, n: number) =>
      h
        .subarray(o, o + n)
        .toString('utf8')
        .replace(/\0.*$/s, '');
    const prefix = str(345, 155);
    const name = (prefix ? `${prefix}/` : '') + str(0, 100);
    let size = parseInt(str(124, 12).trim(), 8);
    const type = String.fromCharCode(h[156]!);
    const data = pos + 512;
    if (type === 'x') {
      const records = buf.subarray(data, data + size).toString('utf8');
      const m = /\d+ size=(\d+)\n/.exec(records);
      paxSize = m ? Number(m[1]) : undefined;
    } else {
      if (paxSize !== undefined) size = paxSize;
      paxSize = undefined;
      out.push({ name, offset: data, size });
    }
    pos = data + Math.ceil(size / 512) * 512;
  }
  return out;
}

/** The bytes of `blobs/sha256/<hex>` in a tar bundle. */
async function bundleBlob(file: string, digest: string): Promise<Buffer> {
  return run('tar', ['-xOf', file, `blobs/sha256/${digest.slice('sha256:'.length)}`]);
}

beforeAll(async () => {
  src = await startRegistry();
  dir = await mkdtemp(join(tmpdir(), 'ferry-load-test-'));
  home = await makeFerryHome();
  [app, single] = await Promise.all([
    seedImage(src, 'team/app:1.0', { seed: 's', sharedBaseLayer: true, layers: 2 }),
    seedImage(src, 'team/single:1.0', { seed: 's', sharedBaseLayer: true, layers: 3, single: true }),
  ]);
  appRef = `${src.host}/team/app:1.0`;
  singleRef = `${src.host}/team/single:1.0`;
  uniqueBlobs = new Set([...app.blobs.keys(), ...single.blobs.keys()]);
  repoBlobs = app.blobs.size + single.blobs.size;
  // The images share layers, so the bundle carries fewer blobs than the repositories need.
  expect(uniqueBlobs.size).toBe(7);
  expect(repoBlobs).toBe(9);
  bundle = join(dir, 'bundle.tar');
  const r = await runFerry(['pack', appRef, singleRef, '-o', bundle, '-q']);
  expect(r.stderr).toBe('');
  expect(r.code).toBe(0);
});

afterAll(async () => {
  await src?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
  await home?.remove();
});

describe('ferry load: round trip registry:2 -> pack -> load', () => {
  for (const auth of ['none', 'htpasswd', 'token'] as const) {
    it(`loads every image with identical digests into a fresh registry (auth ${auth}); a second load uploads nothing`, async () => {
      const target = await startRegistry({ auth });
      const h = await makeFerryHome();
      try {
        if (auth !== 'none') await h.login({ [target.host]: ALICE });
        const to = `${target.host}/mirror/x`;
        const first = loadJson(await runFerry(['load', bundle, '--to', to, '--json'], h));
        expect(first.images).toEqual([
          { source: appRef, target: `${to}/team/app:1.0`, digest: app.digest, platforms: ['linux/amd64', 'linux/arm64/v8'], status: 'loaded' },
          { source: singleRef, target: `${to}/team/single:1.0`, digest: single.digest, platforms: expect.any(Array), status: 'loaded' },
        ]);
        // Every blob crosses once per repository (uploaded, or mounted from the other one).
        expect(first.blobs.skipped).toBe(0);
        expect(first.blobs.uploaded + first.blobs.mounted).toBe(repoBlobs);
        expect(first.blobs.uploaded).toBeGreaterThanOrEqual(uniqueBlobs.size);
        await expectBothLoaded(target, 'mirror/x');

        const second = loadJson(await runFerry(['load', bundle, '--to', to, '--json'], h));
        expect(second.blobs).toEqual({ uploaded: 0, mounted: 0, skipped: repoBlobs });
        expect(second.bytes).toBe(0);
        expect(second.images.map((i) => [i.digest, i.status])).toEqual([
          [app.digest, 'loaded'],
          [single.digest, 'loaded'],
        ]);
        await expectBothLoaded(target, 'mirror/x');
        if (auth === 'token') {
          // ferry asked for push rights on the mapped repositories, as alice.
          const scopes = target.tokenServer!.requests.filter((q) => q.user === 'alice').flatMap((q) => q.scopes);
          expect(scopes).toContain('repository:mirror/x/team/app:pull,push');
        }
      } finally {
        await Promise.all([target.stop(), h.remove()]);
      }
    });
  }

  it('fails with exit 1 for an account without push rights, naming ferry login and no Harbor project', async () => {
    const target = await startRegistry({ auth: 'token' });
    const h = await makeFerryHome();
    try {
      await h.login({ [target.host]: { user: 'bob', password: 'bob-secret' } });
      const r = await runFerry(['load', bundle, '--to', `${target.host}/mirror`, '-q'], h);
      const line = expectErrorLine(r, 1);
      expect(line).toContain(`${appRef} as ${target.host}/mirror/team/app:1.0`);
      expect(line).toContain(`ferry login ${target.host}`);
      expect(line).not.toContain('Harbor');
      expect(line).not.toContain('bob-secret');
      expect(await headStatus(target, '/v2/mirror/team/app/manifests/1.0', OCI_INDEX)).toBe(404);
    } finally {
      await Promise.all([target.stop(), h.remove()]);
    }
  });

  it('serves back the exact bytes of the bundle (skopeo inspect --raw), index and child manifests', async () => {
    const target = await startRegistry();
    try {
      expect((await runFerry(['load', bundle, '--to', target.host, '-q'])).code).toBe(0);
      const index = await skopeoInspectRaw(target, 'team/app:1.0');
      expect(index.equals(await bundleBlob(bundle, app.digest))).toBe(true);
      expect(JSON.parse(index.toString()).mediaType).toBe(OCI_INDEX);
      for (const m of app.manifests) {
        const raw = await skopeoInspectRaw(target, `team/app@${m.digest}`);
        expect(raw.equals(await bundleBlob(bundle, m.digest)), m.platform).toBe(true);
      }
      const manifest = await skopeoInspectRaw(target, 'team/single:1.0');
      expect(manifest.equals(await bundleBlob(bundle, single.digest))).toBe(true);
      expect(JSON.parse(manifest.toString()).mediaType).toBe(OCI_MANIFEST);
    } finally {
      await target.stop();
    }
  });

  it('loads an oci-archive written by skopeo copy --all, with the same digests', async () => {
    const archive = join(dir, 'skopeo.tar');
    // skopeo takes everything after the path's colon as the image name, host:port included.
    await run('skopeo', [
      '--insecure-policy',
      'copy',
      '--quiet',
      '--all',
      '--preserve-digests',
      '--src-tls-verify=false',
      `docker://${appRef}`,
      `oci-archive:${archive}:${appRef}`,
    ]);
    const index = JSON.parse((await run('tar', ['-xOf', archive, 'index.json'])).toString());
    expect(index.manifests[0].annotations['org.opencontainers.image.ref.name']).toBe(appRef);
    const target = await startRegistry();
    try {
      const r = loadJson(await runFerry(['load', archive, '--to', `${target.host}/from-skopeo`, '--json']));
      expect(r.images.map((i) => [i.source, i.target, i.digest])).toEqual([[appRef, `${target.host}/from-skopeo/team/app:1.0`, app.digest]]);
      await expectImageIn(target, 'from-skopeo/team/app:1.0', app);
    } finally {
      await target.stop();
    }
  });
});

describe('ferry load: integrity, resumption, plan', () => {
  it('refuses a bundle with one byte flipped in a layer: exit 1, names blob and image, no tag for that image', async () => {
    // The arm64 layer 1 of app: no other image uses it.
    const armLayer = app.manifests[1]!.layerDigests[1]!;
    expect(single.blobs.has(armLayer)).toBe(false);
    expect(app.manifests[0]!.layerDigests).not.toContain(armLayer);
    const tampered = join(dir, 'tampered.tar');
    await copyFile(bundle, tampered);
    const entry = (await tarEntries(tampered)).find((e) => e.name === `blobs/sha256/${armLayer.slice(7)}`);
    expect(entry?.size).toBe(app.blobs.get(armLayer)!.length);
    await changeByte(tampered, entry!.offset + (entry!.size >> 1));

    const target = await startRegistry();
    try {
      const r = await runFerry(['load', tampered, '--to', `${target.host}/m`, '-q']);
      const line = expectErrorLine(r, 1);
      expect(line).toContain(armLayer);
      expect(line).toContain(appRef);
      expect(line).not.toContain(singleRef);
      // No tag, no index, no child manifest of app; single is there, complete.
      expect(await headStatus(target, '/v2/m/team/app/manifests/1.0', OCI_INDEX)).toBe(404);
      expect(await headStatus(target, `/v2/m/team/app/manifests/${app.digest}`, OCI_INDEX)).toBe(404);
      for (const m of app.manifests) expect(await headStatus(target, `/v2/m/team/app/manifests/${m.digest}`, OCI_MANIFEST)).toBe(404);
      expect(await headStatus(target, `/v2/m/team/app/blobs/${armLayer}`)).toBe(404);
      await expectImageIn(target, 'm/team/single:1.0', single);
    } finally {
      await target.stop();
    }
  });

  it('loads an image whose blobs are intact even when an image sharing its repository and blobs fails', async () => {
    // Two tags of one repository share layers; the first image's own config is damaged.
    const a = await seedImage(src, 'team/multi:a', { seed: 's', sharedBaseLayer: true, layers: 2 });
    const b = await seedImage(src, 'team/multi:b', { seed: 's', sharedBaseLayer: true, layers: 3, single: true });
    const shared = [...b.blobs.keys()].filter((d) => a.blobs.has(d));
    expect(shared.length).toBeGreaterThan(0);
    const pair = join(dir, 'pair.tar');
    expect((await runFerry(['pack', `${src.host}/team/multi:a`, `${src.host}/team/multi:b`, '-o', pair, '-q'])).code).toBe(0);
    // The first blob a load of :a starts, so the shared ones are still queued when it fails.
    const badConfig = a.manifests[0]!.configDigest;
    expect(b.blobs.has(badConfig)).toBe(false);
    const entry = (await tarEntries(pair)).find((e) => e.name === `blobs/sha256/${badConfig.slice(7)}`)!;
    await changeByte(pair, entry.offset + 2);
    const target = await startRegistry();
    try {
      const r = await runFerry(['load', pair, '--to', `${target.host}/p`, '-q', '-j', '1']);
      const line = expectErrorLine(r, 1);
      expect(line).toContain(badConfig);
      expect(line).not.toContain('multi:b');
      expect(await headStatus(target, '/v2/p/team/multi/manifests/a', OCI_INDEX)).toBe(404);
      await expectImageIn(target, 'p/team/multi:b', b);
    } finally {
      await target.stop();
    }
  });

  it('completes a load killed with SIGKILL halfway, with identical digests and without uploading again what was there', async () => {
    const big = await seedImage(src, 'team/big:1', { seed: 'big', layers: 4, layerSize: 8 * 1024 * 1024, platforms: ['linux/amd64'] });
    const bigBundle = join(dir, 'big.tar');
    expect((await runFerry(['pack', `${src.host}/team/big:1`, '-o', bigBundle, '-q'])).code).toBe(0);
    const target = await startRegistry();
    try {
      const child = spawn(process.execPath, [FERRY_MAIN, 'load', bigBundle, '--to', `${target.host}/k`, '-j', '1'], {
        // As runFerry: no proxy settings, this test's HOME and DOCKER_CONFIG.
        env: {
          ...Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(https?_proxy|no_proxy|all_proxy|docker_config|home)$/i.test(k))),
          HOME: home.dir,
          DOCKER_CONFIG: home.dockerConfig,
        },
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
      // Progress lines go to stderr; kill as soon as the first layer (MBs) is uploaded.
      let err = '';
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 10_000);
        child.stderr.on('data', (c: Buffer) => {
          err += c.toString();
          if (/^blob \S+ \d+(\.\d+)? MB uploaded$/m.test(err)) {
            clearTimeout(timer);
            resolve();
          }
        });
      });
      child.kill('SIGKILL');
      await exited;
      expect(child.signalCode, err).toBe('SIGKILL');
      // Partway: some blobs there, no tag yet.
      const present: Array<{ status: number; size: number }> = [];
      for (const [d, bytes] of big.blobs) present.push({ status: await headStatus(target, `/v2/k/team/big/blobs/${d}`), size: bytes.length });
      expect(present.map((p) => p.status)).toContain(200);
      expect(present.map((p) => p.status)).toContain(404);
      expect(await headStatus(target, '/v2/k/team/big/manifests/1', OCI_INDEX)).toBe(404);

      // The layers there are not sent again; a small blob (the config) is sent without asking.
      const r = loadJson(await runFerry(['load', bigBundle, '--to', `${target.host}/k`, '--json']));
      const skipped = present.filter((p) => p.status === 200 && p.size > SEND_WITHOUT_ASKING).length;
      expect(skipped).toBeGreaterThan(0);
      expect(r.blobs.skipped).toBe(skipped);
      expect(r.blobs.uploaded).toBe(present.length - skipped);
      expect(r.images[0]!.digest).toBe(big.digest);
      await expectImageIn(target, 'k/team/big:1', big);
    } finally {
      await target.stop();
    }
  });

  it('--dry-run prints source -> target with blobs to push and present, and pushes nothing', async () => {
    const target = await startRegistry();
    try {
      // single is already in its target repository; app is not.
      await seedImage(target, 'dry/team/single:1.0', { seed: 's', sharedBaseLayer: true, layers: 3, single: true });
      const r = await runFerry(['load', bundle, '--to', `${target.host}/dry`, '--dry-run']);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.split('\n').filter(Boolean)).toEqual([
        `${appRef} -> ${target.host}/dry/team/app:1.0 (${app.digest.slice(0, 19)}): ${app.blobs.size} blobs to push, 0 present`,
        `${singleRef} -> ${target.host}/dry/team/single:1.0 (${single.digest.slice(0, 19)}): 0 blobs to push, ${single.blobs.size} present`,
      ]);
      const j = loadJson(await runFerry(['load', bundle, '--to', `${target.host}/dry`, '--dry-run', '--json']));
      expect(j.dryRun).toBe(true);
      expect(j.images.map((i) => [i.target, i.status, i.blobsToPush, i.blobsPresent])).toEqual([
        [`${target.host}/dry/team/app:1.0`, 'planned', app.blobs.size, 0],
        [`${target.host}/dry/team/single:1.0`, 'planned', 0, single.blobs.size],
      ]);
      expect(j.blobs).toEqual({ uploaded: 0, mounted: 0, skipped: 0 });
      // Nothing was pushed: only the seeded repository, only its tag.
      expect(await catalog(target)).toEqual(['dry/team/single']);
      const tags = await registryFetch(target, '/v2/dry/team/single/tags/list');
      expect(((await tags.json()) as { tags: string[] }).tags).toEqual(['1.0']);
      expect(await headStatus(target, `/v2/dry/team/app/blobs/${app.manifests[0]!.layerDigests[0]}`)).toBe(404);
      expect(await headStatus(target, `/v2/dry/team/app/manifests/${app.digest}`, OCI_INDEX)).toBe(404);
    } finally {
      await target.stop();
    }
  });

  it('--mapping-out writes source, target and digest for every image, as YAML or JSON by extension', async () => {
    const target = await startRegistry();
    try {
      const yamlFile = join(dir, 'm.yaml');
      const jsonFile = join(dir, 'm.json');
      expect((await runFerry(['load', bundle, '--to', `${target.host}/p`, '-q', '--mapping-out', yamlFile])).code).toBe(0);
      expect((await runFerry(['load', bundle, '--to', `${target.host}/p`, '-q', '--mapping-out', jsonFile])).code).toBe(0);
      const want = {
        images: [
          { source: appRef, target: `${target.host}/p/team/app:1.0`, digest: app.digest },
          { source: singleRef, target: `${target.host}/p/team/single:1.0`, digest: single.digest },
        ],
      };
      expect(await parseYaml(await readFile(yamlFile, 'utf8'))).toEqual(want);
      expect(JSON.parse(await readFile(jsonFile, 'utf8'))).toEqual(want);
    } finally {
      await target.stop();
    }
  });
});

describe('ferry load: bad input exits 2 with one line, before anything is pushed', () => {
  let target: TestRegistry;
  beforeAll(async () => {
    target = await startRegistry();
  });
  afterAll(async () => {
    await target?.stop();
  });

  it('refuses two sources mapped to one target', async () => {
    const r = await runFerry(['load', bundle, '--to', target.host, '--map', `${src.host}/team/single=team/app`]);
    const line = expectErrorLine(r, 2);
    expect(line).toBe(`ferry: ${appRef} and ${singleRef} would both be loaded as ${target.host}/team/app:1.0; add a --map rule to separate them`);
    expect(await catalog(target)).toEqual([]);
  });

  it('refuses a bad --to, a bad --map and a --mapping-out that is neither YAML nor JSON', async () => {
    let r = await runFerry(['load', bundle, '--to', 'Bad Host']);
    expect(expectErrorLine(r, 2)).toBe(
      'ferry: invalid registry "Bad Host": registry "Bad Host" is not a valid host name, IP address or [IPv6] address with optional :port',
    );
    r = await runFerry(['load', bundle, '--to', `http://${target.host}`]);
    expect(expectErrorLine(r, 2)).toContain('leave out the scheme "http://"');
    r = await runFerry(['load', bundle, '--to', `${target.host}/Mirror`]);
    expect(expectErrorLine(r, 2)).toBe(`ferry: invalid registry "${target.host}/Mirror": prefix must be lowercase ("Mirror")`);
    r = await runFerry(['load', bundle, '--to', target.host, '--map', 'docker.io/bitnami']);
    expect(expectErrorLine(r, 2)).toMatch(/^ferry: invalid --map "docker\.io\/bitnami": write SRC_PREFIX=DST_PREFIX/);
    r = await runFerry(['load', bundle, '--to', target.host, '--mapping-out', join(dir, 'm.txt')]);
    expect(expectErrorLine(r, 2)).toBe(`ferry: --mapping-out ${join(dir, 'm.txt')}: name a .yaml, .yml or .json file`);
    expect(await catalog(target)).toEqual([]);
  });

  it('refuses an index.json that gives one name two digests, before anything is pushed (load and verify, exit 2)', async () => {
    const layout = join(dir, 'two-digests');
    await run('mkdir', ['-p', layout]);
    await run('tar', ['-xf', bundle, '-C', layout]);
    await rm(join(layout, 'ferry.json'));
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
      manifests: Array<{ digest: string; annotations: Record<string, string> }>;
    };
    // A foreign OCI archive: the second entry takes the first's name.
    index.manifests[1]!.annotations = { 'org.opencontainers.image.ref.name': appRef };
    await writeFile(join(layout, 'index.json'), JSON.stringify(index));
    const archive = join(dir, 'two-digests.tar');
    await run('tar', ['-cf', archive, '-C', layout, 'oci-layout', 'index.json', 'blobs']);
    const line = `ferry: ${archive} names ${appRef} twice, with different digests ${app.digest} and ${single.digest}; refusing a bundle whose names are ambiguous`;
    expect(expectErrorLine(await runFerry(['load', archive, '--to', target.host]), 2)).toBe(line);
    expect(expectErrorLine(await runFerry(['verify', archive]), 2)).toBe(line);
    expect(await catalog(target)).toEqual([]);
  });

  it('checks a ferry bundle against its ferry.json before pushing, with or without --key', async () => {
    const layout = join(dir, 'emptied');
    await run('mkdir', ['-p', layout]);
    await run('tar', ['-xf', bundle, '-C', layout]);
    await writeFile(join(layout, 'index.json'), JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] }));
    const emptied = join(dir, 'emptied.tar');
    await run('tar', ['-cf', emptied, '-C', layout, 'oci-layout', 'index.json', 'ferry.json', 'blobs']);
    const r = await runFerry(['load', emptied, '--to', target.host]);
    expect(expectErrorLine(r, 2)).toBe(
      `ferry: refusing to load ${emptied}: ferry.json lists 2 images, index.json 0; nothing was pushed (ferry verify shows every problem)`,
    );
    expect(await catalog(target)).toEqual([]);
  });

  it('refuses a file that is not a bundle, a missing one, a directory that is no layout, and a missing --to', async () => {
    const notBundle = join(dir, 'not-a-bundle.tar');
    await writeFile(notBundle, Buffer.from('hello, this is not a tar file\n'.repeat(40)));
    let r = await runFerry(['load', notBundle, '--to', target.host]);
    expect(expectErrorLine(r, 2)).toMatch(new RegExp(`^ferry: ${escapeRegExp(notBundle)} is not a bundle`));
    r = await runFerry(['load', join(dir, 'missing.tar'), '--to', target.host]);
    expect(expectErrorLine(r, 2)).toBe(`ferry: bundle ${join(dir, 'missing.tar')} does not exist`);
    // A directory that is not an OCI layout.
    r = await runFerry(['load', join(dir), '--to', target.host]);
    expect(expectErrorLine(r, 2)).toMatch(new RegExp(`^ferry: ${escapeRegExp(dir)} is not a bundle: it has no oci-layout file`));
    r = await runFerry(['load', bundle]);
    expect(expectErrorLine(r, 2)).toBe("ferry: required option '--to <registry>' not specified");
    expect(await catalog(target)).toEqual([]);
  });
});

describe('ferry load into Harbor (fake API in front of registry:2)', () => {
  let backend: TestRegistry;
  let harbor: HarborFake;
  const users = { admin: 'Harbor12345', [ROBOT.user]: ROBOT.password };

  beforeAll(async () => {
    backend = await startRegistry();
    harbor = await startHarborFake({ backend, users, projects: ['library'] });
  });
  afterAll(async () => {
    await harbor?.stop();
    await backend?.stop();
  });

  /** The backend registry with the fake's view: what was pushed through it. */
  const expectPushed = async (project: string) => {
    await expectImageIn(backend, `${project}/team/app:1.0`, app);
    await expectImageIn(backend, `${project}/team/single:1.0`, single);
  };

  it('creates the missing project once, private, then pushes with identical digests', async () => {
    const h = await makeFerryHome();
    try {
      await h.login({ [harbor.host]: { user: 'admin', password: users.admin } });
      const r = loadJson(await runFerry(['load', bundle, '--to', `${harbor.host}/mirror`, '--harbor-create-projects', '--json'], h));
      expect(r.projectsCreated).toEqual([`${harbor.host}/mirror`]);
      expect(harbor.creations).toEqual([{ user: 'admin', body: { project_name: 'mirror', metadata: { public: 'false' } }, status: 201 }]);
      expect(harbor.projects.get('mirror')).toMatchObject({ public: false, createdBy: 'admin' });
      // The pushes went through Harbor's token service, as admin, with push rights on the new project.
      expect(harbor.tokenRequests).toContainEqual({
        user: 'admin',
        scopes: ['repository:mirror/team/app:pull,push'],
        granted: ['repository:mirror/team/app:pull,push'],
      });
      expect(r.images.map((i) => i.digest)).toEqual([app.digest, single.digest]);
      await expectPushed('mirror');
      // Through the fake too, with its own auth.
      expect(
        (
          await run('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', `admin:${users.admin}`, `docker://${harbor.host}/mirror/team/app:1.0`])
        ).equals(app.indexBytes!),
      ).toBe(true);

      // Again: the project exists, nothing is created, nothing uploaded.
      const again = loadJson(await runFerry(['load', bundle, '--to', `${harbor.host}/mirror`, '--harbor-create-projects', '--json'], h));
      expect(again.projectsCreated).toEqual([]);
      expect(again.blobs.uploaded).toBe(0);
      expect(harbor.creations).toHaveLength(1);
      expect(harbor.refusals).toEqual([]);
    } finally {
      await h.remove();
    }
  });

  it('works with a robot account (robot$name) and creates each project of a --map once', async () => {
    const h = await makeFerryHome();
    try {
      await h.login({ [harbor.host]: ROBOT });
      const before = harbor.creations.length;
      const r = loadJson(
        await runFerry(
          [
            'load',
            bundle,
            '--to',
            `${harbor.host}/robots`,
            '--map',
            `${src.host}/team/single=${harbor.host}/singles/team/single`,
            '--harbor-create-projects',
            '--json',
          ],
          h,
        ),
      );
      expect(r.images.map((i) => i.target)).toEqual([`${harbor.host}/robots/team/app:1.0`, `${harbor.host}/singles/team/single:1.0`]);
      expect(r.projectsCreated.sort()).toEqual([`${harbor.host}/robots`, `${harbor.host}/singles`]);
      const created = harbor.creations.slice(before);
      expect(created.map((c) => [c.user, (c.body as { project_name: string }).project_name, c.status]).sort()).toEqual([
        [ROBOT.user, 'robots', 201],
        [ROBOT.user, 'singles', 201],
      ]);
      expect(created.every((c) => (c.body as { metadata: { public: string } }).metadata.public === 'false')).toBe(true);
      await expectImageIn(backend, 'robots/team/app:1.0', app);
      await expectImageIn(backend, 'singles/team/single:1.0', single);
    } finally {
      await h.remove();
    }
  });

  it('without --harbor-create-projects, a push into a missing project fails with a line naming the project and the flag', async () => {
    const h = await makeFerryHome();
    try {
      await h.login({ [harbor.host]: { user: 'admin', password: users.admin } });
      const before = harbor.creations.length;
      const r = await runFerry(['load', bundle, '--to', `${harbor.host}/absent`, '-q'], h);
      const line = expectErrorLine(r, 1);
      expect(line).toContain(`the Harbor project "absent" does not exist in ${harbor.host}`);
      expect(line).toContain('create it or rerun with --harbor-create-projects');
      // Harbor's 401 for a missing project is not about the credentials, and ferry does not say it is.
      expect(line).not.toContain('credentials were rejected');
      expect(line).toContain(`${appRef} as ${harbor.host}/absent/team/app:1.0`);
      expect(harbor.creations).toHaveLength(before);
      expect(harbor.projects.has('absent')).toBe(false);
      expect(harbor.refusals.length).toBeGreaterThan(0);
      expect(harbor.refusals.every((x) => x.project === 'absent')).toBe(true);
      expect(await catalog(backend)).not.toContain('absent/team/app');

      // Without credentials the project list shows only public projects, so ferry does not claim to know.
      const anonymous = await makeFerryHome();
      try {
        const a = await runFerry(['load', bundle, '--to', `${harbor.host}/absent`, '-q'], anonymous);
        const anonLine = expectErrorLine(a, 1);
        expect(anonLine).toContain(`ferry login ${harbor.host}`);
        expect(anonLine).not.toContain('does not exist');
      } finally {
        await anonymous.remove();
      }
    } finally {
      await h.remove();
    }
  });

  it('pushes into an existing project without creating anything, flag or not', async () => {
    const h = await makeFerryHome();
    try {
      await h.login({ [harbor.host]: { user: 'admin', password: users.admin } });
      const before = harbor.creations.length;
      let r = loadJson(await runFerry(['load', bundle, '--to', `${harbor.host}/library`, '--json'], h));
      expect(r.images.map((i) => i.status)).toEqual(['loaded', 'loaded']);
      r = loadJson(await runFerry(['load', bundle, '--to', `${harbor.host}/library`, '--harbor-create-projects', '--json'], h));
      expect(r.projectsCreated).toEqual([]);
      expect(harbor.creations).toHaveLength(before);
      await expectPushed('library');
    } finally {
      await h.remove();
    }
  });

  it('creates the project when Harbor answers 403 (not 404) to HEAD for a missing project, matching names exactly', async () => {
    // Projects whose names contain "edge": Harbor's ?name= matches substrings.
    const strict = await startHarborFake({ backend, users, projects: ['edge2', 'old-edge'], missingProjectHeadStatus: 403 });
    const h = await makeFerryHome();
    try {
      await h.login({ [strict.host]: { user: 'admin', password: users.admin } });
      const r = loadJson(await runFerry(['load', bundle, '--to', `${strict.host}/edge`, '--harbor-create-projects', '--json'], h));
      expect(r.projectsCreated).toEqual([`${strict.host}/edge`]);
      expect(strict.creations.map((c) => [c.body, c.status])).toEqual([[{ project_name: 'edge', metadata: { public: 'false' } }, 201]]);
      expect(strict.apiRequests.map((q) => `${q.method} ${q.path.replace(/\?.*/, '')} ${q.status}`)).toEqual([
        'HEAD /api/v2.0/projects 403',
        'GET /api/v2.0/projects 200',
        'POST /api/v2.0/projects 201',
      ]);
      await expectPushed('edge');
    } finally {
      await h.remove();
      await strict.stop();
    }
  });

  it('says when the credentials cannot create projects', async () => {
    const h = await makeFerryHome();
    try {
      await h.login({ [harbor.host]: { user: 'admin', password: 'wrong' } });
      const r = await runFerry(['load', bundle, '--to', `${harbor.host}/other`, '--harbor-create-projects', '-q'], h);
      const line = expectErrorLine(r, 1);
      expect(line).toContain('401');
      expect(line).toContain(`ferry login ${harbor.host}`);
      expect(line).not.toContain('wrong');
      expect(harbor.projects.has('other')).toBe(false);
    } finally {
      await h.remove();
    }
  });
});

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
