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

  it('needs --to and --values-out together', async () => {
    const line = expectErrorLine(await runFerry(['images', '--chart', legacyDir, '--to', mirror]), 2);
    expect(line).toBe('ferry: --to and --values-out go together: --to MIRROR --values-out DIR');
  });
});
