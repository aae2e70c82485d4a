// Proves the integration-test harness against the real registry and skopeo.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fetch } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  type BlobOrigin,
  type FaultProxy,
  makeOciLayout,
  OCI_INDEX,
  OCI_MANIFEST,
  parseHelmTemplate,
  podImages,
  type RegistryOptions,
  registryFetch,
  type SeededImage,
  seedImage,
  sha256Digest,
  skopeoInspectRaw,
  startBlobOrigin,
  startFaultProxy,
  startHelm,
  startRegistry,
  type TestRegistry,
} from './harness/index.js';

async function bytesOf(res: { arrayBuffer(): Promise<ArrayBuffer> }): Promise<Buffer> {
  return Buffer.from(await res.arrayBuffer());
}

const variants: Array<[string, RegistryOptions]> = [
  ['plain', {}],
  ['tls', { tls: true }],
  ['htpasswd', { auth: 'htpasswd' }],
  ['token', { auth: 'token' }],
];

describe.each(variants)('%s registry', (name, opts) => {
  test('serves a skopeo-seeded two-platform image byte for byte', async () => {
    const reg = await startRegistry(opts);
    try {
      expect(reg.url).toBe(`${opts.tls ? 'https' : 'http'}://${reg.host}`);
      expect(reg.caFile !== undefined).toBe(opts.tls === true);

      const image = await seedImage(reg, 'team/app:1.0', { seed: name });
      expect(image.manifests.map((m) => m.platform)).toEqual(['linux/amd64', 'linux/arm64']);
      expect((await skopeoInspectRaw(reg, 'team/app:1.0')).toString()).toBe(image.indexBytes?.toString());
      const arm = image.manifests[1]!;
      expect((await skopeoInspectRaw(reg, `team/app@${arm.digest}`)).toString()).toBe(arm.bytes.toString());

      const layer = arm.layerDigests[0]!;
      const res = await registryFetch(reg, `/v2/team/app/blobs/${layer}`);
      expect(res.status).toBe(200);
      const blob = await bytesOf(res);
      expect(blob.length).toBe(image.blobs.get(layer)?.length);
      expect(sha256Digest(blob)).toBe(layer);

      if (opts.auth) {
        const anonymous = await registryFetch(reg, '/v2/team/app/manifests/1.0', { creds: null });
        expect(anonymous.status).toBe(401);
      }
    } finally {
      await reg.stop();
    }
    expect(existsSync(reg.storageDir)).toBe(false);
  });
});

describe('token auth', () => {
  let reg: TestRegistry;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'token' });
    await seedImage(reg, 'team/app:1.0', { platforms: ['linux/amd64'], layers: 1, layerSize: 1024 });
  });
  afterAll(() => reg?.stop());

  const tokenServer = () => reg.tokenServer!;
  const bob = { user: 'bob', password: 'bob-secret' };

  test('bob asking for pull,push is granted pull only', async () => {
    // Starting an upload makes the registry challenge for pull,push.
    const push = await registryFetch(reg, '/v2/team/app/blobs/uploads/', { method: 'POST', creds: bob });
    expect(push.status).toBe(401);
    // Registry 2.8 lists the challenged actions in random order (a Go map).
    expect(tokenServer().requests.at(-1)).toEqual({
      user: 'bob',
      scopes: [expect.stringMatching(/^repository:team\/app:(pull,push|push,pull)$/)],
      granted: [{ type: 'repository', name: 'team/app', actions: ['pull'] }],
      status: 200,
    });
    const pull = await registryFetch(reg, '/v2/team/app/manifests/1.0', {
      creds: bob,
      headers: { accept: OCI_INDEX },
    });
    expect(pull.status).toBe(200);
  });

  test('anonymous callers get a challenge, and their empty token is refused', async () => {
    const challenge = await registryFetch(reg, '/v2/team/app/manifests/1.0', { creds: null });
    expect(challenge.status).toBe(401);
    expect(challenge.headers.get('www-authenticate')).toBe(
      `Bearer realm="${tokenServer().url}/token",service="ferry-test-registry",scope="repository:team/app:pull"`,
    );

    const tokenRes = await fetch(`${tokenServer().url}/token?service=ferry-test-registry&scope=repository:team/app:pull`);
    const { token, access_token, expires_in } = (await tokenRes.json()) as Record<string, unknown>;
    expect(token).toBe(access_token);
    expect(expires_in).toBe(300);
    expect(tokenServer().requests.at(-1)?.granted).toEqual([{ type: 'repository', name: 'team/app', actions: [] }]);
    const refused = await fetch(`${reg.url}/v2/team/app/manifests/1.0`, {
      headers: { authorization: `Bearer ${String(token)}` },
    });
    expect(refused.status).toBe(401);
  });

  test('a wrong password gets a JSON 401 from the token server', async () => {
    const res = await fetch(`${tokenServer().url}/token?service=ferry-test-registry`, {
      headers: { authorization: `Basic ${Buffer.from('alice:wrong').toString('base64')}` },
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ errors: [{ code: 'UNAUTHORIZED' }] });
  });

  test('only alice may list the catalog', async () => {
    const alice = await registryFetch(reg, '/v2/_catalog');
    expect(alice.status).toBe(200);
    expect(await alice.json()).toEqual({ repositories: ['team/app'] });
    expect(tokenServer().requests.at(-1)?.granted).toEqual([{ type: 'registry', name: 'catalog', actions: ['*'] }]);
    expect((await registryFetch(reg, '/v2/_catalog', { creds: bob })).status).toBe(401);
  });
});

