// The in-process registry of the test kit against the distribution spec, with
// a raw HTTP client (undici), so that later unit tests of ferry's client can
// trust what it answers: uploads of every kind, ranges, mounts, manifests and
// their checks, listings, referrers, deletes, auth and the fault hooks.
import { Agent, request } from 'undici';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { type MemoryRegistry, type MemoryRegistryOptions, OCI_CONFIG, OCI_INDEX, OCI_LAYER_GZIP, OCI_MANIFEST, startMemoryRegistry } from './harness/index.js';
import { seededBytes, sha256Digest } from './harness/layer.js';

interface Answer {
  status: number;
  headers: Record<string, string>;
  body: Buffer;
}

// One agent for the file: keep-alive connections like a real client.
const agent = new Agent({ keepAliveTimeout: 1000 });
afterAll(() => agent.close());

async function call(url: string, method = 'GET', init: { headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<Answer> {
  const res = await request(url, { method: method as 'GET', headers: init.headers, body: init.body, dispatcher: agent });
  const body = Buffer.from(await res.body.arrayBuffer());
  const headers = Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, Array.isArray(v) ? v.join(', ') : (v ?? '')]));
  return { status: res.statusCode, headers, body };
}

const errorsOf = (a: Answer) => (JSON.parse(a.body.toString()) as { errors: Array<{ code: string; message: string; detail?: unknown }> }).errors;
const json = (value: object) => Buffer.from(JSON.stringify(value));

async function withRegistry(opts: MemoryRegistryOptions, run: (reg: MemoryRegistry) => Promise<void>): Promise<void> {
  const reg = await startMemoryRegistry(opts);
  try {
    await run(reg);
  } finally {
    await reg.stop();
  }
}

/** A config, a layer and an OCI manifest of them. */
function smallImage(seed: string) {
  const config = json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
  const layer = seededBytes(seed, 3000);
  const manifest = json({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: OCI_CONFIG, digest: sha256Digest(config), size: config.length },
    layers: [{ mediaType: OCI_LAYER_GZIP, digest: sha256Digest(layer), size: layer.length }],
  });
  return { config, layer, manifest, digest: sha256Digest(manifest) };
}

