// Discovery on real public charts, read in place from ../shared/charts (next to
// the repository, or FERRY_SHARED_CHARTS): every image a default render puts in a container must be
// found as used, every optional one found, and nothing reported that the chart
// does not reference. The expected lists were derived by hand (see each chart's
// expected-images-notes.md).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { SHARED_CHARTS } from '../../../test/helpers/shared-charts.js';
import { type DiscoveryResult, discoverImages } from '../src/charts/discover.js';
import { imagesReport } from '../src/charts/report.js';

function list(chart: string, file: string): string[] {
  return readFileSync(join(SHARED_CHARTS, chart, file), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

const CHARTS = ['cert-manager', 'ingress-nginx', 'openebs-annotated', 'openebs-full'];

describe.each(CHARTS)('real chart %s', (name) => {
  const dir = join(SHARED_CHARTS, name);
  const expected = existsSync(dir) ? list(name, 'expected-images.txt') : [];
  const optional = existsSync(dir) ? list(name, 'expected-optional-images.txt') : [];
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

  it('is there to read', () => {
    expect(existsSync(join(dir, 'Chart.yaml')), `${dir} (the shared real charts; set FERRY_SHARED_CHARTS if they are not in ../shared/charts) must exist`).toBe(
      true,
    );
    expect(expected.length).toBeGreaterThan(0);
  });

  it('finds every image of the default render as used', async () => {
    const r = await discover();
    const used = new Set(r.images.filter((i) => i.usage === 'used').map((i) => i.reference));
    expect(expected.filter((e) => !used.has(e))).toEqual([]);
  });

  it('finds every optional image (as optional or used)', async () => {
    const r = await discover();
    const all = new Set(r.images.map((i) => i.reference));
    expect(optional.filter((e) => !all.has(e))).toEqual([]);
  });

  it('reports nothing the chart does not reference', async () => {
    const r = await discover();
    const known = new Set([...expected, ...optional]);
    expect(r.images.filter((i) => !known.has(i.reference)).map((i) => ({ reference: i.reference, sources: i.sources }))).toEqual([]);
  });

  it('passes --check with its expected list, and fails it with one image left out', async () => {
    const text = readFileSync(join(dir, 'expected-images.txt'), 'utf8');
    const ok = await imagesReport({ charts: [dir], check: { name: 'expected-images.txt', text } });
    expect(ok.failure).toBeUndefined();
    expect(ok.check?.extra).toEqual([]);
    expect(ok.check?.missing.filter((m) => m.usage === 'used')).toEqual([]);

    const dropped = expected[expected.length - 1]!;
    const short = text
      .split('\n')
      .filter((l) => l.trim() !== dropped)
      .join('\n');
    const bad = await imagesReport({ charts: [dir], check: { name: 'images.txt', text: short } });
    expect(bad.failure?.exitCode).toBe(1);
    expect(bad.text).toContain(`missing from images.txt (used by the chart):\n+ ${dropped}\n`);
    expect(bad.text).toMatch(/images\.txt: 1 used image missing$/);
  });

  if (name === 'openebs-full') {
    it('is quick: discovery takes well under a few seconds of CPU', async () => {
      await discover();
      // openebs-full's etcd subchart calls genPrivateKey "rsa": a real RSA-4096 key, 1–1.6 s of CPU (once per process)
      expect(ms).toBeLessThan(4500);
    });
  }
});

describe('what makes the real charts hard', () => {
  it('cert-manager: the tag comes from appVersion, the acmesolver only from a container argument', async () => {
    const r = await discoverImages({ charts: [join(SHARED_CHARTS, 'cert-manager')] });
    const solver = r.images.find((i) => i.reference === 'quay.io/jetstack/cert-manager-acmesolver:v1.21.1')!;
    expect(solver.usage).toBe('optional');
    expect(solver.sources[0]).toMatchObject({ kind: 'template', file: 'templates/deployment.yaml', reason: 'only in a container argument' });
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
    expect(lvm.sources).toEqual([{ kind: 'annotation', chart: 'openebs', usage: 'used', path: 'helm.sh/images' }]);
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
});
