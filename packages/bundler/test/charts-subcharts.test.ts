// Subcharts (directories, .tgz, requirements.yaml), conditions, tags and aliases,
// the umbrella's values overriding its subcharts', --values/--set overrides, and
// charts given as .tgz files or pulled from a registry (oci://).
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { CredentialStore, encodeTarHeader, FerryError, OciClient, TAR_END_OF_ARCHIVE, tarPadding } from '@ferry/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HELM_CHART_CONFIG_MEDIA_TYPE, HELM_CHART_CONTENT_MEDIA_TYPE, loadChart } from '../src/charts/chart-load.js';
import { type DiscoveryResult, discoverImages } from '../src/charts/discover.js';
import { applySet, userValues } from '../src/charts/values.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'charts');

async function filesOf(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(p);
    }
  };
  await walk(dir);
  return out.sort();
}

/** A chart archive as `helm package` writes it: every file under `<top>/`, gzip-compressed. */
async function tgzOf(dir: string, top: string, extra: Array<{ name: string; data: string }> = []): Promise<Buffer> {
  const entries: Array<{ name: string; data: Buffer }> = [];
  for (const f of await filesOf(dir)) entries.push({ name: `${top}/${relative(dir, f).split('\\').join('/')}`, data: await readFile(f) });
  for (const e of extra) entries.push({ name: e.name, data: Buffer.from(e.data) });
  const parts = entries.flatMap((e) => [
    encodeTarHeader({ name: e.name, size: e.data.length, type: 'file', mtime: 0 }),
    e.data,
    Buffer.alloc(tarPadding(e.data.length)),
  ]);
  return gzipSync(Buffer.concat([...parts, TAR_END_OF_ARCHIVE]));
}

function byUsage(r: DiscoveryResult): { used: string[]; optional: string[] } {
  return {
    used: r.images.filter((i) => i.usage === 'used').map((i) => i.reference),
    optional: r.images.filter((i) => i.usage === 'optional').map((i) => i.reference),
  };
}