describe('blobs and uploads', () => {
  let reg: MemoryRegistry;
  beforeAll(async () => {
    reg = await startMemoryRegistry();
  });
  afterAll(() => reg.stop());

  test('GET /v2/ answers 200 with the API version header; unknown paths get the plain 404 of registry:2', async () => {
    const base = await call(`${reg.url}/v2/`);
    expect(base.status).toBe(200);
    expect(base.headers['docker-distribution-api-version']).toBe('registry/2.0');
    const other = await call(`${reg.url}/v3/nothing`);
    expect([other.status, other.body.toString()]).toEqual([404, '404 page not found\n']);
  });

  test('a monolithic POST ?digest= stores the blob; HEAD, GET and ranges serve it', async () => {
    const bytes = seededBytes('mono', 10_000);
    const digest = sha256Digest(bytes);
    const put = await call(`${reg.url}/v2/blobs/mono/blobs/uploads/?digest=${digest}`, 'POST', {
      body: bytes,
      headers: { 'content-type': 'application/octet-stream' },
    });
    expect(put.status).toBe(201);
    expect(put.headers.location).toBe(`${reg.url}/v2/blobs/mono/blobs/${digest}`);
    expect(put.headers['docker-content-digest']).toBe(digest);

    const head = await call(`${reg.url}/v2/blobs/mono/blobs/${digest}`, 'HEAD');
    expect([head.status, head.headers['content-length'], head.headers['docker-content-digest'], head.body.length]).toEqual([200, '10000', digest, 0]);
    const get = await call(`${reg.url}/v2/blobs/mono/blobs/${digest}`);
    expect(get.status).toBe(200);
    expect(get.body.equals(bytes)).toBe(true);

    const part = await call(`${reg.url}/v2/blobs/mono/blobs/${digest}`, 'GET', { headers: { range: 'bytes=100-199' } });
    expect([part.status, part.headers['content-range'], part.headers['content-length']]).toEqual([206, 'bytes 100-199/10000', '100']);
    expect(part.body.equals(bytes.subarray(100, 200))).toBe(true);
    const open = await call(`${reg.url}/v2/blobs/mono/blobs/${digest}`, 'GET', { headers: { range: 'bytes=9990-' } });
    expect([open.status, open.headers['content-range']]).toEqual([206, 'bytes 9990-9999/10000']);
    expect(open.body.equals(bytes.subarray(9990))).toBe(true);
    const suffix = await call(`${reg.url}/v2/blobs/mono/blobs/${digest}`, 'GET', { headers: { range: 'bytes=-5' } });
    expect(suffix.body.equals(bytes.subarray(9995))).toBe(true);
    const beyond = await call(`${reg.url}/v2/blobs/mono/blobs/${digest}`, 'GET', { headers: { range: 'bytes=10000-' } });
    expect([beyond.status, beyond.headers['content-range']]).toEqual([416, 'bytes */10000']);

    // Another repository does not see it; a bad digest is DIGEST_INVALID.
    const elsewhere = await call(`${reg.url}/v2/blobs/other/blobs/${digest}`);
    expect([elsewhere.status, errorsOf(elsewhere)[0]!.code]).toEqual([404, 'BLOB_UNKNOWN']);
    const bad = await call(`${reg.url}/v2/blobs/mono/blobs/sha256:1234`);
    expect([bad.status, errorsOf(bad)[0]!.code]).toEqual([400, 'DIGEST_INVALID']);
  });

  test('POST then PUT ?digest= stores the blob; a wrong digest is refused with DIGEST_INVALID', async () => {
    const bytes = seededBytes('post-put', 5000);
    const digest = sha256Digest(bytes);
    const start = await call(`${reg.url}/v2/blobs/two-step/blobs/uploads/`, 'POST');
    expect(start.status).toBe(202);
    const uuid = start.headers['docker-upload-uuid']!;
    expect(start.headers.location).toBe(`${reg.url}/v2/blobs/two-step/blobs/uploads/${uuid}`);
    expect(start.headers.range).toBe('0-0');

    const wrong = await call(`${start.headers.location}?digest=${sha256Digest(Buffer.from('other'))}`, 'PUT', { body: bytes });
    expect(wrong.status).toBe(400);
    expect(errorsOf(wrong)[0]).toMatchObject({ code: 'DIGEST_INVALID', message: 'provided digest did not match uploaded content' });
    const missing = await call(`${reg.url}/v2/blobs/two-step/blobs/${digest}`, 'HEAD');
    expect(missing.status).toBe(404);

    const again = await call(`${reg.url}/v2/blobs/two-step/blobs/uploads/`, 'POST');
    const done = await call(`${again.headers.location}?digest=${digest}`, 'PUT', { body: bytes });
    expect([done.status, done.headers['docker-content-digest']]).toEqual([201, digest]);
    expect((await call(`${reg.url}/v2/blobs/two-step/blobs/${digest}`)).body.equals(bytes)).toBe(true);
  });

  test('chunked PATCHes with Content-Range: Range, Location and Docker-Upload-UUID answers, the offset on GET, 416 out of order', async () => {
    const bytes = seededBytes('chunked', 2500);
    const digest = sha256Digest(bytes);
    const start = await call(`${reg.url}/v2/blobs/chunked/blobs/uploads/`, 'POST');
    let location = start.headers.location!;
    const uuid = start.headers['docker-upload-uuid'];
    for (const [from, to] of [
      [0, 999],
      [1000, 1999],
    ] as const) {
      const patch = await call(location, 'PATCH', { body: bytes.subarray(from, to + 1), headers: { 'content-range': `${from}-${to}` } });
      expect([patch.status, patch.headers.range, patch.headers['docker-upload-uuid']]).toEqual([202, `0-${to}`, uuid]);
      location = patch.headers.location!;
    }
    const status = await call(location);
    expect([status.status, status.headers.range, status.headers.location]).toEqual([204, '0-1999', location]);

    const skipped = await call(location, 'PATCH', { body: bytes.subarray(2100), headers: { 'content-range': `2100-${bytes.length - 1}` } });
    expect([skipped.status, skipped.headers.range, errorsOf(skipped)[0]!.code]).toEqual([416, '0-1999', 'RANGE_INVALID']);

    const last = await call(location, 'PATCH', { body: bytes.subarray(2000), headers: { 'content-range': `2000-${bytes.length - 1}` } });
    expect(last.headers.range).toBe(`0-${bytes.length - 1}`);
    const done = await call(`${last.headers.location}?digest=${digest}`, 'PUT');
    expect(done.status).toBe(201);
    expect((await call(`${reg.url}/v2/blobs/chunked/blobs/${digest}`)).body.equals(bytes)).toBe(true);
    const finished = await call(location);
    expect([finished.status, errorsOf(finished)[0]!.code]).toEqual([404, 'BLOB_UPLOAD_UNKNOWN']);
  });

  test('an upload session can be cancelled', async () => {
    const start = await call(`${reg.url}/v2/blobs/cancel/blobs/uploads/`, 'POST');
    expect((await call(start.headers.location!, 'DELETE')).status).toBe(204);
    expect((await call(start.headers.location!)).status).toBe(404);
  });

  test('a cross-repository mount answers 201 when the source holds the blob, else starts an upload (202)', async () => {
    const digest = reg.store.putBlob('mount/source', seededBytes('mount', 100));
    const mounted = await call(`${reg.url}/v2/mount/target/blobs/uploads/?mount=${digest}&from=mount/source`, 'POST');
    expect([mounted.status, mounted.headers.location, mounted.headers['docker-content-digest']]).toEqual([
      201,
      `${reg.url}/v2/mount/target/blobs/${digest}`,
      digest,
    ]);
    expect(reg.store.blob('mount/target', digest)).toBeDefined();
    const fallback = await call(`${reg.url}/v2/mount/third/blobs/uploads/?mount=${digest}&from=mount/empty`, 'POST');
    expect([fallback.status, fallback.headers.range]).toEqual([202, '0-0']);
    expect(reg.store.blob('mount/third', digest)).toBeUndefined();
  });

  test('deleting a blob unlinks it from that repository only', async () => {
    const bytes = seededBytes('delete', 64);
    const digest = reg.store.putBlob('del/a', bytes);
    reg.store.putBlob('del/b', bytes);
    expect((await call(`${reg.url}/v2/del/a/blobs/${digest}`, 'DELETE')).status).toBe(202);
    expect((await call(`${reg.url}/v2/del/a/blobs/${digest}`, 'HEAD')).status).toBe(404);
    expect((await call(`${reg.url}/v2/del/b/blobs/${digest}`, 'HEAD')).status).toBe(200);
    expect((await call(`${reg.url}/v2/del/a/blobs/${digest}`, 'DELETE')).status).toBe(404);
  });

  test('names the spec does not allow are NAME_INVALID', async () => {
    const res = await call(`${reg.url}/v2/Upper/Case/blobs/uploads/`, 'POST');
    expect([res.status, errorsOf(res)[0]!.code]).toEqual([400, 'NAME_INVALID']);
  });
});

