/**
 * `ferry images`: every image a Helm chart needs, from every source combined —
 * annotations, rendered manifests, the chart's templates evaluated with its
 * values, a walk of the values, and literal references in templates — each with
 * where it came from and whether the default install uses it.
 *
 * "used": in a container, init container or ephemeral container image field of
 * the default render (hooks and test pods included), in a rendered manifest given
 * with -f, or declared by the annotations of an enabled chart.
 * "optional": referenced only in container arguments or environment variables,
 * or only when something off by default is switched on (an `enabled: false`, a
 * disabled subchart, any false switch in the values).
 */
import {
  allInstances,
  type Chart,
  type ChartInstance,
  deepCopy,
  type HelmRepositories,
  isMap,
  loadChart,
  put,
  type RenderResult,
  readValuesFile,
  renderChart,
  resolveChart,
  sourceAt,
  userValues,
  type Values,
} from '@ferry/helm';
import { formatReference, type OciClient, parseReference } from '@ferry/oci-client';
import { imagesInManifests, lineAt, type ManifestImage } from './manifests.js';
import { annotatedImages, literalImages, valuesImages } from './sources.js';

export type ImageUsage = 'used' | 'optional';
export type ImageSourceKind = 'annotation' | 'rendered' | 'values' | 'template';

export interface ImageSource {
  kind: ImageSourceKind;
  /** The chart path (`openebs/mayastor/etcd`), or the -f input for `rendered`. */
  chart: string;
  usage: ImageUsage;
  /** Values path (`controller.image`) or annotation key (`helm.sh/images`, `images.lock`). */
  path?: string;
  /** Template file in the chart (`templates/deployment.yaml`), or the -f input. */
  file?: string;
  line?: number;
  /** For manifests: `Deployment/x containers[web].image`, `… argument --x-image=…`, `… env HELPER_IMAGE`. */
  field?: string;
  /** For templates: written literally (true) or computed by evaluating the template (false). */
  literal?: boolean;
  /** Why it is optional, when it is. */
  reason?: string;
}

export interface DiscoveredImage {
  /** Normalized reference (`docker.io/library/nginx:latest`). */
  reference: string;
  usage: ImageUsage;
  /** Charts (and subcharts) it belongs to. */
  charts: string[];
  sources: ImageSource[];
}

export interface DiscoveredChart {
  path: string;
  name: string;
  version: string;
  appVersion?: string;
  enabled: boolean;
  disabledBy?: string;
  origin: string;
}

export interface DiscoveryResult {
  /** Sorted by reference. */
  images: DiscoveredImage[];
  charts: DiscoveredChart[];
  /** Things the user should know: missing dependencies, templates ferry could not evaluate, bad references. */
  warnings: string[];
}

export interface RenderedInput {
  /** File name, or `-` / `stdin`. */
  name: string;
  text: string;
}

export interface DiscoverOptions {
  /** Chart directories, `.tgz` files, `oci://REGISTRY/REPO[:VERSION]`, `REPO/CHART[@VERSION]` or chart URLs. */
  charts?: string[];
  /** Already loaded charts (e.g. by the pack command). */
  loadedCharts?: Chart[];
  /** Output of `helm template` (multi-document YAML). */
  rendered?: RenderedInput[];
  /** `--values` files, in order. */
  valuesFiles?: string[];
  /** Values already parsed, applied after the files and before `set`. */
  values?: Values[];
  /** `--set` expressions, in order. */
  set?: string[];
  /** For oci:// charts. */
  client?: OciClient;
  /** For charts from Helm repositories (`NAME/CHART[@VERSION]`, chart URLs). */
  repositories?: HelmRepositories;
  /** `--chart-version`: the version or constraint of the repository charts in `charts`. */
  chartVersion?: string;
  /** `--dependency-update`: fetch the dependencies a chart directory lists but does not vendor, as helm does. */
  dependencyUpdate?: boolean;
  releaseName?: string;
  namespace?: string;
  kubeVersion?: string;
  /** Render a second time with every false switch on and every subchart enabled, to find optional images. Default true. */
  exploreOptional?: boolean;
  log?: (line: string) => void;
}

interface Entry {
  reference: string;
  charts: Set<string>;
  sources: ImageSource[];
}

function normalize(raw: string): string | undefined {
  try {
    return formatReference(parseReference(raw.trim()));
  } catch {
    return undefined;
  }
}

class Collector {
  readonly entries = new Map<string, Entry>();
  readonly warnings: string[] = [];
  private readonly badRefs = new Set<string>();

  warn(message: string): void {
    if (!this.warnings.includes(message)) this.warnings.push(message);
  }

  add(raw: string, chart: string | undefined, source: ImageSource): void {
    let reference: string;
    try {
      reference = formatReference(parseReference(raw.trim()));
    } catch (e) {
      const key = `${raw}\0${source.chart}`;
      if (!this.badRefs.has(key)) {
        this.badRefs.add(key);
        const where = source.file ? ` (${source.file}${source.line ? `:${source.line}` : ''})` : source.path ? ` (${source.path})` : '';
        this.warn(`${source.chart}${where}: skipped "${raw}": ${(e as Error).message.replace(/^invalid reference "[^"]*": /, '')}`);
      }
      return;
    }
    let entry = this.entries.get(reference);
    if (!entry) this.entries.set(reference, (entry = { reference, charts: new Set(), sources: [] }));
    if (chart) entry.charts.add(chart);
    const key = JSON.stringify(source);
    if (!entry.sources.some((s) => JSON.stringify(s) === key)) entry.sources.push(source);
  }

