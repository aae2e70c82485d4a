// The HTTP behaviour of ferry serve, in process with Node's fetch (undici): headers,
// Accept negotiation, ranges, error bodies, pagination, referrers, read-only methods.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type BundleReader, openBundle } from '../src/places/bundle-reader.js';
import { buildContent } from '../src/serve/content.js';
import { BundleServer, parseRange } from '../src/serve/server.js';
import { type Desc, named, OCI_INDEX, OCI_MANIFEST, sha256, twoImages, writeLayoutDir } from './reader-fixtures.js';

const SIG_TYPE = 'application/vnd.example.signature.v1+json';
let dir: string;
let bundle: BundleReader;
let server: BundleServer;
let base: string;
let fx: ReturnType<typeof twoImages>;
let referrer: Desc;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ferry-serve-unit-'));
  fx = twoImages();
  const empty = fx.blobs.add(Buffer.from('{}'), 'application/vnd.oci.empty.v1+json');
  const sig = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: SIG_TYPE,
      config: empty,
      layers: [empty],
      subject: { mediaType: fx.app.mediaType, digest: fx.app.digest, size: fx.app.size },
      annotations: { 'org.example.signed-by': 'test' },
    }),
  );
  referrer = fx.blobs.add(sig, OCI_MANIFEST);
  const extraTags = ['1.1', '1.2', '2.0'].map((t) => named(fx.app, `registry.test/team/app:${t}`));
  await writeLayoutDir(
    join(dir, 'layout'),
    [named(fx.app, fx.refs[0]!), named(fx.tool, fx.refs[1]!), named(referrer, 'registry.test/team/app:sig'), ...extraTags],
    fx.blobs,
  );
  bundle = await openBundle(join(dir, 'layout'));
  server = new BundleServer({ content: await buildContent([bundle], { prefix: 'mirror' }), jobs: 2 });
  const a = await server.listen('127.0.0.1', 0);
  base = `http://127.0.0.1:${a.port}`;
});