describe('manifests, tags, catalog, referrers', () => {
  let reg: MemoryRegistry;
  beforeAll(async () => {
    reg = await startMemoryRegistry({ pageSize: 100 });
  });
  afterAll(() => reg.stop());

  test('a manifest whose blobs are missing is refused with MANIFEST_BLOB_UNKNOWN, as registry:2 refuses it', async () => {
    const image = smallImage('missing');
    reg.store.putBlob('man/missing', image.config);
    const res = await call(`${reg.url}/v2/man/missing/manifests/v1`, 'PUT', { body: image.manifest, headers: { 'content-type': OCI_MANIFEST } });
    expect(res.status).toBe(400);
    expect(errorsOf(res)[0]).toEqual({ code: 'MANIFEST_BLOB_UNKNOWN', message: 'blob unknown to registry', detail: { digest: sha256Digest(image.layer) } });
    const index = json({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_MANIFEST, digest: image.digest, size: image.manifest.length }] });
    const idx = await call(`${reg.url}/v2/man/missing/manifests/idx`, 'PUT', { body: index, headers: { 'content-type': OCI_INDEX } });
    expect([idx.status, errorsOf(idx)[0]!.code]).toEqual([400, 'MANIFEST_BLOB_UNKNOWN']);
  });

  test('PUT by tag, GET and HEAD by tag and digest with Content-Type and Docker-Content-Digest; Accept is honoured', async () => {
    const image = smallImage('put');
    reg.store.putBlob('man/app', image.config);
    reg.store.putBlob('man/app', image.layer);
    const put = await call(`${reg.url}/v2/man/app/manifests/v1`, 'PUT', { body: image.manifest, headers: { 'content-type': OCI_MANIFEST } });
    expect([put.status, put.headers['docker-content-digest'], put.headers.location]).toEqual([
      201,
      image.digest,
      `${reg.url}/v2/man/app/manifests/${image.digest}`,
    ]);
    expect(put.headers['oci-subject']).toBeUndefined();
    for (const ref of ['v1', image.digest]) {
      const get = await call(`${reg.url}/v2/man/app/manifests/${ref}`, 'GET', { headers: { accept: `${OCI_INDEX}, ${OCI_MANIFEST}` } });
      expect([get.status, get.headers['content-type'], get.headers['docker-content-digest']]).toEqual([200, OCI_MANIFEST, image.digest]);
      expect(get.body.equals(image.manifest)).toBe(true);
      const head = await call(`${reg.url}/v2/man/app/manifests/${ref}`, 'HEAD');
      expect([head.status, head.headers['content-length'], head.body.length]).toEqual([200, String(image.manifest.length), 0]);
    }
    const refused = await call(`${reg.url}/v2/man/app/manifests/v1`, 'GET', { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    expect([refused.status, errorsOf(refused)[0]!.code]).toEqual([404, 'MANIFEST_UNKNOWN']);
    const unknown = await call(`${reg.url}/v2/man/app/manifests/v2`);
    expect(errorsOf(unknown)[0]).toEqual({ code: 'MANIFEST_UNKNOWN', message: 'manifest unknown', detail: { Tag: 'v2' } });
    const wrong = await call(`${reg.url}/v2/man/app/manifests/${sha256Digest(Buffer.from('x'))}`, 'PUT', {
      body: image.manifest,
      headers: { 'content-type': OCI_MANIFEST },
    });
    expect([wrong.status, errorsOf(wrong)[0]!.code]).toEqual([400, 'DIGEST_INVALID']);
    const notJson = await call(`${reg.url}/v2/man/app/manifests/bad`, 'PUT', { body: 'nope', headers: { 'content-type': OCI_MANIFEST } });
    expect([notJson.status, errorsOf(notJson)[0]!.code]).toEqual([400, 'MANIFEST_INVALID']);
  });

  test('DELETE by tag drops the tag; by digest the manifest and its tags', async () => {
    const image = reg.seedImage('man/delete:a', { single: true, layers: 1, layerSize: 100, seed: 'delete' });
    reg.store.putManifest('man/delete', 'b', reg.store.manifest('man/delete', 'a')!.bytes);
    expect((await call(`${reg.url}/v2/man/delete/manifests/a`, 'DELETE')).status).toBe(202);
    expect((await call(`${reg.url}/v2/man/delete/manifests/a`, 'HEAD')).status).toBe(404);
    expect((await call(`${reg.url}/v2/man/delete/manifests/b`, 'HEAD')).status).toBe(200);
    expect((await call(`${reg.url}/v2/man/delete/manifests/${image.digest}`, 'DELETE')).status).toBe(202);
    expect((await call(`${reg.url}/v2/man/delete/manifests/b`, 'HEAD')).status).toBe(404);
  });

  test('tags/list and _catalog paginate with n, last and Link', async () => {
    const image = reg.seedImage('list/app:t1', { single: true, layers: 1, layerSize: 100, seed: 'list' });
    for (const tag of ['t2', 't3', 't4', 't5']) reg.store.putManifest('list/app', tag, image.manifests[0]!.bytes);
    const first = await call(`${reg.url}/v2/list/app/tags/list?n=2`);
    expect(JSON.parse(first.body.toString())).toEqual({ name: 'list/app', tags: ['t1', 't2'] });
    expect(first.headers.link).toBe('</v2/list/app/tags/list?n=2&last=t2>; rel="next"');
    const last = await call(`${reg.url}/v2/list/app/tags/list?n=2&last=t4`);
    expect(JSON.parse(last.body.toString()).tags).toEqual(['t5']);
    expect(last.headers.link).toBeUndefined();
    const all = await call(`${reg.url}/v2/list/app/tags/list`);
    expect(JSON.parse(all.body.toString()).tags).toEqual(['t1', 't2', 't3', 't4', 't5']);
    const unknown = await call(`${reg.url}/v2/list/none/tags/list`);
    expect(errorsOf(unknown)[0]).toEqual({ code: 'NAME_UNKNOWN', message: 'repository name not known to registry', detail: { name: 'list/none' } });
    const bad = await call(`${reg.url}/v2/list/app/tags/list?n=x`);
    expect([bad.status, errorsOf(bad)[0]!.code]).toEqual([400, 'PAGINATION_NUMBER_INVALID']);

    const catalog = await call(`${reg.url}/v2/_catalog?n=1&last=list/app`);
    const repos = JSON.parse(catalog.body.toString()).repositories as string[];
    expect(repos).toHaveLength(1);
    expect(repos[0]! > 'list/app').toBe(true);
    const everything = JSON.parse((await call(`${reg.url}/v2/_catalog`)).body.toString()).repositories as string[];
    expect(everything).toEqual([...everything].sort());
    expect(everything).toContain('list/app');
  });

  test('referrers: OCI-Subject on the PUT, the index of referrers, the artifactType filter', async () => {
    const subject = reg.seedImage('ref/app:v1', { single: true, layers: 1, layerSize: 100, seed: 'ref' });
    const empty = Buffer.from('{}');
    const emptyDigest = reg.store.putBlob('ref/app', empty);
    const referrer = (artifactType: string, n: number) => {
      const payload = reg.store.putBlob('ref/app', Buffer.from(`payload ${n}`));
      return json({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        artifactType,
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: 2 },
        layers: [{ mediaType: 'application/octet-stream', digest: payload, size: `payload ${n}`.length }],
        subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: subject.manifests[0]!.bytes.length },
        annotations: { n: String(n) },
      });
    };
    const sig = referrer('application/vnd.test.sig', 1);
    const sbom = referrer('application/vnd.test.sbom', 2);
    for (const m of [sig, sbom]) {
      const put = await call(`${reg.url}/v2/ref/app/manifests/${sha256Digest(m)}`, 'PUT', { body: m, headers: { 'content-type': OCI_MANIFEST } });
      expect([put.status, put.headers['oci-subject']]).toEqual([201, subject.digest]);
    }
    const all = await call(`${reg.url}/v2/ref/app/referrers/${subject.digest}`);
    expect([all.status, all.headers['content-type'], all.headers['oci-filters-applied']]).toEqual([200, OCI_INDEX, undefined]);
    const byDigest = (a: { digest: string }, b: { digest: string }) => (a.digest < b.digest ? -1 : 1);
    expect(JSON.parse(all.body.toString())).toEqual({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        { mediaType: OCI_MANIFEST, digest: sha256Digest(sig), size: sig.length, artifactType: 'application/vnd.test.sig', annotations: { n: '1' } },
        { mediaType: OCI_MANIFEST, digest: sha256Digest(sbom), size: sbom.length, artifactType: 'application/vnd.test.sbom', annotations: { n: '2' } },
      ].sort(byDigest),
    });
    const filtered = await call(`${reg.url}/v2/ref/app/referrers/${subject.digest}?artifactType=application/vnd.test.sbom`);
    expect(filtered.headers['oci-filters-applied']).toBe('artifactType');
    expect(JSON.parse(filtered.body.toString()).manifests.map((d: { digest: string }) => d.digest)).toEqual([sha256Digest(sbom)]);
    const none = await call(`${reg.url}/v2/ref/app/referrers/${sha256Digest(Buffer.from('nothing'))}`);
    expect(JSON.parse(none.body.toString()).manifests).toEqual([]);
  });

  test('with the referrers API off: 404 as registry:2.8, and no OCI-Subject', async () => {
    await withRegistry({ referrers: false }, async (old) => {
      const subject = old.seedImage('ref/old:v1', { single: true, layers: 1, layerSize: 100, seed: 'old' });
      const res = await call(`${old.url}/v2/ref/old/referrers/${subject.digest}`);
      expect([res.status, res.body.toString()]).toEqual([404, '404 page not found\n']);
      const config = old.store.putBlob('ref/old', Buffer.from('{}'));
      const m = json({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: 'application/vnd.test.config', digest: config, size: 2 },
        layers: [],
        subject: { mediaType: OCI_MANIFEST, digest: subject.digest, size: 1 },
      });
      const put = await call(`${old.url}/v2/ref/old/manifests/${sha256Digest(m)}`, 'PUT', { body: m, headers: { 'content-type': OCI_MANIFEST } });
      expect([put.status, put.headers['oci-subject']]).toEqual([201, undefined]);
    });
  });
});

