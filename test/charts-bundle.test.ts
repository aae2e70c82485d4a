// Helm charts in bundles: `ferry pack --chart` carries a chart as the OCI
// artifact `helm push` stores, with the images it needs; `ferry load` pushes it
// to TARGET/PREFIX/charts/<name>:<tag>, where `helm pull` finds it. helm cannot
// run here, so what it would fetch is checked through the registry API.
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registryFetch, type SeededImage, seedImage, startRegistry, type TestRegistry } from './harness/index.js';
import { makeTempDir, removeTempDir, run } from './harness/process.js';
import { expectErrorLine, type FerryHome, type FerryResult, makeFerryHome, runFerry as runFerryIn } from './helpers/ferry.js';
import { SHARED_CHARTS } from './helpers/shared-charts.js';

const CERT_MANAGER = join(SHARED_CHARTS, 'cert-manager');

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const HELM_CONFIG = 'application/vnd.cncf.helm.config.v1+json';
const HELM_CHART = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip';
const SDE = '1700000000';
const SDE_ISO = '2023-11-14T22:13:20Z';
/** The synthetic chart's version, with a build part: its tag is `0.3.0_g1`. */
const VERSION = '0.3.0+g1';
const TAG = '0.3.0_g1';

let src: TestRegistry;
let dir: string;
let home: FerryHome;
let chartDir: string;
let web: SeededImage;
let hook: SeededImage;
let sidecar: SeededImage;
/** The chart directory packed with SOURCE_DATE_EPOCH, with web:1.0 also named explicitly. */
let bundle: string;

const runFerry = (args: string[], env: Record<string, string> = {}) => runFerryIn(args, { home, env });
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function ok(r: FerryResult): FerryResult {
  expect(r.code, r.stderr).toBe(0);
  return r;
}

/** A file of a bundle tar (ferry.json, index.json, blobs/sha256/…). */
async function member(tar: string, name: string): Promise<Buffer> {
  return run('tar', ['-xOf', tar, name]);
}

async function blob(tar: string, digest: string): Promise<Buffer> {
  return member(tar, `blobs/sha256/${digest.slice('sha256:'.length)}`);
}

interface FerryJsonChart {
  ref: string;
  name: string;
  version: string;
  appVersion: string | null;
  source: string;
  upstreamDigest: string | null;
  digest: string;
  mediaType: string;
  size: number;
  images: Array<{ ref: string; usage: string; packed: boolean }>;
}

async function ferryJson(
  tar: string,
): Promise<{ inputs: { references: string[]; charts: string[] }; images: Array<{ ref: string; digest: string }>; charts: FerryJsonChart[] }> {
  return JSON.parse((await member(tar, 'ferry.json')).toString('utf8'));
}

async function indexEntries(
  tar: string,
): Promise<Array<{ mediaType: string; digest: string; size: number; artifactType?: string; annotations: Record<string, string> }>> {
  return JSON.parse((await member(tar, 'index.json')).toString('utf8')).manifests;
}

