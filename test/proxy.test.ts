// HTTP(S)_PROXY and NO_PROXY: a forward proxy on loopback stands for the corporate
// proxy; it serves the name "registry.test" from a local registry, so the name is
// never looked up (test processes resolve only loopback names). Helm chart
// repositories go through the same transport.

import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { connect } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SeededImage, seedImage, startRegistry, type TestRegistry } from './harness/index.js';
import { makeTempDir, removeTempDir } from './harness/process.js';
import { indexYaml, sha256Hex, startChartRepository, tgzOf } from './helpers/chart-fixtures.js';
import { copyResult, expectErrorLine, expectImageIn, type FerryHome, makeFerryHome, runFerry } from './helpers/ferry.js';

interface ProxyLog {
  method: string;
  target: string;
}

let upstream: TestRegistry;
let sink: TestRegistry;
let home: FerryHome;
let image: SeededImage;
let proxy: Server;
let proxyUrl: string;
const log: ProxyLog[] = [];

/** registry.test:PORT -> 127.0.0.1:PORT; anything else is refused. */
function route(hostPort: string): { host: string; port: number } | undefined {
  const m = /^registry\.test:(\d+)$/.exec(hostPort);
  return m ? { host: '127.0.0.1', port: Number(m[1]) } : undefined;
}

beforeAll(async () => {
  [upstream, sink] = await Promise.all([startRegistry(), startRegistry()]);
  home = await makeFerryHome();
  image = await seedImage(upstream, 'team/app:1', { seed: 'proxy' });
  // undici reaches every proxied origin through a CONNECT tunnel; a plain proxied
  // request would be logged and refused.
  proxy = createServer((req, res) => {
    log.push({ method: req.method ?? '', target: req.url ?? '' });
    res.writeHead(502).end();
  });
  proxy.on('connect', (req, socket, head) => {
    log.push({ method: 'CONNECT', target: req.url ?? '' });
    const to = route(req.url ?? '');
    if (!to) return void socket.end('HTTP/1.1 502 Bad Gateway\r\n\r\n');
    const up = connect(to.port, to.host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      up.write(head);
      up.pipe(socket);
      socket.pipe(up);
    });
    up.on('error', () => socket.destroy());
    socket.on('error', () => up.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
});

afterAll(async () => {
  proxy?.closeAllConnections();
  await new Promise((r) => proxy?.close(r));
  await Promise.all([upstream?.stop(), sink?.stop()]);
  await home?.remove();
});

describe('proxies', () => {
  it('reaches a registry through HTTPS_PROXY/HTTP_PROXY, and never sends loopback traffic there', async () => {
    log.length = 0;
    const port = upstream.host.split(':')[1];
    const src = `registry.test:${port}`;
    const env = { HTTPS_PROXY: proxyUrl, HTTP_PROXY: proxyUrl };
    const r = await runFerry(['copy', '--json', '--insecure-registry', src, `${src}/team/app:1`, `${sink.host}/via/app:1`], { home, env });
    expect(copyResult(r).digest).toBe(image.digest);
    await expectImageIn(sink, 'via/app:1', image);
    // undici tunnels every request to a proxied origin with CONNECT (plain HTTP ones too);
    // the loopback destination was reached directly.
    expect(log.length).toBeGreaterThan(1);
    expect(log.every((l) => l.method === 'CONNECT' && l.target === src)).toBe(true);
  });

  it('goes direct for NO_PROXY hosts', async () => {
    log.length = 0;
    const port = upstream.host.split(':')[1];
    const src = `registry.test:${port}`;
    const env = { HTTPS_PROXY: proxyUrl, HTTP_PROXY: proxyUrl, NO_PROXY: 'registry.test' };
    const r = await runFerry(['copy', '-q', '--insecure-registry', src, `${src}/team/app:1`, `${sink.host}/direct/app:1`], { home, env });
    expect(expectErrorLine(r, 1)).toBe(`ferry: cannot resolve host ${src}`);
    expect(log).toEqual([]);
  });

  it('reaches a Helm chart repository through HTTP_PROXY as it reaches registries', async () => {
    const dir = await makeTempDir('ferry-proxy-chart-');
    const repo = await startChartRepository(new Map());
    try {
      await mkdir(join(dir, 'demo', 'templates'), { recursive: true });
      await writeFile(join(dir, 'demo', 'Chart.yaml'), 'apiVersion: v2\nname: demo\nversion: 1.0.0\n');
      await writeFile(join(dir, 'demo', 'values.yaml'), 'image: example.org/demo/app:1.0\n');
      await writeFile(
        join(dir, 'demo', 'templates', 'pod.yaml'),
        'apiVersion: v1\nkind: Pod\nmetadata:\n  name: demo\nspec:\n  containers:\n    - name: app\n      image: {{ .Values.image }}\n',
      );
      const archive = await tgzOf(join(dir, 'demo'), 'demo');
      repo.files.set('/c/index.yaml', Buffer.from(indexYaml([{ name: 'demo', version: '1.0.0', urls: ['demo-1.0.0.tgz'], digest: sha256Hex(archive) }])));
      repo.files.set('/c/demo-1.0.0.tgz', archive);
      log.length = 0;
      const origin = `registry.test:${repo.origin.split(':')[2]}`;
      const env = { HTTPS_PROXY: proxyUrl, HTTP_PROXY: proxyUrl, HELM_REPOSITORY_CONFIG: join(dir, 'none.yaml') };
      await writeFile(join(dir, 'none.yaml'), 'repositories: []\n');
      const r = await runFerry(['images', '-q', '--repo', `c=http://${origin}/c`, '--chart', 'c/demo'], { home, env });
      expect(r.stdout).toBe('example.org/demo/app:1.0\n');
      expect(log.length).toBeGreaterThan(0);
      expect(log.every((l) => l.method === 'CONNECT' && l.target === origin)).toBe(true);
      expect(repo.requests.map((q) => q.path)).toEqual(['/c/index.yaml', '/c/demo-1.0.0.tgz', '/c/demo-1.0.0.tgz.prov']);
    } finally {
      await repo.close();
      await removeTempDir(dir);
    }
  });
});
