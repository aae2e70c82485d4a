// Charts from classic Helm repositories through the CLI: `ferry images` and
// `ferry pack` with --repo NAME=URL, helm's repositories.yaml, --chart-version,
// the spec's {repo, name, version}; the chart carried byte for byte with its
// .prov as helm push stores it, and `ferry load` putting it where helm pulls it.
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseHelmTemplate, podImages, registryFetch, type SeededImage, seedImage, startHelm, startRegistry, type TestRegistry } from './harness/index.js';
import { makeTempDir, removeTempDir, run } from './harness/process.js';
import { type ChartRepository, indexYaml, sha256Hex, startChartRepository, tgzOf } from './helpers/chart-fixtures.js';
import { expectErrorLine, type FerryHome, type FerryResult, makeFerryHome, runFerry as runFerryIn } from './helpers/ferry.js';
import { SHARED_CHARTS } from './helpers/shared-charts.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const HELM_CHART = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip';
const HELM_PROV = 'application/vnd.cncf.helm.chart.provenance.v1.prov';
const PROV = '-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\nname: demo\nversion: 1.1.0\n';

let src: TestRegistry;
let dst: TestRegistry;
let repo: ChartRepository;
let dir: string;
let home: FerryHome;
let web: SeededImage;
let local: SeededImage;
let umbrella: string;
let repoConfig: string;
const tgz = new Map<string, Buffer>();

const runFerry = (args: string[], env: Record<string, string> = {}) =>
  runFerryIn(args, { home, env: { FERRY_RETRY_BUDGET: '0', HELM_REPOSITORY_CONFIG: join(dir, 'empty-repositories.yaml'), ...env } });
const withConfig = { HELM_REPOSITORY_CONFIG: '' };

function ok(r: FerryResult): FerryResult {
  expect(r.code, r.stderr).toBe(0);
  return r;
}

async function member(tar: string, name: string): Promise<Buffer> {
  return run('tar', ['-xOf', tar, name]);
}

async function demoChart(version: string): Promise<Buffer> {
  const root = join(dir, `demo-${version}`);
  await run('mkdir', ['-p', join(root, 'templates')]);
  await writeFile(join(root, 'Chart.yaml'), `apiVersion: v2\nname: demo\nversion: ${version}\nappVersion: "1.0"\n`);
  await writeFile(join(root, 'values.yaml'), `image:\n  repository: ${src.host}/apps/web\n  tag: "1.0"\n`);
  await writeFile(
    join(root, 'templates', 'deployment.yaml'),
    [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      '  name: {{ .Release.Name }}',
      'spec:',
      '  template:',
      '    spec:',
      '      containers:',
      '        - name: web',
      '          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"',
      '',
    ].join('\n'),
  );
  return tgzOf(root, 'demo');
}

