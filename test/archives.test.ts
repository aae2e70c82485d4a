// Archives other tools write, read by load, inspect and verify: real `podman save`
// docker archives (one image, and several with -m, whose repeated layers are
// symbolic links) load into registry:2 under their names, and podman pulls them
// back as the images it saved; a docker archive whose link leaves the archive is
// refused in one line; OCI layouts skopeo writes with a bare tag (`oci:DIR:1.0`,
// `oci-archive:FILE:1.0`) need --name; a compressed bundle is refused by its magic bytes.

import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rawEntry, rawTar } from '../packages/bundler/test/reader-fixtures.js';
import { makeOciLayout, type SeededImage, seedImage, startRegistry, type TestRegistry } from './harness/index.js';
import { makeTempDir, removeTempDir, run } from './harness/process.js';
import { expectErrorLine, type FerryHome, type FerryResult, makeFerryHome, runFerry as runFerryIn, startServe } from './helpers/ferry.js';
import { privatePodman } from './helpers/podman.js';

let src: TestRegistry;
let dst: TestRegistry;
let dir: string;
let home: FerryHome;
let web: SeededImage;
let hook: SeededImage;
let multi: string;
let single: string;

const runFerry = (args: string[]) => runFerryIn(args, { home, timeoutMs: 120_000 });

function ok(r: FerryResult): FerryResult {
  expect(r.code, r.stderr).toBe(0);
  return r;
}

const podman = (args: string[]) => privatePodman(join(dir, 'podman'))(args);

/** Image ID (the config digest) podman gives a name. */
async function podmanId(name: string): Promise<string> {
  return (await podman(['image', 'inspect', '--format', '{{.Id}}', name])).toString('utf8').trim();
}

