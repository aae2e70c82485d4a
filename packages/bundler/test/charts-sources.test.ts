// Each image source of chart discovery on its own, with small synthetic charts
// (test/fixtures/charts): annotations and images.lock, rendered manifests,
// the values walk and literal references in templates.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadChart } from '@ferry/helm';
import { describe, expect, it } from 'vitest';
import { type DiscoveryResult, discoverImages, type ImageUsage } from '../src/charts/discover.js';
import { imagesInManifests } from '../src/charts/manifests.js';
import { annotatedImages, literalImages, valuesImages } from '../src/charts/sources.js';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'charts');

/** The references of each class (the empty ones left out). */
function byUsage(r: DiscoveryResult): Partial<Record<ImageUsage, string[]>> {
  const out: Partial<Record<ImageUsage, string[]>> = {};
  for (const i of r.images) (out[i.usage] ??= []).push(i.reference);
  return out;
}

describe('annotations and images.lock', () => {
  it('reads helm.sh/images (HIP-0015), artifacthub.io/images, a bare images key and images.lock', async () => {
    const chart = await loadChart(join(FIXTURES, 'annotated'));
    const found = annotatedImages(chart);
    expect(found).toEqual([
      { key: 'helm.sh/images', raw: 'example.com/team/app:1.0.0', name: 'app' },
      { key: 'helm.sh/images', raw: 'busybox:1.36', name: 'sidecar' },
      { key: 'artifacthub.io/images', raw: 'docker.io/library/postgres:16.2', name: 'db' },
      { key: 'images', raw: 'quay.io/org/tool:v2' },
      { key: 'images.lock', raw: 'docker.io/bitnami/redis:7.2.4-debian-12-r9', name: 'redis' },
    ]);
  });

  it('reports annotated images as declared, normalized and sorted, with their source', async () => {
    const r = await discoverImages({ charts: [join(FIXTURES, 'annotated')] });
    expect(byUsage(r)).toEqual({
      declared: [
        'docker.io/bitnami/redis:7.2.4-debian-12-r9',
        'docker.io/library/busybox:1.36',
        'docker.io/library/postgres:16.2',
        'example.com/team/app:1.0.0',
        'quay.io/org/tool:v2',
      ],
    });
    const busybox = r.images.find((i) => i.reference === 'docker.io/library/busybox:1.36');
    expect(busybox?.charts).toEqual(['annotated']);
    expect(busybox?.sources).toEqual([{ kind: 'annotation', chart: 'annotated', usage: 'declared', path: 'helm.sh/images' }]);
  });
});

describe('rendered manifests (-f)', () => {
  it('finds every container of every pod template in every kind, hooks, CronJobs and custom kinds included', async () => {
    const text = await readFile(join(FIXTURES, 'rendered', 'all-kinds.yaml'), 'utf8');
    const r = await discoverImages({ rendered: [{ name: 'all-kinds.yaml', text }] });
    expect(byUsage(r)).toEqual({
      used: [
        'docker.io/library/busybox:latest',
        'docker.io/library/nginx:1.27',
        'docker.io/library/postgres:16',
        'example.com/agent:1.0',
        'example.com/backup:2024.1',
        'example.com/builder:0.9',
        'example.com/listed:1',
        'example.com/migrate:5',
        'example.com/rs:1.0',
        'ghcr.io/org/web@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
        'registry.example.com:5000/tools/init:v2',
      ],
      // a container argument, an env var and ConfigMap data name an image the workload starts itself
      runtime: ['docker.io/not-a-container/image:1', 'docker.io/org/sidecar:3.1', 'quay.io/org/helper:v1'],
    });
    expect(r.warnings).toEqual([]);
  });

  it('names the resource, container list, file and line of each image', async () => {
    const text = await readFile(join(FIXTURES, 'rendered', 'all-kinds.yaml'), 'utf8');
    const r = await discoverImages({ rendered: [{ name: 'all-kinds.yaml', text }] });
    const get = (ref: string) => r.images.find((i) => i.reference === ref)!.sources;
    expect(get('docker.io/library/busybox:latest')).toEqual([
      { kind: 'rendered', chart: 'all-kinds.yaml', usage: 'used', file: 'all-kinds.yaml', line: 12, field: 'Pod/debug ephemeralContainers[debugger].image' },
    ]);
    expect(get('example.com/backup:2024.1')[0]).toMatchObject({ line: 49, field: 'CronJob/nightly containers[backup].image' });
    expect(get('example.com/builder:0.9')[0]).toMatchObject({ field: 'Workflow/custom containers[builder].image' });
    expect(get('quay.io/org/helper:v1')[0]).toMatchObject({
      usage: 'runtime',
      field: 'Deployment/web containers[web] argument --helper-image=quay.io/org/helper:v1',
    });
    expect(get('docker.io/org/sidecar:3.1')[0]).toMatchObject({ usage: 'runtime', field: 'Deployment/web containers[web] env SIDECAR_IMAGE' });
  });

  it('splits documents as Helm does and keeps going past a broken one', () => {
    const text =
      'kind: Pod\nspec:\n  containers:\n  - image: a:1\n---# comment\nkind: Pod\nspec: {containers: [{image: "b:2"}]}\n---\nkind: Pod\nspec:\n  containers: [ {image: c:3\n---\nkind: Pod\nspec:\n  initContainers:\n  - image: d:4\n';
    const { images, problems } = imagesInManifests(text);
    expect(images.map((i) => i.raw)).toEqual(expect.arrayContaining(['a:1', 'b:2', 'd:4']));
    expect(problems).toHaveLength(1);
  });
});