  result(charts: DiscoveredChart[]): DiscoveryResult {
    for (const e of this.entries.values()) {
      // values and literals are evidence: when the render uses the image, they point at a used one
      if (!e.sources.some((s) => s.usage === 'used')) continue;
      for (const s of e.sources) {
        if (s.reason === NOT_RENDERED) {
          s.usage = 'used';
          delete s.reason;
        }
      }
    }
    const images: DiscoveredImage[] = [...this.entries.values()]
      .map((e) => ({
        reference: e.reference,
        usage: (e.sources.some((s) => s.usage === 'used') ? 'used' : 'optional') as ImageUsage,
        charts: [...e.charts].sort(),
        sources: e.sources,
      }))
      .sort((a, b) => (a.reference < b.reference ? -1 : a.reference > b.reference ? 1 : 0));
    return { images, charts, warnings: this.warnings };
  }
}

const NOT_RENDERED = 'not in any container image of the default render';

function fieldOf(m: ManifestImage): string {
  const where = `${m.resource} ${m.list}[${m.container}]`;
  if (m.field === 'image') return `${where}.image`;
  if (m.field === 'argument') return `${where} argument ${m.detail ?? ''}`.trim();
  return `${where} env ${m.detail ?? ''}`.trim();
}

/** Sets every `false` in maps to `true`: the values with every switch on. */
export function switchesOn(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(switchesOn);
  if (isMap(v)) {
    const out: Values = {};
    for (const [k, x] of Object.entries(v)) put(out, k, x === false ? true : switchesOn(x));
    return out;
  }
  return v;
}

interface RenderFind {
  instance: ChartInstance;
  file: string;
  image: ManifestImage;
  line: number | undefined;
}

/** The images of a render, each with its chart instance and template line. */
function findsOf(result: RenderResult, col: Collector, warnProblems: boolean): RenderFind[] {
  const out: RenderFind[] = [];
  for (const r of result.rendered) {
    const { images, problems } = imagesInManifests(r.text);
    if (problems.length > 0 && warnProblems) {
      col.warn(`${r.instance.path}: ${r.file} did not render to valid YAML (${problems[0]!.message}); images in it may be missed`);
    }
    for (const image of images) {
      const at = sourceAt(r.text, r.segments, image.offset);
      out.push({ instance: r.instance, file: r.file, image, line: at?.file.endsWith(`/${r.file}`) ? at.line : undefined });
    }
  }
  return out;
}

function addFinds(col: Collector, finds: RenderFind[], defaultRender: boolean, skip?: Set<string>): void {
  for (const f of finds) {
    const m = f.image;
    if (skip?.has(normalize(m.raw) ?? '')) continue;
    const usedField = m.field === 'image' && defaultRender;
    const source: ImageSource = { kind: 'template', chart: f.instance.path, usage: usedField ? 'used' : 'optional', file: f.file };
    if (f.line !== undefined) source.line = f.line;
    source.field = fieldOf(m);
    source.literal = false;
    if (!usedField) {
      source.reason = defaultRender
        ? m.field === 'argument'
          ? 'only in a container argument'
          : 'only in an environment variable'
        : 'only with non-default values (a switch that is off by default turned on)';
    }
    col.add(m.raw, f.instance.path, source);
  }
}

function failedPaths(result: RenderResult | undefined): Set<string> {
  return new Set((result?.failures ?? []).map((f) => f.instance.path));
}

