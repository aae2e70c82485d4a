// Run-time images: what a chart's render hands to an operator outside pod specs, found by
// shape on small charts written here that mimic the real ones (a Prometheus operator with
// its Prometheus/Alertmanager/ThanosRuler resources, longhorn-style CSI env and settings,
// rook-ceph's operator ConfigMap and CephCluster, gpu-operator's ClusterPolicy), the
// decoys next to them, and a chart with one template ferry cannot evaluate. The real
// helm renders the same charts: every pod image it prints is found as used.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { formatReference, parseReference } from '@ferry/oci-client';
import { makeTempDir, parseHelmTemplate, podImages, removeTempDir, startHelm } from '@ferry/test/harness';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SHARED_CHARTS } from '../../../test/helpers/shared-charts.js';
import { type DiscoveryResult, discoverImages, type ImageUsage } from '../src/charts/discover.js';
import { imagesInManifests } from '../src/charts/manifests.js';
import { valuesImages } from '../src/charts/sources.js';

let dir = '';

async function writeChart(name: string, files: Record<string, string>): Promise<string> {
  const root = join(dir, name);
  const all = { 'Chart.yaml': `apiVersion: v2\nname: ${name}\nversion: 1.0.0\nappVersion: "1.0"\n`, 'values.yaml': '{}\n', ...files };
  for (const [path, text] of Object.entries(all)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), text);
  }
  return root;
}

const deployment = (name: string, container: string) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: ${name}\nspec:\n  template:\n    spec:\n      containers:\n${container}`;

/** A CRD whose schema mentions images in descriptions, defaults and examples: never a reference. */
const CRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: prometheuses.monitoring.coreos.com
spec:
  versions:
    - name: v1
      schema:
        openAPIV3Schema:
          properties:
            spec:
              properties:
                image:
                  description: "Image to run, e.g. quay.io/prometheus/prometheus:v2.0.0"
                  type: string
                  default: quay.io/example/crd-default:v1
                  example: docker.io/example/crd-example:1.0
`;