describe('values walk', () => {
  it('recognises the common image shapes, the appVersion fallback and enabled: false', () => {
    const values = {
      app: { image: 'example.com/app:1.2' },
      web: { image: { registry: 'docker.io', repository: 'bitnami/nginx', tag: '1.25.3', digest: '' } },
      worker: { image: { repository: 'ghcr.io/org/worker', tag: '' } },
      cli: { image: { image: 'org/cli', tag: 'v9' } },
      proxy: { image: { name: 'envoyproxy/envoy', tag: 'v1.29.1' } },
      nginx: {
        image: {
          registry: 'registry.k8s.io',
          image: 'ingress-nginx/controller',
          tag: 'v1.15.1',
          digest: 'sha256:594ceea76b01c592858f803f9ff4d2cb40542cae2060410b2c95f75907d659e1',
        },
      },
      logstash: { image: 'docker.elastic.co/logstash/logstash', imageTag: '7.17.3' },
      test: { enabled: true, image: 'bats/bats', tag: 'v1.4.1' },
      metrics: { enabled: false, exporter: { image: { repository: 'prom/exporter', tag: 'v0.1' } } },
      initContainers: [{ name: 'wait', image: 'busybox:1.36' }],
      repo: { repository: 'https://charts.example.com', name: 'x' },
      named: { image: { name: 'cert-manager-controller' } },
      templated: { image: '{{ .Values.registry }}/x:1' },
      pullPolicy: 'IfNotPresent',
    };
    expect(valuesImages(values, '3.4.5')).toEqual([
      { raw: 'example.com/app:1.2', path: 'app.image', enabled: true },
      { raw: 'docker.io/bitnami/nginx:1.25.3', path: 'web.image', enabled: true },
      { raw: 'ghcr.io/org/worker:3.4.5', path: 'worker.image', enabled: true, guesses: ['appVersion'] },
      { raw: 'org/cli:v9', path: 'cli.image', enabled: true },
      { raw: 'envoyproxy/envoy:v1.29.1', path: 'proxy.image', enabled: true },
      {
        raw: 'registry.k8s.io/ingress-nginx/controller:v1.15.1@sha256:594ceea76b01c592858f803f9ff4d2cb40542cae2060410b2c95f75907d659e1',
        path: 'nginx.image',
        enabled: true,
      },
      { raw: 'docker.elastic.co/logstash/logstash:7.17.3', path: 'logstash.image', enabled: true },
      { raw: 'bats/bats:v1.4.1', path: 'test.image', enabled: true },
      { raw: 'prom/exporter:v0.1', path: 'metrics.exporter.image', enabled: false, disabledBy: 'metrics.enabled' },
      { raw: 'busybox:1.36', path: 'initContainers[0].image', enabled: true },
    ]);
  });

  it("applies Bitnami's global.imageRegistry and the global.registry / global.tag conventions", () => {
    const bitnami = {
      global: { imageRegistry: 'mirror.example.com' },
      image: { registry: 'docker.io', repository: 'bitnami/etcd', tag: '3.5.6' },
    };
    expect(valuesImages(bitnami, undefined).map((i) => i.raw)).toEqual(['mirror.example.com/bitnami/etcd:3.5.6']);
    const globals = {
      global: { registry: 'r.example.com', tag: '7.0' },
      svc: { image: { repository: 'team/svc' } },
      pinned: { image: { repository: 'quay.io/team/pinned', tag: '1.0' } },
    };
    expect(valuesImages(globals, '1.2.3').map((i) => i.raw)).toEqual(['r.example.com/team/svc:7.0', 'quay.io/team/pinned:1.0']);
    const nginxGlobal = { global: { image: { registry: 'registry.k8s.io' } }, backend: { image: { image: 'defaultbackend-amd64', tag: '1.5' } } };
    expect(valuesImages(nginxGlobal, undefined).map((i) => i.raw)).toEqual(['registry.k8s.io/defaultbackend-amd64:1.5']);
  });

  it('in a chart, agrees with the render and marks what only values mention as optional', async () => {
    const r = await discoverImages({ charts: [join(FIXTURES, 'shapes')] });
    expect(byUsage(r)).toEqual({
      used: ['docker.io/bitnami/nginx:1.25.3', 'docker.io/envoyproxy/envoy:v1.29.1', 'docker.io/org/cli:v9', 'example.com/app:1.2', 'ghcr.io/org/worker:3.4.5'],
      optional: ['docker.io/prom/exporter:v0.1'],
    });
    const exporter = r.images.find((i) => i.reference === 'docker.io/prom/exporter:v0.1')!;
    expect(exporter.sources).toContainEqual({ kind: 'values', chart: 'shapes', usage: 'optional', path: 'metrics.image', reason: 'metrics.enabled is false' });
    const worker = r.images.find((i) => i.reference === 'ghcr.io/org/worker:3.4.5')!;
    expect(worker.sources).toContainEqual({ kind: 'values', chart: 'shapes', usage: 'used', path: 'worker.image' });
    expect(worker.sources).toContainEqual(
      expect.objectContaining({ kind: 'template', usage: 'used', file: 'templates/deployment.yaml', line: 14, literal: false }),
    );
  });

  it('follows --set into the values and the render (Bitnami global.imageRegistry)', async () => {
    const r = await discoverImages({ charts: [join(FIXTURES, 'shapes')], set: ['global.imageRegistry=mirror.example.com,metrics.enabled=true'] });
    expect(byUsage(r).used).toEqual([
      'docker.io/envoyproxy/envoy:v1.29.1',
      'docker.io/org/cli:v9',
      'docker.io/prom/exporter:v0.1',
      'example.com/app:1.2',
      'ghcr.io/org/worker:3.4.5',
      'mirror.example.com/bitnami/nginx:1.25.3',
    ]);
  });
});