/** Writes the synthetic chart `demo` whose images live in `src`. */
async function writeChart(root: string): Promise<void> {
  const h = src.host;
  await mkdir(join(root, 'templates'), { recursive: true });
  const files: Record<string, string> = {
    'Chart.yaml': [
      'apiVersion: v2',
      'name: demo',
      'description: "Demo <chart> & friends"',
      `version: ${VERSION}`,
      'appVersion: "1.0"',
      'type: application',
      'keywords: [demo, test]',
      'maintainers:',
      '  - name: Ferry Tests',
      '    email: tests@example.org',
      'annotations:',
      '  zeta: last',
      '  alpha: first',
      'unknownField: dropped by helm',
      '',
    ].join('\n'),
    'values.yaml': ['image:', `  repository: ${h}/apps/web`, '  tag: ""', 'sidecar:', '  enabled: false', `  image: ${h}/apps/sidecar:2.0`, ''].join('\n'),
    'templates/deployment.yaml': [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      '  name: {{ .Release.Name }}-web',
      'spec:',
      '  template:',
      '    spec:',
      '      containers:',
      '        - name: web',
      '          image: "{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}"',
      '        {{- if .Values.sidecar.enabled }}',
      '        - name: sidecar',
      '          image: {{ .Values.sidecar.image }}',
      '        {{- end }}',
      '',
    ].join('\n'),
    'templates/hook.yaml': [
      'apiVersion: batch/v1',
      'kind: Job',
      'metadata:',
      '  name: {{ .Release.Name }}-migrate',
      '  annotations:',
      '    "helm.sh/hook": pre-upgrade',
      'spec:',
      '  template:',
      '    spec:',
      '      restartPolicy: Never',
      '      containers:',
      '        - name: migrate',
      `          image: ${h}/apps/hook:3.0`,
      '',
    ].join('\n'),
    // not packed: .helmignore, and helm's default rule for dot files in templates/
    'templates/.scratch.yaml': `image: ${h}/apps/never:1\n`,
    'old-values.bak': 'ignored\n',
    '.helmignore': '# as helm create writes\n*.bak\n.git/\n',
    'README.md': '# demo\n',
  };
  for (const [path, text] of Object.entries(files)) await writeFile(join(root, path), text);
}

beforeAll(async () => {
  src = await startRegistry();
  dir = await makeTempDir('ferry-charts-bundle-');
  home = await makeFerryHome();
  const small = { single: true, layers: 1, layerSize: 2048 } as const;
  [web, hook, sidecar] = await Promise.all([
    seedImage(src, 'apps/web:1.0', { ...small, seed: 'web' }),
    seedImage(src, 'apps/hook:3.0', { ...small, seed: 'hook' }),
    seedImage(src, 'apps/sidecar:2.0', { ...small, seed: 'sidecar' }),
  ]);
  chartDir = join(dir, 'src', 'demo');
  await writeChart(chartDir);
  bundle = join(dir, 'demo.tar');
  ok(await runFerry(['pack', `${src.host}/apps/web:1.0`, '--chart', chartDir, '-o', bundle, '-q'], { SOURCE_DATE_EPOCH: SDE }));
});

afterAll(async () => {
  await src?.stop();
  if (dir) await removeTempDir(dir);
  await home?.remove();
});

