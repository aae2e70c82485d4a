// Chart loading: directories, .tgz archives (by the tar safety rule), subcharts
// in charts/ (directories and archives, recursively), requirements.yaml for
// apiVersion v1 charts, and charts pulled from a registry (oci://).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { CredentialStore, FerryError, OciClient } from '@ferry/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type ChartRegistry, startChartRegistry, tgzOf } from '../../../test/helpers/chart-fixtures.js';
import { loadChart } from '../src/chart-load.js';

let work: string;

async function writeChart(root: string, files: Record<string, string>): Promise<string> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
  return root;
}

const CACHE = {
  'Chart.yaml': 'apiVersion: v2\nname: cache\nversion: 0.1.0\nappVersion: "7.2"\n',
  'values.yaml': 'image:\n  repository: redis\n',
  'templates/deployment.yaml': 'image: {{ .Values.image.repository }}:{{ .Chart.AppVersion }}\n',
};

let umbrella: string;
let cacheSrc: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'ferry-helm-load-'));
  cacheSrc = await writeChart(join(work, 'cache-src'), CACHE);
  umbrella = await writeChart(join(work, 'umbrella'), {
    'Chart.yaml':
      'apiVersion: v2\nname: umbrella\nversion: 1.0.0\ndependencies:\n  - name: web\n    condition: web.enabled\n  - name: cache\n  - name: legacy\n',
    'values.yaml': 'web:\n  enabled: true\n',
    'templates/b.yaml': 'b\n',
    'templates/a.yaml': 'a\n',
    'files/config.txt': 'x\n',
    'charts/web/Chart.yaml': 'apiVersion: v2\nname: web\nversion: 1.0.0\n',
    'charts/web/templates/deploy.yaml': 'web\n',
    'charts/legacy/Chart.yaml': 'apiVersion: v1\nname: legacy\nversion: 0.5.0\n',
    'charts/legacy/requirements.yaml': 'dependencies:\n  - name: nested\n    version: 0.0.1\n    condition: nested.enabled\n    tags: [t]\n',
    'charts/legacy/charts/nested/Chart.yaml': 'name: nested\nversion: 0.0.1\n',
    'charts/not-a-chart/README.md': 'no Chart.yaml: not a subchart\n',
  });
  await writeFile(join(umbrella, 'charts', 'cache-0.1.0.tgz'), await tgzOf(cacheSrc, 'cache'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

describe('loading a chart', () => {
  it('reads a directory with directory and .tgz subcharts, recursively, and requirements.yaml', async () => {
    const chart = await loadChart(umbrella);
    expect([chart.name, chart.version, chart.apiVersion]).toEqual(['umbrella', '1.0.0', 'v2']);
    expect(chart.dependencies.map((d) => d.name)).toEqual(['web', 'cache', 'legacy']);
    expect(chart.defaults).toEqual({ web: { enabled: true } });
    expect(chart.templates.map((t) => t.path)).toEqual(['templates/a.yaml', 'templates/b.yaml']);
    expect([...chart.files.keys()].sort()).toEqual(['Chart.yaml', 'files/config.txt', 'templates/a.yaml', 'templates/b.yaml', 'values.yaml']);
    expect(chart.subcharts.map((c) => [c.name, c.origin])).toEqual([
      ['legacy', `${umbrella}/charts/legacy`],
      ['web', `${umbrella}/charts/web`],
      ['cache', `${umbrella}!charts/cache-0.1.0.tgz`],
    ]);
    const legacy = chart.subcharts[0]!;
    expect(legacy.dependencies).toEqual([{ name: 'nested', version: '0.0.1', condition: 'nested.enabled', tags: ['t'] }]);
    expect(legacy.subcharts.map((c) => [c.name, c.apiVersion])).toEqual([['nested', 'v1']]);
    expect(chart.subcharts[2]!.templates[0]!.text).toBe(CACHE['templates/deployment.yaml']);
  });

  it('reads the same tree from a .tgz of it, keeping the archive bytes', async () => {
    const path = join(work, 'umbrella-1.0.0.tgz');
    const bytes = await tgzOf(umbrella, 'umbrella');
    await writeFile(path, bytes);
    const chart = await loadChart(path);
    expect(chart.archive?.equals(bytes)).toBe(true);
    expect(chart.subcharts.map((c) => [c.name, c.origin])).toEqual([
      ['legacy', `${path}/charts/legacy`],
      ['web', `${path}/charts/web`],
      ['cache', `${path}!charts/cache-0.1.0.tgz`],
    ]);
    expect(chart.subcharts[0]!.subcharts.map((c) => c.name)).toEqual(['nested']);
  });

  it('refuses archive entries that leave the chart, and links, by the tar safety rule', async () => {
    const evil = join(work, 'evil.tgz');
    await writeFile(evil, await tgzOf(cacheSrc, 'cache', [{ name: '../../etc/evil', data: 'x' }]));
    await expect(loadChart(evil)).rejects.toThrow(`${evil}: refusing archive entry "../../etc/evil" (it escapes the chart)`);
    const abs = join(work, 'abs.tgz');
    await writeFile(abs, await tgzOf(cacheSrc, 'cache', [{ name: '/etc/passwd', data: 'x' }]));
    await expect(loadChart(abs)).rejects.toThrow(`${abs}: refusing archive entry "/etc/passwd" (it has an absolute path)`);
    // a symbolic link in the archive (GNU tar keeps links as links)
    const linked = await writeChart(join(work, 'linked', 'cache'), CACHE);
    await symlink('/etc/passwd', join(linked, 'templates', 'passwd'));
    const withLink = join(work, 'link.tgz');
    execFileSync('tar', ['-czf', withLink, '-C', dirname(linked), 'cache']);
    const err = await loadChart(withLink).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(FerryError);
    expect((err as FerryError).message).toBe(`${withLink}: refusing archive entry "cache/templates/passwd" (it is a symbolic link)`);
    expect((err as FerryError).exitCode).toBe(2);
  });

  it('says what is wrong with a path that is not a chart', async () => {
    await expect(loadChart(join(work, 'nope'))).rejects.toThrow(`chart ${join(work, 'nope')} not found`);
    await mkdir(join(work, 'empty'));
    await expect(loadChart(join(work, 'empty'))).rejects.toThrow(/has no Chart\.yaml/);
    const notGzip = join(work, 'plain.tgz');
    await writeFile(notGzip, 'hello');
    await expect(loadChart(notGzip)).rejects.toThrow(/not a gzip-compressed chart archive/);
  });
});

describe('oci:// charts', () => {
  let registry: ChartRegistry;
  let archive: Buffer;

  beforeAll(async () => {
    archive = await tgzOf(cacheSrc, 'cache');
    registry = await startChartRegistry(archive, { name: 'cache', version: '0.1.0', tags: ['0.0.9', '0.1.0', 'latest', '0.1.0-rc.1'] });
    await mkdir(join(work, 'docker-config'), { recursive: true });
  });

  afterAll(async () => {
    await registry.close();
  });

  function client(): OciClient {
    const empty = join(work, 'docker-config');
    return new OciClient({
      env: {},
      credentials: new CredentialStore({ env: { DOCKER_CONFIG: empty }, configPath: join(empty, 'config.json') }),
      retry: { attempts: 1 },
    });
  }

  it('pulls the chart layer helm push stores, byte for byte, with its digests', async () => {
    const c = client();
    try {
      const chart = await loadChart(`oci://${registry.host}/charts/cache:0.1.0`, { client: c });
      expect(chart.archive?.equals(archive)).toBe(true);
      expect([chart.name, chart.origin]).toEqual(['cache', `oci://${registry.host}/charts/cache:0.1.0`]);
      expect(chart.oci).toEqual({
        reference: `oci://${registry.host}/charts/cache:0.1.0`,
        manifestDigest: registry.manifestDigest,
        layerDigest: `sha256:${createHash('sha256').update(archive).digest('hex')}`,
      });
    } finally {
      await c.close();
    }
  });

  it('without a version, takes the highest released version tag', async () => {
    const c = client();
    try {
      const chart = await loadChart(`oci://${registry.host}/charts/cache`, { client: c });
      expect(chart.origin).toBe(`oci://${registry.host}/charts/cache:0.1.0`);
      expect(registry.requests.some((r) => r.startsWith('GET /v2/charts/cache/tags/list'))).toBe(true);
    } finally {
      await c.close();
    }
  });

  it('fails clearly for a chart that is not there, or without a client', async () => {
    const c = client();
    try {
      await expect(loadChart(`oci://${registry.host}/charts/cache:9.9.9`, { client: c })).rejects.toMatchObject({ kind: 'not-found' });
    } finally {
      await c.close();
    }
    await expect(loadChart(`oci://${registry.host}/charts/cache:0.1.0`)).rejects.toThrow(/no registry client/);
  });
});