beforeAll(async () => {
  [src, dst] = await Promise.all([startRegistry(), startRegistry()]);
  dir = await makeTempDir('ferry-chart-repo-');
  home = await makeFerryHome();
  web = await seedImage(src, 'apps/web:1.0', { single: true, layers: 1, layerSize: 2048, seed: 'web' });
  local = await seedImage(src, 'apps/local:1.0', { single: true, layers: 1, layerSize: 2048, seed: 'local' });
  tgz.set('cert-manager', await tgzOf(join(SHARED_CHARTS, 'cert-manager'), 'cert-manager'));
  tgz.set('1.0.0', await demoChart('1.0.0'));
  tgz.set('1.1.0', await demoChart('1.1.0'));
  repo = await startChartRepository(new Map(), { auth: { username: 'reader', password: 'pa55word' } });
  repo.files.set(
    '/stable/index.yaml',
    Buffer.from(
      indexYaml([
        { name: 'cert-manager', version: 'v1.21.1', urls: ['cert-manager-v1.21.1.tgz'], digest: sha256Hex(tgz.get('cert-manager')!) },
        // the newest: an absolute url, and a .prov beside it
        { name: 'demo', version: '1.1.0', urls: [`${repo.origin}/files/demo-1.1.0.tgz`], digest: sha256Hex(tgz.get('1.1.0')!) },
        { name: 'demo', version: '1.0.0', urls: ['demo-1.0.0.tgz'], digest: sha256Hex(tgz.get('1.0.0')!) },
      ]),
    ),
  );
  repo.files.set('/stable/cert-manager-v1.21.1.tgz', tgz.get('cert-manager')!);
  repo.files.set('/stable/demo-1.0.0.tgz', tgz.get('1.0.0')!);
  repo.files.set('/files/demo-1.1.0.tgz', tgz.get('1.1.0')!);
  repo.files.set('/files/demo-1.1.0.tgz.prov', Buffer.from(PROV));
  await writeFile(join(dir, 'empty-repositories.yaml'), 'repositories: []\n');
  repoConfig = join(dir, 'repositories.yaml');
  await writeFile(
    repoConfig,
    ['apiVersion: ""', 'repositories:', '- name: stable', `  url: ${repo.origin}/stable`, '  username: reader', '  password: pa55word', ''].join('\n'),
  );
  withConfig.HELM_REPOSITORY_CONFIG = repoConfig;
  umbrella = await writeUmbrella();
});

/**
 * A chart directory with three unvendored dependencies: demo from the repository
 * URL (locked at 1.0.0 though 1.1.0 also matches), cert-manager by the configured
 * repository's name (@stable, off by its condition), and a sibling directory (file://).
 */
async function writeUmbrella(): Promise<string> {
  const root = join(dir, 'umbrella');
  const sub = join(dir, 'local-sub');
  await run('mkdir', ['-p', join(root, 'templates'), join(sub, 'templates')]);
  await writeFile(join(sub, 'Chart.yaml'), 'apiVersion: v2\nname: local-sub\nversion: 0.1.0\n');
  await writeFile(
    join(sub, 'templates', 'pod.yaml'),
    `apiVersion: v1\nkind: Pod\nmetadata:\n  name: local\nspec:\n  containers:\n    - name: local\n      image: ${src.host}/apps/local:1.0\n`,
  );
  await writeFile(
    join(root, 'Chart.yaml'),
    [
      'apiVersion: v2',
      'name: umbrella',
      'version: 2.0.0',
      'dependencies:',
      '  - name: demo',
      '    version: ">=1.0.0"',
      `    repository: ${repo.origin}/stable`,
      '  - name: cert-manager',
      '    version: 1.21.x',
      '    repository: "@stable"',
      '    condition: certManager.enabled',
      '  - name: local-sub',
      '    version: 0.1.x',
      '    repository: file://../local-sub',
      '',
    ].join('\n'),
  );
  await writeFile(join(root, 'values.yaml'), 'certManager:\n  enabled: false\n');
  await writeFile(
    join(root, 'Chart.lock'),
    [
      'dependencies:',
      '- name: demo',
      `  repository: ${repo.origin}/stable`,
      '  version: 1.0.0',
      'digest: sha256:0',
      'generated: "2024-01-01T00:00:00Z"',
      '',
    ].join('\n'),
  );
  return root;
}

afterAll(async () => {
  await Promise.all([src?.stop(), dst?.stop(), repo?.close()]);
  if (dir) await removeTempDir(dir);
  await home?.remove();
});