describe('ferry pack --chart', () => {
  it('packs the images the chart uses, deduplicated with the named ones, and lists the chart in ferry.json', async () => {
    const ferry = await ferryJson(bundle);
    expect(ferry.inputs).toMatchObject({ references: [`${src.host}/apps/web:1.0`], charts: [chartDir] });
    expect(ferry.images.map((i) => [i.ref, i.digest])).toEqual([
      [`${src.host}/apps/web:1.0`, web.digest],
      [`${src.host}/apps/hook:3.0`, hook.digest],
    ]);
    expect(ferry.charts).toHaveLength(1);
    const chart = ferry.charts[0]!;
    expect(chart).toMatchObject({
      ref: `charts/demo:${TAG}`,
      name: 'demo',
      version: VERSION,
      appVersion: '1.0',
      source: chartDir,
      upstreamDigest: null,
      mediaType: OCI_MANIFEST,
    });
    expect(chart.images).toEqual([
      { ref: `${src.host}/apps/hook:3.0`, usage: 'used', packed: true },
      { ref: `${src.host}/apps/sidecar:2.0`, usage: 'optional', packed: false },
      { ref: `${src.host}/apps/web:1.0`, usage: 'used', packed: true },
    ]);
    // The images first, in order, then the chart: unnamed in index.json (containerd would name and
    // unpack it; ferry.json names it), marked by artifactType.
    const index = await indexEntries(bundle);
    expect(index).toHaveLength(3);
    expect(index[2]).toEqual({
      mediaType: OCI_MANIFEST,
      digest: chart.digest,
      size: expect.any(Number),
      artifactType: HELM_CONFIG,
    });
    const names = (await run('tar', ['-tf', bundle])).toString('utf8');
    expect(names).not.toContain(sidecar.digest.slice(7));
  });

  it('stores the chart as helm push does: helm config with the Chart.yaml metadata, one chart layer', async () => {
    const { digest } = (await ferryJson(bundle)).charts[0]!;
    const raw = await blob(bundle, digest);
    expect(sha256(raw)).toBe(digest);
    const manifest = JSON.parse(raw.toString('utf8'));
    // Go's ocispec.Manifest as helm fills it: no mediaType field, annotations sorted.
    expect(Object.keys(manifest)).toEqual(['schemaVersion', 'config', 'layers', 'annotations']);
    expect(manifest.config.mediaType).toBe(HELM_CONFIG);
    expect(manifest.layers).toHaveLength(1);
    expect(manifest.layers[0].mediaType).toBe(HELM_CHART);
    expect(manifest.annotations).toEqual({
      alpha: 'first',
      'org.opencontainers.image.authors': 'Ferry Tests (tests@example.org)',
      'org.opencontainers.image.created': SDE_ISO,
      'org.opencontainers.image.description': 'Demo <chart> & friends',
      'org.opencontainers.image.title': 'demo',
      'org.opencontainers.image.version': VERSION,
      zeta: 'last',
    });
    expect(Object.keys(manifest.annotations)).toEqual(Object.keys(manifest.annotations).sort());

    // chart.Metadata as Go marshals it: struct field order, empty fields and unknown keys gone, HTML escaped.
    const config = await blob(bundle, manifest.config.digest);
    expect(config.toString('utf8')).toBe(
      '{"name":"demo","version":"0.3.0+g1","description":"Demo \\u003cchart\\u003e \\u0026 friends","keywords":["demo","test"],' +
        '"maintainers":[{"name":"Ferry Tests","email":"tests@example.org"}],"apiVersion":"v2","appVersion":"1.0",' +
        '"annotations":{"alpha":"first","zeta":"last"},"type":"application"}',
    );

    // The layer: a deterministic archive under demo/, sorted, .helmignore honoured.
    const layer = await blob(bundle, manifest.layers[0].digest);
    expect([...layer.subarray(0, 10)]).toEqual([0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255]);
    const tgz = join(dir, 'layer.tgz');
    await writeFile(tgz, layer);
    const listing = (await run('tar', ['--numeric-owner', '--full-time', '-tzvf', tgz])).toString('utf8').split('\n').filter(Boolean);
    expect(listing.map((l) => l.split(/\s+/).at(-1))).toEqual([
      'demo/.helmignore',
      'demo/Chart.yaml',
      'demo/README.md',
      'demo/templates/deployment.yaml',
      'demo/templates/hook.yaml',
      'demo/values.yaml',
    ]);
    for (const line of listing) expect(line).toMatch(/^-rw-r--r-- 0\/0 +\d+ 2023-11-14 22:13:20 demo\//);
    const chartYaml = await run('tar', ['-xzOf', tgz, 'demo/Chart.yaml']);
    expect(chartYaml.equals(await readFile(join(chartDir, 'Chart.yaml')))).toBe(true);
  });

  it("is deterministic with SOURCE_DATE_EPOCH: a second pack is byte-identical, whatever the files' mtimes", async () => {
    const again = join(dir, 'demo-again.tar');
    for (const f of ['Chart.yaml', 'values.yaml', 'templates/hook.yaml']) await utimes(join(chartDir, f), new Date(), new Date('2001-02-03T04:05:06Z'));
    ok(await runFerry(['pack', `${src.host}/apps/web:1.0`, '--chart', chartDir, '-o', again, '-q', '-j', '1'], { SOURCE_DATE_EPOCH: SDE }));
    expect(sha256(await readFile(again))).toBe(sha256(await readFile(bundle)));
  });

  it('--chart-optional-images packs the optional images too; inspect and verify cover the chart', async () => {
    const out = join(dir, 'optional.tar');
    const r = ok(await runFerry(['pack', '--chart', chartDir, '--chart-optional-images', '-o', out, '--json']));
    const summary = JSON.parse(r.stdout);
    expect(summary.images.map((i: { ref: string }) => i.ref)).toEqual([
      `${src.host}/apps/hook:3.0`,
      `${src.host}/apps/sidecar:2.0`,
      `${src.host}/apps/web:1.0`,
    ]);
    expect(summary.charts[0].images.every((i: { packed: boolean }) => i.packed)).toBe(true);

    const inspect = JSON.parse(ok(await runFerry(['inspect', out, '--json'])).stdout);
    expect(inspect.images.map((i: { reference: string }) => i.reference)).toHaveLength(3);
    expect(inspect.charts).toEqual([
      expect.objectContaining({
        reference: `charts/demo:${TAG}`,
        name: 'demo',
        version: VERSION,
        appVersion: '1.0',
        source: chartDir,
        blobs: 3,
        complete: true,
        images: {
          used: 2,
          runtime: 0,
          declared: 0,
          optional: 1,
          packed: 3,
          list: [
            { ref: `${src.host}/apps/hook:3.0`, usage: 'used', packed: true },
            { ref: `${src.host}/apps/sidecar:2.0`, usage: 'optional', packed: true },
            { ref: `${src.host}/apps/web:1.0`, usage: 'used', packed: true },
          ],
        },
      }),
    ]);
    expect(inspect.totals.unreferenced.blobs).toBe(0);
    const table = ok(await runFerry(['inspect', out])).stdout;
    expect(table).toMatch(new RegExp(`^charts/demo:${TAG} +${VERSION.replace('+', '\\+')} +\\S+ +3 packed \\(2 used, 1 optional\\)`, 'm'));
    expect(table).toContain(`charts/demo:${TAG} images:\n  ${src.host}/apps/hook:3.0     used, packed\n`);

    const verify = JSON.parse(ok(await runFerry(['verify', out, '--json'])).stdout);
    expect(verify).toMatchObject({ ok: true, problems: [], charts: [{ ref: `charts/demo:${TAG}`, ok: true }] });
  });

  it('verify finds a chart whose ferry.json entry or index.json entry was changed', async () => {
    const layout = join(dir, 'tampered');
    await mkdir(layout);
    await run('tar', ['-xf', bundle, '-C', layout]);
    const ferry = JSON.parse(await readFile(join(layout, 'ferry.json'), 'utf8'));
    ferry.charts[0].version = '9.9.9';
    await writeFile(join(layout, 'ferry.json'), JSON.stringify(ferry));
    let r = await runFerry(['verify', layout, '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).problems).toEqual([
      `ferry.json names chart demo 9.9.9 charts/demo:${TAG}, not charts/demo:9.9.9`,
      `chart charts/demo:${TAG} is demo ${VERSION} by its config, not demo 9.9.9`,
    ]);
    ferry.charts[0].version = VERSION;
    await writeFile(join(layout, 'ferry.json'), JSON.stringify(ferry));
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
    delete index.manifests[2].artifactType;
    await writeFile(join(layout, 'index.json'), JSON.stringify(index));
    r = await runFerry(['verify', layout, '--json']);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).problems).toEqual(['ferry.json lists 2 images, index.json 3', 'ferry.json lists 1 charts, index.json 0']);
  });

  it('takes charts from the spec, with their own --set', async () => {
    const spec = join(dir, 'spec.yaml');
    await writeFile(spec, `charts:\n  - chart: src/demo\n    set: ["sidecar.enabled=true"]\noutput: spec.tar\n`);
    const r = ok(await runFerry(['pack', '--spec', spec, '-o', join(dir, 'spec.tar'), '--json']));
    const chart = JSON.parse(r.stdout).charts[0];
    expect(chart.source).toBe(join(dir, 'src/demo'));
    expect(chart.images.find((i: { ref: string }) => i.ref.endsWith('/apps/sidecar:2.0'))).toEqual({
      ref: `${src.host}/apps/sidecar:2.0`,
      usage: 'used',
      packed: true,
    });
  });

  it('refuses a chart that is not there or not a chart, and a bad spec entry, with one line and exit 2', async () => {
    const missing = join(dir, 'nope');
    let line = expectErrorLine(await runFerry(['pack', '--chart', missing, '-o', join(dir, 'x.tar')]), 2);
    expect(line).toBe(
      `ferry: chart ${missing} not found: give a chart directory, a .tgz file, oci://REGISTRY/REPOSITORY[:VERSION], REPO/CHART[@VERSION] or a chart URL`,
    );
    line = expectErrorLine(await runFerry(['pack', '--chart', join(dir, 'src'), '-o', join(dir, 'x.tar')]), 2);
    expect(line).toBe(`ferry: ${join(dir, 'src')} is not a Helm chart directory: it has no Chart.yaml`);
    const spec = join(dir, 'bad-spec.yaml');
    await writeFile(spec, 'charts:\n  - chart: src/demo\n    valuez: [a.yaml]\n');
    line = expectErrorLine(await runFerry(['pack', '--spec', spec, '-o', join(dir, 'x.tar')]), 2);
    expect(line).toContain('charts[0]');
    line = expectErrorLine(await runFerry(['pack', '--set', 'a=b', `${src.host}/apps/web:1.0`, '-o', join(dir, 'x.tar')]), 2);
    expect(line).toBe('ferry: --values and --set apply to charts; give --chart too');
  });
});

