// Discovery on real public charts, read in place from ../shared/charts (next to
// the repository, or FERRY_SHARED_CHARTS): every folder with an expected-images.txt
// (more are added over time). Every image a default render puts in a container
// must be found as used (or, for a chart whose dependencies are missing, declared
// by its annotation), every run-time image (expected-runtime-images.txt, when
// present) as runtime or used, every optional one found, and nothing reported that
// the chart does not reference. The expected lists were derived by hand (see each
// chart's expected-images-notes.md).
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SHARED_CHARTS } from '../../../test/helpers/shared-charts.js';
import { type DiscoveryResult, discoverImages } from '../src/charts/discover.js';
import { imagesReport } from '../src/charts/report.js';

function list(chart: string, file: string): string[] {
  const path = join(SHARED_CHARTS, chart, file);
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .map((l) => l.replace(/#.*$/, '').trim())
    .filter((l) => l !== '');
}

const CHARTS = existsSync(SHARED_CHARTS)
  ? readdirSync(SHARED_CHARTS, { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(join(SHARED_CHARTS, d.name, 'expected-images.txt')))
      .map((d) => d.name)
      .sort()
  : [];

it('the shared real charts are there to read', () => {
  expect(
    CHARTS.length,
    `${SHARED_CHARTS} (the shared real charts; set FERRY_SHARED_CHARTS if they are not in ../shared/charts) must hold charts`,
  ).toBeGreaterThan(0);
  // the folders with run-time lists this suite was written against
  expect(CHARTS).toEqual(expect.arrayContaining(['cert-manager', 'cnpg-cluster', 'plugin-barman-cloud', 'strimzi-kafka-operator']));
});

describe.each(CHARTS)('real chart %s', (name) => {
  const dir = join(SHARED_CHARTS, name);
  const expected = list(name, 'expected-images.txt');
  const optional = list(name, 'expected-optional-images.txt');
  const runtime = list(name, 'expected-runtime-images.txt');
  let result: DiscoveryResult | undefined;
  // CPU time of this process, not wall time: other suites share the machine's two cores.
  let ms = 0;
  const discover = async (): Promise<DiscoveryResult> => {
    if (!result) {
      const started = process.cpuUsage();
      result = await discoverImages({ charts: [dir] });
      const used = process.cpuUsage(started);
      ms = (used.user + used.system) / 1000;
    }
    return result;
  };
  const of = (r: DiscoveryResult, ...classes: string[]) => new Set(r.images.filter((i) => classes.includes(i.usage)).map((i) => i.reference));

  it('is there to read', () => {
    expect(existsSync(join(dir, 'Chart.yaml'))).toBe(true);
    expect(expected.length).toBeGreaterThan(0);
  });

  it('finds every image of the default render as used (declared where only the annotation knows it)', async () => {
    const r = await discover();
    const found = r.images.some((i) => i.usage === 'declared') ? of(r, 'used', 'declared') : of(r, 'used');
    expect(expected.filter((e) => !found.has(e))).toEqual([]);
  });

  it('finds every run-time image as runtime (or used)', async () => {
    const r = await discover();
    const found = of(r, 'used', 'runtime');
    expect(runtime.filter((e) => !found.has(e))).toEqual([]);
    // a reference both in a pod spec and handed to an operator is used, and also named at run time
    for (const e of runtime.filter((x) => expected.includes(x))) {
      expect(r.images.find((i) => i.reference === e)?.sources.some((s) => s.usage === 'runtime')).toBe(true);
    }
  });

  it('finds every optional image (in any class)', async () => {
    const r = await discover();
    const all = new Set(r.images.map((i) => i.reference));
    expect(optional.filter((e) => !all.has(e))).toEqual([]);
  });

  it('reports nothing the chart does not reference', async () => {
    const r = await discover();
    const known = new Set([...expected, ...optional, ...runtime]);
    expect(r.images.filter((i) => !known.has(i.reference)).map((i) => ({ reference: i.reference, sources: i.sources }))).toEqual([]);
  });

  it('passes --check with its expected lists, and fails it with one image left out', async () => {
    // the older folders list run-time images (cert-manager's acmesolver) with the optional ones
    const text = [...expected, ...runtime, ...optional].join('\n');
    const ok = await imagesReport({ charts: [dir], check: { name: 'expected-images.txt', text } });
    expect(ok.failure).toBeUndefined();
    expect(ok.check?.extra).toEqual([]);
    expect(ok.check?.missing.filter((m) => m.required)).toEqual([]);

    const dropped = expected[expected.length - 1]!;
    const short = [...expected, ...runtime, ...optional].filter((l) => l !== dropped).join('\n');
    const bad = await imagesReport({ charts: [dir], check: { name: 'images.txt', text: short } });
    expect(bad.failure?.exitCode).toBe(1);
    expect(bad.text).toMatch(
      new RegExp(`missing from images\\.txt \\(used by the chart\\):\\n\\+ ${dropped.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(  # \\w+)?\\n`),
    );
    expect(bad.text).toMatch(/images\.txt: 1 (used )?image (the chart needs )?missing$/);
  });

  it('is quick: discovery takes well under a few seconds of CPU', async () => {
    await discover();
    // openebs-full's etcd subchart calls genPrivateKey "rsa": a real RSA-4096 key, 1–1.6 s of CPU (once per process)
    expect(ms).toBeLessThan(4500);
  });
});

describe('what makes the real charts hard', () => {
  it('cert-manager: the tag comes from appVersion, the acmesolver (run time) only from a container argument', async () => {
    const r = await discoverImages({ charts: [join(SHARED_CHARTS, 'cert-manager')] });
    const solver = r.images.find((i) => i.reference === 'quay.io/jetstack/cert-manager-acmesolver:v1.21.1')!;
    expect(solver.usage).toBe('runtime');
    expect(solver.sources[0]).toMatchObject({
      kind: 'template',
      file: 'templates/deployment.yaml',
      field: expect.stringContaining(' argument --acme-http01-solver-image='),
    });
  });

  it('ingress-nginx: registry/image/tag/digest, hook-only certgen, and no decoys from ci/ or tests/', async () => {
    const r = await discoverImages({ charts: [join(SHARED_CHARTS, 'ingress-nginx')] });
    const refs = r.images.map((i) => i.reference);
    expect(refs.some((x) => x.includes('1.0.0-dev') || x.includes('custom'))).toBe(false);
    const certgen = r.images.find((i) => i.reference.startsWith('registry.k8s.io/ingress-nginx/kube-webhook-certgen:'))!;
    expect(certgen.sources.filter((s) => s.kind === 'template').map((s) => s.field)).toEqual([
      'Job/release-name-ingress-nginx-admission-create containers[create].image',
      'Job/release-name-ingress-nginx-admission-patch containers[patch].image',
    ]);
    const chroot = r.images.find((i) => i.reference.includes('controller-chroot'))!;
    expect(chroot.usage).toBe('optional');
  });

  it('openebs-annotated: the annotation tells what the missing dependencies would run', async () => {
    const r = await discoverImages({ charts: [join(SHARED_CHARTS, 'openebs-annotated')] });
    expect(r.warnings.filter((w) => w.includes('is not in its charts/ directory'))).toHaveLength(4);
    const lvm = r.images.find((i) => i.reference === 'docker.io/openebs/lvm-driver:1.6.1')!;
    expect(lvm.sources).toEqual([{ kind: 'annotation', chart: 'openebs', usage: 'declared', path: 'helm.sh/images' }]);
  });

  it('openebs-full: the hook, tpl-rendered init containers, requirements.yaml conditions, and values overridden by parents', async () => {
    const r = await discoverImages({ charts: [join(SHARED_CHARTS, 'openebs-full')] });
    const get = (ref: string) => r.images.find((i) => i.reference === ref);
    expect(get('docker.io/bitnami/kubectl:1.25.15')?.sources[0]).toMatchObject({
      kind: 'template',
      chart: 'openebs',
      file: 'templates/pre-upgrade-hook.yaml',
      usage: 'used',
    });
    expect(get('docker.io/library/busybox:latest')?.charts).toEqual(['openebs/mayastor']);
    expect(get('docker.io/openebs/mayastor-csi-node:v2.7.1')?.usage).toBe('used');
    expect(
      r.charts
        .filter((c) => !c.enabled)
        .map((c) => c.path)
        .sort(),
    ).toEqual([
      'openebs/mayastor/crds',
      'openebs/mayastor/jaeger-operator',
      'openebs/mayastor/localpv-provisioner',
      'openebs/mayastor/loki-stack/filebeat',
      'openebs/mayastor/loki-stack/fluent-bit',
      'openebs/mayastor/loki-stack/grafana',
      'openebs/mayastor/loki-stack/logstash',
      'openebs/mayastor/loki-stack/prometheus',
      'openebs/mayastor/loki-stack/prometheus/kube-state-metrics',
    ]);
    // decoys: subchart defaults the parent overrides, and examples/ values
    const refs = r.images.map((i) => i.reference);
    expect(refs).not.toContain('docker.elastic.co/logstash/logstash:7.17.3');
    expect(refs).not.toContain('docker.io/grafana/grafana:9.2.4');
    expect(refs.some((x) => x.includes('filebeat-oss'))).toBe(false);
  });

  it('strimzi: operand images in env, three as multi-line version=image lists, one under a name without IMAGE', async () => {
    const r = await discoverImages({ charts: [join(SHARED_CHARTS, 'strimzi-kafka-operator')] });
    const fields = (ref: string) =>
      r.images
        .find((i) => i.reference === ref)!
        .sources.filter((s) => s.kind === 'template')
        .map((s) => s.field);
    expect(fields('quay.io/strimzi/kafka:1.2.0-kafka-4.2.0').map((f) => f!.replace(/^.* env /, ''))).toEqual([
      'STRIMZI_KAFKA_IMAGES',
      'STRIMZI_KAFKA_CONNECT_IMAGES',
      'STRIMZI_KAFKA_MIRROR_MAKER_2_IMAGES',
    ]);
    expect(fields('quay.io/strimzi/maven-builder:1.2.0')).toEqual([expect.stringMatching(/ env STRIMZI_DEFAULT_MAVEN_BUILDER$/)]);
    expect(r.images.find((i) => i.reference === 'quay.io/strimzi/operator:1.2.0')?.usage).toBe('used');
  });

  it('plugin-barman-cloud: the sidecar image only in ConfigMap data', async () => {
    const r = await discoverImages({ charts: [join(SHARED_CHARTS, 'plugin-barman-cloud')] });
    const sidecar = r.images.find((i) => i.reference === 'ghcr.io/cloudnative-pg/plugin-barman-cloud-sidecar:v0.13.0')!;
    expect(sidecar.usage).toBe('runtime');
    expect(sidecar.sources[0]).toMatchObject({ file: 'templates/configmap.yaml', field: 'ConfigMap/plugin-barman-cloud-config data SIDECAR_IMAGE' });
  });

  it('cnpg-cluster: the PostgreSQL image only in the Cluster resource, the pod image only in a test hook, other types optional', async () => {
    const r = await discoverImages({ charts: [join(SHARED_CHARTS, 'cnpg-cluster')] });
    const get = (ref: string) => r.images.find((i) => i.reference === ref)!;
    expect(get('ghcr.io/cloudnative-pg/postgresql:16')).toMatchObject({
      usage: 'runtime',
      sources: [expect.objectContaining({ field: 'Cluster/release-name-cluster spec.imageName' })],
    });
    expect(get('docker.io/library/alpine:3.17')).toMatchObject({ usage: 'used', testHook: true });
    expect(get('ghcr.io/cloudnative-pg/postgis:16-3.4').sources[0]).toMatchObject({ usage: 'optional', reason: 'only with type: "postgis"' });
    expect(get('docker.io/timescale/timescaledb-ha:pg16-ts2.15').sources[0]).toMatchObject({
      usage: 'optional',
      reason: 'only with type: "timescaledb"',
      field: 'ImageCatalog/release-name-cluster-timescaledb-ha spec.images[4]',
    });
  });
});
