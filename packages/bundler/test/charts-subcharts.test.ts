// Image discovery over subcharts (directories, .tgz, requirements.yaml):
// conditions, tags and aliases, the umbrella's values overriding its subcharts',
// --values/--set overrides, and charts given as .tgz files or pulled from a
// registry (oci://). Loading the charts themselves is tested in packages/helm.
import { cp, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CredentialStore, OciClient } from '@ferry/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startChartRegistry, tgzOf } from '../../../test/helpers/chart-fixtures.js';
import { type DiscoveryResult, discoverImages } from '../src/charts/discover.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'charts');

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
  });
});

describe('oci:// charts', () => {
  it('pulls the chart from a registry and discovers its images', async () => {
    const registry = await startChartRegistry(await tgzOf(join(FIXTURES, 'cache-src'), 'cache'), { name: 'cache', version: '0.1.0', tags: ['0.1.0'] });
    const empty = join(work, 'docker-config');
    await mkdir(empty, { recursive: true });
    const c = new OciClient({
      env: {},
      credentials: new CredentialStore({ env: { DOCKER_CONFIG: empty }, configPath: join(empty, 'config.json') }),
      retry: { attempts: 1 },
    });
    try {
      const r = await discoverImages({ charts: [`oci://${registry.host}/charts/cache:0.1.0`], client: c });
      expect(byUsage(r)).toEqual({ used: ['docker.io/library/redis:7.2'], optional: [] });
      expect(r.charts[0]).toMatchObject({ path: 'cache', version: '0.1.0', origin: `oci://${registry.host}/charts/cache:0.1.0` });
    } finally {
      await c.close();
      await registry.close();
    }
  });
});
