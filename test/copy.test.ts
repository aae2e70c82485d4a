// `ferry copy` (the real CLI) between real registry:2 instances: digests kept
// across plain HTTP, TLS, htpasswd and token auth; skips, mounts, platform
// filters, token scopes and refusals, and faults injected by a proxy in front
// of the source.
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type BlobOrigin,
  type FaultProxy,
  OCI_INDEX,
  OCI_MANIFEST,
  registryFetch,
  type SeededImage,
  seedImage,
  sha256Digest,
  skopeoInspectRaw,
  startBlobOrigin,
  startFaultProxy,
  startRegistry,
  type TestRegistry,
  type TokenRequest,
} from './harness/index.js';
import { alice, copyResult, expectErrorLine, expectImageIn, type FerryHome, headStatus, makeFerryHome, runFerry } from './helpers/ferry.js';

let plain: TestRegistry;
let tls: TestRegistry;
let htpasswd: TestRegistry;
let token: TestRegistry;
let home: FerryHome;
let image: SeededImage;

beforeAll(async () => {
  [plain, tls, htpasswd, token, home] = await Promise.all([
    startRegistry(),
    startRegistry({ tls: true }),
    startRegistry({ auth: 'htpasswd' }),
    startRegistry({ auth: 'token' }),
    makeFerryHome(),
  ]);
  await home.login({ [htpasswd.host]: alice(), [token.host]: alice() });
  image = await seedImage(plain, 'src/app:1.0', { seed: 'copy', layerSize: 16 * 1024 });
});

afterAll(async () => {
  await Promise.all([plain?.stop(), tls?.stop(), htpasswd?.stop(), token?.stop(), home?.remove()]);
});

const ferry = (...args: string[]) => runFerry(args, { home });

/** Token requests made while `run` runs. */
async function tokenRequestsDuring<T>(run: () => Promise<T>): Promise<{ result: T; requests: TokenRequest[] }> {
  const requests = token.tokenServer!.requests;
  const before = requests.length;
  const result = await run();
  return { result, requests: requests.slice(before) };
}

/** Matches a scope string whatever the order of its actions. */
function scope(resource: string, ...actions: string[]): RegExp {
  const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const alternatives = permutations(actions).map((p) => p.join(','));
  return new RegExp(`^${esc(resource)}:(${alternatives.map(esc).join('|')})$`);
}