let work: string;
let umbrella: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-charts-'));
  // the umbrella fixture plus its `cache` dependency as a .tgz in charts/
  umbrella = join(work, 'umbrella');
  await cp(join(FIXTURES, 'umbrella'), umbrella, { recursive: true });
  await writeFile(join(umbrella, 'charts', 'cache-0.1.0.tgz'), await tgzOf(join(FIXTURES, 'cache-src'), 'cache'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

const DEFAULT_USED = [
  'docker.io/bitnami/kubectl:1.25.15', // umbrella pre-upgrade hook
  'docker.io/library/redis:7.2', // cache (.tgz), empty tag -> appVersion
  'example.com/legacy:0.5', // legacy (apiVersion v1)
  'example.com/nested:0.0.1', // legacy's requirements.yaml subchart, enabled by the umbrella
  'example.com/web:2.0.0', // web, tag overridden by the umbrella
];
const DEFAULT_OPTIONAL = [
  'docker.io/bitnami/postgresql:16.1.0', // db: condition db.enabled false
  'example.com/extras:0.1', // extras: tag extras false
  'example.com/web:canary', // web aliased as web-canary: condition canary.enabled false
];

describe('subcharts', () => {
  it('honours conditions (first resolvable path wins), tags, aliases and requirements.yaml, recursively', async () => {
    const r = await discoverImages({ charts: [umbrella] });
    expect(byUsage(r)).toEqual({ used: DEFAULT_USED, optional: DEFAULT_OPTIONAL });
    // the subchart's own default tag is overridden by the umbrella: never reported
    expect(r.images.map((i) => i.reference)).not.toContain('example.com/web:1.0.0');
    expect(r.charts.map((c) => [c.path, c.enabled, c.disabledBy])).toEqual([
      ['umbrella', true, undefined],
      ['umbrella/web', true, undefined],
      ['umbrella/web-canary', false, 'condition canary.enabled is false'],
      ['umbrella/db', false, 'condition db.enabled is false'],
      ['umbrella/extras', false, 'tags extras are false'],
      ['umbrella/cache', true, undefined],
      ['umbrella/legacy', true, undefined],
      ['umbrella/legacy/nested', true, undefined],
    ]);
    expect(r.warnings).toEqual(['umbrella: dependency remote 9.9.9 is not in its charts/ directory; its images can only come from annotations']);
    const nested = r.images.find((i) => i.reference === 'example.com/nested:0.0.1')!;
    expect(nested.charts).toEqual(['umbrella/legacy/nested']);
    expect(nested.sources).toContainEqual(
      expect.objectContaining({
        kind: 'template',
        chart: 'umbrella/legacy/nested',
        file: 'templates/cronjob.yaml',
        field: 'CronJob/nested containers[nested].image',
      }),
    );
    const db = r.images.find((i) => i.reference === 'docker.io/bitnami/postgresql:16.1.0')!;
    expect(db.sources).toContainEqual({
      kind: 'values',
      chart: 'umbrella/db',
      usage: 'optional',
      path: 'image',
      reason: 'chart disabled: condition db.enabled is false',
    });
  });

  it('applies --values files then --set on top', async () => {
    const valuesFile = join(work, 'override.yaml');
    await writeFile(valuesFile, 'tags:\n  extras: true\nweb:\n  image:\n    tag: "2.5.0"\nlegacy:\n  nested:\n    enabled: false\n');
    const r = await discoverImages({
      charts: [umbrella],
      valuesFiles: [valuesFile],
      set: ['web.image.tag=3.0.0', 'db.enabled=true,global.imageRegistry=mirror.example.com', 'canary.enabled=true'],
    });
    expect(byUsage(r)).toEqual({
      used: [
        'docker.io/bitnami/kubectl:1.25.15',
        'docker.io/library/redis:7.2',
        'example.com/extras:0.1',
        'example.com/legacy:0.5',
        'example.com/web:3.0.0',
        'example.com/web:canary',
        'mirror.example.com/bitnami/postgresql:16.1.0',
      ],
      optional: ['example.com/nested:0.0.1'],
    });
  });

  it('a condition path that is not set leaves the chart on; a later path is used when the first is missing', async () => {
    const r = await discoverImages({ charts: [umbrella], set: ['web.enabled=null', 'global.web.enabled=false'] });
    // web.enabled removed (null deletes the default): global.web.enabled decides
    expect(r.charts.find((c) => c.path === 'umbrella/web')).toMatchObject({ enabled: false, disabledBy: 'condition global.web.enabled is false' });
    expect(byUsage(r).optional).toContain('example.com/web:2.0.0');
  });

  it('reads the same tree from a .tgz of the umbrella', async () => {
    const archive = join(work, 'umbrella-1.0.0.tgz');
    await writeFile(archive, await tgzOf(umbrella, 'umbrella'));
    const r = await discoverImages({ charts: [archive] });
    expect(byUsage(r)).toEqual({ used: DEFAULT_USED, optional: DEFAULT_OPTIONAL });
    const chart = await loadChart(archive);
    expect(chart.subcharts.map((c) => c.name).sort()).toEqual(['cache', 'db', 'extras', 'legacy', 'web']);
    expect(chart.subcharts.find((c) => c.name === 'cache')!.origin).toBe(`${archive}!charts/cache-0.1.0.tgz`);
  });

  it('refuses archive entries that leave the chart', async () => {
    const archive = join(work, 'evil.tgz');
    await writeFile(archive, await tgzOf(join(FIXTURES, 'cache-src'), 'cache', [{ name: '../../etc/evil', data: 'x' }]));
    await expect(loadChart(archive)).rejects.toThrow(/refusing archive entry "\.\.\/\.\.\/etc\/evil"/);
    const abs = join(work, 'abs.tgz');
    await writeFile(abs, await tgzOf(join(FIXTURES, 'cache-src'), 'cache', [{ name: '/etc/passwd', data: 'x' }]));
    await expect(loadChart(abs)).rejects.toThrow(FerryError);
  });

  it('says what is wrong with a path that is not a chart', async () => {
    await expect(loadChart(join(work, 'nope'))).rejects.toThrow(/chart .*nope not found/);
    await expect(loadChart(FIXTURES)).rejects.toThrow(/has no Chart\.yaml/);
    const notGzip = join(work, 'plain.tgz');
    await writeFile(notGzip, 'hello');
    await expect(loadChart(notGzip)).rejects.toThrow(/not a gzip-compressed chart archive/);
  });
});

describe('--set syntax', () => {
  it('parses dotted paths, list indexes, several assignments, lists and types', () => {
    const v: Record<string, unknown> = { a: { keep: 1 } };
    applySet(v, 'a.b=c,d=e');
    applySet(v, 'list[1].name=x');
    applySet(v, 'n=12,t=true,z=0,lead=012,f=1.10,nul=null,empty=');
    applySet(v, 'arr={x,y}');
    applySet(v, 'dotted\\.key=v');
    expect(v).toEqual({
      a: { keep: 1, b: 'c' },
      d: 'e',
      list: [null, { name: 'x' }],
      n: 12,
      t: true,
      z: 0,
      lead: '012',
      f: '1.10',
      nul: null,
      empty: '',
      arr: ['x', 'y'],
      'dotted.key': 'v',
    });
    expect(() => applySet({}, 'novalue')).toThrow(/is not KEY=VALUE/);
    expect(() => applySet({}, 'a[x]=1')).toThrow(FerryError);
  });

  it('merges values files in order, --set last', () => {
    expect(userValues([{ a: { b: 1, c: 2 } }, { a: { c: 3 } }], ['a.d=4'])).toEqual({ a: { b: 1, c: 3, d: 4 } });
  });
});

describe('oci:// charts', () => {
  let server: Server;
  let host: string;
  let archive: Buffer;
  const requests: string[] = [];

  beforeAll(async () => {
    archive = await tgzOf(join(FIXTURES, 'cache-src'), 'cache');
    const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
    const config = Buffer.from(JSON.stringify({ name: 'cache', version: '0.1.0', apiVersion: 'v2' }));
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: HELM_CHART_CONFIG_MEDIA_TYPE, digest: sha(config), size: config.length },
        layers: [{ mediaType: HELM_CHART_CONTENT_MEDIA_TYPE, digest: sha(archive), size: archive.length }],
      }),
    );
    const blobs = new Map([
      [sha(config), config],
      [sha(archive), archive],
    ]);
    server = createServer((req, res) => {
      const url = req.url ?? '';
      requests.push(`${req.method} ${url}`);
      if (url === '/v2/') return res.writeHead(200).end();
      if (url.split('?')[0] === '/v2/charts/cache/tags/list') {
        res.writeHead(200, { 'content-type': 'application/json' });
        return res.end(JSON.stringify({ name: 'charts/cache', tags: ['0.0.9', '0.1.0', 'latest', '0.1.0-rc.1'] }));
      }
      const m = /^\/v2\/charts\/cache\/manifests\/(.+)$/.exec(url);
      if (m && (m[1] === '0.1.0' || m[1] === sha(manifest))) {
        res.writeHead(200, {
          'content-type': 'application/vnd.oci.image.manifest.v1+json',
          'docker-content-digest': sha(manifest),
          'content-length': manifest.length,
        });
        return res.end(req.method === 'HEAD' ? undefined : manifest);
      }
      const b = /^\/v2\/charts\/cache\/blobs\/(.+)$/.exec(url);
      const blob = b ? blobs.get(b[1]!) : undefined;
      if (blob) {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length });
        return res.end(blob);
      }
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'unknown' }] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const addr = server.address();
    host = `127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  function client(): OciClient {
    const empty = join(work, 'docker-config');
    return new OciClient({
      env: {},
      credentials: new CredentialStore({ env: { DOCKER_CONFIG: empty }, configPath: join(empty, 'config.json') }),
      retry: { attempts: 1 },
    });
  }

  it('pulls the chart layer helm push stores and discovers its images', async () => {
    await mkdir(join(work, 'docker-config'), { recursive: true });
    const c = client();
    try {
      const r = await discoverImages({ charts: [`oci://${host}/charts/cache:0.1.0`], client: c });
      expect(byUsage(r)).toEqual({ used: ['docker.io/library/redis:7.2'], optional: [] });
      expect(r.charts[0]).toMatchObject({ path: 'cache', version: '0.1.0', origin: `oci://${host}/charts/cache:0.1.0` });
      const chart = await loadChart(`oci://${host}/charts/cache:0.1.0`, { client: c });
      expect(chart.archive?.equals(archive)).toBe(true);
      expect(chart.oci?.layerDigest).toBe(`sha256:${createHash('sha256').update(archive).digest('hex')}`);
    } finally {
      await c.close();
    }
  });

  it('without a version, takes the highest released version tag', async () => {
    const c = client();
    try {
      const chart = await loadChart(`oci://${host}/charts/cache`, { client: c });
      expect(chart.origin).toBe(`oci://${host}/charts/cache:0.1.0`);
      expect(requests.some((r) => r.startsWith('GET /v2/charts/cache/tags/list'))).toBe(true);
    } finally {
      await c.close();
    }
  });

  it('fails clearly for a chart that is not there, or without a client', async () => {
    const c = client();
    try {
      await expect(loadChart(`oci://${host}/charts/cache:9.9.9`, { client: c })).rejects.toMatchObject({ kind: 'not-found' });
    } finally {
      await c.close();
    }
    await expect(loadChart(`oci://${host}/charts/cache:0.1.0`)).rejects.toThrow(/no registry client/);
  });
});
