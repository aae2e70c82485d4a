// Helm values files that point charts at the mirror (`load --values-out`,
// `ferry values`, `images --to --values-out`), checked with the real helm: every
// image the chart renders with the file is at the mirror, and the mirror holds
// it with the digest the bundle has. With --platform, a digest-pinned image is
// named by the digest that exists there, and `verify --against` says that the
// pinned one does not.
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import {
  type Helm,
  parseHelmTemplate,
  podImages,
  registryFetch,
  type SeededImage,
  seedImage,
  startHelm,
  startRegistry,
  type TestRegistry,
} from './harness/index.js';
import { makeTempDir, removeTempDir, run } from './harness/process.js';
import { expectErrorLine, type FerryHome, type FerryResult, makeFerryHome, runFerry as runFerryIn } from './helpers/ferry.js';
import { SHARED_CHARTS } from './helpers/shared-charts.js';

const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

let src: TestRegistry;
let dst: TestRegistry;
let helm: Helm;
let dir: string;
let home: FerryHome;
let mirror: string;
let split: SeededImage;
let bundle: string;
let shapesDir: string;
let legacyDir: string;
let loaded: FerryResult;
let valuesDir: string;
let mappingFile: string;

const runFerry = (args: string[]) => runFerryIn(args, { home });

function ok(r: FerryResult): FerryResult {
  expect(r.code, r.stderr).toBe(0);
  return r;
}

async function writeFiles(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), text);
  }
}

/**
 * `shapes`: an image in each shape charts use: ingress-nginx's registry/image/tag/digest
 * split (pinned, multi-platform), a repository holding its host, a full `image:` string,
 * a bitnami-style helper where global.imageRegistry wins over the image's registry, and
 * a subchart under an alias. `legacy`: an image written literally in its template.
 */
async function writeCharts(): Promise<void> {
  const h = src.host;
  shapesDir = join(dir, 'shapes');
  await writeFiles(shapesDir, {
    'Chart.yaml': 'apiVersion: v2\nname: shapes\nversion: 0.1.0\nappVersion: "1.0"\ndependencies:\n  - name: sub\n    version: 0.1.0\n    alias: worker\n',
    'values.yaml': [
      'global:',
      `  imageRegistry: ${h}`,
      'split:',
      '  image:',
      `    registry: ${h}`,
      '    image: team/split',
      '    tag: "1.0"',
      `    digest: ${split.digest}`,
      'hostrepo:',
      '  image:',
      `    repository: ${h}/team/hostrepo`,
      '    tag: "2.0"',
      'full:',
      `  image: ${h}/team/full:3.0`,
      'bitnami:',
      '  image:',
      `    registry: ${h}`,
      '    repository: team/bitnami',
      '    tag: "4.0"',
      'worker:',
      '  image:',
      '    tag: "6.0"',
      '',
    ].join('\n'),
    'templates/_helpers.tpl': [
      '{{- define "shapes.image" -}}',
      '{{- $registry := .image.registry -}}',
      '{{- if .global.imageRegistry }}{{ $registry = .global.imageRegistry }}{{ end -}}',
      '{{- printf "%s/%s:%s" $registry .image.repository .image.tag -}}',
      '{{- end -}}',
      '',
    ].join('\n'),
    'templates/deployment.yaml': [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      '  name: {{ .Release.Name }}-shapes',
      'spec:',
      '  selector:',
      '    matchLabels: {app: shapes}',
      '  template:',
      '    metadata:',
      '      labels: {app: shapes}',
      '    spec:',
      '      containers:',
      '        - name: split',
      '          image: "{{ .Values.split.image.registry }}/{{ .Values.split.image.image }}:{{ .Values.split.image.tag }}{{ with .Values.split.image.digest }}@{{ . }}{{ end }}"',
      '        - name: hostrepo',
      '          image: "{{ .Values.hostrepo.image.repository }}:{{ .Values.hostrepo.image.tag }}"',
      '        - name: full',
      '          image: {{ .Values.full.image | quote }}',
      '        - name: bitnami',
      '          image: {{ include "shapes.image" (dict "image" .Values.bitnami.image "global" .Values.global) | quote }}',
      '',
    ].join('\n'),
    'charts/sub/Chart.yaml': 'apiVersion: v2\nname: sub\nversion: 0.1.0\n',
    'charts/sub/values.yaml': `image:\n  registry: ${h}\n  repository: team/sub\n  tag: "0.0"\n`,
    'charts/sub/templates/job.yaml': [
      'apiVersion: batch/v1',
      'kind: Job',
      'metadata:',
      '  name: {{ .Release.Name }}-worker',
      '  annotations:',
      '    "helm.sh/hook": post-install',
      'spec:',
      '  template:',
      '    spec:',
      '      restartPolicy: Never',
      '      containers:',
      '        - name: worker',
      '          image: "{{ .Values.image.registry }}/{{ .Values.image.repository }}:{{ .Values.image.tag }}"',
      '',
    ].join('\n'),
  });
  legacyDir = join(dir, 'legacy');
  await writeFiles(legacyDir, {
    'Chart.yaml': 'apiVersion: v2\nname: legacy\nversion: 1.0.0\n',
    'values.yaml': 'replicas: 1\n',
    'templates/pod.yaml': [
      'apiVersion: v1',
      'kind: Pod',
      'metadata:',
      '  name: {{ .Release.Name }}-legacy',
      'spec:',
      '  containers:',
      '    - name: legacy',
      `      image: ${h}/team/legacy:7.0`,
      '',
    ].join('\n'),
  });
}