describe('ferry images from a Helm repository', () => {
  it('--repo NAME=URL --chart NAME/CHART lists the real chart’s images, credentials never shown', async () => {
    const expected = (await readFile(join(SHARED_CHARTS, 'cert-manager', 'expected-images.txt'), 'utf8')).trim();
    const r = ok(
      await runFerry([
        'images',
        '--repo',
        `stable=http://reader:pa55word@${repo.origin.slice('http://'.length)}/stable`,
        '--chart',
        'stable/cert-manager',
        '--only-used',
      ]),
    );
    expect(r.stdout.trim()).toBe(expected);
    expect(r.stderr).not.toContain('pa55word');
    expect(r.stderr).toContain(`repository stable (${repo.origin}/stable): credentials are sent in clear over plain HTTP`);
  });

  it('reads helm repositories.yaml without --repo, and takes --chart-version constraints', async () => {
    const expected = (await readFile(join(SHARED_CHARTS, 'cert-manager', 'expected-images.txt'), 'utf8')).trim();
    const r = ok(await runFerry(['images', '--chart', 'stable/cert-manager', '--chart-version', '1.21.x', '--only-used'], withConfig));
    expect(r.stdout.trim()).toBe(expected);
    const demo = ok(await runFerry(['images', '--chart', 'stable/demo@~1.0', '--json'], withConfig));
    expect(JSON.parse(demo.stdout).charts.map((c: { name: string; version: string }) => `${c.name} ${c.version}`)).toEqual(['demo 1.0.0']);
  });

  it('names the repository, the chart and its versions when none matches; refuses a wrong password and an unknown repository', async () => {
    const label = `repository stable (${repo.origin}/stable)`;
    expect(expectErrorLine(await runFerry(['images', '-q', '--chart', 'stable/demo@9.x'], withConfig), 1)).toBe(
      `ferry: ${label}: chart demo has no version "9.x"; versions: 1.1.0, 1.0.0`,
    );
    const wrong = await runFerry([
      'images',
      '-q',
      '--repo',
      `stable=http://reader:nope@${repo.origin.slice('http://'.length)}/stable`,
      '--chart',
      'stable/demo',
    ]);
    expect(expectErrorLine(wrong, 1)).toBe(`ferry: ${label}: index.yaml ${repo.origin}/stable/index.yaml: HTTP 401; the credentials were refused`);
    expect(expectErrorLine(await runFerry(['images', '-q', '--chart', 'elsewhere/demo']), 2)).toBe(
      'ferry: chart elsewhere/demo not found: give a chart directory, a .tgz file, oci://REGISTRY/REPOSITORY[:VERSION], REPO/CHART[@VERSION] or a chart URL; no repository "elsewhere" is configured (--repo elsewhere=URL, or helm repo add)',
    );
  });
});

describe('ferry images --namespace and --kube-version', () => {
  it('render the chart for that namespace and Kubernetes version, as helm template does', async () => {
    const root = join(dir, 'placed');
    await run('mkdir', ['-p', join(root, 'templates')]);
    await writeFile(join(root, 'Chart.yaml'), 'apiVersion: v2\nname: placed\nversion: 1.0.0\n');
    await writeFile(
      join(root, 'templates', 'pod.yaml'),
      [
        '{{- if ne .Release.Namespace "system" }}{{ fail "install me in the system namespace" }}{{ end }}',
        'apiVersion: v1',
        'kind: Pod',
        'metadata:',
        '  name: placed',
        'spec:',
        '  containers:',
        '    - name: app',
        `      image: ${src.host}/apps/{{ if semverCompare ">=1.31.0-0" .Capabilities.KubeVersion.Version }}new{{ else }}old{{ end }}:{{ .Capabilities.KubeVersion.Version }}`,
        '',
      ].join('\n'),
    );
    const images = async (...args: string[]) => ok(await runFerry(['images', '--chart', root, '-q', ...args])).stdout.trim();
    expect(await images('--namespace', 'system', '--kube-version', '1.31')).toBe(`${src.host}/apps/new:v1.31.0`);
    expect(await images('--namespace', 'system', '--kube-version', 'v1.29.4')).toBe(`${src.host}/apps/old:v1.29.4`);
    expect(expectErrorLine(await runFerry(['images', '--chart', root, '--kube-version', 'latest']), 2)).toBe(
      'ferry: --kube-version "latest" is not a Kubernetes version (e.g. 1.30 or v1.30.2)',
    );
    expect(expectErrorLine(await runFerry(['images', '--chart', root, '--namespace', 'Bad_NS']), 2)).toBe(
      'ferry: --namespace "Bad_NS" is not a Kubernetes namespace name (lowercase letters, digits and -, at most 63)',
    );
  });
});

