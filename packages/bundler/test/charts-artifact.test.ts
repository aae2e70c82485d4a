// The Helm artifact a chart becomes in a bundle (config and manifest as `helm push`
// writes them, a deterministic archive of a chart directory) and where `load`
// puts charts. No registry needed.
import { execFileSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { chartDirectoryFiles, loadChart } from '@ferry/helm';
import { CredentialStore, formatReference, OciClient, tarEntriesOf } from '@ferry/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { discoverImages } from '../src/charts/discover.js';
import { chartArchive, helmArtifact, helmChartConfig } from '../src/charts/helm-artifact.js';
import { chartTag, parseChartRefName, prepareCharts } from '../src/charts/pack-charts.js';
import { TargetMapper } from '../src/load/mapping.js';

let tmp: string;
beforeAll(async () => {
  tmp = await mkdtemp(join(tmpdir(), 'ferry-chart-artifact-'));
});
afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

describe('helmChartConfig: chart.Metadata as Go marshals it', () => {
  it('keeps the struct order, drops empty and unknown fields, sorts annotations, escapes as Go does', () => {
    const config = helmChartConfig({
      type: 'application',
      annotations: { b: 'x', a: 1 },
      appVersion: 2.1,
      version: '1.0.0',
      name: 'app',
      description: 'tabs\tand\nnewlines <b> & "quotes"\u0007',
      home: '',
      icon: null,
      deprecated: true,
      somethingElse: 'gone',
      maintainers: [{ url: 'https://x', name: 'A' }, { email: 'b@x' }],
      dependencies: [{ name: 'db', repository: '', condition: 'db.enabled', 'import-values': [{ parent: 'p', child: 'c' }], alias: 'store' }],
    });
    expect(config.toString()).toBe(
      '{"name":"app","version":"1.0.0","description":"tabs and newlines \\u003cb\\u003e \\u0026 \\"quotes\\"",' +
        '"maintainers":[{"name":"A","url":"https://x"},{"email":"b@x"}],"apiVersion":"v1","appVersion":"2.1","deprecated":true,' +
        '"annotations":{"a":"1","b":"x"},' +
        '"dependencies":[{"name":"db","repository":"","condition":"db.enabled","import-values":[{"child":"c","parent":"p"}],"alias":"store"}],' +
        '"type":"application"}',
    );
  });

  it("takes an apiVersion v1 chart's dependencies from requirements.yaml", () => {
    const config = JSON.parse(
      helmChartConfig(
        { apiVersion: 'v1', name: 'old', version: '0.1.0' },
        { dependencies: [{ name: 'sub', version: '1.x', repository: 'file://charts/sub' }] },
      ).toString(),
    );
    expect(config.dependencies).toEqual([{ name: 'sub', version: '1.x', repository: 'file://charts/sub' }]);
  });
});

describe('helmArtifact: the manifest helm push writes', () => {
  it("has no mediaType field, the helm config and one chart layer, and helm's annotations", () => {
    const config = helmChartConfig({
      apiVersion: 'v2',
      name: 'app',
      version: '1.2.3',
      home: 'https://h',
      sources: ['https://s1', 'https://s2'],
      annotations: { 'org.opencontainers.image.title': 'not used', extra: 'kept' },
    });
    const a = helmArtifact(config, Buffer.from('layer'), '1970-01-01T00:00:00Z');
    const doc = JSON.parse(Buffer.from(a.manifest.bytes).toString());
    expect(Object.keys(doc)).toEqual(['schemaVersion', 'config', 'layers', 'annotations']);
    expect(doc.config.mediaType).toBe('application/vnd.cncf.helm.config.v1+json');
    expect(doc.layers).toEqual([{ mediaType: 'application/vnd.cncf.helm.chart.content.v1.tar+gzip', digest: expect.stringMatching(/^sha256:/), size: 5 }]);
    expect(doc.annotations).toEqual({
      extra: 'kept',
      'org.opencontainers.image.created': '1970-01-01T00:00:00Z',
      'org.opencontainers.image.source': 'https://s1',
      'org.opencontainers.image.title': 'app',
      'org.opencontainers.image.url': 'https://h',
      'org.opencontainers.image.version': '1.2.3',
    });
    expect(a.manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
  });
});

describe('chartArchive: a deterministic chart .tgz', () => {
  it('sorts entries under the chart name, fixes owners and times, and long names survive', async () => {
    const root = join(tmp, 'c');
    const long = `templates/${'x'.repeat(120)}.yaml`;
    await mkdir(join(root, 'templates'), { recursive: true });
    await writeFile(join(root, 'Chart.yaml'), 'name: c\nversion: 1.0.0\n');
    await writeFile(join(root, 'values.yaml'), 'a: 1\n');
    await writeFile(join(root, long), 'kind: x\n');
    await writeFile(join(root, 'skip.tmp'), '');
    await writeFile(join(root, '.helmignore'), '*.tmp\n');
    const files = await chartDirectoryFiles(root);
    expect([...files.keys()].sort()).toEqual(['.helmignore', 'Chart.yaml', long, 'values.yaml']);
    const a = chartArchive('c', files, 86400);
    const b = chartArchive('c', new Map([...files].reverse()), 86400);
    expect(a.equals(b)).toBe(true);
    expect([...a.subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    const tgz = join(tmp, 'c.tgz');
    await writeFile(tgz, a);
    const listing = execFileSync('tar', ['--numeric-owner', '--full-time', '-tzvf', tgz], { encoding: 'utf8' }).trim().split('\n');
    expect(listing.map((l) => l.split(/\s+/).at(-1))).toEqual(['c/.helmignore', 'c/Chart.yaml', `c/${long}`, 'c/values.yaml']);
    for (const l of listing) expect(l).toMatch(/^-rw-r--r-- 0\/0 .* 1970-01-02 00:00:00 c\//);
    expect(gunzipSync(a).includes(Buffer.from('root'))).toBe(false);
  });
});

describe('charts on load: TARGET/PREFIX/charts/<name>:<tag> unless mapped', () => {
  const mapper = (to: string, maps: string[] = []) => new TargetMapper({ to, maps });
  const target = (m: TargetMapper, c: { name: string; tag: string; source?: string }) => formatReference(m.mapChart(c));

  it("uses helm's tag for versions with build metadata, and names charts in the bundle", () => {
    expect(chartTag('1.2.3+build.4')).toBe('1.2.3_build.4');
    expect(parseChartRefName('charts/app:1.2.3_b')).toEqual({ name: 'app', tag: '1.2.3_b' });
    expect(parseChartRefName('docker.io/library/nginx:1')).toBeUndefined();
  });

  it('defaults under the prefix, and follows charts= rules, then rules on an oci:// source', () => {
    expect(target(mapper('harbor.local/mirror'), { name: 'app', tag: '1.0.0' })).toBe('harbor.local/mirror/charts/app:1.0.0');
    expect(target(mapper('harbor.local'), { name: 'app', tag: '1.0.0' })).toBe('harbor.local/charts/app:1.0.0');
    expect(target(mapper('harbor.local/m', ['charts=helm']), { name: 'app', tag: '1' })).toBe('harbor.local/m/helm/app:1');
    expect(target(mapper('harbor.local/m', ['charts/app=other.local/x/app-chart', 'charts=helm']), { name: 'app', tag: '1' })).toBe(
      'other.local/x/app-chart:1',
    );
    const src = { name: 'redis', tag: '18.0.0', source: 'oci://registry-1.docker.io/bitnamicharts/redis:18.0.0' };
    expect(target(mapper('harbor.local/m'), src)).toBe('harbor.local/m/charts/redis:18.0.0');
    expect(target(mapper('harbor.local/m', ['registry-1.docker.io/bitnamicharts=bitnami-charts']), src)).toBe('harbor.local/m/bitnami-charts/redis:18.0.0');
  });

  it('refuses an image and a chart landing on one reference, before anything is pushed', () => {
    const m = mapper('harbor.local', ['quay.io/org=charts']);
    expect(() => m.mapBundle(['quay.io/org/app:1.0.0'], [{ name: 'app', tag: '1.0.0' }])).toThrow(
      'quay.io/org/app:1.0.0 and chart app:1.0.0 would both be loaded as harbor.local/charts/app:1.0.0; add a --map rule to separate them',
    );
    expect(m.mapBundle(['quay.io/org/app:1.0.0'], [{ name: 'app', tag: '1.0.1' }]).charts.map(formatReference)).toEqual(['harbor.local/charts/app:1.0.1']);
  });
});

describe('one chart-directory walk for images and pack', () => {
  it('ferry images and ferry pack --chart see the same files of a chart whose .helmignore excludes a template', async () => {
    const root = join(tmp, 'ignoring');
    await mkdir(join(root, 'templates'), { recursive: true });
    await writeFile(join(root, 'Chart.yaml'), 'apiVersion: v2\nname: ignoring\nversion: 1.0.0\n');
    await writeFile(join(root, 'values.yaml'), 'replicas: 1\n');
    await writeFile(join(root, '.helmignore'), '# a debugging aid, not part of the release\ntemplates/debug.yaml\n');
    const pod = (name: string) =>
      `apiVersion: v1\nkind: Pod\nmetadata:\n  name: ${name}\nspec:\n  containers:\n    - name: ${name}\n      image: example.com/${name}:1.0\n`;
    await writeFile(join(root, 'templates', 'app.yaml'), pod('app'));
    await writeFile(join(root, 'templates', 'debug.yaml'), pod('debug'));

    // ferry images
    const discovered = await discoverImages({ charts: [root] });
    expect(discovered.images.map((i) => [i.reference, i.usage])).toEqual([['example.com/app:1.0', 'used']]);
    const seenByImages = [...(await loadChart(root)).files.keys()].sort();
    expect(seenByImages).toEqual(['.helmignore', 'Chart.yaml', 'templates/app.yaml', 'values.yaml']);

    // ferry pack --chart: the chart layer it carries, and the images it packs
    const client = new OciClient({ env: {}, credentials: new CredentialStore({ env: {}, configPath: join(tmp, 'no-config.json') }) });
    try {
      const [prepared] = await prepareCharts([{ chart: root }], { client });
      expect(prepared!.images).toEqual([{ ref: 'example.com/app:1.0', usage: 'used', packed: true, from: expect.stringMatching(/^chart \S+, templates\//) }]);
      const manifest = await prepared!.place.getManifest(await prepared!.place.resolve(prepared!.digest));
      if (manifest.kind !== 'image') throw new Error('a chart is an image manifest');
      const chunks: Buffer[] = [];
      for await (const c of await prepared!.place.openBlob(manifest.manifest.layers[0]!)) chunks.push(c as Buffer);
      const packed = tarEntriesOf(gunzipSync(Buffer.concat(chunks))).map((e) => e.name.replace(/^ignoring\//, ''));
      expect(packed).toEqual(seenByImages);
    } finally {
      await client.close();
    }
  });
});
