// The transport's promises against real registry:2 instances behind the fault proxy:
// credentials stay with their origin; every read is bounded; bodies cut or stalled
// after their headers are retried; uploads retry like downloads; outages of a few
// seconds are survived. Deadlines and budgets are injected short.
import { Readable } from 'node:stream';
import { type Credential, MediaType, type MinRate, OciClient, type RegistryClient, type RetryPolicy } from '@ferry/oci-client';
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
import { explicitCredentials, ferryError } from './helpers/clients.js';

interface Recorded {
  client: OciClient;
  warnings: string[];
  retries: string[];
}

interface ClientSetup {
  credentials?: Record<string, Credential>;
  retry?: Partial<RetryPolicy>;
  bodyDeadlineMs?: number;
  bodyIdleTimeoutMs?: number;
  minBlobRate?: MinRate;
  caFile?: string;
}

/** A client with short deadlines that records the lines it would print. */
function makeClient(setup: ClientSetup = {}): Recorded {
  const warnings: string[] = [];
  const retries: string[] = [];
  const client = new OciClient({
    env: {},
    caFile: setup.caFile,
    retry: { baseDelayMs: 50, maxDelayMs: 400, budgetMs: 3000, maxRetryAfterMs: 2000, ...setup.retry },
    bodyDeadlineMs: setup.bodyDeadlineMs ?? 2000,
    ...(setup.bodyIdleTimeoutMs ? { bodyIdleTimeoutMs: setup.bodyIdleTimeoutMs } : {}),
    ...(setup.minBlobRate ? { minBlobRate: setup.minBlobRate } : {}),
    onWarning: (line) => warnings.push(line),
    onRetry: (r) => retries.push(`${r.url} ${r.reason}`),
    credentials: explicitCredentials(setup.credentials ?? {}),
  });
  return { client, warnings, retries };
}

const ALICE: Credential = { username: 'alice', password: 'alice-secret' };
const ALICE_BASIC = `Basic ${Buffer.from('alice:alice-secret').toString('base64')}`;

async function readAll(stream: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream as AsyncIterable<Buffer>) parts.push(c);
  return Buffer.concat(parts);
}

function streamOf(bytes: Buffer, piece = 7000): Readable {
  const parts: Buffer[] = [];
  for (let i = 0; i < bytes.length; i += piece) parts.push(bytes.subarray(i, i + piece));
  return Readable.from(parts);
}

