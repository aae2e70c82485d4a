// ferry serve against real clients: skopeo and ferry itself pull every image
// from bundles served as a registry, byte for byte; split, delta + base, a name
// with two digests, auth, TLS, a damaged bundle, and shutdown.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { indexTar } from '@ferry/bundler';
import bcrypt from 'bcryptjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeServerTls } from './harness/certs.js';
import { type SeededImage, seedImage, sha256Digest, startRegistry, type TestRegistry } from './harness/index.js';
import { makeTempDir, removeTempDir, run as runTool } from './harness/process.js';
import { expectErrorLine, expectImageIn, type FerryHome, makeFerryHome, runFerry, type ServeProcess, startServe } from './helpers/ferry.js';
import { changeByte } from './helpers/tamper.js';

let src: TestRegistry;
let other: TestRegistry;
let dst: TestRegistry;
let home: FerryHome;
let dir: string;
const img: Record<string, SeededImage> = {};
let v1: string;
let delta: string;
let split: string;
let clash: string;
const run = (args: string[]) => runFerry(args, { home, timeoutMs: 60_000 });
const serve = (args: string[]) => startServe(args, { home });

beforeAll(async () => {
  [src, other, dst] = await Promise.all([startRegistry(), startRegistry(), startRegistry()]);
  home = await makeFerryHome();
  dir = await makeTempDir('ferry-serve-');
  img.a = await seedImage(src, 'team/a:1', { seed: 'a', sharedBaseLayer: true, layers: 2, layerSize: 640 * 1024 });
  img.b = await seedImage(src, 'team/b:1', { seed: 'b', single: true, layers: 2, layerSize: 128 * 1024 });
  img.c = await seedImage(src, 'team/c:1', { seed: 'a', sharedBaseLayer: true, layers: 3, layerSize: 640 * 1024 });
  img.bOther = await seedImage(other, 'team/b:1', { seed: 'other', single: true });
  v1 = join(dir, 'v1.tar');
  delta = join(dir, 'delta.tar');
  split = join(dir, 'split.tar');
  clash = join(dir, 'clash.tar');
  const ins = ['--insecure-registry', src.host, '--insecure-registry', other.host];
  for (const args of [
    ['pack', `${src.host}/team/a:1`, `${src.host}/team/b:1`, '-o', v1],
    ['pack', `${src.host}/team/a:1`, `${src.host}/team/c:1`, '-o', delta, '--base', v1],
    ['pack', `${src.host}/team/a:1`, `${src.host}/team/b:1`, '-o', split, '--split-size', '1M'],
    ['pack', `${other.host}/team/b:1`, '-o', clash],
  ]) {
    const res = await run([...ins, '-q', ...args]);
    expect(res.code, res.stderr).toBe(0);
  }
}, 180_000);

afterAll(async () => {
  await Promise.all([src?.stop(), other?.stop(), dst?.stop()]);
  await home?.remove();
  if (dir) await removeTempDir(dir);
});

const skopeo = (args: string[]) => runTool('skopeo', ['--insecure-policy', ...args], 60_000);

/** skopeo copy --all of `ref` from the server into an OCI layout: the root digest in its index.json. */
async function skopeoCopy(host: string, ref: string, extra: string[] = ['--src-tls-verify=false']): Promise<string> {
  const out = join(dir, `oci-${Math.random().toString(36).slice(2)}`);
  await skopeo(['copy', '--quiet', '--all', '--preserve-digests', ...extra, `docker://${host}/${ref}`, `oci:${out}:x`]);
  const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: Array<{ digest: string }> };
  await rm(out, { recursive: true, force: true });
  return index.manifests[0]!.digest;
}

async function withServe<T>(args: string[], body: (s: ServeProcess) => Promise<T>): Promise<T> {
  const s = await serve(args);
  try {
    return await body(s);
  } finally {
    expect(await s.stop()).toBe(0);
  }
}

