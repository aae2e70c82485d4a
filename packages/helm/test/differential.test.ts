// ferry's template engine against the real helm (v4.1.4, the tests' oracle): every
// real chart of ../shared/charts (read from the directory: charts added there are
// tested too) and the fidelity charts of fixtures/fidelity render the same
// documents as `helm template`, after the values that differ between two helm
// runs (generated certificates, passwords, uuids, times) are masked on both sides;
// and ferry's image discovery finds every image helm's render puts into a pod.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { cp, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { formatReference, parseReference } from '@ferry/oci-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import { type Helm, parseHelmTemplate, podImages, startHelm } from '../../../test/harness/helm.js';
import { makeTempDir, removeTempDir } from '../../../test/harness/process.js';
import { SHARED_CHARTS } from '../../../test/helpers/shared-charts.js';
import { discoverImages } from '../../bundler/src/charts/discover.js';
import { ferryRendered, helmRendered, maskRandom, renderDiff } from './differential-kit.js';

const RELEASE = 'release-name';
const KUBE_VERSION = '1.31.0';

/**
 * The namespace a chart is rendered in: `default`, unless the chart's notes
 * (expected-images-notes.md of a shared chart) name the `helm template
 * --namespace` it was rendered with, as a chart that fails outside its own
 * namespace needs.
 */
function namespaceOf(dir: string): string {
  const notes = join(dir, 'expected-images-notes.md');
  const text = existsSync(notes) ? readFileSync(notes, 'utf8') : '';
  return /helm template [^`\n]*--namespace[= ]([a-z0-9-]+)/.exec(text)?.[1] ?? 'default';
}
const FIDELITY = join(import.meta.dirname, 'fixtures', 'fidelity');

const sharedCharts = existsSync(SHARED_CHARTS)
  ? readdirSync(SHARED_CHARTS, { withFileTypes: true })
      .filter((d) => d.isDirectory() && existsSync(join(SHARED_CHARTS, d.name, 'Chart.yaml')))
      .map((d) => ({ name: d.name, dir: join(SHARED_CHARTS, d.name) }))
  : [];
const ownCharts = readdirSync(FIDELITY, { withFileTypes: true })
  .filter((d) => d.isDirectory())
  .map((d) => ({ name: `fidelity/${d.name}`, dir: join(FIDELITY, d.name) }));

let helm: Helm;
beforeAll(async () => {
  helm = await startHelm();
}, 180_000);
afterAll(() => helm?.close());

const helmTemplate = (dir: string, namespace: string) => helm.run(['template', RELEASE, dir, '--namespace', namespace, '--kube-version', KUBE_VERSION]);
const temps: string[] = [];
afterAll(async () => {
  for (const t of temps) await removeTempDir(t);
});

/**
 * The chart both sides render. helm refuses a chart whose Chart.yaml lists
 * dependencies its charts/ lacks (ferry renders the rest and warns); such a chart
 * is compared as a copy without those entries, the chart as far as it is there.
 */
async function renderable(dir: string, namespace: string): Promise<string> {
  try {
    await helmTemplate(dir, namespace);
    return dir;
  } catch (e) {
    const missing = /missing in charts\/ directory: (.+)$/m.exec((e as Error).message)?.[1];
    if (!missing) throw e;
    const names = new Set(missing.split(',').map((n) => n.trim()));
    const temp = await makeTempDir('ferry-diff-');
    temps.push(temp);
    const copy = join(temp, 'chart');
    await cp(dir, copy, { recursive: true });
    const meta = parse(await readFile(join(copy, 'Chart.yaml'), 'utf8')) as { dependencies?: Array<{ name: string }> };
    meta.dependencies = (meta.dependencies ?? []).filter((d) => !names.has(d.name));
    await writeFile(join(copy, 'Chart.yaml'), stringify(meta));
    return copy;
  }
}

it('has real charts to compare', () => {
  expect(sharedCharts.length, `${SHARED_CHARTS} must hold the shared real charts`).toBeGreaterThan(0);
});

describe.each([...sharedCharts, ...ownCharts])('$name', ({ dir }) => {
  const namespace = namespaceOf(dir);
  let chart: string;
  let text: string;
  beforeAll(async () => {
    chart = await renderable(dir, namespace);
    text = await helmTemplate(chart, namespace);
  }, 180_000);

  it('renders the documents helm renders', async () => {
    const first = helmRendered(text);
    const second = helmRendered(await helmTemplate(chart, namespace));
    const ferry = await ferryRendered(chart, { releaseName: RELEASE, namespace, kubeVersion: `v${KUBE_VERSION}` });
    expect(ferry.failures).toEqual([]);
    maskRandom(first, second, ferry.rendered);
    expect(renderDiff(first, ferry.rendered)).toEqual([]);
  }, 180_000);

  it("discovers every image helm's render puts into a pod", async () => {
    const want = podImages(parseHelmTemplate(text).map((d) => d.object)).map((r) => formatReference(parseReference(r)));
    const found = await discoverImages({ charts: [dir], releaseName: RELEASE, namespace, kubeVersion: `v${KUBE_VERSION}` });
    const have = new Set(found.images.map((i) => i.reference));
    expect(want.filter((r) => !have.has(r))).toEqual([]);
  }, 180_000);
});
