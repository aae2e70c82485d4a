// --namespace and --kube-version on `ferry images` and `ferry pack`: a chart that
// `fail`s outside its namespace (as ks-core does) renders with --namespace, a
// chart choosing its image by .Capabilities.KubeVersion follows --kube-version,
// and the real helm renders the same chart the same way with the same flags.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Helm, parseHelmTemplate, podImages, startHelm } from './harness/helm.js';
import { type SeededImage, seedImage, startRegistry, type TestRegistry } from './harness/index.js';
import { makeTempDir, removeTempDir, run } from './harness/process.js';
import { expectErrorLine, type FerryHome, type FerryResult, makeFerryHome, runFerry as runFerryIn } from './helpers/ferry.js';

let registry: TestRegistry;
let core: SeededImage;
let legacy: SeededImage;
let helm: Helm;
let dir: string;
let chart: string;
let home: FerryHome;

const runFerry = (args: string[]) => runFerryIn(args, { home, env: { FERRY_RETRY_BUDGET: '0', HELM_REPOSITORY_CONFIG: join(dir, 'none.yaml') } });
function ok(r: FerryResult): FerryResult {
  expect(r.code, r.stderr).toBe(0);
  return r;
}

beforeAll(async () => {
  registry = await startRegistry();
  [core, legacy] = await Promise.all([
    seedImage(registry, 'apps/core:1.0', { single: true, layers: 1, layerSize: 1024, seed: 'core' }),
    seedImage(registry, 'apps/core-legacy:1.0', { single: true, layers: 1, layerSize: 1024, seed: 'legacy' }),
  ]);
  helm = await startHelm();
  dir = await makeTempDir('ferry-chart-ns-');
  home = await makeFerryHome();
  chart = join(dir, 'nsbound');
  await mkdir(join(chart, 'templates'), { recursive: true });
  await writeFile(join(chart, 'Chart.yaml'), 'apiVersion: v2\nname: nsbound\nversion: 1.0.0\n');
  await writeFile(join(chart, 'values.yaml'), `image: ${registry.host}/apps/core:1.0\nlegacyImage: ${registry.host}/apps/core-legacy:1.0\n`);
  await writeFile(
    join(chart, 'templates', 'namespace-check.yaml'),
    '{{- if ne .Release.Namespace "kubesphere-system" }}\n{{- fail "this chart installs into the kubesphere-system namespace only" }}\n{{- end }}\n',
  );
  await writeFile(
    join(chart, 'templates', 'deployment.yaml'),
    [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      '  name: {{ .Release.Name }}-core',
      '  namespace: {{ .Release.Namespace }}',
      'spec:',
      '  template:',
      '    spec:',
      '      containers:',
      '        - name: core',
      '          image: {{ if semverCompare "<1.25-0" .Capabilities.KubeVersion.Version }}{{ .Values.legacyImage }}{{ else }}{{ .Values.image }}{{ end }}',
      '',
    ].join('\n'),
  );
}, 180_000);

afterAll(async () => {
  await helm?.close();
  await registry?.stop();
  if (dir) await removeTempDir(dir);
  if (home) await removeTempDir(home.dir);
});

describe('ferry images --namespace / --kube-version', () => {
  it('helm itself refuses the chart outside its namespace and renders it inside', async () => {
    await expect(helm.run(['template', 'ks', chart])).rejects.toThrow('this chart installs into the kubesphere-system namespace only');
    const text = await helm.run(['template', 'ks', chart, '--namespace', 'kubesphere-system']);
    expect(podImages(parseHelmTemplate(text).map((d) => d.object))).toEqual([`${registry.host}/apps/core:1.0`]);
  });

  it('renders the chart in the namespace given: exactly the image helm renders, no template failure', async () => {
    const r = ok(await runFerry(['images', '--chart', chart, '--namespace', 'kubesphere-system']));
    expect(r.stdout).toBe(`${registry.host}/apps/core:1.0\n`);
    expect(r.stderr).not.toContain('could not evaluate');
  });

  it('without --namespace says which template failed and why', async () => {
    const r = ok(await runFerry(['images', '--chart', chart]));
    expect(r.stderr).toContain(
      'warning: nsbound: could not evaluate templates/namespace-check.yaml: this chart installs into the kubesphere-system namespace only',
    );
  });

  it('--kube-version decides .Capabilities.KubeVersion as helm template --kube-version does', async () => {
    const text = await helm.run(['template', 'ks', chart, '--namespace', 'kubesphere-system', '--kube-version', '1.24']);
    expect(podImages(parseHelmTemplate(text).map((d) => d.object))).toEqual([`${registry.host}/apps/core-legacy:1.0`]);
    const r = ok(await runFerry(['images', '--chart', chart, '--namespace', 'kubesphere-system', '--kube-version', '1.24']));
    expect(r.stdout).toBe(`${registry.host}/apps/core-legacy:1.0\n`);
  });
});

describe('ferry pack --namespace / --kube-version', () => {
  it('packs the images of the chart rendered in that namespace and Kubernetes version', async () => {
    const out = join(dir, 'ns.tar');
    ok(await runFerry(['pack', '--chart', chart, '--namespace', 'kubesphere-system', '-o', out]));
    const ferry = JSON.parse((await run('tar', ['-xOf', out, 'ferry.json'])).toString()) as { images: Array<{ ref: string; digest: string }> };
    expect(ferry.images.map((i) => [i.ref, i.digest])).toEqual([[`${registry.host}/apps/core:1.0`, core.digest]]);

    const older = join(dir, 'ns-124.tar');
    ok(await runFerry(['pack', '--chart', chart, '--namespace', 'kubesphere-system', '--kube-version', 'v1.24.3', '-o', older]));
    const ferry124 = JSON.parse((await run('tar', ['-xOf', older, 'ferry.json'])).toString()) as { images: Array<{ ref: string; digest: string }> };
    expect(ferry124.images.map((i) => [i.ref, i.digest])).toEqual([[`${registry.host}/apps/core-legacy:1.0`, legacy.digest]]);
  });

  it('refuses a bad namespace or Kubernetes version with one line and exit 2, writing nothing', async () => {
    const bad = join(dir, 'bad.tar');
    expect(expectErrorLine(await runFerry(['pack', '--chart', chart, '--namespace', 'Kube_System', '-o', bad]), 2)).toBe(
      'ferry: --namespace "Kube_System" is not a Kubernetes namespace name (lowercase letters, digits and -, at most 63)',
    );
    expect(expectErrorLine(await runFerry(['pack', '--chart', chart, '--kube-version', 'latest', '-o', bad]), 2)).toBe(
      'ferry: --kube-version "latest" is not a Kubernetes version (e.g. 1.30 or v1.30.2)',
    );
    await expect(readFile(bad)).rejects.toThrow();
  });
});