describe('ferry load of a bundle with a chart', () => {
  let dst: TestRegistry;
  beforeAll(async () => {
    dst = await startRegistry();
  });
  afterAll(async () => {
    await dst?.stop();
  });

  it('pushes the chart to PREFIX/charts/<name>:<tag> with helm media types, and its images; mapping output names it', async () => {
    const ferry = await ferryJson(bundle);
    const chart = ferry.charts[0]!;
    const manifestBytes = await blob(bundle, chart.digest);
    const manifest = JSON.parse(manifestBytes.toString('utf8'));

    const dry = JSON.parse(ok(await runFerry(['load', bundle, '--to', `${dst.host}/mirror`, '--dry-run', '--json'])).stdout);
    expect(dry.charts).toEqual([
      expect.objectContaining({
        name: 'demo',
        version: VERSION,
        target: `${dst.host}/mirror/charts/demo:${TAG}`,
        status: 'planned',
        blobsToPush: 2,
        blobsPresent: 0,
      }),
    ]);

    const mapping = join(dir, 'mapping.json');
    const r = ok(await runFerry(['load', bundle, '--to', `${dst.host}/mirror`, '--mapping-out', mapping]));
    expect(r.stdout).toContain(`chart demo ${VERSION} -> ${dst.host}/mirror/charts/demo:${TAG}@${chart.digest}`);
    expect(JSON.parse(await readFile(mapping, 'utf8'))).toEqual({
      images: [
        { source: `${src.host}/apps/web:1.0`, target: `${dst.host}/mirror/apps/web:1.0`, digest: web.digest },
        { source: `${src.host}/apps/hook:3.0`, target: `${dst.host}/mirror/apps/hook:3.0`, digest: hook.digest },
      ],
      charts: [{ name: 'demo', version: VERSION, source: chartDir, target: `${dst.host}/mirror/charts/demo:${TAG}`, digest: chart.digest }],
    });

    // What `helm pull oci://DST/mirror/charts/demo --version 0.3.0+g1` fetches: the tag, then config and layer.
    for (const ref of [TAG, chart.digest]) {
      const res = await registryFetch(dst, `/v2/mirror/charts/demo/manifests/${ref}`, { headers: { accept: OCI_MANIFEST } });
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe(OCI_MANIFEST);
      expect(res.headers.get('docker-content-digest')).toBe(chart.digest);
      expect(Buffer.from(await res.arrayBuffer()).equals(manifestBytes)).toBe(true);
    }
    const tags = await registryFetch(dst, '/v2/mirror/charts/demo/tags/list');
    expect(((await tags.json()) as { tags: string[] }).tags).toEqual([TAG]);
    const config = await registryFetch(dst, `/v2/mirror/charts/demo/blobs/${manifest.config.digest}`);
    expect(JSON.parse(Buffer.from(await config.arrayBuffer()).toString('utf8'))).toMatchObject({ name: 'demo', version: VERSION, apiVersion: 'v2' });
    const layer = await registryFetch(dst, `/v2/mirror/charts/demo/blobs/${manifest.layers[0].digest}`);
    expect(Buffer.from(await layer.arrayBuffer()).equals(await blob(bundle, manifest.layers[0].digest))).toBe(true);

    // Its images are there too, with their digests.
    for (const [repo, image] of [
      ['apps/web:1.0', web],
      ['apps/hook:3.0', hook],
    ] as const) {
      const [name, tag] = repo.split(':');
      const res = await registryFetch(dst, `/v2/mirror/${name}/manifests/${tag}`, { method: 'HEAD', headers: { accept: OCI_MANIFEST } });
      expect(res.headers.get('docker-content-digest')).toBe(image.digest);
    }

    const against = JSON.parse(ok(await runFerry(['verify', bundle, '--against', `${dst.host}/mirror`, '--json'])).stdout);
    expect(against.rows.map((row: { kind?: string; status: string }) => `${row.kind ?? 'image'} ${row.status}`)).toEqual(['image ok', 'image ok', 'chart ok']);
  });

  it('--map charts=DST or charts/NAME=DST moves the chart; --keep-source-registry does not', async () => {
    const plan = async (...args: string[]) =>
      JSON.parse(ok(await runFerry(['load', bundle, '--to', dst.host, ...args, '--dry-run', '--json'])).stdout).charts[0].target;
    expect(await plan('--map', 'charts=helm/stable')).toBe(`${dst.host}/helm/stable/demo:${TAG}`);
    expect(await plan('--map', 'charts/demo=apps/demo-chart', '--map', 'charts=other')).toBe(`${dst.host}/apps/demo-chart:${TAG}`);
    expect(await plan('--keep-source-registry')).toBe(`${dst.host}/charts/demo:${TAG}`);
  });
});