async function helmImages(chart: string, values: string): Promise<{ images: string[]; text: string }> {
  const text = await helm.run(['template', 'r1', chart, '-f', values]);
  return { images: podImages(parseHelmTemplate(text).map((d) => d.object)), text };
}

/** The digest the registry answers a manifest HEAD with, or its status when not 200. */
async function manifestDigest(reg: TestRegistry, ref: string): Promise<string> {
  const at = ref.indexOf('@');
  const name = at < 0 ? ref : ref.slice(0, at);
  const colon = name.lastIndexOf(':');
  const repo = name.slice(reg.host.length + 1, colon);
  const res = await registryFetch(reg, `/v2/${repo}/manifests/${at < 0 ? name.slice(colon + 1) : ref.slice(at + 1)}`, {
    method: 'HEAD',
    headers: { accept: `${OCI_INDEX}, ${OCI_MANIFEST}` },
  });
  await res.body?.cancel();
  return res.status === 200 ? (res.headers.get('docker-content-digest') ?? '') : `HTTP ${res.status}`;
}

interface MappingFile {
  images: Array<{ source: string; target: string; digest: string }>;
}

beforeAll(async () => {
  [src, dst, helm] = await Promise.all([startRegistry(), startRegistry(), startHelm()]);
  dir = await makeTempDir('ferry-values-');
  home = await makeFerryHome();
  mirror = `${dst.host}/mirror`;
  const small = { layers: 1, layerSize: 2048 } as const;
  [split] = await Promise.all([
    seedImage(src, 'team/split:1.0', { ...small, seed: 'split' }),
    seedImage(src, 'team/hostrepo:2.0', { ...small, seed: 'hostrepo' }),
    seedImage(src, 'team/full:3.0', { ...small, seed: 'full' }),
    seedImage(src, 'team/bitnami:4.0', { ...small, seed: 'bitnami' }),
    seedImage(src, 'team/sub:6.0', { ...small, seed: 'sub' }),
    seedImage(src, 'team/legacy:7.0', { ...small, seed: 'legacy' }),
  ]);
  await writeCharts();
  bundle = join(dir, 'bundle.tar');
  ok(await runFerry(['pack', '--chart', shapesDir, '--chart', legacyDir, '--platform', 'linux/amd64', '-o', bundle]));
  valuesDir = join(dir, 'values-load');
  mappingFile = join(dir, 'mapping.yaml');
  loaded = ok(await runFerry(['load', bundle, '--to', mirror, '--values-out', valuesDir, '--mapping-out', mappingFile]));
}, 240_000);