describe('template literals', () => {
  it('finds references written literally, with file and line, and skips expressions and comments', async () => {
    const chart = await loadChart(join(FIXTURES, 'literals'));
    expect(literalImages(chart)).toEqual([
      { raw: 'bitnami/kubectl:1.25.15', file: 'templates/hook.yaml', line: 12, text: '          image: bitnami/kubectl:1.25.15' },
      { raw: 'quay.io/x/y:v1', file: 'templates/hook.yaml', line: 14, text: '            - --some-image=quay.io/x/y:v1' },
      { raw: 'docker.io/library/alpine:3.19', file: 'templates/hook.yaml', line: 17, text: '          image: "docker.io/library/alpine:3.19"' },
    ]);
  });

  it('reports the hook image as used, the argument images as runtime, comments not at all', async () => {
    const r = await discoverImages({ charts: [join(FIXTURES, 'literals')] });
    expect(byUsage(r)).toEqual({
      used: ['docker.io/bitnami/kubectl:1.25.15', 'docker.io/library/alpine:3.19', 'example.com/templated:2.0'],
      runtime: ['example.com/other:3.0', 'quay.io/x/y:v1'],
    });
    const kubectl = r.images.find((i) => i.reference === 'docker.io/bitnami/kubectl:1.25.15')!;
    expect(kubectl.sources).toContainEqual({ kind: 'template', chart: 'literals', usage: 'used', file: 'templates/hook.yaml', line: 12, literal: true });
    expect(kubectl.sources).toContainEqual({
      kind: 'template',
      chart: 'literals',
      usage: 'used',
      file: 'templates/hook.yaml',
      line: 12,
      field: 'Job/release-name-hook containers[kubectl].image',
      literal: false,
      hook: 'pre-upgrade',
    });
  });
});