describe('--version', () => {
  it("is ferry's own only before a command: after one it is an error, and nothing is written", async () => {
    expect(ok(await runFerry(['--version'])).stdout).toBe(`0.1.0\nnode ${process.version}\n`);
    const out = join(dir, 'never.tar');
    const line = expectErrorLine(await runFerry(['pack', '--chart', 'stable/demo', '--version', '1.0.0', '-o', out], withConfig), 2);
    expect(line).toBe('ferry: --version is not an option of this command; a chart version goes in --chart-version VERSION or REPO/CHART@VERSION');
    await expect(readFile(out)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});

describe('ferry pack from a Helm repository, then load', () => {
  it('carries the newest release byte for byte with its .prov layer, and load pushes it where helm pulls it', async () => {
    const out = join(dir, 'demo.tar');
    const r = ok(await runFerry(['pack', '--chart', 'stable/demo', '-o', out, '--json', '-q'], withConfig));
    const summary = JSON.parse(r.stdout);
    expect(summary.images.map((i: { ref: string; digest: string }) => [i.ref, i.digest])).toEqual([[`${src.host}/apps/web:1.0`, web.digest]]);
    const chart = summary.charts[0];
    expect(chart).toMatchObject({ ref: 'charts/demo:1.1.0', name: 'demo', version: '1.1.0', source: `${repo.origin}/files/demo-1.1.0.tgz` });
    const ferry = JSON.parse((await member(out, 'ferry.json')).toString('utf8'));
    expect(ferry.inputs.charts).toEqual(['stable/demo']);
    const manifest = JSON.parse((await member(out, `blobs/sha256/${chart.digest.slice(7)}`)).toString('utf8'));
    expect(manifest.layers.map((l: { mediaType: string; digest: string }) => [l.mediaType, l.digest])).toEqual([
      [HELM_CHART, `sha256:${sha256Hex(tgz.get('1.1.0')!)}`],
      [HELM_PROV, `sha256:${sha256Hex(Buffer.from(PROV))}`],
    ]);

    ok(await runFerry(['load', out, '--to', `${dst.host}/mirror`]));
    const res = await registryFetch(dst, '/v2/mirror/charts/demo/manifests/1.1.0', { headers: { accept: OCI_MANIFEST } });
    expect(res.status).toBe(200);
    expect(res.headers.get('docker-content-digest')).toBe(chart.digest);
    for (const [i, bytes] of [tgz.get('1.1.0')!, Buffer.from(PROV)].entries()) {
      const layer = await registryFetch(dst, `/v2/mirror/charts/demo/blobs/${manifest.layers[i].digest}`);
      expect(Buffer.from(await layer.arrayBuffer()).equals(bytes)).toBe(true);
    }
    const image = await registryFetch(dst, '/v2/mirror/apps/web/manifests/1.0', { method: 'HEAD', headers: { accept: OCI_MANIFEST } });
    expect(image.headers.get('docker-content-digest')).toBe(web.digest);
  });

  it("takes the spec's {repo, name, version}, with the credentials of the configured repository it is under", async () => {
    const spec = join(dir, 'spec.yaml');
    await writeFile(spec, `charts:\n  - repo: ${repo.origin}/stable\n    name: demo\n    version: "1.0.x"\n`);
    const out = join(dir, 'spec.tar');
    const summary = JSON.parse(ok(await runFerry(['pack', '--spec', spec, '-o', out, '--json', '-q'], withConfig)).stdout);
    expect(summary.charts[0]).toMatchObject({ name: 'demo', version: '1.0.0', source: `${repo.origin}/stable/demo-1.0.0.tgz` });
    const manifest = JSON.parse((await member(out, `blobs/sha256/${summary.charts[0].digest.slice(7)}`)).toString('utf8'));
    expect(manifest.layers).toEqual([{ mediaType: HELM_CHART, digest: `sha256:${sha256Hex(tgz.get('1.0.0')!)}`, size: tgz.get('1.0.0')!.length }]);
    const bad = join(dir, 'bad-spec.yaml');
    await writeFile(bad, 'charts:\n  - repo: oci://r.example/c\n    name: demo\n');
    expect(expectErrorLine(await runFerry(['pack', '--spec', bad, '-o', out]), 2)).toMatch(new RegExp(`^ferry: ${bad}: charts\\[0\\]`));
  });
});

describe('unvendored dependencies (--dependency-update)', () => {
  const charts = (stdout: string) =>
    JSON.parse(stdout)
      .charts.map((c: { path: string; version: string; enabled: boolean }) => `${c.path} ${c.version} ${c.enabled}`)
      .sort();

  it('without the flag: the dependencies stay missing, as helm template says', async () => {
    const r = JSON.parse(ok(await runFerry(['images', '--chart', umbrella, '--json', '-q'], withConfig)).stdout);
    expect(r.images.map((i: { reference: string }) => i.reference)).toEqual([]);
    expect(r.warnings.filter((w: string) => w.includes('is not in its charts/ directory'))).toHaveLength(3);
  });

  it('fetches them as helm dependency build: Chart.lock versions, @name repositories, file:// directories', async () => {
    const r = ok(await runFerry(['images', '--dependency-update', '--chart', umbrella, '--json'], withConfig));
    expect(charts(r.stdout)).toEqual([
      'umbrella 2.0.0 true',
      'umbrella/cert-manager v1.21.1 false',
      'umbrella/demo 1.0.0 true',
      'umbrella/local-sub 0.1.0 true',
    ]);
    const used = JSON.parse(r.stdout).images.filter((i: { usage: string }) => i.usage === 'used');
    expect(used.map((i: { reference: string }) => i.reference)).toEqual([`${src.host}/apps/local:1.0`, `${src.host}/apps/web:1.0`]);
    expect(r.stderr).toContain(`${umbrella}: fetched dependency demo 1.0.0 from ${repo.origin}/stable`);
    // without the lock: the newest version matching the constraint
    await rm(join(umbrella, 'Chart.lock'));
    try {
      const fresh = ok(await runFerry(['images', '--dependency-update', '--chart', umbrella, '--json', '-q'], withConfig));
      expect(charts(fresh.stdout)).toContain('umbrella/demo 1.1.0 true');
    } finally {
      await writeFile(
        join(umbrella, 'Chart.lock'),
        ['dependencies:', '- name: demo', `  repository: ${repo.origin}/stable`, '  version: 1.0.0', ''].join('\n'),
      );
    }
  });

  it('pack carries the chart with its dependencies vendored, and the images they use', async () => {
    const out = join(dir, 'umbrella.tar');
    const summary = JSON.parse(ok(await runFerry(['pack', '--dependency-update', '--chart', umbrella, '-o', out, '--json', '-q'], withConfig)).stdout);
    expect(summary.images.map((i: { ref: string; digest: string }) => [i.ref, i.digest])).toEqual([
      [`${src.host}/apps/local:1.0`, local.digest],
      [`${src.host}/apps/web:1.0`, web.digest],
    ]);
    const manifest = JSON.parse((await member(out, `blobs/sha256/${summary.charts[0].digest.slice(7)}`)).toString('utf8'));
    const layer = join(dir, 'umbrella-layer.tgz');
    await writeFile(layer, await member(out, `blobs/sha256/${manifest.layers[0].digest.slice(7)}`));
    const listing = (await run('tar', ['-tzf', layer])).toString('utf8').split('\n').filter(Boolean);
    expect(listing).toEqual(
      expect.arrayContaining([
        'umbrella/Chart.yaml',
        'umbrella/charts/demo-1.0.0.tgz',
        'umbrella/charts/cert-manager-v1.21.1.tgz',
        'umbrella/charts/local-sub/Chart.yaml',
        'umbrella/charts/local-sub/templates/pod.yaml',
      ]),
    );
    // the vendored archive is the repository's, byte for byte
    expect((await run('tar', ['-xOzf', layer, 'umbrella/charts/demo-1.0.0.tgz'])).equals(tgz.get('1.0.0')!)).toBe(true);
  });

  it('fetches an oci:// dependency at the newest tag matching its constraint', async () => {
    // the mirror holds demo 1.1.0 since the load above
    const root = join(dir, 'oci-umbrella');
    await run('mkdir', ['-p', root]);
    await writeFile(
      join(root, 'Chart.yaml'),
      `apiVersion: v2\nname: oci-umbrella\nversion: 1.0.0\ndependencies:\n  - name: demo\n    version: 1.x\n    repository: oci://${dst.host}/mirror/charts\n`,
    );
    const r = ok(await runFerry(['images', '--dependency-update', '--chart', root, '--json', '-q'], withConfig));
    expect(charts(r.stdout)).toEqual(['oci-umbrella 1.0.0 true', 'oci-umbrella/demo 1.1.0 true']);
    const missing = join(dir, 'bad-umbrella');
    await run('mkdir', ['-p', missing]);
    await writeFile(
      join(missing, 'Chart.yaml'),
      'apiVersion: v2\nname: bad\nversion: 1.0.0\ndependencies:\n  - name: demo\n    version: 1.x\n    repository: "@nowhere"\n',
    );
    expect(expectErrorLine(await runFerry(['images', '-q', '--dependency-update', '--chart', missing], withConfig), 2)).toBe(
      `ferry: ${missing}: dependency demo names repository "nowhere", which is not configured (--repo nowhere=URL, or helm repo add)`,
    );
  });
});

describe('the real helm pulls what was packed from a Helm repository, and renders it offline', () => {
  it('--repo NAME=URL --chart NAME/CHART@VERSION and a directory chart with an unvendored dependency: after load, helm pull from the mirror renders both, the dependency included', async () => {
    const out = join(dir, 'helm-oracle.tar');
    ok(
      await runFerry(
        [
          'pack',
          '--repo',
          `extra=http://reader:pa55word@${repo.origin.slice('http://'.length)}/stable`,
          '--chart',
          'extra/demo@1.0.0',
          '--dependency-update',
          '--chart',
          umbrella,
          '-o',
          out,
          '-q',
        ],
        withConfig,
      ),
    );
    const mirror = await startRegistry();
    const helm = await startHelm();
    try {
      ok(await runFerry(['load', out, '--to', `${mirror.host}/mirror`, '-q']));
      const pulled = join(helm.home, 'pulled');
      await mkdir(pulled);
      const render = async (name: string, version: string): Promise<string[]> => {
        await helm.run(['pull', `oci://${mirror.host}/mirror/charts/${name}`, '--version', version, '--plain-http', '-d', pulled]);
        // a .tgz whose dependencies are vendored renders with nothing fetched (a missing one is an error, never a download)
        const text = await helm.run(['template', 'r1', join(pulled, `${name}-${version}.tgz`)]);
        return podImages(parseHelmTemplate(text).map((d) => d.object));
      };
      expect(await render('demo', '1.0.0')).toEqual([`${src.host}/apps/web:1.0`]);
      expect(await render('umbrella', '2.0.0')).toEqual([`${src.host}/apps/local:1.0`, `${src.host}/apps/web:1.0`]);
      // and every image those renders name is at the mirror, as load put it
      for (const [path, image] of [
        ['apps/web', web],
        ['apps/local', local],
      ] as const) {
        const res = await registryFetch(mirror, `/v2/mirror/${path}/manifests/1.0`, { method: 'HEAD', headers: { accept: OCI_MANIFEST } });
        expect(res.headers.get('docker-content-digest')).toBe(image.digest);
      }
    } finally {
      await helm.close();
      await mirror.stop();
    }
  });
});
