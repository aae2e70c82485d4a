// The image classes on the command line: `ferry images` lists used, runtime and declared
// images (labelled), `--optional` adds the optional ones, `--only-used` keeps the pod
// images; `--skip-image` drops images on purpose, and `pack --chart` records in ferry.json
// each image's class, whether it was packed and what a pattern dropped. A chart image
// that cannot be pulled is named with its chart and where the chart names it.
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedImage, startRegistry, type TestRegistry } from './harness/index.js';
import { makeTempDir, removeTempDir, run } from './harness/process.js';
import { expectErrorLine, type FerryHome, type FerryResult, makeFerryHome, runFerry as runFerryIn } from './helpers/ferry.js';

let src: TestRegistry;
let dir: string;
let home: FerryHome;
let chart: string;
let h: string;

const runFerry = (args: string[]) => runFerryIn(args, { home, env: {} });

function ok(r: FerryResult): FerryResult {
  expect(r.code, r.stderr).toBe(0);
  return r;
}

const pod = (kind: string, name: string, hook: string | undefined, container: string) =>
  [
    `apiVersion: ${kind === 'Pod' ? 'v1' : 'batch/v1'}`,
    `kind: ${kind}`,
    'metadata:',
    `  name: ${name}`,
    ...(hook ? ['  annotations:', `    "helm.sh/hook": ${hook}`] : []),
    'spec:',
    ...(kind === 'Pod' ? ['  restartPolicy: Never', '  containers:'] : ['  template:', '    spec:', '      restartPolicy: Never', '      containers:']),
    ...container.split('\n').map((l) => (kind === 'Pod' ? l : `    ${l}`)),
    '',
  ].join('\n');

beforeAll(async () => {
  src = await startRegistry();
  dir = await makeTempDir('ferry-charts-classes-');
  home = await makeFerryHome();
  h = src.host;
  const small = { single: true, layers: 1, layerSize: 1024 } as const;
  await Promise.all(['apps/app:1.0', 'apps/operand:2.0', 'apps/tester:1.0', 'apps/declared:4.0'].map((r, i) => seedImage(src, r, { ...small, seed: `s${i}` })));
  chart = join(dir, 'demo');
  await mkdir(join(chart, 'templates'), { recursive: true });
  const files: Record<string, string> = {
    'Chart.yaml': `apiVersion: v2\nname: demo\nversion: 1.0.0\nannotations:\n  helm.sh/images: |\n    - name: declared\n      image: ${h}/apps/declared:4.0\n`,
    'values.yaml': `image: ${h}/apps/app:1.0\noperand: ${h}/apps/operand:2.0\nextra:\n  enabled: false\n  image: ${h}/apps/extra:3.0\n`,
    'templates/app.yaml': [
      'apiVersion: apps/v1',
      'kind: Deployment',
      'metadata:',
      '  name: app',
      'spec:',
      '  template:',
      '    spec:',
      '      containers:',
      '        - name: app',
      '          image: {{ .Values.image }}',
      '          env:',
      '            - name: OPERAND_IMAGE',
      '              value: {{ .Values.operand }}',
      '        {{- if .Values.extra.enabled }}',
      '        - name: extra',
      '          image: {{ .Values.extra.image }}',
      '        {{- end }}',
      '',
    ].join('\n'),
    'templates/hook.yaml': pod('Job', 'upgrade', 'pre-upgrade', `  - name: kubectl\n    image: ${h}/bitnami/kubectl:1.25.15`),
    'templates/tests/test.yaml': pod('Pod', 'test', 'test', `  - name: tester\n    image: ${h}/apps/tester:1.0`),
  };
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(chart, path, '..'), { recursive: true });
    await writeFile(join(chart, path), text);
  }
});

afterAll(async () => {
  await src?.stop();
  if (dir) await removeTempDir(dir);
  await home?.remove();
});

