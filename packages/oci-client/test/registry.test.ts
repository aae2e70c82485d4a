// Unit tests of the registry client against the test kit's in-process
// registry: resolve, manifests, blob pushes (monolithic, chunked, mounts),
// downloads with resume, listings, referrers with and without the API, Basic
// and Bearer auth, error mapping and retries, each with the exact requests
// the client makes. The same paths against real registry:2 are in test/client.test.ts.
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import {
  type MemoryRegistry,
  type MemoryRegistryOptions,
  OCI_CONFIG,
  OCI_INDEX,
  OCI_MANIFEST,
  type SeededImage,
  seededBytes,
  sha256Digest,
  startMemoryRegistry,
} from '@ferry/test/harness';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { OciClient } from '../src/client.js';
import { type Credential, CredentialStore } from '../src/credentials.js';
import { FerryError } from '../src/errors.js';
import type { RegistryClient } from '../src/registry.js';

/** A client that knows only the credentials given here (no docker config, no proxies) and retries fast. */
function makeClient(credentials: Record<string, Credential> = {}, transport: { bodyIdleTimeoutMs?: number } = {}): OciClient {
  return new OciClient({
    env: {},
    retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 20 },
    ...transport,
    credentials: new CredentialStore({ env: {}, configPath: '/nonexistent/ferry-test/config.json', explicit: new Map(Object.entries(credentials)) }),
  });
}

/** Expects `promise` to reject with a FerryError and returns it. */
async function ferryError(promise: Promise<unknown>): Promise<FerryError> {
  const e: unknown = await promise.then(
    () => undefined,
    (err: unknown) => err,
  );
  expect(e).toBeInstanceOf(FerryError);
  return e as FerryError;
}

const json = (value: object) => Buffer.from(JSON.stringify(value));
const open =
  (bytes: Buffer, piece = 700) =>
  () =>
    Readable.from(Array.from({ length: Math.ceil(bytes.length / piece) }, (_, i) => bytes.subarray(i * piece, (i + 1) * piece)));

interface Setup {
  reg: MemoryRegistry;
  client: OciClient;
  registry: RegistryClient;
}

async function setup(opts: MemoryRegistryOptions = {}, credentials?: (reg: MemoryRegistry) => Record<string, Credential>): Promise<Setup> {
  const reg = await startMemoryRegistry(opts);
  const client = makeClient(credentials?.(reg));
  return { reg, client, registry: client.registry(reg.host) };
}

async function teardown(s: Setup | undefined): Promise<void> {
  await s?.client.close();
  await s?.reg.stop();
}

