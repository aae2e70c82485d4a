// The registry client (@ferry/oci-client) against real registry:2 instances,
// with a recording proxy in front where the requests themselves matter:
// pagination, catalog, the referrers tag-schema fallback, chunked and
// monolithic uploads, and not-found errors.
import { createServer } from 'node:http';
import { Readable } from 'node:stream';
import { RegistryPlace } from '@ferry/bundler';
import { CopyEngine, type Credential, digestOf, FerryError, MediaType, OciClient, planImage, type RegistryClient } from '@ferry/oci-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type FaultProxy,
  registryFetch,
  type SeededImage,
  seededBytes,
  seedImage,
  sha256Digest,
  startFaultProxy,
  startRegistry,
  type TestRegistry,
} from './harness/index.js';
import { closeServer, listen } from './harness/net.js';
import { explicitCredentials, ferryError } from './helpers/clients.js';

/** A client that knows only the credentials given here (no docker config, no proxies). */
function makeClient(credentials: Record<string, Credential> = {}): OciClient {
  return new OciClient({
    env: {},
    retry: { attempts: 2, baseDelayMs: 50 },
    credentials: explicitCredentials(credentials),
  });
}

async function bodyOf(reg: TestRegistry, path: string): Promise<Buffer> {
  const res = await registryFetch(reg, path);
  expect(res.status, path).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

function streamOf(bytes: Buffer, piece: number): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += piece) parts.push(bytes.subarray(i, i + piece));
  return Readable.from(parts);
}

/**
 * Serves GET /v2/<name>/tags/list with the distribution spec's pagination (`n`,
 * `last`, a `Link: <…>; rel="next"` header) over the tags of the real registry.
 */
async function startTagPager(reg: TestRegistry): Promise<{ host: string; requests: string[]; stop(): Promise<void> }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(req.url ?? '');
    const url = new URL(req.url ?? '/', 'http://pager.invalid');
    const name = /^\/v2\/(.+)\/tags\/list$/.exec(url.pathname)?.[1];
    const send = (status: number, body: object, headers: Record<string, string> = {}) => {
      res.writeHead(status, { 'content-type': 'application/json', ...headers });
      res.end(JSON.stringify(body));
    };
    if (req.method !== 'GET' || !name) {
      send(404, { errors: [{ code: 'UNSUPPORTED', message: 'only tags/list is served here' }] });
      return;
    }
    void (async () => {
      const upstream = await registryFetch(reg, `/v2/${name}/tags/list`);
      const all = ((await upstream.json()) as { tags: string[] }).tags.sort();
      const last = url.searchParams.get('last');
      const n = Number(url.searchParams.get('n') ?? all.length);
      const rest = last === null ? all : all.filter((t) => t > last);
      const page = rest.slice(0, n);
      const headers: Record<string, string> = {};
      if (rest.length > n) headers.link = `</v2/${name}/tags/list?last=${encodeURIComponent(page.at(-1)!)}&n=${n}>; rel="next"`;
      send(200, { name, tags: page }, headers);
    })().catch(() => res.destroy());
  });
  const host = await listen(server);
  return { host, requests, stop: () => closeServer(server) };
}