const CHARTS: Record<string, Record<string, string>> = {
  monitoring: {
    'values.yaml': [
      'prometheusOperator:',
      '  image: {registry: quay.io, repository: prometheus-operator/prometheus-operator, tag: v0.75.2}',
      '  reloader: {registry: quay.io, repository: prometheus-operator/prometheus-config-reloader, tag: v0.75.2}',
      'prometheus:',
      '  image: {registry: quay.io, repository: prometheus/prometheus, tag: v2.54.1}',
      'alertmanager:',
      '  image: {registry: quay.io, repository: prometheus/alertmanager, tag: v0.27.0}',
      'thanosRuler:',
      '  image: {registry: quay.io, repository: thanos/thanos, tag: v0.36.1}',
      '',
    ].join('\n'),
    'templates/operator.yaml': deployment(
      'operator',
      [
        '        - name: operator',
        '          image: "{{ .Values.prometheusOperator.image.registry }}/{{ .Values.prometheusOperator.image.repository }}:{{ .Values.prometheusOperator.image.tag }}"',
        '          args:',
        '            - --kubelet-service=kube-system/kubelet',
        '            - --config-file=/etc/operator/config.yaml',
        '            - --web.listen-address=:8080',
        '            - --log-level=info',
        '            - "--prometheus-config-reloader={{ .Values.prometheusOperator.reloader.registry }}/{{ .Values.prometheusOperator.reloader.repository }}:{{ .Values.prometheusOperator.reloader.tag }}"',
        '            - --thanos-default-base-image=quay.io/thanos/thanos:v0.36.1',
        '            - --image-repository=quay.io/decoy-repo',
        '            - --default-image',
        '            - --verbose',
        '          env:',
        '            - {name: GOGC, value: "30"}',
        '            - {name: PROXY, value: "http://proxy.example.com:3128/"}',
        '            - {name: UPSTREAM, value: "prometheus-operated.monitoring.svc:9090"}',
        '',
      ].join('\n'),
    ),
    'templates/prometheus.yaml': [
      'apiVersion: monitoring.coreos.com/v1',
      'kind: Prometheus',
      'metadata:',
      '  name: k8s',
      'spec:',
      '  image: "{{ .Values.prometheus.image.registry }}/{{ .Values.prometheus.image.repository }}:{{ .Values.prometheus.image.tag }}"',
      '  version: {{ .Values.prometheus.image.tag }}',
      '  replicas: 2',
      '  serviceMonitorSelector: {}',
      '---',
      'apiVersion: monitoring.coreos.com/v1',
      'kind: Alertmanager',
      'metadata:',
      '  name: main',
      'spec:',
      // the image without its tag: the resource's version is the tag, as the operator composes it
      '  image: "{{ .Values.alertmanager.image.registry }}/{{ .Values.alertmanager.image.repository }}"',
      '  version: {{ .Values.alertmanager.image.tag }}',
      '---',
      'apiVersion: monitoring.coreos.com/v1',
      'kind: ThanosRuler',
      'metadata:',
      '  name: ruler',
      'spec:',
      '  image:',
      '{{ toYaml .Values.thanosRuler.image | indent 4 }}',
      '',
    ].join('\n'),
    'templates/crd.yaml': CRD,
    'templates/dashboards.yaml': [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: dashboards',
      'data:',
      '  k8s.json: \'{"title": "container images", "panels": [{"type": "table", "expr": "count by (image) (kube_pod_container_info{image!=\\"\\"})", "legend": "{{`{{image}}`}}"}]}\'',
      '',
    ].join('\n'),
  },
  storage: {
    'values.yaml': [
      'csi:',
      '  attacher: {repository: registry.k8s.io/sig-storage/csi-attacher, tag: v4.6.1}',
      '  provisioner: {repository: registry.k8s.io/sig-storage/csi-provisioner, tag: v5.0.1}',
      'manager: {repository: longhornio/longhorn-manager, tag: v1.7.0}',
      'engine: {repository: longhornio/longhorn-engine, tag: v1.7.0}',
      'supportBundle: {repository: longhornio/support-bundle-kit, tag: v0.0.41}',
      '',
    ].join('\n'),
    'templates/driver.yaml': deployment(
      'driver-deployer',
      [
        '        - name: deployer',
        '          image: "{{ .Values.manager.repository }}:{{ .Values.manager.tag }}"',
        '          command:',
        '            - longhorn-manager',
        '            - -d',
        '            - deploy-driver',
        '            - --manager-image',
        '            - "{{ .Values.manager.repository }}:{{ .Values.manager.tag }}"',
        '            - --engine-image={{ .Values.engine.repository }}:{{ .Values.engine.tag }}',
        '          env:',
        '            - name: CSI_ATTACHER_IMAGE',
        '              value: "{{ .Values.csi.attacher.repository }}:{{ .Values.csi.attacher.tag }}"',
        '            - name: CSI_PROVISIONER_IMAGE',
        '              value: "{{ .Values.csi.provisioner.repository }}:{{ .Values.csi.provisioner.tag }}"',
        '            - name: IMAGE_PULL_POLICY',
        '              value: IfNotPresent',
        '            - name: IMAGE_PULL_SECRET',
        '              value: regcred',
        '            - name: POD_NAMESPACE',
        '              valueFrom: {fieldRef: {fieldPath: metadata.namespace}}',
        '',
      ].join('\n'),
    ),
    'templates/settings.yaml': [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: default-setting',
      'data:',
      '  default-setting.yaml: |-',
      '    support-bundle-manager-image: {{ .Values.supportBundle.repository }}:{{ .Values.supportBundle.tag }}',
      '    priority-class: longhorn-critical',
      '    image-pull-policy: if-not-present',
      '---',
      'apiVersion: v1',
      'kind: Secret',
      'metadata:',
      '  name: helper',
      'data:',
      `  HELPER_IMAGE: {{ "docker.io/library/busybox:1.36" | b64enc }}`,
      `  note: {{ "the image: is pulled later, by the operator" | b64enc }}
  tls.der: {{ "\\x00\\x01image=x/y:1" | b64enc }}`,
      'stringData:',
      '  backup.env: |',
      '    BACKUP_IMAGE=ghcr.io/example/backup:2.1',
      '    BACKUP_TARGET=s3://bucket/path',
      '',
    ].join('\n'),
  },
  rook: {
    'values.yaml': ['csi:', '  cephcsi: {repository: quay.io/cephcsi/cephcsi, tag: v3.12.0}', 'ceph: {image: "quay.io/ceph/ceph:v18.2.4"}', ''].join('\n'),
    'templates/operator.yaml': deployment('rook-ceph-operator', '        - name: operator\n          image: docker.io/rook/ceph:v1.14.9\n'),
    'templates/operator-config.yaml': [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: rook-ceph-operator-config',
      'data:',
      '  ROOK_CSI_ENABLE_RBD: "true"',
      '  CSI_LOG_LEVEL: "0"',
      '  ROOK_CSI_CEPH_IMAGE: "{{ .Values.csi.cephcsi.repository }}:{{ .Values.csi.cephcsi.tag }}"',
      '  ROOK_CSI_REGISTRAR_IMAGE: "registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.11.1"',
      '  ROOK_CSI_RESIZER_IMAGE: ""',
      '',
    ].join('\n'),
    'templates/cluster.yaml': [
      'apiVersion: ceph.rook.io/v1',
      'kind: CephCluster',
      'metadata:',
      '  name: rook-ceph',
      'spec:',
      '  cephVersion:',
      '    image: {{ .Values.ceph.image }}',
      '    allowUnsupported: false',
      '  dataDirHostPath: /var/lib/rook',
      '  storage: {useAllNodes: true, deviceFilter: "^sd[b-z]"}',
      '',
    ].join('\n'),
  },
  gpu: {
    'values.yaml': [
      'operator: {repository: nvcr.io/nvidia, image: gpu-operator, version: v24.6.0}',
      'driver: {enabled: true, repository: nvcr.io/nvidia, image: driver, version: 550.54.15}',
      'toolkit: {enabled: true, repository: nvcr.io/nvidia/k8s, image: container-toolkit, version: v1.16.1-ubuntu20.04}',
      'devicePlugin: {enabled: true, repository: nvcr.io/nvidia, image: k8s-device-plugin, version: v0.16.1}',
      // no version: the operator picks its own, so there is no reference to carry
      'validator: {repository: nvcr.io/nvidia/cloud-native, image: gpu-operator-validator}',
      '',
    ].join('\n'),
    'templates/operator.yaml': deployment(
      'gpu-operator',
      [
        '        - name: gpu-operator',
        '          image: "{{ .Values.operator.repository }}/{{ .Values.operator.image }}:{{ .Values.operator.version }}"',
        '',
      ].join('\n'),
    ),
    'templates/clusterpolicy.yaml': [
      'apiVersion: nvidia.com/v1',
      'kind: ClusterPolicy',
      'metadata:',
      '  name: cluster-policy',
      'spec:',
      '  driver:',
      '{{ toYaml .Values.driver | indent 4 }}',
      '  toolkit:',
      '{{ toYaml .Values.toolkit | indent 4 }}',
      '  devicePlugin:',
      '{{ toYaml .Values.devicePlugin | indent 4 }}',
      '  validator:',
      '{{ toYaml .Values.validator | indent 4 }}',
      '',
    ].join('\n'),
  },
  variants: {
    'values.yaml': 'edition: community\nsub:\n  mode: single\n',
    'templates/app.yaml': deployment(
      'app',
      [
        '        - name: app',
        '          {{- if eq .Values.edition "enterprise" }}',
        '          image: example.com/app-enterprise:2',
        '          {{- else if eq "community" .Values.edition }}',
        '          image: example.com/app:2',
        '          {{- end }}',
        '',
      ].join('\n'),
    ),
    'charts/sub/Chart.yaml': 'apiVersion: v2\nname: sub\nversion: 0.1.0\n',
    'charts/sub/values.yaml': 'mode: single\n',
    'charts/sub/templates/pod.yaml': deployment(
      'sub',
      '        - name: sub\n          image: {{ if eq .Values.mode "cluster" }}example.com/sub-cluster:1{{ else }}example.com/sub:1{{ end }}\n',
    ),
  },
  failing: {
    'values.yaml': [
      'app: {repository: example.com/app, tag: "1"}',
      'broken: {repository: example.com/broken, tag: "2"}',
      // read by no template: a guess, not used, whatever fails elsewhere
      'unused: {repository: example.com/unused, tag: "3"}',
      '',
    ].join('\n'),
    'templates/app.yaml': deployment('app', '        - name: app\n          image: "{{ .Values.app.repository }}:{{ .Values.app.tag }}"\n'),
    'templates/broken.yaml': [
      '{{- include "failing.check" . }}',
      deployment(
        'broken',
        [
          '        - name: broken',
          '          image: "{{ .Values.broken.repository }}:{{ .Values.broken.tag }}"',
          '        - name: helper',
          '          image: example.com/literal-broken:4',
          '',
        ].join('\n'),
      ),
    ].join('\n'),
    'templates/_helpers.tpl': '{{- define "failing.check" -}}\n{{- fail "the cluster is not supported" -}}\n{{- end -}}\n',
    'templates/off.yaml': `{{- if .Values.never }}\n${deployment('off', '        - name: off\n          image: example.com/literal-off:5\n')}{{- end }}\n`,
  },
};