describe('ferry serve', () => {
  it('serves every image of a bundle under its name minus the host: skopeo and ferry copy reproduce every digest', async () => {
    await withServe([v1], async (s) => {
      expect(s.stderr()).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+, serving 2 images in 2 repositories from 1 bundle/);
      expect(sha256Digest(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${s.host}/team/a:1`]))).toBe(img.a!.digest);
      expect(await skopeoCopy(s.host, 'team/a:1')).toBe(img.a!.digest);
      expect(await skopeoCopy(s.host, 'team/b:1')).toBe(img.b!.digest);
      expect(await skopeoCopy(s.host, `team/a@${img.a!.digest}`)).toBe(img.a!.digest);
      const ins = ['--insecure-registry', s.host, '--insecure-registry', dst.host, '--json'];
      for (const [name, image] of [
        ['team/a:1', img.a!],
        ['team/b:1', img.b!],
      ] as const) {
        const res = await run([...ins, 'copy', `${s.host}/${name}`, `${dst.host}/copied/${name}`]);
        expect(res.code, res.stderr).toBe(0);
        await expectImageIn(dst, `copied/${name}`, image);
      }
      // pack from the served registry: the same images, the same digests.
      const again = join(dir, 'again.tar');
      const packed = await run([...ins, 'pack', `${s.host}/team/a:1`, `${s.host}/team/b:1`, '-o', again]);
      expect(packed.code, packed.stderr).toBe(0);
      const report = JSON.parse((await run(['inspect', again, '--json'])).stdout) as { images: Array<{ digest: string }> };
      expect(report.images.map((i) => i.digest)).toEqual([img.a!.digest, img.b!.digest]);
      // verify --against the served registry: every image there with its digest.
      const against = await run(['--insecure-registry', s.host, 'verify', v1, '--against', s.host, '--json']);
      expect(against.code, against.stdout + against.stderr).toBe(0);
      expect(JSON.parse(against.stdout)).toMatchObject({ ok: true });
    });
  }, 120_000);

  it('a load of the bundle and the served registry agree: verify --against both says OK', async () => {
    const loaded = await run(['--insecure-registry', dst.host, '-q', 'load', v1, '--to', `${dst.host}/loaded`]);
    expect(loaded.code, loaded.stderr).toBe(0);
    await withServe([v1, '--prefix', 'loaded'], async (s) => {
      for (const host of [`${dst.host}/loaded`, `${s.host}/loaded`]) {
        const res = await run(['--insecure-registry', dst.host, '--insecure-registry', s.host, 'verify', v1, '--against', host, '--json']);
        expect(res.code, res.stdout + res.stderr).toBe(0);
      }
      expect(await skopeoCopy(s.host, 'loaded/team/b:1')).toBe(img.b!.digest);
    });
  }, 120_000);

  it('serves a split bundle from its first part, and a delta together with its base', async () => {
    await withServe([`${split}.part-000`], async (s) => {
      expect(await skopeoCopy(s.host, 'team/a:1')).toBe(img.a!.digest);
      expect(await skopeoCopy(s.host, 'team/b:1')).toBe(img.b!.digest);
    });
    await withServe([delta, v1], async (s) => {
      expect(s.stderr()).toMatch(/serving 4 images in 3 repositories from 2 bundles/);
      expect(await skopeoCopy(s.host, 'team/c:1')).toBe(img.c!.digest);
      expect(await skopeoCopy(s.host, 'team/b:1')).toBe(img.b!.digest);
    });
    const alone = await run(['serve', delta, '--listen', '127.0.0.1:0']);
    expect(expectErrorLine(alone, 2)).toMatch(/is a delta of bundle sha256:[0-9a-f]{64} and relies on blob sha256:[0-9a-f]{64} that no bundle given carries/);
  }, 120_000);

  it('refuses to start when two bundles give one name two digests, naming both', async () => {
    const res = await run(['serve', v1, clash, '--listen', '127.0.0.1:0']);
    const line = expectErrorLine(res, 2);
    expect(line).toContain(`team/b:1 is ${img.b!.digest} in ${v1} but ${img.bOther!.digest} in ${clash}`);
  }, 60_000);

  it('answers every push and delete with 405 UNSUPPORTED, and 401 first with --htpasswd; skopeo pulls with the credentials', async () => {
    const htpasswd = join(dir, 'htpasswd');
    await writeFile(htpasswd, `alice:${bcrypt.hashSync('alice-secret', 5).replace(/^\$2b\$/, '$2y$')}\n`);
    await withServe([v1, '--htpasswd', htpasswd], async (s) => {
      const base = `http://${s.host}`;
      const anon = await fetch(`${base}/v2/`);
      expect(anon.status).toBe(401);
      expect(anon.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
      const push = await fetch(`${base}/v2/team/a/blobs/uploads/`, { method: 'POST' });
      expect(push.status).toBe(401);
      const auth = { authorization: `Basic ${Buffer.from('alice:alice-secret').toString('base64')}` };
      const pushed = await fetch(`${base}/v2/team/a/blobs/uploads/`, { method: 'POST', headers: auth });
      expect(pushed.status).toBe(405);
      expect(await pushed.json()).toEqual({ errors: [{ code: 'UNSUPPORTED', message: expect.stringContaining('read-only') }] });
      const del = await fetch(`${base}/v2/team/a/manifests/${img.a!.digest}`, { method: 'DELETE', headers: auth });
      expect(del.status).toBe(405);
      const wrong = await fetch(`${base}/v2/`, { headers: { authorization: `Basic ${Buffer.from('alice:nope').toString('base64')}` } });
      expect(wrong.status).toBe(401);
      await expect(skopeoCopy(s.host, 'team/a:1')).rejects.toThrow();
      expect(await skopeoCopy(s.host, 'team/a:1', ['--src-tls-verify=false', '--src-creds', 'alice:alice-secret'])).toBe(img.a!.digest);
    });
  }, 120_000);

  it('serves HTTPS with --tls-cert/--tls-key, which skopeo verifies against the test CA', async () => {
    const tls = await makeServerTls(join(dir, 'tls'));
    const certDir = join(dir, 'tls-certs');
    await mkdir(certDir, { recursive: true });
    await writeFile(join(certDir, 'ca.crt'), await readFile(tls.caFile));
    await withServe([v1, '--tls-cert', tls.certFile, '--tls-key', tls.keyFile], async (s) => {
      expect(s.stderr()).toContain(`listening on https://${s.host}`);
      expect(await skopeoCopy(s.host, 'team/b:1', ['--src-cert-dir', certDir])).toBe(img.b!.digest);
    });
    const open = await run(['serve', v1, '--listen', '0.0.0.0:0']);
    expect(expectErrorLine(open, 2)).toContain('is not a loopback address');
  }, 120_000);

  it('never serves a byte of a damaged blob: every read gets 500, whole or ranged; --verify refuses to start', async () => {
    const damaged = join(dir, 'damaged.tar');
    await writeFile(damaged, await readFile(v1));
    const layer = img.b!.manifests[0]!.layerDigests[0]!;
    const e = (await indexTar(damaged)).get(`blobs/sha256/${layer.slice('sha256:'.length)}`)!;
    await changeByte(damaged, e.offset + (e.size >> 1));
    await withServe([damaged], async (s) => {
      const url = `http://${s.host}/v2/team/b/blobs/${layer}`;
      // The first read is checked before a byte is sent: no part of the damaged blob leaves.
      const first = await fetch(url);
      expect(first.status).toBe(500);
      await first.arrayBuffer();
      const second = await fetch(url);
      expect(second.status).toBe(500);
      expect(await second.json()).toMatchObject({ errors: [{ code: 'UNKNOWN', message: expect.stringContaining('failed its digest check') }] });
      const ranged = await fetch(url, { headers: { range: 'bytes=0-9' } });
      expect(ranged.status).toBe(500);
      expect(s.stderr()).toContain(`blob ${layer} is damaged and will not be served`);
      // The other blobs are still served.
      expect(await skopeoCopy(s.host, 'team/a:1')).toBe(img.a!.digest);
    });
    const verified = await run(['serve', damaged, '--verify', '--listen', '127.0.0.1:0']);
    expect(verified.code).toBe(1);
    expect(verified.stderr.trim().split('\n').at(-1)).toMatch(/^ferry: 1 blob failed the check: .*sha256/);
  }, 120_000);
});