describe('plain registry behind a recording proxy', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let client: OciClient;
  let registry: RegistryClient;
  let single: SeededImage;
  beforeAll(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    single = await seedImage(reg, 'tags/app:t1', { single: true, layers: 1, layerSize: 1024, seed: 'tags' });
    const manifest = single.manifests[0]!;
    for (const tag of ['t2', 't3', 't4', 't5']) {
      const res = await registryFetch(reg, `/v2/tags/app/manifests/${tag}`, {
        method: 'PUT',
        headers: { 'content-type': MediaType.OCI_MANIFEST },
        body: manifest.bytes,
      });
      expect(res.status).toBe(201);
    }
    client = makeClient();
    registry = client.registry(proxy.host);
  });
  afterAll(async () => {
    await client?.close();
    await proxy?.stop();
    await reg?.stop();
  });

  const requestsDuring = async (run: () => Promise<unknown>) => {
    const first = proxy.requests.length;
    await run();
    return proxy.requests.slice(first);
  };

  test('listTags against registry 2.8, which does not paginate tags, gets them all in one page', async () => {
    const requests = await requestsDuring(async () => {
      expect((await registry.listTags('tags/app', 2)).sort()).toEqual(['t1', 't2', 't3', 't4', 't5']);
    });
    expect(requests.map((r) => r.path)).toEqual(['/v2/tags/app/tags/list?n=2']);
  });

  test('listTags follows Link pagination', async () => {
    // Registry 2.8 ignores n and last on tags/list (distribution 3 honours them), so
    // a small server pages the real registry's tags as the distribution spec says.
    const pager = await startTagPager(reg);
    try {
      expect(await client.registry(pager.host).listTags('tags/app', 2)).toEqual(['t1', 't2', 't3', 't4', 't5']);
      expect(pager.requests).toEqual(['/v2/tags/app/tags/list?n=2', '/v2/tags/app/tags/list?last=t2&n=2', '/v2/tags/app/tags/list?last=t4&n=2']);
    } finally {
      await pager.stop();
    }
  });

  test('resolve gives the descriptor of a tag, and a not-found FerryError for a missing one', async () => {
    const manifest = single.manifests[0]!;
    expect(await registry.resolve('tags/app', 't3')).toEqual({
      mediaType: MediaType.OCI_MANIFEST,
      digest: manifest.digest,
      size: manifest.bytes.length,
    });
    const e = await ferryError(registry.resolve('tags/app', 'missing'));
    expect(e).toMatchObject({ kind: 'not-found', status: 404, registry: proxy.host, repository: 'tags/app' });
    expect(e.exitCode).toBe(1);
    expect(e.message).toBe(`404 MANIFEST_UNKNOWN resolving ${proxy.host}/tags/app: missing is not there`);

    const absent = digestOf(Buffer.from('no such manifest'));
    expect(await ferryError(registry.getManifest('tags/app', absent))).toMatchObject({ kind: 'not-found', status: 404 });
    expect(await ferryError(registry.resolve('no/such-repo', 'latest'))).toMatchObject({ kind: 'not-found', status: 404 });
  });

  test('getBlob streams a blob verified, and fails a corrupted one before handing over all of it', async () => {
    const digest = single.manifests[0]!.layerDigests[0]!;
    const bytes = single.blobs.get(digest)!;
    const read = async (stream: Readable) => {
      const chunks: Buffer[] = [];
      const error = await (async () => {
        for await (const c of stream) chunks.push(c as Buffer);
      })().then(
        () => undefined,
        (e: unknown) => e,
      );
      return { body: Buffer.concat(chunks), error };
    };
    const good = await read(registry.getBlob('tags/app', { digest, size: bytes.length }));
    expect(good.error).toBeUndefined();
    expect(good.body.equals(bytes)).toBe(true);

    proxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${digest}$`), times: 1, action: { type: 'corrupt' } });
    try {
      const bad = await read(registry.getBlob('tags/app', { digest, size: bytes.length }));
      expect(bad.error).toBeInstanceOf(FerryError);
      expect(bad.error).toMatchObject({ kind: 'integrity' });
      expect((bad.error as FerryError).message).toContain(`expected digest ${digest} but got sha256:`);
      // The last chunk of a wrong blob is held back, so an upload fed from it never completes.
      expect(bad.body.length).toBeLessThan(bytes.length);
    } finally {
      proxy.clearRules();
    }
  });

  test('pushBlob in chunked and monolithic mode store the same blob', async () => {
    const bytes = seededBytes('chunked-upload', 50_000);
    const blob = { digest: sha256Digest(bytes), size: bytes.length };
    const chunkedRequests = await requestsDuring(async () => {
      expect(await registry.pushBlob('push/chunked', blob, () => streamOf(bytes, 7000), { chunked: true, chunkSize: 16_384 })).toBe('uploaded');
    });
    const patches = chunkedRequests.filter((r) => r.method === 'PATCH');
    expect(patches.map((r) => r.headers['content-range'])).toEqual(['0-16383', '16384-32767', '32768-49151', '49152-49999']);
    expect(patches.map((r) => r.headers['content-length'])).toEqual(['16384', '16384', '16384', '848']);

    const monoRequests = await requestsDuring(async () => {
      expect(await registry.pushBlob('push/mono', blob, () => streamOf(bytes, 7000))).toBe('uploaded');
    });
    expect(monoRequests.map((r) => r.method)).toEqual(['POST', 'PUT']);
    expect(monoRequests[1]!.headers['content-length']).toBe('50000');

    for (const repo of ['push/chunked', 'push/mono']) {
      expect((await bodyOf(reg, `/v2/${repo}/blobs/${blob.digest}`)).equals(bytes)).toBe(true);
      expect(await registry.blobExists(repo, blob.digest)).toBe(true);
    }
    expect(await registry.blobExists('push/other', blob.digest)).toBe(false);
    // And from one repository to another of the same registry, a mount.
    expect(await registry.pushBlob('push/mounted', blob, () => streamOf(bytes, 7000), { mountFrom: 'push/mono' })).toBe('mounted');
    expect((await bodyOf(reg, `/v2/push/mounted/blobs/${blob.digest}`)).equals(bytes)).toBe(true);
  });

  test('pushBlob falls back to chunks when a monolithic PUT is refused with 413, and reports a 400 as it is', async () => {
    const bytes = seededBytes('too-large', 40_000);
    const blob = { digest: sha256Digest(bytes), size: bytes.length };
    // A proxy in front of the registry that takes no large bodies in one request.
    proxy.addRule({ method: 'PUT', path: /\/blobs\/uploads\//, times: 1, action: { type: 'status', status: 413, body: 'request entity too large' } });
    try {
      const requests = await requestsDuring(async () => {
        expect(await registry.pushBlob('push/fallback', blob, () => streamOf(bytes, 7000), { chunkSize: 16_384 })).toBe('uploaded');
      });
      expect(requests.map((r) => r.method)).toEqual(['POST', 'PUT', 'POST', 'PATCH', 'PATCH', 'PATCH', 'PUT']);
      expect((await bodyOf(reg, `/v2/push/fallback/blobs/${blob.digest}`)).equals(bytes)).toBe(true);
    } finally {
      proxy.clearRules();
    }
    // Bytes that do not match the digest: the registry's 400 DIGEST_INVALID, not a fallback.
    const wrong = { digest: sha256Digest(seededBytes('other', 40_000)), size: bytes.length };
    const err = await registry.pushBlob('push/wrong', wrong, () => streamOf(bytes, 7000)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).message).toMatch(/^400 DIGEST_INVALID pushing to 127\.0\.0\.1:\d+\/push\/wrong: /);
  });

  test('a copy into a repository that already holds the image writes nothing and asks about each blob once', async () => {
    const image = await seedImage(reg, 'again/src:1', { seed: 'again', layers: 2 });
    const source = new RegistryPlace(registry, 'again/src');
    const sink = new RegistryPlace(registry, 'again/dst').forWriting();
    const plan = await planImage(source, '1');
    const first = new CopyEngine();
    await first.copy(source, sink, plan, { tag: '1' });
    expect(first.stats).toMatchObject({ uploaded: 0, mounted: image.blobs.size, skipped: 0 });
    const second = new CopyEngine();
    const requests = await requestsDuring(() => second.copy(source, sink, plan, { tag: '1' }));
    expect(second.stats).toMatchObject({ uploaded: 0, mounted: 0, skipped: image.blobs.size });
    // The tag and each platform manifest, then each blob once, checked with HEAD: a
    // manifest that is there does not prove its blobs still are. Nothing is written.
    const seen = requests.map((r) => `${r.method} ${r.path}`);
    expect(seen.slice(0, 1 + image.manifests.length)).toEqual([
      'HEAD /v2/again/dst/manifests/1',
      ...image.manifests.map((m) => `HEAD /v2/again/dst/manifests/${m.digest}`),
    ]);
    expect(seen.slice(1 + image.manifests.length).sort()).toEqual([...image.blobs.keys()].map((d) => `HEAD /v2/again/dst/blobs/${d}`).sort());
  });

  test('a blob stream abandoned by its reader frees its connection, so close() ends at once', async () => {
    const image = await seedImage(reg, 'abandon/app:1', { seed: 'abandon', single: true, layers: 1, layerSize: 6 * 1024 * 1024 });
    const layer = image.manifests[0]!.layerDigests[0]!;
    const own = makeClient();
    const stream = own.registry(proxy.host).getBlob('abandon/app', { digest: layer, size: image.blobs.get(layer)!.length });
    for await (const _chunk of stream) {
      stream.destroy();
      break;
    }
    const started = Date.now();
    await own.close();
    // Without releasing the body, close() would wait out its 2 s grace period.
    expect(Date.now() - started).toBeLessThan(1500);
  });

  test('referrers falls back to the sha256-<hex> tag index on registry 2.8', async () => {
    const subject = single.manifests[0]!;
    const artifactType = 'application/vnd.ferry.test.signature';
    const empty = Buffer.from('{}');
    const signature = Buffer.from('a detached signature');
    for (const content of [empty, signature]) {
      await registry.pushBlob('tags/app', { digest: sha256Digest(content), size: content.length }, () => Readable.from([content]));
    }
    const artifact = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.OCI_MANIFEST,
        artifactType,
        config: { mediaType: MediaType.OCI_EMPTY, digest: sha256Digest(empty), size: empty.length },
        layers: [{ mediaType: 'application/vnd.ferry.test.sig', digest: sha256Digest(signature), size: signature.length }],
        subject: { mediaType: MediaType.OCI_MANIFEST, digest: subject.digest, size: subject.bytes.length },
      }),
    );
    const artifactDigest = sha256Digest(artifact);
    const descriptor = { mediaType: MediaType.OCI_MANIFEST, digest: artifactDigest, size: artifact.length, artifactType };
    const fallbackIndex = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: [descriptor] }));
    for (const [ref, body, type] of [
      [artifactDigest, artifact, MediaType.OCI_MANIFEST],
      [subject.digest.replace(':', '-'), fallbackIndex, MediaType.OCI_INDEX],
    ] as const) {
      const res = await registryFetch(reg, `/v2/tags/app/manifests/${ref}`, { method: 'PUT', headers: { 'content-type': type }, body });
      expect(res.status, await res.text()).toBe(201);
    }

    let found: unknown;
    const requests = await requestsDuring(async () => {
      found = await registry.referrers('tags/app', subject.digest);
    });
    expect(found).toEqual([descriptor]);
    // The referrers API was asked first; registry 2.8 does not have it.
    expect(requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `GET /v2/tags/app/referrers/${subject.digest}`,
      `GET /v2/tags/app/manifests/${subject.digest.replace(':', '-')}`,
    ]);
    expect(await registry.referrers('tags/app', subject.digest, artifactType)).toEqual([descriptor]);
    expect(await registry.referrers('tags/app', subject.digest, 'application/vnd.other')).toEqual([]);
    expect(await registry.referrers('tags/app', artifactDigest)).toEqual([]);
  });
});

describe('token registry', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let alice: OciClient;
  let bob: OciClient;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'token' });
    // Records the registry requests; the token realm is the token server itself.
    proxy = await startFaultProxy(reg.url);
    await Promise.all([
      seedImage(reg, 'cat/a:1', { single: true, layers: 1, layerSize: 512, seed: 'a' }),
      seedImage(reg, 'cat/b:1', { single: true, layers: 1, layerSize: 512, seed: 'b' }),
      seedImage(reg, 'cat/c:1', { single: true, layers: 1, layerSize: 512, seed: 'c' }),
    ]);
    alice = makeClient({ [proxy.host]: { username: 'alice', password: 'alice-secret' } });
    bob = makeClient({ [proxy.host]: { username: 'bob', password: 'bob-secret' } });
  });
  afterAll(async () => {
    await Promise.all([alice?.close(), bob?.close()]);
    await proxy?.stop();
    await reg?.stop();
  });

  test('catalog asks for registry:catalog:* and follows pagination', async () => {
    const requests = reg.tokenServer!.requests;
    const first = requests.length;
    const pages = proxy.requests.length;
    expect(await alice.registry(proxy.host).catalog(2)).toEqual(['cat/a', 'cat/b', 'cat/c']);
    expect(requests.slice(first).map((r) => [r.user, r.scopes, r.status])).toEqual([['alice', ['registry:catalog:*'], 200]]);
    // The first page is asked twice: once for the challenge, once with the token.
    expect(proxy.requests.slice(pages).map((r) => [r.path, r.headers.authorization?.split(' ')[0]])).toEqual([
      ['/v2/_catalog?n=2', undefined],
      ['/v2/_catalog?n=2', 'Bearer'],
      ['/v2/_catalog?last=cat%2Fb&n=2', 'Bearer'],
    ]);
  });

  test('catalog without the right is refused with an auth error', async () => {
    const e = await ferryError(bob.registry(proxy.host).catalog());
    expect(e).toMatchObject({ kind: 'auth', status: 401 });
    expect(e.message).toMatch(new RegExp(`^401 UNAUTHORIZED listing the catalog of ${proxy.host}: .*ferry login ${proxy.host}`));
    expect(e.message).not.toContain('bob-secret');
  });

  test('listTags and resolve with a pull token', async () => {
    expect(await bob.registry(proxy.host).listTags('cat/b')).toEqual(['1']);
    const e = await ferryError(bob.registry(proxy.host).resolve('cat/b', '2'));
    expect(e).toMatchObject({ kind: 'not-found', status: 404 });
  });
});
