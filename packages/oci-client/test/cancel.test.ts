// Cancellation: an AbortSignal given to a RegistryClient method stops its request,
// its body stream and any retry wait at once, with the 'cancelled' FerryError. The
// registry here is a scripted loopback server that answers slowly or not at all.
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { OciClient } from '../src/client.js';
import { CredentialStore } from '../src/credentials.js';
import { FerryError } from '../src/errors.js';

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

let server: Server;
let host: string;
let handler: Handler = (_req, res) => res.end();
const seen: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push(`${req.method} ${req.url}`);
    handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  host = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterEach(() => {
  seen.length = 0;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function client(): OciClient {
  return new OciClient({
    env: {},
    credentials: new CredentialStore({ env: {}, configPath: '/nonexistent/ferry-test/config.json' }),
  });
}

/** Aborts `ms` from now; the promise's rejection, and how long it took to come. */
async function abortAfter(ms: number, run: (signal: AbortSignal) => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const ac = new AbortController();
  const started = Date.now();
  setTimeout(() => ac.abort(), ms);
  const error = await run(ac.signal).then(
    () => undefined,
    (e: unknown) => e,
  );
  return { error, ms: Date.now() - started };
}

function expectCancelled(error: unknown): void {
  expect(error).toBeInstanceOf(FerryError);
  expect((error as FerryError).kind).toBe('cancelled');
  expect((error as FerryError).message).toBe('cancelled');
  expect((error as FerryError).exitCode).toBe(130);
}

describe('an aborted signal', () => {
  it('stops a manifest whose body stalls after the headers', async () => {
    handler = (req, res) => {
      if (req.url === '/v2/') return void res.end();
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      res.write('{"schemaVersion":');
    };
    const c = client();
    const { error, ms } = await abortAfter(150, (signal) => c.registry(host).getManifest('app', '1', { signal }));
    expectCancelled(error);
    expect(ms).toBeLessThan(1000);
    await c.close();
  });

  it('stops the wait between attempts (a Retry-After of 10 s)', async () => {
    handler = (req, res) => {
      if (req.url === '/v2/') return void res.end();
      res.writeHead(503, { 'retry-after': '10' });
      res.end();
    };
    const c = client();
    const { error, ms } = await abortAfter(200, (signal) => c.registry(host).resolve('app', '1', { signal }));
    expectCancelled(error);
    expect(ms).toBeLessThan(1000);
    expect(seen.filter((s) => s.includes('/manifests/')).length).toBe(1);
    await c.close();
  });

  it('ends a blob stream in the middle of its body', async () => {
    handler = (req, res) => {
      if (req.url === '/v2/') return void res.end();
      res.writeHead(200, { 'content-length': '100000' });
      res.write(Buffer.alloc(1000));
    };
    const c = client();
    const { error, ms } = await abortAfter(150, async (signal) => {
      const stream = c.registry(host).getBlob('app', { digest: `sha256:${'0'.repeat(64)}`, size: 100_000 }, undefined, { signal });
      for await (const _ of stream) {
        // reading until it fails
      }
    });
    expectCancelled(error);
    expect(ms).toBeLessThan(1000);
    await c.close();
  });

  it('stops an upload whose PATCH the registry never answers, and closes the source stream', async () => {
    handler = (req, res) => {
      if (req.url === '/v2/') return void res.end();
      if (req.method === 'POST') {
        res.writeHead(202, { location: '/v2/app/blobs/uploads/u1', 'content-length': '0' });
        return void res.end();
      }
      req.resume(); // takes the chunk, never answers
    };
    const c = client();
    let source: Readable | undefined;
    const { error, ms } = await abortAfter(200, (signal) =>
      c.registry(host).pushBlob(
        'app',
        { digest: `sha256:${'1'.repeat(64)}` },
        () => {
          source = Readable.from([Buffer.alloc(10_000)]);
          return source;
        },
        { signal, chunked: true },
      ),
    );
    expectCancelled(error);
    expect(ms).toBeLessThan(1000);
    expect(source?.destroyed).toBe(true);
    await c.close();
  });

  it('that has already fired sends nothing', async () => {
    handler = (_req, res) => res.end();
    const c = client();
    const ac = new AbortController();
    ac.abort();
    const r = c.registry(host);
    for (const call of [() => r.resolve('app', '1', { signal: ac.signal }), () => r.blobExists('app', `sha256:${'2'.repeat(64)}`, { signal: ac.signal })]) {
      expectCancelled(await call().catch((e: unknown) => e));
    }
    expect(seen).toEqual([]);
    await c.close();
  });
});