function permutations(items: string[]): string[][] {
  if (items.length <= 1) return [items];
  return items.flatMap((item, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((p) => [item, ...p]));
}

describe('copy of a two-platform index keeps every digest', () => {
  test('plain HTTP -> TLS registry with --ca-file', async () => {
    const res = await ferry('copy', '--json', '--ca-file', tls.caFile!, `${plain.host}/src/app:1.0`, `${tls.host}/tls/app:1.0`);
    expect(copyResult(res)).toMatchObject({
      source: `${plain.host}/src/app:1.0`,
      destination: `${tls.host}/tls/app:1.0@${image.digest}`,
      digest: image.digest,
      upstreamDigest: image.digest,
      mediaType: OCI_INDEX,
      platforms: ['linux/amd64', 'linux/arm64/v8'],
      blobs: { uploaded: 6, mounted: 0, skipped: 0 },
      bytes: [...image.blobs.values()].reduce((n, b) => n + b.length, 0),
    });
    await expectImageIn(tls, 'tls/app:1.0', image);
  });

  test('a TLS registry whose CA is not given fails with a hint at --ca-file', async () => {
    const res = await ferry('copy', `${tls.host}/tls/app:1.0`, `${plain.host}/never/app:1.0`);
    const line = expectErrorLine(res, 1);
    expect(line).toContain(tls.host);
    expect(line).toMatch(/certificate/i);
    expect(line).toContain('--ca-file');
    expect(await headStatus(plain, '/v2/never/app/manifests/1.0', OCI_INDEX)).toBe(404);
  });

  test('TLS with --insecure-registry -> htpasswd registry', async () => {
    const res = await ferry('copy', '--json', '--insecure-registry', tls.host, `${tls.host}/tls/app:1.0`, `${htpasswd.host}/hp/app:1.0`);
    expect(copyResult(res)).toMatchObject({ digest: image.digest, blobs: { uploaded: 6, mounted: 0, skipped: 0 } });
    await expectImageIn(htpasswd, 'hp/app:1.0', image);
  });

  test('htpasswd -> token registry, asking the token server for push on the target only', async () => {
    const { result: res, requests } = await tokenRequestsDuring(() => ferry('copy', '--json', `${htpasswd.host}/hp/app:1.0`, `${token.host}/tok/app:1.0`));
    expect(copyResult(res)).toMatchObject({ digest: image.digest, blobs: { uploaded: 6, mounted: 0, skipped: 0 } });
    await expectImageIn(token, 'tok/app:1.0', image);
    expect(requests.length).toBeGreaterThan(0);
    for (const r of requests) {
      expect(r).toEqual({
        user: 'alice',
        scopes: [expect.stringMatching(scope('repository:tok/app', 'pull', 'push'))],
        granted: [{ type: 'repository', name: 'tok/app', actions: expect.arrayContaining(['pull', 'push']) }],
        status: 200,
      });
    }
  });

  test('token -> plain registry, asking the token server for pull on the source only', async () => {
    const { result: res, requests } = await tokenRequestsDuring(() => ferry('copy', '--json', `${token.host}/tok/app:1.0`, `${plain.host}/back/app:1.0`));
    expect(copyResult(res)).toMatchObject({ digest: image.digest, blobs: { uploaded: 6, mounted: 0, skipped: 0 } });
    await expectImageIn(plain, 'back/app:1.0', image);
    expect(requests.length).toBeGreaterThan(0);
    for (const r of requests) {
      expect(r).toEqual({
        user: 'alice',
        scopes: ['repository:tok/app:pull'],
        granted: [{ type: 'repository', name: 'tok/app', actions: ['pull'] }],
        status: 200,
      });
    }
  });

  test('a second copy to the same target uploads nothing', async () => {
    const res = await ferry('copy', '--json', `${token.host}/tok/app:1.0`, `${plain.host}/back/app:1.0`);
    expect(copyResult(res)).toMatchObject({ digest: image.digest, blobs: { uploaded: 0, mounted: 0, skipped: 6 }, bytes: 0 });
    await expectImageIn(plain, 'back/app:1.0', image);
  });

  test('within one registry, blobs are mounted from the source repository', async () => {
    const { result: res, requests } = await tokenRequestsDuring(() => ferry('copy', '--json', `${token.host}/tok/app:1.0`, `${token.host}/tok/mounted:2.0`));
    expect(copyResult(res)).toMatchObject({ digest: image.digest, blobs: { uploaded: 0, mounted: 6, skipped: 0 }, bytes: 0 });
    await expectImageIn(token, 'tok/mounted:2.0', image);
    // Reads of the source need pull there; the target needs pull and push; a
    // mount needs both in one token.
    const allowed = [scope('repository:tok/app', 'pull'), scope('repository:tok/mounted', 'pull', 'push')];
    const seen = requests.flatMap((r) => r.scopes);
    for (const s of seen)
      expect(
        allowed.some((re) => re.test(s)),
        s,
      ).toBe(true);
    expect(seen.some((s) => allowed[1]!.test(s))).toBe(true);
  });
});

describe('--platform', () => {
  test('linux/amd64 writes a filtered index holding only that child', async () => {
    const amd64 = image.manifests[0]!;
    const res = await ferry('copy', '--json', '--platform', 'linux/amd64', `${plain.host}/src/app:1.0`, `${tls.host}/one/app:amd64`, '--ca-file', tls.caFile!);
    const out = copyResult(res);
    expect(out.digest).not.toBe(image.digest);
    expect(out).toMatchObject({
      upstreamDigest: image.digest,
      platforms: ['linux/amd64'],
      blobs: { uploaded: 3, mounted: 0, skipped: 0 },
    });
    expect(res.stderr).toContain(`filtered ${plain.host}/src/app:1.0 to linux/amd64: new index ${out.digest.slice(0, 19)}`);

    const raw = await skopeoInspectRaw(tls, 'one/app:amd64');
    expect(sha256Digest(raw)).toBe(out.digest);
    const index = JSON.parse(raw.toString()) as { mediaType: string; manifests: Array<{ digest: string; platform: unknown }> };
    expect(index.mediaType).toBe(OCI_INDEX);
    expect(index.manifests).toEqual([
      { mediaType: OCI_MANIFEST, digest: amd64.digest, size: amd64.bytes.length, platform: { os: 'linux', architecture: 'amd64' } },
    ]);
    expect((await skopeoInspectRaw(tls, `one/app@${amd64.digest}`)).equals(amd64.bytes)).toBe(true);
    expect(await headStatus(tls, `/v2/one/app/manifests/${image.manifests[1]!.digest}`, OCI_MANIFEST)).toBe(404);
  });

  test('a platform the image lacks is bad input, naming the platforms it has', async () => {
    const res = await ferry('copy', '--platform', 'linux/s390x', `${plain.host}/src/app:1.0`, `${plain.host}/none/app:1.0`);
    const line = expectErrorLine(res, 2);
    expect(line).toContain('linux/s390x');
    expect(line).toContain('linux/amd64, linux/arm64/v8');
    expect(await headStatus(plain, '/v2/none/app/manifests/1.0', OCI_INDEX)).toBe(404);
  });

  test('a single-platform image is checked against its config', async () => {
    const solo = await seedImage(plain, 'src/solo:1', { single: true, platforms: ['linux/arm64'], layers: 1, layerSize: 1024, seed: 'solo' });
    const wrong = await ferry('copy', '--platform', 'linux/amd64', `${plain.host}/src/solo:1`, `${plain.host}/solo/copy:1`);
    expect(expectErrorLine(wrong, 2)).toContain('it has linux/arm64/v8');
    const right = await ferry('copy', '--json', '--platform', 'linux/arm64', `${plain.host}/src/solo:1`, `${plain.host}/solo/copy:1`);
    expect(copyResult(right)).toMatchObject({ digest: solo.digest, mediaType: OCI_MANIFEST, blobs: { uploaded: 0, mounted: 2 } });
    expect((await skopeoInspectRaw(plain, 'solo/copy:1')).equals(solo.manifests[0]!.bytes)).toBe(true);
  });
});

describe('references by digest', () => {
  test('a digest-pinned source copied to a digest-only destination writes no tag', async () => {
    const res = await ferry('copy', '--json', `${plain.host}/src/app@${image.digest}`, `${plain.host}/pinned/app@${image.digest}`);
    expect(copyResult(res)).toMatchObject({ digest: image.digest, destination: `${plain.host}/pinned/app@${image.digest}` });
    expect((await skopeoInspectRaw(plain, `pinned/app@${image.digest}`)).equals(image.indexBytes!)).toBe(true);
    const tags = await registryFetch(plain, '/v2/pinned/app/tags/list');
    expect(((await tags.json()) as { tags: string[] | null }).tags ?? []).toEqual([]);
  });

  test("a destination digest that is not the image's is bad input", async () => {
    const other = image.manifests[0]!.digest;
    const res = await ferry('copy', `${plain.host}/src/app:1.0`, `${plain.host}/pinned/other@${other}`);
    expect(expectErrorLine(res, 2)).toContain(`names digest ${other}, but the copied image is ${image.digest}`);
  });
});

describe('token registry refusals', () => {
  let bobHome: FerryHome;
  let wrongHome: FerryHome;
  const wrongPassword = 'Wr0ng-Pa55word-7c1e';
  beforeAll(async () => {
    [bobHome, wrongHome] = await Promise.all([makeFerryHome(), makeFerryHome()]);
    await bobHome.login({ [token.host]: { user: 'bob', password: 'bob-secret' } });
    await wrongHome.login({
      [token.host]: { user: 'alice', password: wrongPassword },
      [htpasswd.host]: { user: 'alice', password: wrongPassword },
    });
  });
  afterAll(async () => {
    await Promise.all([bobHome?.remove(), wrongHome?.remove()]);
  });

  test('a user without push rights gets the 401 line naming the repository and ferry login', async () => {
    const res = await runFerry(['copy', `${plain.host}/src/app:1.0`, `${token.host}/bob/app:1.0`], { home: bobHome });
    const line = expectErrorLine(res, 1);
    expect(line).toMatch(new RegExp(`^ferry: 401 UNAUTHORIZED pushing to ${token.host}/bob/app: .+`));
    expect(line).toContain(`ferry login ${token.host}`);
    expect(await headStatus(token, '/v2/bob/app/manifests/1.0', OCI_INDEX)).toBe(404);
  });

  test.each([
    ['token', () => token, 'tok/app:1.0'],
    ['htpasswd', () => htpasswd, 'hp/app:1.0'],
  ] as const)('a wrong password for the %s registry fails with one line that never shows the password', async (_, reg, ref) => {
    const res = await runFerry(['copy', `${reg().host}/${ref}`, `${plain.host}/wrong/app:1.0`], { home: wrongHome });
    const line = expectErrorLine(res, 1);
    expect(line).toMatch(new RegExp(`^ferry: 401 UNAUTHORIZED [a-z ]+ ${reg().host}(/[a-z/]+)?: credentials were rejected; run \`ferry login ${reg().host}\``));
    expect(res.stdout + res.stderr).not.toContain(wrongPassword);
    expect(res.stdout + res.stderr).not.toContain(Buffer.from(`alice:${wrongPassword}`).toString('base64'));
    expect(await headStatus(plain, '/v2/wrong/app/manifests/1.0', OCI_INDEX)).toBe(404);
  });
});

describe('faults between ferry and the source registry', () => {
  let source: TestRegistry;
  let sink: TestRegistry;
  let proxy: FaultProxy;
  let small: SeededImage;
  let big: SeededImage;
  let faultHome: FerryHome;
  beforeAll(async () => {
    [source, sink, faultHome] = await Promise.all([startRegistry(), startRegistry(), makeFerryHome()]);
    proxy = await startFaultProxy(source.url);
    [small, big] = await Promise.all([
      seedImage(source, 'faults/app:1', { seed: 'faults', layerSize: 8 * 1024 }),
      // Random content does not compress: a layer of about 3 MB, so a cut lands mid-body.
      seedImage(source, 'faults/big:1', { seed: 'big', single: true, layers: 1, layerSize: 3 * 1024 * 1024 }),
    ]);
  });
  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([source?.stop(), sink?.stop(), faultHome?.remove()]);
  });

  const copyVia = (src: string, dst: string) => runFerry(['copy', '--json', `${proxy.host}/${src}`, `${sink.host}/${dst}`], { home: faultHome });

  /** Arrival times of the proxy's requests, by index into proxy.requests. */
  function recordTimes(p: FaultProxy): number[] {
    const times: number[] = [];
    const push = p.requests.push.bind(p.requests);
    p.requests.push = (...items) => {
      for (const _ of items) times.push(Date.now());
      return push(...items);
    };
    return times;
  }

  test('a blob whose bytes do not match its digest fails the copy and writes nothing', async () => {
    proxy.clearRules();
    const layer = small.manifests[1]!.layerDigests[0]!;
    proxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${layer}$`), action: { type: 'corrupt' } });
    const res = await copyVia('faults/app:1', 'corrupt/app:1');
    const line = expectErrorLine(res, 1);
    expect(line).toMatch(/integrity/);
    expect(line).toContain(layer);
    expect(proxy.requests.some((r) => r.method === 'GET' && r.path.endsWith(layer))).toBe(true);
    expect(await headStatus(sink, `/v2/corrupt/app/blobs/${layer}`)).toBe(404);
    expect(await headStatus(sink, '/v2/corrupt/app/manifests/1', OCI_INDEX)).toBe(404);
    for (const m of small.manifests) {
      expect(await headStatus(sink, `/v2/corrupt/app/manifests/${m.digest}`, OCI_MANIFEST)).toBe(404);
    }
  });

  test('429 with Retry-After: 1 and two 503s in a row are survived', async () => {
    proxy.clearRules();
    const times = recordTimes(proxy);
    const first = proxy.requests.length;
    const layer = small.manifests[0]!.layerDigests[1]!;
    proxy.addRule({
      method: 'GET',
      path: /\/manifests\//,
      times: 1,
      action: { type: 'status', status: 429, headers: { 'retry-after': '1' }, body: 'slow down' },
    });
    proxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${layer}$`), times: 2, action: { type: 'status', status: 503, body: 'busy' } });
    const res = await copyVia('faults/app:1', 'retried/app:1');
    expect(copyResult(res)).toMatchObject({ digest: small.digest, blobs: { uploaded: 6 } });
    await expectImageIn(sink, 'retried/app:1', small);

    const requests = proxy.requests.slice(first).map((r, i) => ({ ...r, at: times[i]! }));
    // The index is read by tag in one GET: answered 429 once, then again after Retry-After.
    const manifestGets = requests.filter((r) => r.method === 'GET' && r.path === '/v2/faults/app/manifests/1');
    expect(manifestGets.length).toBe(2);
    expect(manifestGets[1]!.at - manifestGets[0]!.at).toBeGreaterThanOrEqual(950);
    expect(requests.filter((r) => r.method === 'GET' && r.path.endsWith(layer)).length).toBe(3);
    expect(res.stderr).toMatch(/retrying .* after HTTP 429/);
    expect(res.stderr).toMatch(/retrying .* after HTTP 503/);
  });

  test('a connection cut mid-blob is resumed with Range', async () => {
    proxy.clearRules();
    const first = proxy.requests.length;
    const layer = big.manifests[0]!.layerDigests[0]!;
    const size = big.blobs.get(layer)!.length;
    const cutAt = 1024 * 1024;
    expect(size).toBeGreaterThan(2 * cutAt);
    proxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${layer}$`), times: 1, action: { type: 'cut', afterBytes: cutAt } });
    const res = await copyVia('faults/big:1', 'resumed/big:1');
    expect(copyResult(res)).toMatchObject({ digest: big.digest, blobs: { uploaded: 2 } });
    await expectImageIn(sink, 'resumed/big:1', big);

    const gets = proxy.requests.slice(first).filter((r) => r.method === 'GET' && r.path.endsWith(layer));
    expect(gets.map((r) => r.headers.range)).toEqual([undefined, `bytes=${cutAt}-`]);
  });
});

describe('a blob GET redirected to another origin', () => {
  let protectedReg: TestRegistry;
  let mirror: TestRegistry;
  let proxy: FaultProxy;
  let origin: BlobOrigin;
  let redirected: SeededImage;
  let redirectHome: FerryHome;
  beforeAll(async () => {
    // The source needs auth (htpasswd, behind the proxy); its blobs are also served,
    // without auth, by a second registry behind the blob origin.
    [protectedReg, mirror, redirectHome] = await Promise.all([startRegistry({ auth: 'htpasswd' }), startRegistry(), makeFerryHome()]);
    [proxy, origin] = await Promise.all([startFaultProxy(protectedReg.url), startBlobOrigin(mirror.url)]);
    const spec = { seed: 'redirect', layerSize: 8 * 1024 };
    [redirected] = await Promise.all([seedImage(protectedReg, 'redir/app:1', spec), seedImage(mirror, 'redir/app:1', spec)]);
    await redirectHome.login({ [proxy.host]: alice() });
  });
  afterAll(async () => {
    await Promise.all([proxy?.stop(), origin?.stop()]);
    await Promise.all([protectedReg?.stop(), mirror?.stop(), redirectHome?.remove()]);
  });

  test('does not carry Authorization there, and the copy succeeds', async () => {
    proxy.addRule({ method: 'GET', path: /\/blobs\//, action: { type: 'redirect', to: origin.url } });
    const res = await runFerry(['copy', '--json', `${proxy.host}/redir/app:1`, `${plain.host}/redir/app:1`], { home: redirectHome });
    expect(copyResult(res)).toMatchObject({ digest: redirected.digest, blobs: { uploaded: 6 } });
    await expectImageIn(plain, 'redir/app:1', redirected);

    // The registry itself was sent credentials (after the first, anonymous request that
    // learns its challenge)...
    const manifestGets = proxy.requests.filter((r) => r.method === 'GET' && r.path.includes('/manifests/'));
    expect(manifestGets.length).toBeGreaterThan(1);
    expect(manifestGets[0]!.headers.authorization).toBeUndefined();
    for (const r of manifestGets.slice(1)) expect(r.headers.authorization).toMatch(/^Basic /);
    const blobGets = proxy.requests.filter((r) => r.method === 'GET' && r.path.includes('/blobs/'));
    expect(blobGets.some((r) => r.headers.authorization !== undefined)).toBe(true);
    // ...but the other origin served every blob without them.
    const originGets = origin.requests.filter((r) => r.method === 'GET');
    expect(new Set(originGets.map((r) => r.path.split('/').pop()))).toEqual(new Set(redirected.blobs.keys()));
    for (const r of origin.requests) expect(r.headers.authorization).toBeUndefined();
  });
});