describe('plain registry', () => {
  let s: Setup;
  let reg: MemoryRegistry;
  let registry: RegistryClient;
  let image: SeededImage;
  beforeAll(async () => {
    s = await setup({ pageSize: 2 });
    ({ reg, registry } = s);
    image = reg.seedImage('unit/app:v1', { layers: 2, layerSize: 2048, seed: 'unit' });
    // The scheme probe and any first-use requests are not what the tests count.
    await registry.ping();
    reg.clearRequests();
  });
  afterEach(() => {
    reg.clearFaults();
    reg.clearRequests();
  });
  afterAll(() => teardown(s));

  test('resolve by tag and by digest is one HEAD each', async () => {
    const want = { mediaType: OCI_INDEX, digest: image.digest, size: image.indexBytes!.length };
    expect(await registry.resolve('unit/app', 'v1')).toEqual(want);
    expect(await registry.resolve('unit/app', image.digest)).toEqual(want);
    expect(reg.counts()).toEqual({ 'HEAD manifest': 2 });
    expect(reg.requests.map((r) => r.headers.accept)).toEqual([
      `${OCI_MANIFEST}, ${OCI_INDEX}, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json`,
      expect.any(String),
    ]);
  });

  test('resolve of a missing tag is not-found with MANIFEST_UNKNOWN', async () => {
    const e = await ferryError(registry.resolve('unit/app', 'v9'));
    expect([e.kind, e.status, e.codes, e.message]).toEqual([
      'not-found',
      404,
      ['MANIFEST_UNKNOWN'],
      `404 MANIFEST_UNKNOWN resolving ${reg.host}/unit/app: v9 is not there`,
    ]);
  });

  test('resolve falls back to GET when HEAD is refused (405), and checks the bytes', async () => {
    reg.addFault({ method: 'HEAD', kind: 'manifest', fault: { type: 'status', status: 405 } });
    expect(await registry.resolve('unit/app', 'v1')).toEqual({ mediaType: OCI_INDEX, digest: image.digest, size: image.indexBytes!.length });
    expect(reg.counts()).toEqual({ 'HEAD manifest': 1, 'GET manifest': 1 });
  });

  test('getManifest by tag and digest gives the stored bytes, parsed', async () => {
    const byTag = await registry.getManifest('unit/app', 'v1');
    expect([byTag.kind, byTag.digest, Buffer.from(byTag.bytes).equals(image.indexBytes!)]).toEqual(['index', image.digest, true]);
    const child = image.manifests[0]!;
    const byDigest = await registry.getManifest('unit/app', child.digest);
    expect([byDigest.kind, byDigest.mediaType, Buffer.from(byDigest.bytes).equals(child.bytes)]).toEqual(['image', OCI_MANIFEST, true]);
    expect(reg.counts()).toEqual({ 'GET manifest': 2 });
  });

  test('getManifest refuses a manifest that is not the one asked for, or not the one Docker-Content-Digest names', async () => {
    const [one, other] = image.manifests as [SeededImage['manifests'][0], SeededImage['manifests'][0]];
    const swapped = (digest: string) => ({
      type: 'status' as const,
      status: 200,
      headers: { 'content-type': OCI_MANIFEST, 'docker-content-digest': digest },
      body: other.bytes,
    });
    reg.addFault({ method: 'GET', kind: 'manifest', times: 1, fault: swapped(one.digest) });
    const named = await ferryError(registry.getManifest('unit/app', 'v1'));
    expect([named.kind, named.message]).toEqual([
      'integrity',
      `integrity check failed for ${reg.host}/unit/app: manifest v1 has digest ${other.digest}, expected ${one.digest}`,
    ]);
    reg.addFault({ method: 'GET', kind: 'manifest', times: 1, fault: swapped(other.digest) });
    const asked = await ferryError(registry.getManifest('unit/app', one.digest));
    expect([asked.kind, asked.message]).toEqual([
      'integrity',
      `integrity check failed for ${reg.host}/unit/app: manifest ${one.digest} has digest ${other.digest}, expected ${one.digest}`,
    ]);
  });

  test('putManifest stores the bytes and returns their digest; a manifest naming a missing blob is MANIFEST_BLOB_UNKNOWN', async () => {
    const child = image.manifests[1]!;
    expect(await registry.putManifest('unit/app', 'copy', child.bytes, OCI_MANIFEST)).toBe(child.digest);
    expect(reg.store.manifest('unit/app', 'copy')?.bytes.equals(child.bytes)).toBe(true);
    expect(reg.counts()).toEqual({ 'PUT manifest': 1 });

    const missing = sha256Digest(Buffer.from('not pushed'));
    const bad = json({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, digest: child.configDigest, size: 10 },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: missing, size: 10 }],
    });
    const e = await ferryError(registry.putManifest('unit/app', 'bad', bad, OCI_MANIFEST));
    expect([e.kind, e.status, e.codes, e.message]).toEqual([
      'registry',
      400,
      ['MANIFEST_BLOB_UNKNOWN'],
      `400 MANIFEST_BLOB_UNKNOWN pushing to ${reg.host}/unit/app: blob unknown to registry`,
    ]);
  });

  test('pushBlob with a known size is one POST and one monolithic PUT', async () => {
    const bytes = seededBytes('mono', 5000);
    const digest = sha256Digest(bytes);
    expect(await registry.pushBlob('unit/push', { digest, size: bytes.length }, open(bytes))).toBe('uploaded');
    expect(reg.counts()).toEqual({ 'POST upload-start': 1, 'PUT upload': 1 });
    expect(reg.store.blob('unit/push', digest)?.equals(bytes)).toBe(true);
  });

  test('pushBlob goes chunked when the monolithic PUT is refused with 413', async () => {
    const bytes = seededBytes('chunked', 2500);
    const digest = sha256Digest(bytes);
    reg.addFault({ method: 'PUT', kind: 'upload', times: 1, fault: { type: 'status', status: 413 } });
    expect(await registry.pushBlob('unit/push', { digest, size: bytes.length }, open(bytes), { chunkSize: 1000 })).toBe('uploaded');
    expect(reg.counts()).toEqual({ 'POST upload-start': 2, 'PUT upload': 2, 'PATCH upload': 3 });
    const patches = reg.requests.filter((r) => r.method === 'PATCH').map((r) => r.headers['content-range']);
    expect(patches).toEqual(['0-999', '1000-1999', '2000-2499']);
    expect(reg.store.blob('unit/push', digest)?.equals(bytes)).toBe(true);
  });

  test('pushBlob of unknown size streams chunks, honouring OCI-Chunk-Min-Length', async () => {
    const big = await setup({ chunkMinLength: 1500 });
    try {
      const bytes = seededBytes('min-chunk', 4000);
      const digest = sha256Digest(bytes);
      await big.registry.ping();
      big.reg.clearRequests();
      expect(await big.registry.pushBlob('unit/push', { digest }, open(bytes), { chunkSize: 1000 })).toBe('uploaded');
      expect(big.reg.requests.filter((r) => r.method === 'PATCH').map((r) => r.headers['content-range'])).toEqual(['0-1499', '1500-2999', '3000-3999']);
      expect(big.reg.counts()).toEqual({ 'POST upload-start': 1, 'PATCH upload': 3, 'PUT upload': 1 });
      expect(big.reg.store.blob('unit/push', digest)?.equals(bytes)).toBe(true);
    } finally {
      await teardown(big);
    }
  });

  test('a mount from a repository holding the blob is one POST (201)', async () => {
    const layer = image.manifests[0]!.layerDigests[0]!;
    expect(
      await registry.pushBlob('unit/mounted', { digest: layer, size: image.blobs.get(layer)!.length }, open(image.blobs.get(layer)!), {
        mountFrom: 'unit/app',
      }),
    ).toBe('mounted');
    expect(reg.counts()).toEqual({ 'POST upload-start': 1 });
    expect(reg.requests[0]!.path).toBe(`/v2/unit/mounted/blobs/uploads/?mount=${encodeURIComponent(layer)}&from=${encodeURIComponent('unit/app')}`);
    expect(reg.store.blob('unit/mounted', layer)?.equals(image.blobs.get(layer)!)).toBe(true);
  });

  test('a mount the registry cannot do (202) goes on as an upload into the session it opened', async () => {
    const bytes = seededBytes('no-mount', 3000);
    const digest = sha256Digest(bytes);
    expect(await registry.pushBlob('unit/fallback', { digest, size: bytes.length }, open(bytes), { mountFrom: 'unit/app' })).toBe('uploaded');
    expect(reg.counts()).toEqual({ 'POST upload-start': 1, 'PUT upload': 1 });
    expect(reg.store.blob('unit/fallback', digest)?.equals(bytes)).toBe(true);
  });

  test('a blob whose bytes do not match its digest is refused with the registry words (DIGEST_INVALID)', async () => {
    const bytes = seededBytes('liar', 1000);
    const e = await ferryError(registry.pushBlob('unit/push', { digest: sha256Digest(Buffer.from('other')), size: bytes.length }, open(bytes)));
    expect([e.kind, e.status, e.codes, e.message]).toEqual([
      'registry',
      400,
      ['DIGEST_INVALID'],
      `400 DIGEST_INVALID pushing to ${reg.host}/unit/push: provided digest did not match uploaded content`,
    ]);
  });

  test('blobExists and blobSize are one HEAD each', async () => {
    const [layer, bytes] = [...image.blobs][0]!;
    expect(await registry.blobExists('unit/app', layer)).toBe(true);
    expect(await registry.blobSize('unit/app', layer)).toBe(bytes.length);
    expect(await registry.blobExists('unit/app', sha256Digest(Buffer.from('absent')))).toBe(false);
    expect(reg.counts()).toEqual({ 'HEAD blob': 3 });
  });

  test('getBlob streams the bytes, and resumes a cut body with a Range request', async () => {
    const layer = image.manifests[0]!.layerDigests[1]!;
    const bytes = image.blobs.get(layer)!;
    expect((await buffer(registry.getBlob('unit/app', { digest: layer, size: bytes.length }))).equals(bytes)).toBe(true);
    expect(reg.counts()).toEqual({ 'GET blob': 1 });
    reg.clearRequests();

    reg.addFault({ method: 'GET', kind: 'blob', times: 1, fault: { type: 'cut', afterBytes: 1000 } });
    expect((await buffer(registry.getBlob('unit/app', { digest: layer, size: bytes.length }))).equals(bytes)).toBe(true);
    expect(reg.requests.map((r) => [r.method, r.headers.range, r.status])).toEqual([
      ['GET', undefined, 200],
      ['GET', 'bytes=1000-', 206],
    ]);
  });

  test('getBlob of a blob the registry lost is not-found with BLOB_UNKNOWN', async () => {
    const lost = await setup();
    try {
      const img = lost.reg.seedImage('unit/lost:v1', { single: true, layers: 1, layerSize: 100, seed: 'lost' });
      const layer = img.manifests[0]!.layerDigests[0]!;
      lost.reg.store.deleteBlob('unit/lost', layer);
      const e = await ferryError(buffer(lost.registry.getBlob('unit/lost', { digest: layer, size: img.blobs.get(layer)!.length })));
      expect([e.kind, e.codes]).toEqual(['not-found', ['BLOB_UNKNOWN']]);
    } finally {
      await teardown(lost);
    }
  });

  test('getBlob refuses corrupted bytes', async () => {
    const [layer, bytes] = [...image.blobs][0]!;
    reg.addFault({ method: 'GET', kind: 'blob', fault: { type: 'corrupt' } });
    const e = await ferryError(buffer(registry.getBlob('unit/app', { digest: layer, size: bytes.length })));
    expect(e.kind).toBe('integrity');
  });

  test('getManifest calls a manifest damaged on the way an integrity failure, not an unreadable manifest', async () => {
    reg.addFault({ method: 'GET', kind: 'manifest', times: 1, fault: { type: 'corrupt' } });
    const e = await ferryError(registry.getManifest('unit/app', 'v1'));
    expect(e.kind).toBe('integrity');
    expect(e.message).toContain(`manifest v1 has digest sha256:`);
  });

  test('listTags follows Link pagination page by page', async () => {
    const child = image.manifests[0]!;
    for (const d of [child.configDigest, ...child.layerDigests]) reg.store.putBlob('unit/tags', image.blobs.get(d)!);
    for (const tag of ['t1', 't2', 't3', 't4']) reg.store.putManifest('unit/tags', tag, child.bytes, OCI_MANIFEST);
    expect(await registry.listTags('unit/tags')).toEqual(['t1', 't2', 't3', 't4']);
    expect(reg.requests.map((r) => r.path)).toEqual(['/v2/unit/tags/tags/list?n=1000', '/v2/unit/tags/tags/list?n=2&last=t2']);
  });

  test('catalog lists every repository across pages', async () => {
    expect(await registry.catalog()).toEqual(reg.store.repositories());
    expect(reg.count({ kind: 'catalog' })).toBe(Math.ceil(reg.store.repositories().length / 2));
  });

  test('a listing of an unknown repository is not-found with the registry code', async () => {
    const e = await ferryError(registry.listTags('unit/none'));
    expect([e.kind, e.status, e.codes, e.message]).toEqual([
      'not-found',
      404,
      ['NAME_UNKNOWN'],
      `404 NAME_UNKNOWN listing tags of ${reg.host}/unit/none: repository name not known to registry`,
    ]);
  });

  test('a GET that meets 503, then 429 with Retry-After, is retried and succeeds', async () => {
    reg.addFault({ method: 'GET', kind: 'manifest', times: 1, fault: { type: 'status', status: 503 } });
    reg.addFault({ method: 'GET', kind: 'manifest', times: 1, fault: { type: 'status', status: 429, headers: { 'retry-after': '0' } } });
    expect((await registry.getManifest('unit/app', 'v1')).digest).toBe(image.digest);
    expect(reg.requests.map((r) => [r.method, r.kind, r.status])).toEqual([
      ['GET', 'manifest', 503],
      ['GET', 'manifest', 429],
      ['GET', 'manifest', 200],
    ]);
  });

  test('a GET that keeps meeting 503 fails after the policy attempts, with the status', async () => {
    reg.addFault({ method: 'GET', kind: 'tags', fault: { type: 'status', status: 503 } });
    const e = await ferryError(registry.listTags('unit/app'));
    expect([e.kind, e.status]).toEqual(['registry', 503]);
    expect(reg.count({ kind: 'tags' })).toBe(3);
  });

  test('a connection reset on a GET is retried', async () => {
    reg.addFault({ method: 'HEAD', kind: 'manifest', times: 1, fault: { type: 'reset' } });
    expect((await registry.resolve('unit/app', 'v1')).digest).toBe(image.digest);
    expect(reg.requests.map((r) => r.status)).toEqual([0, 200]);
  });
});