describe('image generation', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'ferry-harness-test-'));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  test('is deterministic per seed and can share a base layer', async () => {
    const spec = { seed: 's', layers: 3, layerSize: 1000, sharedBaseLayer: true };
    const a = await makeOciLayout(join(dir, 'a'), spec);
    const b = await makeOciLayout(join(dir, 'b'), spec);
    const c = await makeOciLayout(join(dir, 'c'), { ...spec, seed: 't' });
    expect(b.indexDigest).toBe(a.indexDigest);
    expect(c.indexDigest).not.toBe(a.indexDigest);

    const [amd, arm] = a.manifests;
    expect(arm?.layerDigests[0]).toBe(amd?.layerDigests[0]);
    expect(arm?.layerDigests[1]).not.toBe(amd?.layerDigests[1]);
    const index = JSON.parse(a.indexBytes!.toString()) as { manifests: Array<{ platform: object }> };
    expect(index.manifests[1]?.platform).toEqual({ os: 'linux', architecture: 'arm64', variant: 'v8' });
    // 2 configs + 2×3 layers, less the shared one.
    expect(a.blobs.size).toBe(7);
  });

  test('single writes a plain manifest that skopeo pushes unchanged', async () => {
    const reg = await startRegistry();
    try {
      const image = await seedImage(reg, 'solo:v1', { single: true, platforms: ['linux/arm64'] });
      expect(image.indexDigest).toBeUndefined();
      expect(image.manifestDigest).toBe(image.manifests[0]?.digest);
      expect(image.mediaType).toBe(OCI_MANIFEST);
      expect((await skopeoInspectRaw(reg, 'solo:v1')).toString()).toBe(image.manifests[0]?.bytes.toString());
    } finally {
      await reg.stop();
    }
  });
});

/** A GET with node:http that reports how much body arrived even when the connection dies. */
function rawGet(url: string): Promise<{ status: number; contentLength: number; body: Buffer; complete: boolean }> {
  return new Promise((resolve, reject) => {
    get(url, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', () => {}); // "aborted" is the expected outcome of a cut
      res.on('close', () =>
        resolve({
          status: res.statusCode ?? 0,
          contentLength: Number(res.headers['content-length']),
          body: Buffer.concat(chunks),
          complete: res.complete,
        }),
      );
    }).on('error', reject);
  });
}