async function discoverChart(col: Collector, chart: Chart, user: Values, opts: DiscoverOptions): Promise<DiscoveredChart[]> {
  const warn = (m: string) => col.warn(m);
  const root = resolveChart(chart, user, { warn });
  const instances = allInstances(root);
  const renderOpts = { releaseName: opts.releaseName, namespace: opts.namespace, kubeVersion: opts.kubeVersion };

  // 1. the chart's templates, evaluated with the effective values (what `helm template` would print)
  const rendered = renderChart(root, renderOpts);
  const defaultFinds = findsOf(rendered, col, true);
  addFinds(col, defaultFinds, true);
  for (const f of rendered.failures) {
    warn(`${f.instance.path}: could not evaluate ${f.file}: ${f.message.replace(/^[^:]*:\d+: /, '')}; falling back to values and literals for it`);
  }

  // 2. the same with every false switch on and every subchart enabled: what optional features use
  let allOn: RenderResult | undefined;
  let allOnFinds: RenderFind[] = [];
  if (opts.exploreOptional !== false) {
    const full = resolveChart(chart, user, { enableAll: true });
    const on = resolveChart(chart, switchesOn(deepCopy(full.values)) as Values, { enableAll: true });
    allOn = renderChart(on, renderOpts);
    allOnFinds = findsOf(allOn, col, false);
  }
  const renderedRefs = new Set<string>();
  for (const f of [...defaultFinds, ...allOnFinds]) renderedRefs.add(normalize(f.image.raw) ?? '');
  const defaultFailed = failedPaths(rendered);
  const allOnFailed = failedPaths(allOn);
  /** Whether ferry could evaluate the chart's templates (then values and literals are only evidence). */
  const evaluated = (inst: ChartInstance) => (inst.enabled ? !defaultFailed.has(inst.path) : allOn !== undefined && !allOnFailed.has(inst.path));

  // 3. annotations and images.lock
  for (const inst of instances) {
    for (const a of annotatedImages(inst.chart, warn)) {
      const source: ImageSource = { kind: 'annotation', chart: inst.path, usage: inst.enabled ? 'used' : 'optional', path: a.key };
      if (!inst.enabled) source.reason = `chart disabled: ${inst.disabledBy ?? 'disabled'}`;
      col.add(a.raw, inst.path, source);
    }
  }

  // 4. the values walk and 5. literals: "used" only where the templates could not be evaluated
  for (const inst of instances) {
    const trusted = evaluated(inst);
    const trustedDefault = inst.enabled && !defaultFailed.has(inst.path);
    for (const v of valuesImages(
      inst.values,
      inst.chart.appVersion,
      inst.children.map((c) => c.name),
    )) {
      // a reference composed by convention that no render produced: the chart does not follow the convention
      if (v.guesses && trusted && !renderedRefs.has(normalize(v.raw) ?? '')) continue;
      const used = inst.enabled && v.enabled && !trustedDefault;
      const source: ImageSource = { kind: 'values', chart: inst.path, usage: used ? 'used' : 'optional', path: v.path };
      if (!used) {
        source.reason = !inst.enabled ? `chart disabled: ${inst.disabledBy ?? 'disabled'}` : !v.enabled ? `${v.disabledBy} is false` : NOT_RENDERED;
      }
      col.add(v.raw, inst.path, source);
    }
    for (const l of literalImages(inst.chart)) {
      const used = inst.enabled && !trustedDefault;
      const source: ImageSource = { kind: 'template', chart: inst.path, usage: used ? 'used' : 'optional', file: l.file, line: l.line, literal: true };
      if (!used) source.reason = !inst.enabled ? `chart disabled: ${inst.disabledBy ?? 'disabled'}` : NOT_RENDERED;
      col.add(l.raw, inst.path, source);
    }
  }

  // the all-on render's images, only those the default render did not find (the rest would repeat it)
  const seen = new Set(defaultFinds.map((f) => normalize(f.image.raw) ?? ''));
  addFinds(col, allOnFinds, false, seen);

  return instances.map((i) => {
    const c: DiscoveredChart = { path: i.path, name: i.chart.name, version: i.chart.version, enabled: i.enabled, origin: i.chart.origin };
    if (i.chart.appVersion !== undefined) c.appVersion = i.chart.appVersion;
    if (i.disabledBy) c.disabledBy = i.disabledBy;
    return c;
  });
}

/** Finds the images of charts and rendered manifests. Throws FerryError (usage) for bad input. */
export async function discoverImages(opts: DiscoverOptions): Promise<DiscoveryResult> {
  const col = new Collector();
  const files: Values[] = [];
  for (const f of opts.valuesFiles ?? []) files.push(await readValuesFile(f));
  files.push(...(opts.values ?? []));
  const user = userValues(files, opts.set ?? []);

  const charts: DiscoveredChart[] = [];
  const loaded: Chart[] = [...(opts.loadedCharts ?? [])];
  for (const spec of opts.charts ?? []) {
    opts.log?.(`reading chart ${spec}`);
    loaded.push(
      await loadChart(spec, {
        ...(opts.client ? { client: opts.client } : {}),
        ...(opts.repositories ? { repositories: opts.repositories } : {}),
        ...(opts.chartVersion ? { version: opts.chartVersion } : {}),
        ...(opts.dependencyUpdate ? { dependencyUpdate: true } : {}),
        ...(opts.log ? { log: opts.log } : {}),
      }),
    );
  }
  for (const chart of loaded) charts.push(...(await discoverChart(col, chart, user, opts)));

  for (const input of opts.rendered ?? []) {
    const name = input.name === '-' ? 'stdin' : input.name;
    const { images, problems } = imagesInManifests(input.text);
    for (const p of problems) col.warn(`${name}: document ${p.document + 1} is not valid YAML (${p.message})`);
    for (const m of images) {
      const source: ImageSource = {
        kind: 'rendered',
        chart: name,
        usage: m.field === 'image' ? 'used' : 'optional',
        file: name,
        line: lineAt(input.text, m.offset),
        field: fieldOf(m),
      };
      if (m.field !== 'image') source.reason = m.field === 'argument' ? 'only in a container argument' : 'only in an environment variable';
      col.add(m.raw, undefined, source);
    }
  }
  for (const w of col.warnings) opts.log?.(`warning: ${w}`);
  return col.result(charts);
}