describe('uploads on another origin', () => {
  test('a push follows the Location to the upload origin and finishes there', async () => {
    const s = await setup({ uploadOrigin: true });
    try {
      const bytes = seededBytes('elsewhere', 3000);
      const digest = sha256Digest(bytes);
      expect(await s.registry.pushBlob('unit/cdn', { digest, size: bytes.length }, open(bytes))).toBe('uploaded');
      expect(s.reg.counts({ origin: 'upload' })).toEqual({ 'PUT upload': 1 });
      expect(s.reg.store.blob('unit/cdn', digest)?.equals(bytes)).toBe(true);
    } finally {
      await teardown(s);
    }
  });
});

describe('a body that stalls', () => {
  test('is given up after the idle timeout and fetched again', async () => {
    const reg = await startMemoryRegistry();
    const client = makeClient({}, { bodyIdleTimeoutMs: 200 });
    try {
      const image = reg.seedImage('unit/stall:v1', { single: true, layers: 1, layerSize: 1000, seed: 'stall' });
      const layer = image.manifests[0]!.layerDigests[0]!;
      reg.addFault({ method: 'GET', kind: 'blob', times: 1, fault: { type: 'stall' } });
      const bytes = await buffer(client.registry(reg.host).getBlob('unit/stall', { digest: layer, size: image.blobs.get(layer)!.length }));
      expect(bytes.equals(image.blobs.get(layer)!)).toBe(true);
      expect(reg.count({ method: 'GET', kind: 'blob' })).toBe(2);
    } finally {
      await client.close();
      await reg.stop();
    }
  });
});