describe('fault proxy', () => {
  let reg: TestRegistry;
  let image: SeededImage;
  let proxy: FaultProxy;
  let origin: BlobOrigin;
  let layer: string;
  let blobPath: string;
  beforeAll(async () => {
    reg = await startRegistry();
    image = await seedImage(reg, 'team/app:1.0', { platforms: ['linux/amd64'], layers: 1 });
    layer = image.manifests[0]!.layerDigests[0]!;
    blobPath = `/v2/team/app/blobs/${layer}`;
    proxy = await startFaultProxy(reg.url);
    origin = await startBlobOrigin(reg.url);
  });
  afterEach(() => proxy.clearRules());
  afterAll(async () => {
    await proxy?.stop();
    await origin?.stop();
    await reg?.stop();
  });

  test('passes requests through, streaming bodies and rewriting upload Locations', async () => {
    const manifest = await fetch(`${proxy.url}/v2/team/app/manifests/1.0`, { headers: { accept: OCI_INDEX } });
    expect(manifest.headers.get('docker-content-digest')).toBe(image.indexDigest);
    expect(sha256Digest(await bytesOf(manifest))).toBe(image.indexDigest);

    const start = await fetch(`${proxy.url}/v2/team/upload/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    const location = start.headers.get('location')!;
    expect(location.startsWith(`${proxy.url}/`)).toBe(true);
    const content = Buffer.from('uploaded through the proxy');
    const put = await fetch(`${location}&digest=${sha256Digest(content)}`, { method: 'PUT', body: content });
    expect(put.status).toBe(201);
    const stored = await fetch(`${reg.url}/v2/team/upload/blobs/${sha256Digest(content)}`);
    expect((await bytesOf(stored)).toString()).toBe(content.toString());
    expect(proxy.requests.map((r) => r.method)).toEqual(['GET', 'POST', 'PUT']);
  });

  test("'status' with times:1 answers once, then passes through", async () => {
    proxy.addRule({
      method: 'GET',
      path: /\/manifests\//,
      times: 1,
      action: { type: 'status', status: 503, headers: { 'retry-after': '0' }, body: 'busy' },
    });
    const first = await fetch(`${proxy.url}/v2/team/app/manifests/1.0`, { headers: { accept: OCI_INDEX } });
    expect(first.status).toBe(503);
    expect(first.headers.get('retry-after')).toBe('0');
    expect(await first.text()).toBe('busy');
    const second = await fetch(`${proxy.url}/v2/team/app/manifests/1.0`, { headers: { accept: OCI_INDEX } });
    expect(second.status).toBe(200);
    await second.body?.cancel();
  });

  test("'cut' closes the connection mid-body", async () => {
    proxy.addRule({ path: /\/blobs\//, action: { type: 'cut', afterBytes: 1000 } });
    const res = await rawGet(proxy.url + blobPath);
    expect(res.status).toBe(200);
    expect(res.contentLength).toBe(image.blobs.get(layer)?.length);
    expect(res.complete).toBe(false);
    expect(res.body.length).toBe(1000);
    expect(res.body.equals(image.blobs.get(layer)!.subarray(0, 1000))).toBe(true);
  });

  test("'corrupt' flips one byte and keeps length and headers", async () => {
    proxy.addRule({ path: /\/blobs\//, times: 1, action: { type: 'corrupt' } });
    const res = await fetch(proxy.url + blobPath);
    expect(res.headers.get('docker-content-digest')).toBe(layer);
    const body = await bytesOf(res);
    const original = image.blobs.get(layer)!;
    expect(body.length).toBe(original.length);
    expect(body.filter((byte, i) => byte !== original[i]).length).toBe(1);
  });

  test("'redirect' sends blob reads to the blob origin, which serves them (ranges too)", async () => {
    proxy.addRule({ method: 'GET', path: /\/blobs\//, action: { type: 'redirect', to: origin.url } });
    const redirect = await fetch(`${proxy.url}${blobPath}?x=1`, { redirect: 'manual' });
    expect(redirect.status).toBe(307);
    const location = redirect.headers.get('location')!;
    expect(location).toBe(`${origin.url}${blobPath}?x=1`);

    const whole = await fetch(location);
    expect(sha256Digest(await bytesOf(whole))).toBe(layer);
    const part = await fetch(location, { headers: { range: 'bytes=10-19' } });
    expect(part.status).toBe(206);
    expect((await bytesOf(part)).equals(image.blobs.get(layer)!.subarray(10, 20))).toBe(true);
    expect(origin.requests.map((r) => [r.method, r.headers.range, r.headers.authorization])).toEqual([
      ['GET', undefined, undefined],
      ['GET', 'bytes=10-19', undefined],
    ]);
  });
});

describe('helm, the oracle', () => {
  test('is helm v4 from the dev dependency, rendering a chart with its own private home', async () => {
    const helm = await startHelm();
    try {
      expect(await helm.run(['version', '--template', '{{.Version}}'])).toMatch(/^v4\./);
      const chart = join(helm.home, 'demo');
      await helm.run(['create', chart]);
      const docs = parseHelmTemplate(await helm.run(['template', 'r1', chart]));
      expect(docs.map((d) => d.source)).toContain('demo/templates/deployment.yaml');
      // helm create's chart runs nginx at the chart's appVersion, and a test hook runs busybox
      expect(podImages(docs.map((d) => d.object))).toEqual(['busybox', 'nginx:1.16.0']);
    } finally {
      await helm.close();
    }
  });
});