beforeAll(async () => {
  [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
  dir = await makeTempDir('ferry-archives-');
  home = await makeFerryHome();
  const small = { layers: 2, layerSize: 4096, single: true } as const;
  [web, hook] = await Promise.all([seedImage(src, 'apps/web:1.0', { ...small, seed: 'web' }), seedImage(src, 'apps/hook:3.0', { ...small, seed: 'hook' })]);
  for (const ref of ['apps/web:1.0', 'apps/hook:3.0']) await podman(['pull', '-q', '--tls-verify=false', `${src.host}/${ref}`]);
  multi = join(dir, 'multi.tar');
  single = join(dir, 'single.tar');
  await podman(['save', '-q', '--format', 'docker-archive', '-m', '-o', multi, `${src.host}/apps/web:1.0`, `${src.host}/apps/hook:3.0`]);
  await podman(['save', '-q', '--format', 'docker-archive', '-o', single, `${src.host}/apps/hook:3.0`]);
}, 300_000);

afterAll(async () => {
  await Promise.all([src?.stop(), dst?.stop()]);
  if (dir) await removeTempDir(dir);
  await home?.remove();
});

describe('docker archives (podman save --format docker-archive)', () => {
  it('a multi-image archive (-m, repeated layers as symbolic links) is inspected, verified and loaded; podman pulls the same images back', async () => {
    const listing = (await run('tar', ['-tvf', multi])).toString('utf8');
    expect(listing).toMatch(/^l/m); // podman links each legacy layer dir to the layer file
    const inspect = JSON.parse(ok(await runFerry(['inspect', multi, '--json'])).stdout) as { kind: string; images: Array<{ reference: string }> };
    expect(inspect.kind).toBe('docker-archive');
    expect(inspect.images.map((i) => i.reference).sort()).toEqual([`${src.host}/apps/hook:3.0`, `${src.host}/apps/web:1.0`]);
    expect(ok(await runFerry(['inspect', multi])).stdout).toContain('docker archive (manifests built from its manifest.json)');
    ok(await runFerry(['verify', multi]));

    const loaded = ok(await runFerry(['load', multi, '--to', dst.host, '-q']));
    const lines = loaded.stdout.split('\n').filter((l) => l.includes(' -> '));
    expect(lines.map((l) => l.split('@')[0]).sort()).toEqual([
      `${src.host}/apps/hook:3.0 -> ${dst.host}/apps/hook:3.0`,
      `${src.host}/apps/web:1.0 -> ${dst.host}/apps/web:1.0`,
    ]);
    // The built manifests are deterministic: a second load gives the same digests.
    const again = ok(await runFerry(['load', multi, '--to', dst.host, '-q']));
    expect(again.stdout.split('\n').filter((l) => l.includes(' -> '))).toEqual(lines);

    // The registry holds a Docker schema 2 manifest of the same config and uncompressed layers.
    const raw = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${dst.host}/apps/web:1.0`])).toString('utf8')) as {
      mediaType: string;
      config: { digest: string };
      layers: Array<{ mediaType: string; digest: string }>;
    };
    expect(raw.mediaType).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(raw.config.digest).toBe(web.manifests[0]!.configDigest);
    expect(raw.layers.map((l) => l.mediaType)).toEqual(['application/vnd.docker.image.rootfs.diff.tar', 'application/vnd.docker.image.rootfs.diff.tar']);

    // ferry serve serves the archive as it loads it: the same manifest, byte for byte.
    const served = await startServe([multi, '-q'], { home });
    try {
      const raw = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${served.host}/apps/web:1.0`]);
      const line = lines.find((l) => l.startsWith(`${src.host}/apps/web:1.0 `))!;
      expect(`sha256:${createHash('sha256').update(raw).digest('hex')}`).toBe(line.split('@')[1]);
    } finally {
      expect(await served.stop()).toBe(0);
    }

    // podman pulls them as the images it saved (the image ID is the config digest).
    for (const [ref, image] of [
      ['apps/web:1.0', web],
      ['apps/hook:3.0', hook],
    ] as const) {
      await podman(['pull', '-q', '--tls-verify=false', `${dst.host}/${ref}`]);
      expect(`sha256:${await podmanId(`${dst.host}/${ref}`)}`).toBe(image.manifests[0]!.configDigest);
      expect(await podmanId(`${dst.host}/${ref}`)).toBe(await podmanId(`${src.host}/${ref}`));
    }
  }, 300_000);

  it('a single-image archive loads under its name', async () => {
    const loaded = ok(await runFerry(['load', single, '--to', `${dst.host}/single`, '-q']));
    expect(loaded.stdout).toContain(`${src.host}/apps/hook:3.0 -> ${dst.host}/single/apps/hook:3.0@sha256:`);
    const raw = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${dst.host}/single/apps/hook:3.0`])).toString('utf8')) as {
      config: { digest: string };
    };
    expect(raw.config.digest).toBe(hook.manifests[0]!.configDigest);
  }, 120_000);

  it('a gzip layer is carried as gzip, under the digest of its bytes', async () => {
    const layer = gzipSync(rawTar([rawEntry({ name: 'hello.txt', data: Buffer.from('hello\n') })]));
    const diffId = `sha256:${createHash('sha256')
      .update(rawTar([rawEntry({ name: 'hello.txt', data: Buffer.from('hello\n') })]))
      .digest('hex')}`;
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [diffId] } }));
    const file = join(dir, 'gzip.tar');
    await writeFile(
      file,
      rawTar([
        rawEntry({ name: 'manifest.json', data: Buffer.from(JSON.stringify([{ Config: 'c.json', RepoTags: ['gz:1'], Layers: ['l/layer.tar'] }])) }),
        rawEntry({ name: 'c.json', data: config }),
        rawEntry({ name: 'l/', type: '5' }),
        rawEntry({ name: 'l/layer.tar', data: layer }),
      ]),
    );
    ok(await runFerry(['load', file, '--to', dst.host, '-q']));
    const raw = JSON.parse((await run('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${dst.host}/library/gz:1`])).toString('utf8')) as {
      layers: Array<{ mediaType: string; digest: string }>;
    };
    expect(raw.layers).toEqual([
      {
        mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip',
        size: layer.length,
        digest: `sha256:${createHash('sha256').update(layer).digest('hex')}`,
      },
    ]);
  });

  it('refuses, in one line, a link that leaves the archive, a link to a link, and a link to nothing', async () => {
    const cases: Array<[string, string, string]> = [
      ['escape', '../../etc/passwd', 'entry "abc/layer.tar" is a symbolic link to "../../etc/passwd", outside the bundle'],
      ['absolute', '/etc/passwd', 'entry "abc/layer.tar" is a symbolic link to "/etc/passwd", outside the bundle'],
      ['chain', '../other/layer.tar', 'entry "abc/layer.tar" is a symbolic link to "../other/layer.tar", another link (ferry follows one link, not chains)'],
      ['missing', '../nothing.tar', 'entry "abc/layer.tar" is a symbolic link to "../nothing.tar", which the bundle does not hold'],
    ];
    for (const [name, target, message] of cases) {
      const file = join(dir, `${name}.tar`);
      await writeFile(
        file,
        rawTar([
          rawEntry({ name: 'manifest.json', data: Buffer.from(JSON.stringify([{ Config: 'c.json', RepoTags: ['x:1'], Layers: ['abc/layer.tar'] }])) }),
          rawEntry({ name: 'c.json', data: Buffer.from('{"rootfs":{"diff_ids":["sha256:00"]}}') }),
          rawEntry({ name: 'layer.tar', data: Buffer.from('x') }),
          rawEntry({ name: 'other/layer.tar', type: '2', linkname: '../layer.tar' }),
          rawEntry({ name: 'abc/layer.tar', type: '2', linkname: target }),
        ]),
      );
      for (const command of [
        ['load', file, '--to', dst.host],
        ['inspect', file],
        ['verify', file],
      ]) {
        const r = await runFerry(command);
        expect(expectErrorLine(r, 2), command.join(' ')).toBe(`ferry: ${file} is not a safe bundle: ${message}`);
      }
    }
  });
});