describe('referrers', () => {
  const SIG = 'application/vnd.ferry.test.signature';
  const SBOM = 'application/vnd.ferry.test.sbom';

  /** A subject image and two referrers of it (pushed with the client); returns their digests. */
  async function pushReferrers(s: Setup): Promise<{ subject: string; sig: string; sbom: string }> {
    const subject = s.reg.seedImage('unit/ref:v1', { single: true, layers: 1, layerSize: 100, seed: 'ref' });
    const empty = Buffer.from('{}');
    await s.registry.pushBlob('unit/ref', { digest: sha256Digest(empty), size: 2 }, open(empty));
    const referrer = async (artifactType: string) => {
      const bytes = json({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType,
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256Digest(empty), size: 2 },
        layers: [],
        subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.manifests[0]!.bytes.length },
      });
      return s.registry.putManifest('unit/ref', sha256Digest(bytes), bytes, OCI_MANIFEST);
    };
    return { subject: subject.digest, sig: await referrer(SIG), sbom: await referrer(SBOM) };
  }

  test('with the API: one GET, filtered by the registry', async () => {
    const s = await setup();
    try {
      const { subject, sig, sbom } = await pushReferrers(s);
      s.reg.clearRequests();
      expect((await s.registry.referrers('unit/ref', subject)).map((d) => d.digest).sort()).toEqual([sig, sbom].sort());
      expect((await s.registry.referrers('unit/ref', subject, SIG)).map((d) => [d.digest, d.artifactType])).toEqual([[sig, SIG]]);
      expect(s.reg.counts()).toEqual({ 'GET referrers': 2 });
    } finally {
      await teardown(s);
    }
  });

  test('with the API paginated: every page is followed', async () => {
    const s = await setup({ referrersPageSize: 1 });
    try {
      const { subject, sig, sbom } = await pushReferrers(s);
      s.reg.clearRequests();
      expect((await s.registry.referrers('unit/ref', subject)).map((d) => d.digest).sort()).toEqual([sig, sbom].sort());
      expect(s.reg.counts()).toEqual({ 'GET referrers': 2 });
    } finally {
      await teardown(s);
    }
  });

  test('without the API (registry:2.8): the tag-schema index, filtered by the client', async () => {
    const s = await setup({ referrers: false });
    try {
      const { subject, sig, sbom } = await pushReferrers(s);
      expect(await s.registry.referrers('unit/ref', subject)).toEqual([]);
      // The fallback index a pusher keeps at the sha256-<hex> tag.
      const descriptor = (digest: string, artifactType: string) => ({
        mediaType: OCI_MANIFEST,
        digest,
        size: s.reg.store.manifest('unit/ref', digest)!.bytes.length,
        artifactType,
      });
      const index = json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [descriptor(sig, SIG), descriptor(sbom, SBOM)] });
      s.reg.store.putManifest('unit/ref', `sha256-${subject.slice('sha256:'.length)}`, index, OCI_INDEX);
      s.reg.clearRequests();
      expect((await s.registry.referrers('unit/ref', subject)).map((d) => d.digest)).toEqual([sig, sbom]);
      expect((await s.registry.referrers('unit/ref', subject, SBOM)).map((d) => d.digest)).toEqual([sbom]);
      // The repository is known to lack the API (the first call found out): not asked again.
      expect(s.reg.counts()).toEqual({ 'GET manifest': 2 });
      expect(s.reg.requests.filter((r) => r.kind === 'manifest').map((r) => r.reference)).toEqual([
        `sha256-${subject.slice('sha256:'.length)}`,
        `sha256-${subject.slice('sha256:'.length)}`,
      ]);
      // A caller that read the tag list and saw no fallback tag spares the GET.
      s.reg.clearRequests();
      expect(await s.registry.referrers('unit/ref', subject, undefined, { fallbackTagListed: false })).toEqual([]);
      expect(s.reg.count()).toBe(0);
    } finally {
      await teardown(s);
    }
  });

  test('tagsOnOnePage: the tags when one page holds them, undefined when the registry pages them', async () => {
    const s = await setup({ referrers: false, pageSize: 2 });
    try {
      const { subject } = await pushReferrers(s);
      expect([...((await s.registry.tagsOnOnePage('unit/ref', 2)) ?? [])]).toEqual(['v1']);
      s.reg.store.putManifest('unit/ref', 'a', s.reg.store.manifest('unit/ref', subject)!.bytes, OCI_MANIFEST);
      s.reg.store.putManifest('unit/ref', 'b', s.reg.store.manifest('unit/ref', subject)!.bytes, OCI_MANIFEST);
      s.reg.store.putManifest('unit/ref', 'c', s.reg.store.manifest('unit/ref', subject)!.bytes, OCI_MANIFEST);
      s.reg.clearRequests();
      expect(await s.registry.tagsOnOnePage('unit/ref', 1000)).toBeUndefined();
      expect(s.reg.counts()).toEqual({ 'GET tags': 1 });
    } finally {
      await teardown(s);
    }
  });
});