describe('charts from a .tgz and from a registry', () => {
  let tgz: Buffer;
  let pushed: { digest: string; bytes: Buffer };

  beforeAll(async () => {
    // A chart archive as GNU tar writes it: taken as it is.
    const file = join(dir, 'demo-0.3.0.tgz');
    await run('tar', ['-czf', file, '-C', join(dir, 'src'), 'demo']);
    tgz = await readFile(file);
    // Pushed as a helm client would, with bytes ferry would not write itself (mediaType field, a created time).
    const config = Buffer.from(JSON.stringify({ name: 'demo', version: VERSION, apiVersion: 'v2', appVersion: '1.0' }));
    for (const b of [config, tgz]) {
      const start = await registryFetch(src, '/v2/helm/demo/blobs/uploads/', { method: 'POST' });
      expect(start.status).toBe(202);
      const location = new URL(start.headers.get('location')!, src.url);
      location.searchParams.set('digest', sha256(b));
      const res = await registryFetch(src, location.pathname + location.search, {
        method: 'PUT',
        body: b,
        headers: { 'content-type': 'application/octet-stream' },
      });
      expect(res.status).toBe(201);
    }
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: OCI_MANIFEST,
        config: { mediaType: HELM_CONFIG, digest: sha256(config), size: config.length },
        layers: [{ mediaType: HELM_CHART, digest: sha256(tgz), size: tgz.length }],
        annotations: { 'org.opencontainers.image.created': '2021-01-01T00:00:00Z', 'org.opencontainers.image.title': 'demo' },
      }),
    );
    const res = await registryFetch(src, `/v2/helm/demo/manifests/${TAG}`, { method: 'PUT', body: bytes, headers: { 'content-type': OCI_MANIFEST } });
    expect(res.status).toBe(201);
    pushed = { digest: sha256(bytes), bytes };
  });

  it('keeps a .tgz chart byte for byte as the layer', async () => {
    const out = join(dir, 'tgz.tar');
    const r = ok(await runFerry(['pack', '--chart', join(dir, 'demo-0.3.0.tgz'), '-o', out, '--json']));
    const chart = JSON.parse(r.stdout).charts[0];
    expect(chart).toMatchObject({ name: 'demo', version: VERSION, source: join(dir, 'demo-0.3.0.tgz'), upstreamDigest: null });
    const manifest = JSON.parse((await blob(out, chart.digest)).toString('utf8'));
    expect(manifest.layers[0].digest).toBe(sha256(tgz));
    expect((await blob(out, manifest.layers[0].digest)).equals(tgz)).toBe(true);
  });

  it('packs an oci:// chart with its upstream manifest, config and layer, digests kept', async () => {
    const out = join(dir, 'oci.tar');
    const r = ok(await runFerry(['pack', '--chart', `oci://${src.host}/helm/demo`, '-o', out, '--json']));
    const summary = JSON.parse(r.stdout);
    expect(summary.charts[0]).toMatchObject({
      ref: `charts/demo:${TAG}`,
      source: `oci://${src.host}/helm/demo:${TAG}`,
      upstreamDigest: pushed.digest,
      digest: pushed.digest,
    });
    expect(summary.images.map((i: { ref: string }) => i.ref)).toEqual([`${src.host}/apps/hook:3.0`, `${src.host}/apps/web:1.0`]);
    expect((await blob(out, pushed.digest)).equals(pushed.bytes)).toBe(true);
    expect((await blob(out, sha256(tgz))).equals(tgz)).toBe(true);
    expect((await indexEntries(out)).at(-1)).toMatchObject({ digest: pushed.digest, artifactType: HELM_CONFIG });
    expect(JSON.parse(ok(await runFerry(['verify', out, '--json'])).stdout)).toMatchObject({ ok: true, problems: [] });
  });
});