afterAll(async () => {
  await Promise.all([src?.stop(), dst?.stop(), helm?.close(), home?.remove()]);
  if (dir) await removeTempDir(dir);
});

describe('load --values-out', () => {
  it('writes one values file per chart, with which helm renders every image at the mirror, where the mirror holds it', async () => {
    expect((await readdir(valuesDir)).sort()).toEqual(['legacy.yaml', 'shapes.yaml']);
    const mapping = parse(await readFile(mappingFile, 'utf8')) as MappingFile;
    const { images } = await helmImages(shapesDir, join(valuesDir, 'shapes.yaml'));
    // split, hostrepo, full, bitnami and the subchart's hook
    expect(images).toHaveLength(5);
    for (const image of images) {
      expect(image.startsWith(`${mirror}/team/`), image).toBe(true);
      const record = mapping.images.find((m) => m.target === image);
      expect(record, `${image} is a target of the load`).toBeDefined();
      expect(await manifestDigest(dst, image), image).toBe(record!.digest);
    }
    expect(loaded.stderr).toContain(`values: ${valuesDir}/shapes.yaml: 5 images moved to the mirror`);
  });

  it('computes the override per value: global.imageRegistry alone would not move the bitnami-style image, subchart values go under the alias', async () => {
    const values = parse(await readFile(join(valuesDir, 'shapes.yaml'), 'utf8'));
    expect(values.global).toEqual({ imageRegistry: dst.host });
    expect(values.bitnami.image.repository).toBe('mirror/team/bitnami');
    expect(values.hostrepo.image).toEqual({ repository: `${mirror}/team/hostrepo` });
    expect(values.full.image).toBe(`${mirror}/team/full:3.0`);
    expect(values.worker.image).toEqual({ registry: dst.host, repository: 'mirror/team/sub' });
    expect(values.split.image.registry).toBe(dst.host);
    expect(values.split.image.image).toBe('mirror/team/split');
  });

  it('lists an image written literally in a template at the top of the file and on stderr, pointing at --mirror-config', async () => {
    const text = await readFile(join(valuesDir, 'legacy.yaml'), 'utf8');
    const literal = `${src.host}/team/legacy:7.0`;
    expect(text).toContain(
      `#   ${literal} (templates/pod.yaml Pod/release-name-legacy containers[legacy].image): written literally in the template; point the runtime at the mirror for it (ferry load --mirror-config)`,
    );
    expect(text).toContain('ferry load --mirror-config');
    expect(parse(text)).toEqual({});
    const warnings = loaded.stderr.split('\n').filter((l) => l.startsWith('warning: values:'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(
      /^warning: values: legacy: .*written literally in the template; point the runtime at the mirror for it \(ferry load --mirror-config\)$/,
    );
    // helm renders it where it was
    expect((await helmImages(legacyDir, join(valuesDir, 'legacy.yaml'))).images).toEqual([literal]);
  });

  it('names the filtered digest for a digest-pinned image packed with --platform, in the values file and the mapping file', async () => {
    const ferryJson = JSON.parse((await run('tar', ['-xOf', bundle, 'ferry.json'])).toString('utf8')) as {
      images: Array<{ ref: string; digest: string; upstreamDigest: string }>;
    };
    const pinned = ferryJson.images.find((i) => i.ref === `${src.host}/team/split:1.0@${split.digest}`)!;
    expect(pinned.upstreamDigest).toBe(split.digest);
    expect(pinned.digest).not.toBe(split.digest);
    const values = parse(await readFile(join(valuesDir, 'shapes.yaml'), 'utf8'));
    expect(values.split.image.digest).toBe(pinned.digest);
    const mapping = parse(await readFile(mappingFile, 'utf8')) as MappingFile;
    const record = mapping.images.find((m) => m.source === pinned.ref)!;
    expect(record.target).toBe(`${mirror}/team/split:1.0@${pinned.digest}`);
    expect(record.digest).toBe(pinned.digest);
    expect(await manifestDigest(dst, `${mirror}/team/split@${split.digest}`)).toBe('HTTP 404');
  });
});

describe('ferry values', () => {
  it('writes the same files offline', async () => {
    const out = join(dir, 'values-offline');
    const r = ok(await runFerry(['values', bundle, '--to', mirror, '-o', out]));
    expect(r.stdout.trim().split('\n').sort()).toEqual([join(out, 'legacy.yaml'), join(out, 'shapes.yaml')]);
    for (const f of ['legacy.yaml', 'shapes.yaml']) expect(await readFile(join(out, f), 'utf8')).toBe(await readFile(join(valuesDir, f), 'utf8'));
  });

  it('computes the file for the values the chart will be installed with', async () => {
    const out = join(dir, 'values-install');
    const install = join(dir, 'install.yaml');
    // another carried image in the full-string value
    await writeFile(install, `full:\n  image: ${src.host}/team/sub:6.0\n`);
    ok(await runFerry(['values', bundle, '--to', mirror, '--values', install, '-o', out]));
    const text = await helm.run(['template', 'r1', shapesDir, '-f', install, '-f', join(out, 'shapes.yaml')]);
    const images = podImages(parseHelmTemplate(text).map((d) => d.object));
    expect(images).toContain(`${mirror}/team/sub:6.0`);
    expect(images.every((i) => i.startsWith(`${mirror}/`))).toBe(true);
    expect(parse(await readFile(join(out, 'shapes.yaml'), 'utf8')).full.image).toBe(`${mirror}/team/sub:6.0`);
  });

  it('follows --map rules as load does', async () => {
    const out = join(dir, 'values-mapped');
    ok(await runFerry(['values', bundle, '--to', mirror, '--map', `${src.host}/team=${dst.host}/vendor`, '-o', out]));
    const { images } = await helmImages(shapesDir, join(out, 'shapes.yaml'));
    expect(images.map((i) => i.replace(/@sha256:[0-9a-f]{64}$/, ''))).toEqual(
      ['bitnami:4.0', 'full:3.0', 'hostrepo:2.0', 'split:1.0', 'sub:6.0'].map((n) => `${dst.host}/vendor/${n}`),
    );
  });

  it('refuses a directory path that is a file, with one line', async () => {
    const file = join(dir, 'a-file');
    await writeFile(file, 'x');
    const line = expectErrorLine(await runFerry(['values', bundle, '--to', mirror, '-o', join(file, 'sub')]), 2);
    expect(line).toContain('is not a directory');
  });
});

/**
 * `runtime`: images an operator pulls, named outside pod specs and composed from values: a
 * Prometheus CR's `spec.image` string and an Alertmanager CR's `{registry, repository, tag}`
 * map, an operator argument, env values (one reference, and a `VERSION=REF` list from a
 * registry value), ConfigMap data, a Cluster CR's `spec.imageName` that only an empty
 * `imageName` override replaces, and an argument written literally in the template.
 */
async function writeRuntimeChart(root: string): Promise<void> {
  const h = src.host;
  await writeFiles(root, {
    'Chart.yaml': 'apiVersion: v2\nname: runtime\nversion: 0.2.0\n',
    'values.yaml': [
      'operator:',
      `  image: {registry: ${h}, repository: team/operator, tag: "1.0"}`,
      'prometheus:',
      `  image: {registry: ${h}, repository: team/prometheus, tag: "2.0"}`,
      'alertmanager:',
      `  image: {registry: ${h}, repository: team/alertmanager, tag: "3.0"}`,
      'reloader:',
      `  image: ${h}/team/reloader:4.0`,
      'helper:',
      `  image: {repository: ${h}/team/helper, tag: "5.0"}`,
      'engine:',
      `  registry: ${h}`,
      'sidecar:',
      `  image: {registry: ${h}, repository: team/sidecar, tag: "6.0"}`,
      'db:',
      '  imageName: ""',
      '  version: "16"',
      '',
    ].join('\n'),
    'templates/operator.yaml': [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      '  name: {{ .Release.Name }}-operator',
      'spec:',
      '  selector:',
      '    matchLabels: {app: operator}',
      '  template:',
      '    metadata:',
      '      labels: {app: operator}',
      '    spec:',
      '      containers:',
      '        - name: operator',
      '          image: "{{ .Values.operator.image.registry }}/{{ .Values.operator.image.repository }}:{{ .Values.operator.image.tag }}"',
      '          args:',
      '            - --prometheus-config-reloader={{ .Values.reloader.image }}',
      `            - --shell-image=${h}/team/shell:1.0`,
      '          env:',
      '            - name: HELPER_IMAGE',
      '              value: "{{ .Values.helper.image.repository }}:{{ .Values.helper.image.tag }}"',
      '            - name: ENGINE_IMAGES',
      '              value: "1.0={{ .Values.engine.registry }}/team/engine:1.0,2.0={{ .Values.engine.registry }}/team/engine:2.0"',
      '',
    ].join('\n'),
    'templates/crs.yaml': [
      'apiVersion: monitoring.coreos.com/v1',
      'kind: Prometheus',
      'metadata:',
      '  name: {{ .Release.Name }}',
      'spec:',
      '  image: "{{ .Values.prometheus.image.registry }}/{{ .Values.prometheus.image.repository }}:{{ .Values.prometheus.image.tag }}"',
      '---',
      'apiVersion: monitoring.coreos.com/v1',
      'kind: Alertmanager',
      'metadata:',
      '  name: {{ .Release.Name }}',
      'spec:',
      '  image:',
      '    {{- toYaml .Values.alertmanager.image | nindent 4 }}',
      '---',
      'apiVersion: postgresql.cnpg.io/v1',
      'kind: Cluster',
      'metadata:',
      '  name: {{ .Release.Name }}-db',
      'spec:',
      `  imageName: {{ .Values.db.imageName | default (printf "${h}/team/db:%s" .Values.db.version) }}`,
      '',
    ].join('\n'),
    'templates/configmap.yaml': [
      'apiVersion: v1',
      'kind: ConfigMap',
      'metadata:',
      '  name: {{ .Release.Name }}-config',
      'data:',
      '  SIDECAR_IMAGE: "{{ .Values.sidecar.image.registry }}/{{ .Values.sidecar.image.repository }}:{{ .Values.sidecar.image.tag }}"',
      '',
    ].join('\n'),
  });
}

/**
 * Every image reference anywhere in rendered objects: each word of each string (`--flag=REF`
 * and `VERSION=REF` lists split), and `{registry, repository, tag}` maps composed.
 */
function referencesIn(node: unknown, prefixes: string[], out = new Set<string>()): Set<string> {
  if (typeof node === 'string') {
    for (const word of node.split(/[\s,]+/)) {
      const ref = word.slice(word.lastIndexOf('=') + 1).replace(/^"|"$/g, '');
      if (prefixes.some((p) => ref.startsWith(`${p}/`))) out.add(ref);
    }
  } else if (Array.isArray(node)) {
    for (const x of node) referencesIn(x, prefixes, out);
  } else if (node && typeof node === 'object') {
    const m = node as Record<string, unknown>;
    if (typeof m.registry === 'string' && typeof m.repository === 'string' && typeof m.tag === 'string') {
      out.add(`${m.registry}/${m.repository}:${m.tag}`);
    }
    for (const [k, x] of Object.entries(m)) if (!(k === 'registry' && typeof m.repository === 'string')) referencesIn(x, prefixes, out);
  }
  return out;
}

describe('values files move the images an operator pulls at run time', () => {
  const upstream = ['operator:1.0', 'prometheus:2.0', 'alertmanager:3.0', 'reloader:4.0', 'helper:5.0', 'engine:1.0', 'engine:2.0', 'sidecar:6.0', 'db:16'];
  let chart: string;
  let out: string;
  let r: FerryResult;

  beforeAll(async () => {
    const small = { layers: 1, layerSize: 1024 } as const;
    await Promise.all([...upstream, 'shell:1.0'].map((n) => seedImage(src, `team/${n}`, { ...small, seed: `runtime-${n}` })));
    chart = join(dir, 'runtime');
    await writeRuntimeChart(chart);
    const packed = join(dir, 'runtime.tar');
    ok(await runFerry(['pack', '--chart', chart, '-o', packed]));
    out = join(dir, 'values-runtime');
    r = ok(await runFerry(['load', packed, '--to', mirror, '--values-out', out]));
  }, 240_000);

  it("puts each runtime reference of helm's render at the mirror (CR fields, an argument, env values, ConfigMap data), where the mirror holds it", async () => {
    const text = await helm.run(['template', 'r1', chart, '-f', join(out, 'runtime.yaml')]);
    const found = referencesIn(
      parseHelmTemplate(text).map((d) => d.object),
      [src.host, dst.host],
    );
    expect([...found].sort()).toEqual([`${src.host}/team/shell:1.0`, ...upstream.map((n) => `${mirror}/team/${n}`)].sort());
    expect(podImages(parseHelmTemplate(text).map((d) => d.object))).toEqual([`${mirror}/team/operator:1.0`]);
    for (const ref of found) if (ref.startsWith(`${mirror}/`)) expect(await manifestDigest(dst, ref), ref).toMatch(/^sha256:/);
    const values = parse(await readFile(join(out, 'runtime.yaml'), 'utf8'));
    expect(values.db).toEqual({ imageName: `${mirror}/team/db:16` });
    expect(values.engine).toEqual({ registry: mirror });
    expect(r.stderr).toContain(`values: ${out}/runtime.yaml: ${upstream.length} images moved to the mirror`);
  });

  it('lists the runtime reference written literally in the template at the top of the file and on stderr, pointing at --mirror-config', async () => {
    const text = await readFile(join(out, 'runtime.yaml'), 'utf8');
    const line = `${src.host}/team/shell:1.0 (templates/operator.yaml Deployment/release-name-operator containers[operator] argument --shell-image=): written literally in the template; point the runtime at the mirror for it (ferry load --mirror-config)`;
    expect(text.split('\n').filter((l) => l.startsWith('#   '))).toEqual([`#   ${line}`]);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('warning: values:'))).toEqual([`warning: values: runtime: ${line}`]);
  });
});