afterAll(async () => {
  await server?.close(100);
  await bundle?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const get = (path: string, init: RequestInit = {}) => fetch(`${base}${path}`, init);
const errorsOf = async (res: Response) => ((await res.json()) as { errors: Array<{ code: string }> }).errors.map((e) => e.code);

describe('ferry serve over HTTP', () => {
  it('answers /v2/ with the API version header, GET and HEAD', async () => {
    for (const method of ['GET', 'HEAD']) {
      const res = await get('/v2/', { method });
      expect(res.status).toBe(200);
      expect(res.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
    }
  });

  it('serves manifests by tag and digest with their type, digest and length; Accept decides as registry:2', async () => {
    const accept = { accept: `${OCI_MANIFEST}, ${OCI_INDEX}` };
    for (const ref of ['1.0', fx.app.digest]) {
      const res = await get(`/v2/mirror/team/app/manifests/${ref}`, { headers: accept });
      expect(res.status).toBe(200);
      const body = Buffer.from(await res.arrayBuffer());
      expect(sha256(body)).toBe(fx.app.digest);
      expect(res.headers.get('content-type')).toBe(OCI_INDEX);
      expect(res.headers.get('docker-content-digest')).toBe(fx.app.digest);
      expect(res.headers.get('content-length')).toBe(String(fx.app.size));
    }
    const head = await get('/v2/mirror/team/app/manifests/1.0', { method: 'HEAD', headers: accept });
    expect([head.status, head.headers.get('content-length'), head.headers.get('docker-content-digest')]).toEqual([200, String(fx.app.size), fx.app.digest]);
    // An OCI index to a client that accepts only Docker types: 404 MANIFEST_UNKNOWN, as distribution answers.
    const docker = await get('/v2/mirror/team/app/manifests/1.0', { headers: { accept: 'application/vnd.docker.distribution.manifest.v2+json' } });
    expect(docker.status).toBe(404);
    expect(await errorsOf(docker)).toEqual(['MANIFEST_UNKNOWN']);
    const child = await get(`/v2/mirror/team/app/manifests/${fx.tool.digest}`, { headers: accept });
    expect(child.status).toBe(404); // tool's manifest is not reachable from app
    const unknown = await get('/v2/mirror/team/nope/manifests/1.0', { headers: accept });
    expect([unknown.status, await errorsOf(unknown)]).toEqual([404, ['NAME_UNKNOWN']]);
    const tag = await get('/v2/mirror/team/app/manifests/9.9', { headers: accept });
    expect([tag.status, await errorsOf(tag)]).toEqual([404, ['MANIFEST_UNKNOWN']]);
    const etag = await get('/v2/mirror/team/app/manifests/1.0', { headers: { ...accept, 'if-none-match': `"${fx.app.digest}"` } });
    expect(etag.status).toBe(304);
  });

  it('serves blobs whole, by Range (206) and refuses unsatisfiable ranges (416)', async () => {
    const layer = fx.base;
    const bytes = fx.blobs.blobs.get(layer.digest)!;
    const whole = await get(`/v2/mirror/team/tool/blobs/${layer.digest}`);
    expect(whole.status).toBe(200);
    expect(Buffer.from(await whole.arrayBuffer()).equals(bytes)).toBe(true);
    expect(whole.headers.get('docker-content-digest')).toBe(layer.digest);
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    const part = await get(`/v2/mirror/team/tool/blobs/${layer.digest}`, { headers: { range: 'bytes=100-199' } });
    expect(part.status).toBe(206);
    expect(part.headers.get('content-range')).toBe(`bytes 100-199/${bytes.length}`);
    expect(Buffer.from(await part.arrayBuffer()).equals(bytes.subarray(100, 200))).toBe(true);
    const tail = await get(`/v2/mirror/team/tool/blobs/${layer.digest}`, { headers: { range: 'bytes=-10' } });
    expect(Buffer.from(await tail.arrayBuffer()).equals(bytes.subarray(bytes.length - 10))).toBe(true);
    const beyond = await get(`/v2/mirror/team/tool/blobs/${layer.digest}`, { headers: { range: `bytes=${bytes.length}-` } });
    expect([beyond.status, beyond.headers.get('content-range'), await errorsOf(beyond)]).toEqual([416, `bytes */${bytes.length}`, ['RANGE_INVALID']]);
    const head = await get(`/v2/mirror/team/tool/blobs/${layer.digest}`, { method: 'HEAD' });
    expect([head.status, head.headers.get('content-length')]).toEqual([200, String(bytes.length)]);
    const missing = await get(`/v2/mirror/team/tool/blobs/sha256:${'0'.repeat(64)}`);
    expect([missing.status, await errorsOf(missing)]).toEqual([404, ['BLOB_UNKNOWN']]);
    const bad = await get('/v2/mirror/team/tool/blobs/sha256:xyz');
    expect([bad.status, await errorsOf(bad)]).toEqual([400, ['DIGEST_INVALID']]);
    expect(server.guard.isVerified(layer.digest)).toBe(true);
  });

  it('parses ranges as RFC 9110: open ends, suffixes, ignored forms', () => {
    expect(parseRange('bytes=0-', 10)).toEqual({ start: 0, end: 9 });
    expect(parseRange('bytes=5-100', 10)).toEqual({ start: 5, end: 9 });
    expect(parseRange('bytes=-3', 10)).toEqual({ start: 7, end: 9 });
    expect(parseRange('bytes=10-', 10)).toBe('unsatisfiable');
    expect(parseRange('bytes=0-1,3-4', 10)).toBeUndefined();
    expect(parseRange('items=0-1', 10)).toBeUndefined();
    expect(parseRange('bytes=5-2', 10)).toBeUndefined();
  });

  it('lists tags and the catalog with n/last pagination and Link', async () => {
    const all = await (await get('/v2/mirror/team/app/tags/list')).json();
    expect(all).toEqual({ name: 'mirror/team/app', tags: ['1.0', '1.1', '1.2', '2.0', 'sig'] });
    const first = await get('/v2/mirror/team/app/tags/list?n=2');
    expect(await first.json()).toEqual({ name: 'mirror/team/app', tags: ['1.0', '1.1'] });
    expect(first.headers.get('link')).toBe('</v2/mirror/team/app/tags/list?last=1.1&n=2>; rel="next"');
    const next = await get('/v2/mirror/team/app/tags/list?last=1.1&n=2');
    expect(await next.json()).toEqual({ name: 'mirror/team/app', tags: ['1.2', '2.0'] });
    const lastPage = await get('/v2/mirror/team/app/tags/list?last=2.0&n=2');
    expect([await lastPage.json(), lastPage.headers.get('link')]).toEqual([{ name: 'mirror/team/app', tags: ['sig'] }, null]);
    const catalog = await get('/v2/_catalog?n=1');
    expect(await catalog.json()).toEqual({ repositories: ['mirror/team/app'] });
    expect(catalog.headers.get('link')).toBe('</v2/_catalog?last=mirror%2Fteam%2Fapp&n=1>; rel="next"');
    expect(await (await get('/v2/_catalog?last=mirror%2Fteam%2Fapp')).json()).toEqual({ repositories: ['mirror/team/tool'] });
    const bad = await get('/v2/_catalog?n=x');
    expect([bad.status, await errorsOf(bad)]).toEqual([400, ['PAGINATION_NUMBER_INVALID']]);
  });

  it('answers the referrers API with an OCI index, filtered by artifactType', async () => {
    const res = await get(`/v2/mirror/team/app/referrers/${fx.app.digest}`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe(OCI_INDEX);
    expect(await res.json()).toEqual({
      schemaVersion: 2,
      mediaType: OCI_INDEX,
      manifests: [
        { mediaType: OCI_MANIFEST, digest: referrer.digest, size: referrer.size, artifactType: SIG_TYPE, annotations: { 'org.example.signed-by': 'test' } },
      ],
    });
    const other = await get(`/v2/mirror/team/app/referrers/${fx.app.digest}?artifactType=application/other`);
    expect(other.headers.get('oci-filters-applied')).toBe('artifactType');
    expect(((await other.json()) as { manifests: unknown[] }).manifests).toEqual([]);
    const none = await get(`/v2/mirror/team/tool/referrers/${fx.tool.digest}`);
    expect(((await none.json()) as { manifests: unknown[] }).manifests).toEqual([]);
  });

  it('is read-only: every push or delete method is 405 UNSUPPORTED with the error body', async () => {
    const cases: Array<[string, string]> = [
      ['POST', '/v2/mirror/team/app/blobs/uploads/'],
      ['PATCH', '/v2/mirror/team/app/blobs/uploads/abc'],
      ['PUT', '/v2/mirror/team/app/blobs/uploads/abc?digest=sha256:00'],
      ['PUT', '/v2/mirror/team/app/manifests/1.0'],
      ['DELETE', `/v2/mirror/team/app/manifests/${fx.app.digest}`],
      ['DELETE', `/v2/mirror/team/app/blobs/${fx.base.digest}`],
    ];
    for (const [method, path] of cases) {
      const res = await get(path, { method, body: method === 'DELETE' ? undefined : 'x' });
      expect([method, path, res.status, await errorsOf(res)]).toEqual([method, path, 405, ['UNSUPPORTED']]);
    }
  });
});