const results = new Map<string, DiscoveryResult>();
const roots = new Map<string, string>();

beforeAll(async () => {
  dir = await makeTempDir('ferry-charts-runtime-');
  for (const [name, files] of Object.entries(CHARTS)) roots.set(name, await writeChart(name, files));
  for (const [name, root] of roots) results.set(name, await discoverImages({ charts: [root] }));
});

afterAll(async () => {
  if (dir) await removeTempDir(dir);
});

function classes(name: string): Partial<Record<ImageUsage, string[]>> {
  const out: Partial<Record<ImageUsage, string[]>> = {};
  for (const i of results.get(name)!.images) (out[i.usage] ??= []).push(i.reference);
  return out;
}

function fields(name: string, ref: string): string[] {
  const image = results.get(name)!.images.find((i) => i.reference === ref);
  return (image?.sources ?? []).filter((s) => s.kind === 'template' && !s.literal).map((s) => s.field!);
}

describe('run-time images by shape', () => {
  it('a Prometheus operator: the config-reloader in its args, the images of its Prometheus, Alertmanager and ThanosRuler resources', () => {
    expect(classes('monitoring')).toEqual({
      used: ['quay.io/prometheus-operator/prometheus-operator:v0.75.2'],
      runtime: [
        'quay.io/prometheus-operator/prometheus-config-reloader:v0.75.2',
        'quay.io/prometheus/alertmanager:v0.27.0',
        'quay.io/prometheus/prometheus:v2.54.1',
        'quay.io/thanos/thanos:v0.36.1',
      ],
    });
    expect(fields('monitoring', 'quay.io/prometheus-operator/prometheus-config-reloader:v0.75.2')).toEqual([
      'Deployment/operator containers[operator] argument --prometheus-config-reloader=quay.io/prometheus-operator/prometheus-config-reloader:v0.75.2',
    ]);
    expect(fields('monitoring', 'quay.io/prometheus/prometheus:v2.54.1')).toEqual(['Prometheus/k8s spec']);
    expect(fields('monitoring', 'quay.io/prometheus/alertmanager:v0.27.0')).toEqual(['Alertmanager/main spec']);
    expect(fields('monitoring', 'quay.io/thanos/thanos:v0.36.1')).toEqual([
      'Deployment/operator containers[operator] argument --thanos-default-base-image=quay.io/thanos/thanos:v0.36.1',
      'ThanosRuler/ruler spec.image',
    ]);
  });

  it('longhorn-style: CSI sidecar images in env, --x-image VALUE pairs, settings text, base64 Secret data, KEY=VALUE lines', () => {
    expect(classes('storage')).toEqual({
      used: ['docker.io/longhornio/longhorn-manager:v1.7.0'],
      runtime: [
        'docker.io/library/busybox:1.36',
        'docker.io/longhornio/longhorn-engine:v1.7.0',
        'docker.io/longhornio/support-bundle-kit:v0.0.41',
        'ghcr.io/example/backup:2.1',
        'registry.k8s.io/sig-storage/csi-attacher:v4.6.1',
        'registry.k8s.io/sig-storage/csi-provisioner:v5.0.1',
      ],
    });
    expect(fields('storage', 'docker.io/longhornio/longhorn-manager:v1.7.0')).toEqual([
      'Deployment/driver-deployer containers[deployer].image',
      'Deployment/driver-deployer containers[deployer] argument --manager-image longhornio/longhorn-manager:v1.7.0',
    ]);
    expect(fields('storage', 'docker.io/longhornio/support-bundle-kit:v0.0.41')).toEqual([
      'ConfigMap/default-setting data default-setting.yaml: support-bundle-manager-image',
    ]);
    expect(fields('storage', 'docker.io/library/busybox:1.36')).toEqual(['Secret/helper data HELPER_IMAGE']);
    expect(fields('storage', 'ghcr.io/example/backup:2.1')).toEqual(['Secret/helper data backup.env: BACKUP_IMAGE']);
  });

  it("rook-ceph-style: the operator ConfigMap's ROOK_CSI_*_IMAGE and the CephCluster's spec.cephVersion.image", () => {
    expect(classes('rook')).toEqual({
      used: ['docker.io/rook/ceph:v1.14.9'],
      runtime: ['quay.io/ceph/ceph:v18.2.4', 'quay.io/cephcsi/cephcsi:v3.12.0', 'registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.11.1'],
    });
    expect(fields('rook', 'quay.io/ceph/ceph:v18.2.4')).toEqual(['CephCluster/rook-ceph spec.cephVersion.image']);
    expect(fields('rook', 'quay.io/cephcsi/cephcsi:v3.12.0')).toEqual(['ConfigMap/rook-ceph-operator-config data ROOK_CSI_CEPH_IMAGE']);
  });

  it('gpu-operator-style: a ClusterPolicy written as {repository, image, version}, in the render and in the values', () => {
    expect(classes('gpu')).toEqual({
      used: ['nvcr.io/nvidia/gpu-operator:v24.6.0'],
      runtime: ['nvcr.io/nvidia/driver:550.54.15', 'nvcr.io/nvidia/k8s-device-plugin:v0.16.1', 'nvcr.io/nvidia/k8s/container-toolkit:v1.16.1-ubuntu20.04'],
    });
    expect(fields('gpu', 'nvcr.io/nvidia/driver:550.54.15')).toEqual(['ClusterPolicy/cluster-policy spec.driver']);
    const driver = results.get('gpu')!.images.find((i) => i.reference === 'nvcr.io/nvidia/driver:550.54.15')!;
    expect(driver.sources).toContainEqual({ kind: 'values', chart: 'gpu', usage: 'runtime', path: 'driver.repository' });
    expect(valuesImages({ driver: { repository: 'nvcr.io/nvidia', image: 'driver', version: '550.54.15' } }, undefined)).toEqual([
      { raw: 'nvcr.io/nvidia/driver:550.54.15', path: 'driver.repository', enabled: true },
    ]);
  });

  it('reports nothing from CRD schemas, dashboards, paths, addresses, URLs, pull policies or secret names', () => {
    const all = [...results.values()].flatMap((r) => r.images.map((i) => i.reference));
    for (const decoy of [
      'crd-default',
      'crd-example',
      'kubelet',
      'config.yaml',
      '8080',
      '9090',
      'proxy',
      'regcred',
      'ifnotpresent',
      'pulled',
      's3:',
      'library/image',
      'x/y',
    ]) {
      expect(all.filter((r) => r.toLowerCase().includes(decoy))).toEqual([]);
    }
  });

  it('skips a CustomResourceDefinition entirely, and a document without a kind counts only for its pod specs', () => {
    expect(imagesInManifests(CRD).images).toEqual([]);
    const { images } = imagesInManifests('image: example.com/loose:1\nspec:\n  containers:\n    - {name: c, image: example.com/pod:1}\n');
    expect(images.map((i) => [i.raw, i.field])).toEqual([['example.com/pod:1', 'image']]);
  });
});