describe('the real cert-manager chart', () => {
  it('packs its four used images and the run-time acmesolver from a registry named with --set, and the chart with helm metadata', async () => {
    const names = ['acmesolver', 'cainjector', 'controller', 'startupapicheck', 'webhook'];
    const seeded = await Promise.all(
      names.map((n) => seedImage(src, `jetstack/cert-manager-${n}:v1.21.1`, { single: true, layers: 1, layerSize: 1024, seed: n })),
    );
    const out = join(dir, 'cert-manager.tar');
    const r = ok(await runFerry(['pack', '--chart', CERT_MANAGER, '--set', `imageRegistry=${src.host}`, '-o', out, '--json', '-q']));
    const summary = JSON.parse(r.stdout);
    expect(summary.images.map((i: { ref: string; digest: string }) => [i.ref, i.digest])).toEqual(
      names.map((n, i) => [`${src.host}/jetstack/cert-manager-${n}:v1.21.1`, seeded[i]!.digest]),
    );
    const chart = summary.charts[0];
    expect(chart).toMatchObject({ ref: 'charts/cert-manager:v1.21.1', name: 'cert-manager', version: 'v1.21.1', appVersion: 'v1.21.1' });
    expect(chart.images.filter((i: { usage: string }) => i.usage !== 'used')).toEqual([
      { ref: `${src.host}/jetstack/cert-manager-acmesolver:v1.21.1`, usage: 'runtime', packed: true },
    ]);
    const manifest = JSON.parse((await blob(out, chart.digest)).toString('utf8'));
    const config = JSON.parse((await blob(out, manifest.config.digest)).toString('utf8'));
    expect(Object.keys(config)).toEqual([
      'name',
      'home',
      'sources',
      'version',
      'description',
      'keywords',
      'maintainers',
      'icon',
      'apiVersion',
      'appVersion',
      'annotations',
      'kubeVersion',
    ]);
    expect(config.annotations['artifacthub.io/prerelease']).toBe('false');
    expect(manifest.annotations['org.opencontainers.image.source']).toBe('https://github.com/cert-manager/cert-manager');
    expect(manifest.annotations['org.opencontainers.image.authors']).toBe('cert-manager-maintainers (cert-manager-maintainers@googlegroups.com)');
    // .helmignore: nothing under tests/ or OWNERS; the chart's own files are there.
    const tgz = join(dir, 'cm.tgz');
    await writeFile(tgz, await blob(out, manifest.layers[0].digest));
    const files = (await run('tar', ['-tzf', tgz])).toString('utf8').split('\n').filter(Boolean);
    expect(files).toContain('cert-manager/templates/deployment.yaml');
    expect(files.every((f) => f.startsWith('cert-manager/'))).toBe(true);
    expect(files).toEqual([...files].sort());
    await rm(tgz);
  });
});