describe('verify --against with a pinned digest packed with --platform', () => {
  it('fails naming the pinned digest that is not at the target and the one that is', async () => {
    const ferryJson = JSON.parse((await run('tar', ['-xOf', bundle, 'ferry.json'])).toString('utf8')) as { images: Array<{ ref: string; digest: string }> };
    const filtered = ferryJson.images.find((i) => i.ref.endsWith(`@${split.digest}`))!.digest;
    const r = await runFerry(['verify', bundle, '--against', mirror]);
    expect(r.code).toBe(1);
    const errors = r.stderr.split('\n').filter((l) => l.startsWith('ferry: '));
    expect(errors).toHaveLength(1);
    const line = errors[0]!;
    const message = `filtered: ${mirror}/team/split:1.0@${split.digest} is not at the target, ${filtered} is`;
    expect(line).toContain(message);
    expect(line).toContain('--allow-filtered');
    expect(r.stdout).toContain(`filtered    ${mirror}/team/split:1.0@${split.digest}  ${message}`);
    const allowed = ok(await runFerry(['verify', bundle, '--against', mirror, '--allow-filtered']));
    expect(allowed.stdout).toContain(`(${message}; allowed)`);
    expect(allowed.stdout).toMatch(/all \d+ images and charts present with the bundle's digests/);
  });
});

describe('images --chart --to --values-out on real charts', () => {
  it('moves every image of cert-manager, ingress-nginx and openebs (three levels of subcharts), as helm renders them', async () => {
    const out = join(dir, 'values-shared');
    const charts = ['cert-manager', 'ingress-nginx', 'openebs-full'];
    ok(await runFerry(['images', ...charts.flatMap((c) => ['--chart', join(SHARED_CHARTS, c)]), '--to', mirror, '--values-out', out]));
    for (const c of charts) {
      const expected = (await readFile(join(SHARED_CHARTS, c, 'expected-images.txt'), 'utf8')).split('\n').filter(Boolean);
      const { images, text } = await helmImages(join(SHARED_CHARTS, c), join(out, `${c === 'openebs-full' ? 'openebs' : c}.yaml`));
      // the upstream path kept below the mirror; tags and digests as upstream
      expect(images.sort(), c).toEqual(expected.map((e) => `${mirror}/${e.slice(e.indexOf('/') + 1)}`).sort());
      if (c === 'cert-manager') expect(text).toContain(`--acme-http01-solver-image=${mirror}/jetstack/cert-manager-acmesolver:v1.21.1`);
    }
  });

  it('names every image it cannot check, when ferry cannot render where a chart uses it (subcharts missing, annotations only)', async () => {
    const out = join(dir, 'values-annotated');
    const chart = join(SHARED_CHARTS, 'openebs-annotated');
    const r = ok(await runFerry(['images', '--chart', chart, '--to', mirror, '--values-out', out]));
    const expected = (await readFile(join(chart, 'expected-images.txt'), 'utf8')).split('\n').filter(Boolean);
    const warned = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('warning: values: openebs: '))
      .map(
        (l) =>
          /^warning: values: openebs: (\S+) \(Chart\.yaml helm\.sh\/images\): not in ferry's render of the chart; point the runtime at the mirror for it \(ferry load --mirror-config\)$/.exec(
            l,
          )?.[1],
      );
    // (helm cannot render it either: its subcharts are missing.) The umbrella's own hook image is moved; every other image is named, once
    expect(r.stderr).toContain(`values: ${out}/openebs.yaml: 1 image moved to the mirror`);
    expect(warned.sort()).toEqual(expected.filter((e) => e !== 'docker.io/bitnami/kubectl:1.25.15').sort());
  });

  it('moves every runtime image of strimzi (env values), plugin-barman-cloud (ConfigMap data) and cnpg-cluster (Cluster.spec.imageName)', async () => {
    const out = join(dir, 'values-runtime-shared');
    const charts = { 'strimzi-kafka-operator': 'strimzi-kafka-operator', 'plugin-barman-cloud': 'plugin-barman-cloud', 'cnpg-cluster': 'cluster' };
    const r = ok(await runFerry(['images', ...Object.keys(charts).flatMap((c) => ['--chart', join(SHARED_CHARTS, c)]), '--to', mirror, '--values-out', out]));
    for (const [c, name] of Object.entries(charts)) {
      const expected = (await readFile(join(SHARED_CHARTS, c, 'expected-runtime-images.txt'), 'utf8')).split('\n').filter(Boolean);
      const file = join(out, `${name}.yaml`);
      const header = (await readFile(file, 'utf8')).split('\n').filter((l) => l.startsWith('#   '));
      const text = await helm.run(['template', 'r1', join(SHARED_CHARTS, c), '-f', file]);
      const hosts = [...new Set(expected.map((e) => e.slice(0, e.indexOf('/'))))];
      const found = referencesIn(
        parseHelmTemplate(text).map((d) => d.object),
        [...hosts, dst.host],
      );
      // every one is movable by a value: at the mirror, none left upstream, none in the header
      for (const e of expected) {
        expect(found.has(`${mirror}/${e.slice(e.indexOf('/') + 1)}`), `${c}: ${e}`).toBe(true);
        expect(found.has(e), `${c}: ${e} left upstream`).toBe(false);
        expect(
          header.filter((l) => l.includes(` ${e} `)),
          `${c}: ${e}`,
        ).toEqual([]);
      }
    }
    expect(r.stderr).toContain(`values: ${out}/cluster.yaml: 1 image moved to the mirror`);
    expect(parse(await readFile(join(out, 'cluster.yaml'), 'utf8'))).toEqual({ cluster: { imageName: `${mirror}/cloudnative-pg/postgresql:16` } });
  });

  it('needs --to and --values-out together', async () => {
    const line = expectErrorLine(await runFerry(['images', '--chart', legacyDir, '--to', mirror]), 2);
    expect(line).toBe('ferry: --to and --values-out go together: --to MIRROR --values-out DIR');
  });
});