describe('ferry images: the classes', () => {
  it('--json gives each image its class, the test hook marked', async () => {
    const doc = JSON.parse(ok(await runFerry(['images', '--chart', chart, '--json'])).stdout);
    expect(doc.images.map((i: { reference: string; usage: string; testHook?: true }) => [i.reference, i.usage, i.testHook ?? false])).toEqual([
      [`${h}/apps/app:1.0`, 'used', false],
      [`${h}/apps/declared:4.0`, 'declared', false],
      [`${h}/apps/extra:3.0`, 'optional', false],
      [`${h}/apps/operand:2.0`, 'runtime', false],
      [`${h}/apps/tester:1.0`, 'used', true],
      [`${h}/bitnami/kubectl:1.25.15`, 'used', false],
    ]);
    expect(doc.failures).toEqual([]);
    expect(doc.skipped).toEqual([]);
  });

  it('the plain list has used, runtime and declared (labelled); --optional adds optional, --only-used keeps the pod images', async () => {
    const r = ok(await runFerry(['images', '--chart', chart]));
    expect(r.stdout).toBe(
      [
        `${h}/apps/app:1.0`,
        `${h}/apps/declared:4.0  # declared`,
        `${h}/apps/operand:2.0  # runtime`,
        `${h}/apps/tester:1.0  # test hook`,
        `${h}/bitnami/kubectl:1.25.15`,
        '',
      ].join('\n'),
    );
    expect(r.stderr).toContain('3 images used, 1 runtime, 1 declared, 1 optional (--optional lists them too)');
    expect(ok(await runFerry(['images', '--chart', chart, '--optional'])).stdout).toContain(`${h}/apps/extra:3.0  # optional\n`);
    const used = ok(await runFerry(['images', '--chart', chart, '--only-used']));
    expect(used.stdout).toBe([`${h}/apps/app:1.0`, `${h}/apps/tester:1.0  # test hook`, `${h}/bitnami/kubectl:1.25.15`, ''].join('\n'));
    expect(expectErrorLine(await runFerry(['images', '--chart', chart, '--only-used', '--optional']), 2)).toBe(
      'ferry: --optional and --only-used contradict each other; give one',
    );
  });

  it('--skip-image drops what its glob matches and says what it dropped; a bad pattern is a usage error', async () => {
    const r = ok(await runFerry(['images', '--chart', chart, '--skip-image', `${h}/bitnami/kubectl:*`, '--skip-image', 'example.com/none:1', '--json']));
    const doc = JSON.parse(r.stdout);
    expect(doc.images.map((i: { reference: string }) => i.reference)).not.toContain(`${h}/bitnami/kubectl:1.25.15`);
    expect(doc.skipped).toEqual([
      { pattern: `${h}/bitnami/kubectl:*`, references: [`${h}/bitnami/kubectl:1.25.15`] },
      { pattern: 'example.com/none:1', references: [] },
    ]);
    expect(expectErrorLine(await runFerry(['images', '--chart', chart, '--skip-image', 'Not/Valid:1']), 2)).toMatch(
      /^ferry: --skip-image Not\/Valid:1: invalid reference/,
    );
  });
});

describe('ferry pack --chart: the classes', () => {
  it('names the image it cannot pull, its chart and template, and how to leave it out', async () => {
    const out = join(dir, 'fails.tar');
    const line = expectErrorLine(await runFerry(['pack', '--chart', chart, '-o', out, '-q']), 1);
    expect(line).toContain(`${h}/bitnami/kubectl`);
    expect(line).toContain(
      `(the image ${h}/bitnami/kubectl:1.25.15 of chart demo, templates/hook.yaml:13 (Job/upgrade containers[kubectl].image, hook pre-upgrade); --skip-image ${h}/bitnami/kubectl:1.25.15 leaves it out)`,
    );
  });

  it('packs used, runtime and declared images, skips on purpose, and records both in ferry.json; inspect shows them', async () => {
    const out = join(dir, 'demo.tar');
    ok(await runFerry(['pack', '--chart', chart, '--skip-image', `${h}/bitnami/*`, '-o', out, '-q']));
    const ferry = JSON.parse((await run('tar', ['-xOf', out, 'ferry.json'])).toString('utf8'));
    expect(ferry.images.map((i: { ref: string }) => i.ref)).toEqual([
      `${h}/apps/app:1.0`,
      `${h}/apps/declared:4.0`,
      `${h}/apps/operand:2.0`,
      `${h}/apps/tester:1.0`,
    ]);
    expect(ferry.charts[0].images).toEqual([
      { ref: `${h}/apps/app:1.0`, usage: 'used', packed: true },
      { ref: `${h}/apps/declared:4.0`, usage: 'declared', packed: true },
      { ref: `${h}/apps/extra:3.0`, usage: 'optional', packed: false },
      { ref: `${h}/apps/operand:2.0`, usage: 'runtime', packed: true },
      { ref: `${h}/apps/tester:1.0`, usage: 'used', packed: true, testHook: true },
    ]);
    expect(ferry.charts[0].skipped).toEqual([{ pattern: `${h}/bitnami/*`, references: [`${h}/bitnami/kubectl:1.25.15`] }]);

    const table = ok(await runFerry(['inspect', out])).stdout;
    expect(table).toMatch(/4 packed \(2 used, 1 runtime, 1 declared, 1 optional\)/);
    expect(table).toContain(`  ${h}/apps/operand:2.0         runtime, packed\n`);
    expect(table).toContain(`  ${h}/apps/tester:1.0          used (test hook), packed\n`);
    expect(table).toContain(`  ${h}/bitnami/kubectl:1.25.15  skipped by --skip-image ${h}/bitnami/*\n`);
  });

  it('--only-used packs the pod images alone', async () => {
    const out = join(dir, 'used.tar');
    ok(await runFerry(['pack', '--chart', chart, '--only-used', '--skip-image', `${h}/bitnami/kubectl:1.25.15`, '-o', out, '-q']));
    const ferry = JSON.parse((await run('tar', ['-xOf', out, 'ferry.json'])).toString('utf8'));
    expect(ferry.images.map((i: { ref: string }) => i.ref)).toEqual([`${h}/apps/app:1.0`, `${h}/apps/tester:1.0`]);
    expect(ferry.charts[0].images.filter((i: { packed: boolean }) => !i.packed).map((i: { usage: string }) => i.usage)).toEqual([
      'declared',
      'optional',
      'runtime',
    ]);
    expect(expectErrorLine(await runFerry(['pack', `${h}/apps/app:1.0`, '--only-used', '-o', out]), 2)).toBe(
      'ferry: --only-used applies to the images of charts; give --chart too',
    );
  });
});