async function blobIn(reg: TestRegistry, repo: string, digest: string): Promise<Buffer> {
  const res = await registryFetch(reg, `/v2/${repo}/blobs/${digest}`);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

describe('a plain registry behind the fault proxy', () => {
  let reg: TestRegistry;
  let proxy: FaultProxy;
  let image: SeededImage;
  let blobBytes: Buffer;
  let blobDigest: string;
  beforeAll(async () => {
    reg = await startRegistry();
    proxy = await startFaultProxy(reg.url);
    image = await seedImage(reg, 'bodies/app:1', { single: true, layers: 1, layerSize: 64 * 1024, seed: 'bodies' });
    blobDigest = image.manifests[0]!.layerDigests[0]!;
    blobBytes = image.blobs.get(blobDigest)!;
  });
  afterAll(async () => {
    await proxy?.stop();
    await reg?.stop();
  });

  /** A client for the proxy, closed after `run`. */
  async function via<T>(setup: ClientSetup, run: (r: RegistryClient, rec: Recorded) => Promise<T>): Promise<T> {
    const rec = makeClient(setup);
    try {
      return await run(rec.client.registry(proxy.host), rec);
    } finally {
      proxy.clearRules();
      await rec.client.close();
    }
  }

  const requestsDuring = async (run: () => Promise<unknown>) => {
    const first = proxy.requests.length;
    await run();
    return proxy.requests.slice(first);
  };

  describe('bodies cut or stalled after their headers', () => {
    test('a manifest body cut after its headers is read again, not reported as "other side closed"', async () => {
      proxy.addRule({ method: 'GET', path: /\/manifests\/1$/, times: 1, action: { type: 'cut', afterBytes: 10 } });
      const requests = await requestsDuring(() =>
        via({}, async (r, rec) => {
          expect((await r.getManifest('bodies/app', '1')).digest).toBe(image.digest);
          expect(rec.retries).toEqual([`${proxy.url}/v2/bodies/app/manifests/1 connection closed by ${proxy.host} before the response was complete`]);
        }),
      );
      expect(requests.filter((q) => q.method === 'GET').length).toBe(2);
    });

    test('a manifest body stalled after its headers is given up at the body deadline and read again', async () => {
      proxy.addRule({ method: 'GET', path: /\/manifests\/1$/, times: 1, action: { type: 'stall', afterBytes: 10 } });
      const started = Date.now();
      await via({ bodyDeadlineMs: 300 }, async (r) => {
        expect((await r.getManifest('bodies/app', '1')).digest).toBe(image.digest);
      });
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      expect(Date.now() - started).toBeLessThan(3000);
    });

    test('a slowloris manifest (a byte every 100 ms) fails after deadline and budget with one network line', async () => {
      proxy.addRule({ method: 'GET', path: /\/manifests\/1$/, action: { type: 'stall', afterBytes: 1, dripMs: 100 } });
      const started = Date.now();
      const e = await via({ bodyDeadlineMs: 300, retry: { budgetMs: 600 } }, (r) => ferryError(r.getManifest('bodies/app', '1')));
      expect(e.kind).toBe('network');
      expect(e.message).toBe(`a response from ${proxy.host} was too slow: the response was not complete within 0.3 s`);
      expect(Date.now() - started).toBeLessThan(4000);
    });

    test('a manifest cut every time ends in one network line naming the host, with no undici code', async () => {
      proxy.addRule({ method: 'GET', path: /\/manifests\/1$/, action: { type: 'cut', afterBytes: 10 } });
      const e = await via({ retry: { budgetMs: 300 } }, (r) => ferryError(r.getManifest('bodies/app', '1')));
      expect(e.kind).toBe('network');
      expect(e.message).toBe(`connection closed by ${proxy.host} before the response was complete`);
      expect(e.message).not.toMatch(/UND_ERR/);
    });

    test('a connection reset before the answer is retried; the one-line error after the budget has no undici code', async () => {
      proxy.addRule({ method: 'HEAD', path: /\/manifests\/1$/, times: 2, action: { type: 'reset' } });
      await via({}, async (r) => expect((await r.resolve('bodies/app', '1')).digest).toBe(image.digest));
      proxy.addRule({ method: 'HEAD', path: /\/manifests\/1$/, action: { type: 'reset' } });
      const e = await via({ retry: { budgetMs: 300 } }, (r) => ferryError(r.resolve('bodies/app', '1')));
      expect(e.message).toMatch(new RegExp(`^(connection reset by|connection closed by) ${proxy.host.replace(/\./g, '\\.')}`));
      expect(e.message).not.toMatch(/UND_ERR/);
    });
  });

  describe('blob bodies', () => {
    test('a blob crawling under the minimum rate is cut and resumed with Range, with a line saying so', async () => {
      proxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${blobDigest}$`), times: 1, action: { type: 'stall', afterBytes: 16_384, dripMs: 20 } });
      const requests = await requestsDuring(() =>
        via({ minBlobRate: { bytesPerSecond: 1024, windowMs: 300 } }, async (r, rec) => {
          const got = await readAll(r.getBlob('bodies/app', { digest: blobDigest, size: blobBytes.length }));
          expect(got.equals(blobBytes)).toBe(true);
          expect(rec.warnings).toEqual([
            expect.stringMatching(
              new RegExp(
                `^resuming blob ${blobDigest} of ${proxy.host}/bodies/app at byte 16\\d{3} after the transfer was slower than 1024 bytes/s for 0.3 s$`,
              ),
            ),
          ]);
        }),
      );
      const gets = requests.filter((q) => q.method === 'GET');
      expect(gets.length).toBe(2);
      expect(gets[1]!.headers.range).toMatch(/^bytes=16\d{3}-$/);
    });

    test('a stalled blob is resumed after the idle timeout, and the line names the stall', async () => {
      proxy.addRule({ method: 'GET', path: new RegExp(`/blobs/${blobDigest}$`), times: 1, action: { type: 'stall', afterBytes: 20_000 } });
      await via({ bodyIdleTimeoutMs: 300 }, async (r, rec) => {
        const got = await readAll(r.getBlob('bodies/app', { digest: blobDigest, size: blobBytes.length }));
        expect(got.equals(blobBytes)).toBe(true);
        expect(rec.warnings).toEqual([`resuming blob ${blobDigest} of ${proxy.host}/bodies/app at byte 20000 after a 0.3 s stall`]);
      });
    });
  });

  describe('uploads retry like downloads', () => {
    const blobOf = (seed: string, size: number) => {
      const bytes = seededBytes(seed, size);
      return { bytes, blob: { digest: sha256Digest(bytes), size: bytes.length } };
    };

    test('a 429 with Retry-After on the monolithic PUT waits as asked and restarts the blob from a new POST', async () => {
      const { bytes, blob } = blobOf('mono-429', 50_000);
      proxy.addRule({ method: 'PUT', path: /\/blobs\/uploads\//, times: 1, action: { type: 'status', status: 429, headers: { 'retry-after': '1' } } });
      const times: number[] = [];
      const requests = await requestsDuring(() =>
        via({}, async (r, rec) => {
          let opened = 0;
          const push = r.pushBlob('up/mono', blob, () => {
            opened++;
            times.push(Date.now());
            return streamOf(bytes);
          });
          expect(await push).toBe('uploaded');
          expect(opened).toBe(2);
          expect(rec.warnings).toEqual([`restarting the upload of ${blob.digest} to ${proxy.host}/up/mono after HTTP 429 (attempt 2)`]);
        }),
      );
      expect(requests.map((q) => q.method)).toEqual(['POST', 'PUT', 'HEAD', 'POST', 'PUT']);
      expect(times[1]! - times[0]!).toBeGreaterThanOrEqual(950);
      expect((await blobIn(reg, 'up/mono', blob.digest)).equals(bytes)).toBe(true);
    });

    test('a 429 on a PATCH resumes the session at the offset the registry reports (GET -> Range)', async () => {
      const { bytes, blob } = blobOf('chunk-429', 50_000);
      proxy.addRule({ method: 'PATCH', path: /\/blobs\/uploads\//, after: 1, times: 1, action: { type: 'status', status: 429 } });
      const requests = await requestsDuring(() =>
        via({}, async (r, rec) => {
          expect(await r.pushBlob('up/chunk', blob, () => streamOf(bytes), { chunked: true, chunkSize: 16_384 })).toBe('uploaded');
          expect(rec.warnings).toEqual([`resuming the upload of ${blob.digest} to ${proxy.host}/up/chunk at byte 16384 after HTTP 429 (attempt 2)`]);
        }),
      );
      expect(requests.map((q) => q.method)).toEqual(['POST', 'PATCH', 'PATCH', 'GET', 'PATCH', 'PATCH', 'PATCH', 'PUT']);
      expect(requests.filter((q) => q.method === 'PATCH').map((q) => q.headers['content-range'])).toEqual([
        '0-16383',
        '16384-32767',
        '16384-32767',
        '32768-49151',
        '49152-49999',
      ]);
      expect((await blobIn(reg, 'up/chunk', blob.digest)).equals(bytes)).toBe(true);
    });

    test('a connection reset in the middle of a PATCH body restarts or resumes the blob, and it arrives whole', async () => {
      const { bytes, blob } = blobOf('chunk-reset', 50_000);
      proxy.addRule({ method: 'PATCH', path: /\/blobs\/uploads\//, after: 1, times: 1, action: { type: 'reset', afterRequestBytes: 4000 } });
      await via({}, async (r, rec) => {
        expect(await r.pushBlob('up/reset', blob, () => streamOf(bytes), { chunked: true, chunkSize: 16_384 })).toBe('uploaded');
        expect(rec.warnings).toEqual([expect.stringMatching(new RegExp(`^(restarting|resuming) the upload of ${blob.digest} to ${proxy.host}/up/reset `))]);
      });
      expect((await blobIn(reg, 'up/reset', blob.digest)).equals(bytes)).toBe(true);
    });

    test('a Retry-After beyond the cap is waited on for the cap, and the line says what was asked', async () => {
      const { bytes, blob } = blobOf('over-cap', 20_000);
      proxy.addRule({ method: 'PUT', path: /\/blobs\/uploads\//, times: 1, action: { type: 'status', status: 429, headers: { 'retry-after': '100' } } });
      const started = Date.now();
      await via({ retry: { maxRetryAfterMs: 300 } }, async (r, rec) => {
        expect(await r.pushBlob('up/cap', blob, () => streamOf(bytes))).toBe('uploaded');
        expect(rec.warnings[0]).toBe(`${proxy.host} asked to wait 100 s before retrying (Retry-After); ferry waits at most 0.3 s`);
      });
      expect(Date.now() - started).toBeGreaterThanOrEqual(300);
      expect(Date.now() - started).toBeLessThan(3000);
    });

    test('503s on the POST, the final PUT, a HEAD and the manifest PUT are retried, one line each', async () => {
      const { bytes, blob } = blobOf('statuses', 30_000);
      const busy = { type: 'status', status: 503 } as const;
      proxy.addRule({ method: 'POST', path: /\/blobs\/uploads\/$/, times: 1, action: busy });
      proxy.addRule({ method: 'PUT', path: /\/blobs\/uploads\/.*digest=/, times: 1, action: busy });
      proxy.addRule({ method: 'HEAD', path: /\/blobs\//, times: 1, action: busy });
      proxy.addRule({ method: 'PUT', path: /\/manifests\//, times: 2, action: busy });
      await via({}, async (r, rec) => {
        expect(await r.pushBlob('up/status', blob, () => streamOf(bytes), { chunked: true, chunkSize: 16_384 })).toBe('uploaded');
        expect(await r.blobExists('up/status', blob.digest)).toBe(true);
        const m = image.manifests[0]!;
        // The manifest needs its blobs in the repository: mount them from where they are.
        for (const d of [m.configDigest, ...m.layerDigests]) {
          expect(
            await r.pushBlob('up/status', { digest: d, size: image.blobs.get(d)!.length }, () => streamOf(image.blobs.get(d)!), { mountFrom: 'bodies/app' }),
          ).toBe('mounted');
        }
        expect(await r.putManifest('up/status', '1', m.bytes, MediaType.OCI_MANIFEST)).toBe(m.digest);
        expect(rec.retries.length).toBe(5);
        expect(rec.retries.every((line) => line.endsWith(' HTTP 503'))).toBe(true);
      });
      expect((await blobIn(reg, 'up/status', blob.digest)).equals(bytes)).toBe(true);
    });
  });

  describe('outages', () => {
    test('a registry refusing connections for 2 s is waited for, with one line, and answers', async () => {
      await via({ retry: { budgetMs: 6000 } }, async (r, rec) => {
        await proxy.outage(2000, 'refuse');
        const started = Date.now();
        expect((await r.resolve('bodies/app', '1')).digest).toBe(image.digest);
        expect(Date.now() - started).toBeGreaterThanOrEqual(1500);
        expect(rec.warnings).toEqual([`registry ${proxy.host} unreachable (connection refused by ${proxy.host}), retrying for up to 6 s`]);
        expect(rec.retries).toEqual([]);
      });
      await proxy.restored();
    });

    test('a registry resetting every connection for 2 s is waited for, mid-upload too', async () => {
      const bytes = seededBytes('outage-upload', 40_000);
      const blob = { digest: sha256Digest(bytes), size: bytes.length };
      proxy.addRule({ method: 'PATCH', path: /\/blobs\/uploads\//, after: 1, times: 1, action: { type: 'outage', ms: 2000, mode: 'reset' } });
      await via({ retry: { budgetMs: 8000 } }, async (r, rec) => {
        expect(await r.pushBlob('up/outage', blob, () => streamOf(bytes), { chunked: true, chunkSize: 16_384 })).toBe('uploaded');
        expect(rec.warnings.filter((l) => l.includes('unreachable'))).toEqual([
          expect.stringMatching(new RegExp(`^registry ${proxy.host} unreachable \\(connection (reset|closed) by ${proxy.host}.*\\), retrying for up to 8 s$`)),
        ]);
      });
      await proxy.restored();
      expect((await blobIn(reg, 'up/outage', blob.digest)).equals(bytes)).toBe(true);
    });
  });
});

describe('credentials stay with their origin', () => {
  let reg: TestRegistry;
  let front: FaultProxy;
  /** Another origin (its own port) in front of the same registry, authorising by URL. */
  let other: FaultProxy;
  beforeAll(async () => {
    reg = await startRegistry({ auth: 'htpasswd' });
    front = await startFaultProxy(reg.url);
    other = await startFaultProxy(reg.url, { upstreamAuthorization: ALICE_BASIC });
  });
  afterAll(async () => {
    await Promise.all([front?.stop(), other?.stop()]);
    await reg?.stop();
  });

  const toOther = (name: string, value: string) => (name === 'location' ? value.replace(front.url, other.url) : value);

  test.each([
    ['monolithic', false],
    ['chunked', true],
  ])('an upload Location on another origin gets no Authorization (%s), and the blob arrives', async (_, chunked) => {
    const bytes = seededBytes(`cross-origin-${chunked}`, 40_000);
    const blob = { digest: sha256Digest(bytes), size: bytes.length };
    front.addRule({ method: 'POST', path: /\/blobs\/uploads\/$/, action: { type: 'headers', rewrite: toOther } });
    const firstFront = front.requests.length;
    const firstOther = other.requests.length;
    const { client } = makeClient({ credentials: { [front.host]: ALICE } });
    try {
      const r = client.registry(front.host);
      expect(await r.pushBlob('cross/app', blob, () => streamOf(bytes), { chunked, chunkSize: 16_384 })).toBe('uploaded');
    } finally {
      front.clearRules();
      await client.close();
    }
    const atOther = other.requests.slice(firstOther);
    expect(atOther.length).toBeGreaterThan(0);
    for (const q of atOther) expect(q.headers.authorization, `${q.method} ${q.path}`).toBeUndefined();
    // The registry's own origin still got them.
    expect(front.requests.slice(firstFront).some((q) => q.method === 'POST' && q.headers.authorization === ALICE_BASIC)).toBe(true);
    expect((await blobIn(reg, 'cross/app', blob.digest)).equals(bytes)).toBe(true);
  });

  test('a Link page on another origin is asked for without Authorization', async () => {
    await seedImage(reg, 'linked/app:1', { single: true, layers: 1, layerSize: 1024, seed: 'linked' });
    front.addRule({
      method: 'GET',
      path: /\/tags\/list\?n=1000$/,
      action: { type: 'headers', add: { link: `<${other.url}/v2/linked/app/tags/list?n=1000&last=1>; rel="next"` } },
    });
    const firstOther = other.requests.length;
    const { client } = makeClient({ credentials: { [front.host]: ALICE } });
    try {
      // Registry 2.8 does not paginate tags: the page the other origin serves holds them all again.
      expect(await client.registry(front.host).listTags('linked/app')).toEqual(['1', '1']);
    } finally {
      front.clearRules();
      await client.close();
    }
    const atOther = other.requests.slice(firstOther);
    expect(atOther.map((q) => q.path)).toEqual(['/v2/linked/app/tags/list?n=1000&last=1']);
    expect(atOther[0]!.headers.authorization).toBeUndefined();
  });
});

describe('token servers', () => {
  let reg: TestRegistry;
  let tls: TestRegistry;
  let proxy: FaultProxy;
  beforeAll(async () => {
    [reg, tls] = await Promise.all([startRegistry({ auth: 'token' }), startRegistry({ auth: 'token', tls: true })]);
    proxy = await startFaultProxy(reg.url);
    await seedImage(reg, 'tok/app:1', { single: true, layers: 1, layerSize: 1024, seed: 'tok' });
    await seedImage(tls, 'tok/app:1', { single: true, layers: 1, layerSize: 1024, seed: 'tok' });
  });
  afterAll(async () => {
    await proxy?.stop();
    await Promise.all([reg?.stop(), tls?.stop()]);
  });

  test('an endless token body is refused at 1 MiB with one line, quickly', async () => {
    reg.tokenServer!.addFault('endless');
    const { client } = makeClient({ credentials: { [reg.host]: ALICE } });
    const started = Date.now();
    try {
      const e = await ferryError(client.registry(reg.host).resolve('tok/app', '1'));
      expect(e.kind).toBe('auth');
      expect(e.message).toBe(`token server of ${reg.host} sent a response larger than 1 MiB; refusing it`);
    } finally {
      await client.close();
    }
    expect(Date.now() - started).toBeLessThan(5000);
  });

  test('a token body stalled after its headers is asked for again', async () => {
    reg.tokenServer!.addFault('stall');
    const { client, retries } = makeClient({ credentials: { [reg.host]: ALICE }, bodyDeadlineMs: 300 });
    try {
      expect((await client.registry(reg.host).resolve('tok/app', '1')).mediaType).toBe(MediaType.OCI_MANIFEST);
      expect(retries).toEqual([expect.stringMatching(/\/token a response from 127\.0\.0\.1:\d+ was too slow: the response was not complete within 0\.3 s$/)]);
    } finally {
      await client.close();
    }
  });

  test('a realm on another host is named once on stderr when credentials go there, not for anonymous pulls', async () => {
    const realmHost = new URL(reg.tokenServer!.url).host;
    const elsewhere = (name: string, value: string) =>
      name === 'www-authenticate' ? value.replace(`//${realmHost}`, `//localhost:${realmHost.split(':')[1]}`) : value;
    proxy.addRule({ path: /^\/v2\//, action: { type: 'headers', rewrite: elsewhere } });
    try {
      const withCreds = makeClient({ credentials: { [proxy.host]: ALICE } });
      try {
        const r = withCreds.client.registry(proxy.host);
        await r.resolve('tok/app', '1');
        await r.listTags('tok/app');
        expect(withCreds.warnings).toEqual([`${proxy.host} sends your credentials to its token server on another host, localhost:${realmHost.split(':')[1]}`]);
      } finally {
        await withCreds.client.close();
      }
      const anonymous = makeClient();
      try {
        await ferryError(anonymous.client.registry(proxy.host).resolve('tok/app', '1'));
        expect(anonymous.warnings).toEqual([]);
      } finally {
        await anonymous.client.close();
      }
    } finally {
      proxy.clearRules();
    }
  });

  test('a plain-HTTP realm of an HTTPS registry is named once on stderr', async () => {
    const { client, warnings } = makeClient({ credentials: { [tls.host]: ALICE }, caFile: tls.caFile });
    try {
      const r = client.registry(tls.host);
      await r.resolve('tok/app', '1');
      await r.getManifest('tok/app', '1');
      expect(warnings).toEqual([
        `${tls.host} sends your credentials over plain HTTP to its token server ${tls.tokenServer!.url}, although the registry uses HTTPS`,
      ]);
    } finally {
      await client.close();
    }
  });
});