describe('auth', () => {
  test('Basic: the first 401 teaches the scheme; later requests send credentials up front', async () => {
    const s = await setup({ auth: { type: 'basic' } }, (reg) => ({ [reg.host]: { username: 'alice', password: 'alice-secret' } }));
    try {
      const image = s.reg.seedImage('unit/basic:v1', { single: true, layers: 1, layerSize: 100, seed: 'basic' });
      await s.registry.ping();
      expect((await s.registry.resolve('unit/basic', 'v1')).digest).toBe(image.digest);
      expect(s.reg.requests.map((r) => [r.method, r.kind, r.status, r.headers.authorization?.split(' ')[0]])).toEqual([
        ['GET', 'base', 401, undefined],
        ['GET', 'base', 200, 'Basic'],
        ['HEAD', 'manifest', 200, 'Basic'],
      ]);
    } finally {
      await teardown(s);
    }
  });

  test('Basic without credentials, or with a wrong password, is an auth error that says what to do', async () => {
    const anonymous = await setup({ auth: { type: 'basic' } });
    const wrong = await setup({ auth: { type: 'basic' } }, (reg) => ({ [reg.host]: { username: 'alice', password: 'nope' } }));
    try {
      const a = await ferryError(anonymous.registry.ping());
      expect([a.kind, a.status, a.message]).toEqual([
        'auth',
        401,
        `401 UNAUTHORIZED logging in to ${anonymous.reg.host}: authentication required; run \`ferry login ${anonymous.reg.host}\``,
      ]);
      const w = await ferryError(wrong.registry.ping());
      expect([w.kind, w.message]).toEqual([
        'auth',
        `401 UNAUTHORIZED logging in to ${wrong.reg.host}: credentials were rejected; run \`ferry login ${wrong.reg.host}\``,
      ]);
      expect(wrong.reg.count({ kind: 'base' })).toBe(2);
    } finally {
      await teardown(anonymous);
      await teardown(wrong);
    }
  });

  test('Bearer: one token per scope set, asked with the credentials, then reused', async () => {
    const s = await setup({ auth: { type: 'token' } }, (reg) => ({ [reg.host]: { username: 'alice', password: 'alice-secret' } }));
    try {
      const image = s.reg.seedImage('unit/token:v1', { layers: 1, layerSize: 100, seed: 'token' });
      expect((await s.registry.resolve('unit/token', 'v1')).digest).toBe(image.digest);
      expect((await s.registry.getManifest('unit/token', 'v1')).digest).toBe(image.digest);
      expect(s.reg.counts()).toEqual({ 'HEAD manifest': 2, 'GET token': 1, 'GET manifest': 1 });
      expect(s.reg.tokenRequests.map((t) => [t.user, t.scopes, t.granted])).toEqual([
        ['alice', ['repository:unit/token:pull'], ['repository:unit/token:pull']],
      ]);
    } finally {
      await teardown(s);
    }
  });

  test('Bearer: a push the token does not cover is an auth error naming the missing rights', async () => {
    const s = await setup({ auth: { type: 'token' } }, (reg) => ({ [reg.host]: { username: 'bob', password: 'bob-secret' } }));
    try {
      const bytes = Buffer.from('bob may not push');
      const e = await ferryError(s.registry.pushBlob('unit/denied', { digest: sha256Digest(bytes), size: bytes.length }, open(bytes)));
      expect([e.kind, e.status, e.codes, e.message]).toEqual([
        'auth',
        401,
        ['UNAUTHORIZED'],
        `401 UNAUTHORIZED pushing to ${s.reg.host}/unit/denied: credentials were rejected (the registry did not grant the needed rights); run \`ferry login ${s.reg.host}\` with an account that has them`,
      ]);
      expect(s.reg.tokenRequests.map((t) => t.granted)).toEqual([['repository:unit/denied:pull']]);
    } finally {
      await teardown(s);
    }
  });
});