describe('auth', () => {
  test('Basic: a challenge without credentials, 200 with them, 401 with a wrong password', async () => {
    await withRegistry({ auth: { type: 'basic' } }, async (reg) => {
      const anonymous = await call(`${reg.url}/v2/`);
      expect([anonymous.status, anonymous.headers['www-authenticate'], errorsOf(anonymous)[0]!.code]).toEqual([
        401,
        'Basic realm="ferry-memory-registry"',
        'UNAUTHORIZED',
      ]);
      const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
      expect((await call(`${reg.url}/v2/`, 'GET', { headers: { authorization: basic('alice', 'alice-secret') } })).status).toBe(200);
      expect((await call(`${reg.url}/v2/`, 'GET', { headers: { authorization: basic('alice', 'wrong') } })).status).toBe(401);
    });
  });

  test('token: the challenge names realm, service and scope; the token grants what the ACL allows', async () => {
    await withRegistry({ auth: { type: 'token' } }, async (reg) => {
      const challenge = await call(`${reg.url}/v2/tok/app/blobs/uploads/`, 'POST');
      expect(challenge.headers['www-authenticate']).toBe(
        `Bearer realm="${reg.url}/token",service="ferry-memory-registry",scope="repository:tok/app:pull,push"`,
      );
      const tokenFor = async (user: string, scope: string) => {
        const res = await call(`${reg.url}/token?service=ferry-memory-registry&scope=${encodeURIComponent(scope)}`, 'GET', {
          headers: { authorization: `Basic ${Buffer.from(`${user}:${reg.users[user]}`).toString('base64')}` },
        });
        expect(res.status).toBe(200);
        return (JSON.parse(res.body.toString()) as { token: string }).token;
      };
      const alice = await tokenFor('alice', 'repository:tok/app:pull,push');
      const push = await call(`${reg.url}/v2/tok/app/blobs/uploads/`, 'POST', { headers: { authorization: `Bearer ${alice}` } });
      expect(push.status).toBe(202);
      const bob = await tokenFor('bob', 'repository:tok/app:pull,push');
      const denied = await call(`${reg.url}/v2/tok/app/blobs/uploads/`, 'POST', { headers: { authorization: `Bearer ${bob}` } });
      expect([denied.status, denied.headers['www-authenticate']]).toEqual([
        401,
        `Bearer realm="${reg.url}/token",service="ferry-memory-registry",scope="repository:tok/app:pull,push",error="insufficient_scope"`,
      ]);
      expect(reg.tokenRequests.map((t) => [t.user, t.granted])).toEqual([
        ['alice', ['repository:tok/app:pull', 'repository:tok/app:push']],
        ['bob', ['repository:tok/app:pull']],
      ]);
    });
  });
});