describe('the strings a template compares a value with', () => {
  it("renders the root chart once per other string it compares a value with; subcharts' modes are not explored", () => {
    expect(classes('variants')).toEqual({ used: ['example.com/app:2', 'example.com/sub:1'], optional: ['example.com/app-enterprise:2'] });
    const enterprise = results.get('variants')!.images.find((i) => i.reference === 'example.com/app-enterprise:2')!;
    expect(enterprise.sources).toContainEqual(
      expect.objectContaining({ kind: 'template', literal: false, field: 'Deployment/app containers[app].image', reason: 'only with edition: "enterprise"' }),
    );
  });
});

describe('no guesswork when one template fails', () => {
  it('reports the failing template; only what it reads counts as used, the rest of the render stays authoritative', () => {
    const r = results.get('failing')!;
    expect(r.failures).toEqual([{ chart: 'failing', file: 'templates/broken.yaml', message: expect.stringContaining('the cluster is not supported') }]);
    expect(r.warnings).toContainEqual(expect.stringMatching(/^failing: could not evaluate templates\/broken\.yaml: .*the cluster is not supported/));
    expect(classes('failing')).toEqual({
      used: ['example.com/app:1', 'example.com/broken:2', 'example.com/literal-broken:4'],
      optional: ['example.com/literal-off:5', 'example.com/unused:3'],
    });
    const broken = r.images.find((i) => i.reference === 'example.com/broken:2')!;
    expect(broken.sources).toEqual([{ kind: 'values', chart: 'failing', usage: 'used', path: 'broken.repository' }]);
    const unused = r.images.find((i) => i.reference === 'example.com/unused:3')!;
    expect(unused.sources).toEqual([
      { kind: 'values', chart: 'failing', usage: 'optional', path: 'unused.repository', reason: 'not in any container image of the default render' },
    ]);
  });
});

describe('against the real helm', () => {
  it('every pod image of helm template is found as used, for these charts and the shared charts with run-time lists', async () => {
    const helm = await startHelm();
    try {
      const charts = [
        ...['monitoring', 'storage', 'rook', 'gpu'].map((n) => roots.get(n)!),
        ...['strimzi-kafka-operator', 'plugin-barman-cloud', 'cnpg-cluster'].map((n) => join(SHARED_CHARTS, n)),
      ];
      for (const chart of charts) {
        const rendered = parseHelmTemplate(await helm.run(['template', 'release-name', chart, '--namespace', 'default']));
        const pods = podImages(rendered.map((d) => d.object)).map((i) => formatReference(parseReference(i)));
        expect(pods.length, chart).toBeGreaterThan(0);
        const r = results.get(chart) ?? (await discoverImages({ charts: [chart] }));
        const used = new Set(r.images.filter((i) => i.usage === 'used').map((i) => i.reference));
        expect(
          pods.filter((p) => !used.has(p)),
          chart,
        ).toEqual([]);
      }
    } finally {
      await helm.close();
    }
  }, 120_000);
});