describe('OCI layouts named by a bare tag (skopeo oci:DIR:1.0)', () => {
  it('needs --name for load, and loads the tag under that repository', async () => {
    const layout = join(dir, 'seed-layout');
    const image = await makeOciLayout(layout, { single: true, seed: 'bare', layers: 1, layerSize: 2048, tag: 'seed' });
    const ociDir = join(dir, 'bare-dir');
    const ociArchive = join(dir, 'bare.tar');
    const skopeo = (dest: string) => run('skopeo', ['--insecure-policy', 'copy', '--quiet', '--preserve-digests', `oci:${layout}:seed`, dest]);
    await skopeo(`oci:${ociDir}:1.0`);
    await skopeo(`oci-archive:${ociArchive}:1.0`);
    for (const bundle of [ociDir, ociArchive]) {
      const refused = await runFerry(['load', bundle, '--to', dst.host]);
      expect(expectErrorLine(refused, 2)).toBe(
        `ferry: ${bundle} names image ${image.digest} by the tag "1.0" alone (org.opencontainers.image.ref.name), without a repository: give one with --name REPO`,
      );
      const against = await runFerry(['verify', bundle, '--against', dst.host]);
      expect(expectErrorLine(against, 2)).toContain('by the tag "1.0" alone');
      const inspect = JSON.parse(ok(await runFerry(['inspect', bundle, '--name', 'apps/bare', '--json'])).stdout) as { images: Array<{ reference: string }> };
      expect(inspect.images.map((i) => i.reference)).toEqual(['docker.io/apps/bare:1.0']);
      const plain = JSON.parse(ok(await runFerry(['inspect', bundle, '--json'])).stdout) as { images: Array<{ reference: string }> };
      expect(plain.images.map((i) => i.reference)).toEqual(['1.0']);
      const loaded = ok(await runFerry(['load', bundle, '--name', 'apps/bare', '--to', dst.host, '-q']));
      expect(loaded.stdout).toContain(`docker.io/apps/bare:1.0 -> ${dst.host}/apps/bare:1.0@${image.digest}`);
    }
    // Docker 25's docker save: a bare tag beside io.containerd.image.name, which names the image.
    const index = JSON.parse(await readFile(join(ociDir, 'index.json'), 'utf8')) as { manifests: Array<{ annotations: Record<string, string> }> };
    index.manifests[0]!.annotations['io.containerd.image.name'] = 'docker.io/apps/docker25:1.0';
    await writeFile(join(ociDir, 'index.json'), JSON.stringify(index));
    const docker25 = ok(await runFerry(['load', ociDir, '--to', dst.host, '-q']));
    expect(docker25.stdout).toContain(`docker.io/apps/docker25:1.0 -> ${dst.host}/apps/docker25:1.0@${image.digest}`);
    const bad = await runFerry(['load', ociDir, '--name', 'apps/bare:2.0', '--to', dst.host]);
    expect(expectErrorLine(bad, 2)).toMatch(/^ferry: invalid --name "apps\/bare:2\.0": /);
  }, 120_000);
});

describe('compressed bundles', () => {
  it('are refused by their magic bytes, whatever their name, with the command that undoes it', async () => {
    const bundle = await readFile(single);
    const gz = join(dir, 'bundle.tar');
    await writeFile(gz, gzipSync(bundle));
    const zst = join(dir, 'bundle.tar.zst');
    await run('zstd', ['-q', '-f', single, '-o', zst]);
    for (const command of ['load', 'inspect', 'verify']) {
      const args = command === 'load' ? ['--to', dst.host] : [];
      expect(expectErrorLine(await runFerry([command, gz, ...args]), 2)).toBe(
        `ferry: ${gz} is gzip-compressed; ferry reads bundles uncompressed (blobs are read by offset): decompress it first (gunzip)`,
      );
      expect(expectErrorLine(await runFerry([command, zst, ...args]), 2)).toBe(
        `ferry: ${zst} is zstd-compressed; ferry reads bundles uncompressed (blobs are read by offset): decompress it first (zstd -d)`,
      );
    }
  });
});

describe('small things users hit', () => {
  it('a load to a port that is no registry says so in one line', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(404, { 'content-type': 'text/html' });
      res.end('<h1>Not Found</h1>');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    try {
      const r = await runFerry(['load', single, '--to', `127.0.0.1:${port}`]);
      expect(expectErrorLine(r, 1)).toBe(
        `ferry: loading ${src.host}/apps/hook:3.0 as 127.0.0.1:${port}/apps/hook:3.0: 127.0.0.1:${port} is not a registry (GET /v2/ answered 404)`,
      );
    } finally {
      server.close();
    }
  });

  it("load's line for a digest-pinned image names the digest once", async () => {
    const pinned = `${src.host}/apps/web:1.0@${web.digest}`;
    const bundle = join(dir, 'pinned.tar');
    ok(await runFerry(['pack', pinned, '-o', bundle, '-q']));
    const r = ok(await runFerry(['load', bundle, '--to', `${dst.host}/pinned`, '-q']));
    const line = r.stdout.split('\n').find((l) => l.startsWith(`${pinned} -> `));
    expect(line).toBe(`${pinned} -> ${dst.host}/pinned/apps/web:1.0@${web.digest}`);
  });
});