describe('faults and counters', () => {
  let reg: MemoryRegistry;
  let digest: string;
  const bytes = seededBytes('faults', 4096);
  beforeAll(async () => {
    reg = await startMemoryRegistry();
    digest = reg.store.putBlob('f/app', bytes);
  });
  afterEach(() => {
    reg.clearFaults();
    reg.clearRequests();
  });
  afterAll(() => reg.stop());

  test('a rule answers a status for the nth matching request only; counters count by method and kind', async () => {
    reg.addFault({ method: 'HEAD', kind: 'blob', skip: 1, times: 1, fault: { type: 'status', status: 429, headers: { 'retry-after': '3' } } });
    const statuses: number[] = [];
    const answers: Answer[] = [];
    for (let i = 0; i < 3; i++) {
      const a = await call(`${reg.url}/v2/f/app/blobs/${digest}`, 'HEAD');
      answers.push(a);
      statuses.push(a.status);
    }
    expect(statuses).toEqual([200, 429, 200]);
    expect(answers[1]!.headers['retry-after']).toBe('3');
    await call(`${reg.url}/v2/f/app/blobs/${digest}`);
    expect(reg.counts()).toEqual({ 'HEAD blob': 3, 'GET blob': 1 });
    expect(reg.count({ method: 'HEAD' })).toBe(3);
    expect(reg.requests.map((r) => [r.status, r.fault])).toEqual([
      [200, undefined],
      [429, 'status'],
      [200, undefined],
      [200, undefined],
    ]);
  });

  test('a status fault carries distribution error JSON', async () => {
    reg.addFault({ kind: 'blob', fault: { type: 'status', status: 429 } });
    const a = await call(`${reg.url}/v2/f/app/blobs/${digest}`);
    expect(errorsOf(a)).toEqual([{ code: 'TOOMANYREQUESTS', message: 'too many requests' }]);
  });

  test('reset: the client sees ECONNRESET, at once or once part of the body arrived', async () => {
    reg.addFault({ method: 'GET', kind: 'blob', times: 1, fault: { type: 'reset' } });
    await expect(call(`${reg.url}/v2/f/app/blobs/${digest}`)).rejects.toMatchObject({ code: 'ECONNRESET' });
    let seen = 0;
    reg.onRequest(async (req) => {
      if (req.kind !== 'upload-start') return undefined;
      return { type: 'reset', afterBodyBytes: 1000 };
    });
    reg.onRequest(() => {
      seen++;
      return undefined;
    });
    await expect(call(`${reg.url}/v2/f/app/blobs/uploads/?digest=${digest}`, 'POST', { body: bytes })).rejects.toThrow();
    expect(reg.store.uploads.size).toBe(0);
    expect(seen).toBe(0);
    expect(reg.requests.at(-1)).toMatchObject({ kind: 'upload-start', status: 0, fault: 'reset' });
  });

  test('cut: the body ends early; corrupt: one byte differs; delay: the answer comes late', async () => {
    reg.addFault({ kind: 'blob', times: 1, fault: { type: 'cut', afterBytes: 1000 } });
    const res = await request(`${reg.url}/v2/f/app/blobs/${digest}`, { dispatcher: agent });
    expect(res.headers['content-length']).toBe('4096');
    await expect(res.body.arrayBuffer()).rejects.toThrow();

    reg.addFault({ kind: 'blob', times: 1, fault: { type: 'corrupt' } });
    const corrupt = await call(`${reg.url}/v2/f/app/blobs/${digest}`);
    expect(corrupt.body.length).toBe(bytes.length);
    expect(sha256Digest(corrupt.body)).not.toBe(digest);

    reg.addFault({ kind: 'blob', times: 1, fault: { type: 'delay', ms: 150 } });
    const started = Date.now();
    expect((await call(`${reg.url}/v2/f/app/blobs/${digest}`)).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
  });

  test('stall: the headers come, the body never does', async () => {
    reg.addFault({ kind: 'blob', times: 1, fault: { type: 'stall' } });
    const res = await request(`${reg.url}/v2/f/app/blobs/${digest}`, { dispatcher: agent, bodyTimeout: 200 });
    expect(res.statusCode).toBe(200);
    await expect(res.body.arrayBuffer()).rejects.toMatchObject({ code: 'UND_ERR_BODY_TIMEOUT' });
  });

  test('a hook sees the request body', async () => {
    const seen: string[] = [];
    reg.onRequest(async (req) => {
      if (req.method === 'PUT') seen.push((await req.readBody()).toString());
      return undefined;
    });
    const start = await call(`${reg.url}/v2/f/app/blobs/uploads/`, 'POST');
    const body = Buffer.from('hook body');
    const done = await call(`${start.headers.location}?digest=${sha256Digest(body)}`, 'PUT', { body });
    expect(done.status).toBe(201);
    expect(seen).toEqual(['hook body']);
  });
});

describe('uploads on another origin', () => {
  test('Location points at the second listener, which serves sessions only and without auth', async () => {
    await withRegistry({ uploadOrigin: true, auth: { type: 'basic' } }, async (reg) => {
      const authorization = `Basic ${Buffer.from('alice:alice-secret').toString('base64')}`;
      const start = await call(`${reg.url}/v2/cdn/app/blobs/uploads/`, 'POST', { headers: { authorization } });
      expect(start.headers.location!.startsWith(`${reg.uploadUrl}/v2/cdn/app/blobs/uploads/`)).toBe(true);
      const bytes = Buffer.from('elsewhere');
      const done = await call(`${start.headers.location}?digest=${sha256Digest(bytes)}`, 'PUT', { body: bytes });
      expect([done.status, done.headers.location]).toEqual([201, `${reg.url}/v2/cdn/app/blobs/${sha256Digest(bytes)}`]);
      expect((await call(`${reg.uploadUrl}/v2/`)).status).toBe(404);
      expect(reg.counts({ origin: 'upload' })).toEqual({ 'PUT upload': 1, 'GET base': 1 });
    });
  });
});