describe('values files for the namespace and Kubernetes version the chart is installed with', () => {
  // the image of each container depends on --namespace and --kube-version alone
  const switches = () => ({
    'Chart.yaml': 'apiVersion: v2\nname: switches\nversion: 1.0.0\n',
    'values.yaml': [
      `prod: {image: "${src.host}/team/full:3.0"}`,
      `dev: {image: "${src.host}/team/absent-dev:1.0"}`,
      `legacy: {image: "${src.host}/team/sub:6.0"}`,
      `current: {image: "${src.host}/team/absent-current:1.0"}`,
      '',
    ].join('\n'),
    'templates/pod.yaml': [
      'apiVersion: v1',
      'kind: Pod',
      'metadata:',
      '  name: {{ .Release.Name }}-switches',
      'spec:',
      '  containers:',
      '    - name: by-namespace',
      '      image: {{ if eq .Release.Namespace "prod" }}{{ .Values.prod.image }}{{ else }}{{ .Values.dev.image }}{{ end }}',
      '    - name: by-version',
      '      image: {{ if semverCompare "<1.30-0" .Capabilities.KubeVersion.Version }}{{ .Values.legacy.image }}{{ else }}{{ .Values.current.image }}{{ end }}',
      '',
    ].join('\n'),
  });
  const flags = ['--namespace', 'prod', '--kube-version', '1.29'];
  const helmRender = async (chart: string, values: string) =>
    podImages(
      parseHelmTemplate(await helm.run(['template', 'r1', chart, '--namespace', 'prod', '--kube-version', '1.29.0', '-f', values])).map((d) => d.object),
    ).sort();
  let chart: string;

  beforeAll(async () => {
    chart = join(dir, 'switches');
    await writeFiles(chart, switches());
  });

  it('images --values-out renders with --namespace and --kube-version: helm then pulls both images from the mirror', async () => {
    const out = join(dir, 'values-switches-images');
    ok(await runFerry(['images', '--chart', chart, ...flags, '--to', mirror, '--values-out', out]));
    expect(await helmRender(chart, join(out, 'switches.yaml'))).toEqual([`${mirror}/team/full:3.0`, `${mirror}/team/sub:6.0`]);
  });

  it('ferry values --namespace --kube-version does the same for a bundle packed with them', async () => {
    const packed = join(dir, 'switches.tar');
    ok(await runFerry(['pack', '--chart', chart, ...flags, '--platform', 'linux/amd64', '-o', packed]));
    const out = join(dir, 'values-switches-bundle');
    const r = ok(await runFerry(['values', packed, ...flags, '--to', mirror, '-o', out]));
    expect(r.stderr).toContain(`values: ${out}/switches.yaml: 2 images moved to the mirror`);
    expect(await helmRender(chart, join(out, 'switches.yaml'))).toEqual([`${mirror}/team/full:3.0`, `${mirror}/team/sub:6.0`]);
  });

  it('ferry values refuses a namespace helm would refuse, with one line', async () => {
    const line = expectErrorLine(await runFerry(['values', bundle, '--namespace', 'Prod', '--to', mirror, '-o', join(dir, 'values-bad-ns')]), 2);
    expect(line).toBe('ferry: --namespace "Prod" is not a Kubernetes namespace name (lowercase letters, digits and -, at most 63)');
  });
});
