/**
 * `ferry images`: every image a Helm chart needs, from every source combined —
 * annotations, rendered manifests, the chart's templates evaluated with its
 * values, a walk of the values, and literal references in templates — each with
 * where it came from and whether the default install uses it.
 *
 * Classes, strongest first (an image is in the strongest class of its sources):
 * "used": in a container, init container or ephemeral container image field of
 * the default render (hooks and test pods included; test hooks marked), or of a
 * rendered manifest given with -f.
 * "runtime": named by the default render outside those fields — container
 * arguments and env, ConfigMap/Secret data, custom resources — for the pods an
 * operator creates at run time.
 * "declared": in the Chart.yaml annotations of an enabled chart.
 * "optional": only when something off by default is switched on (an `enabled:
 * false`, a disabled subchart, any false switch, another value a template
 * compares a string with), or only in values and literals no render reached.
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
import { compileSkipPatterns, type SkippedImages } from './skip-images.js';
import { annotatedImages, literalImages, valuesImages } from './sources.js';
import { failedMentions, setPath, stringVariants } from './template-text.js';

export type ImageUsage = 'used' | 'runtime' | 'declared' | 'optional';
/** The classes, strongest first. */
export const IMAGE_CLASSES: readonly ImageUsage[] = ['used', 'runtime', 'declared', 'optional'];
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
  /** The `helm.sh/hook` annotation of the rendered object, when it is a hook (`test`, `pre-upgrade`). */
  hook?: string;
}

export interface DiscoveredImage {
  /** Normalized reference (`docker.io/library/nginx:latest`). */
  reference: string;
  /** Its class: the strongest of its sources'. */
  usage: ImageUsage;
  /** Used only by `helm.sh/hook: test` pods (what `helm test` runs). */
  testHook?: true;
  /** Charts (and subcharts) it belongs to. */
  charts: string[];
  sources: ImageSource[];
}

/** A template ferry could not evaluate: its images are missed, values it reads count as used. */
export interface TemplateFailure {
  chart: string;
  file: string;
  message: string;
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
  /** The templates of the default render ferry could not evaluate. */
  failures: TemplateFailure[];
  /** `skipImages`: each pattern with the references it dropped from `images`. */
  skipped: SkippedImages[];
  /** The charts read: `loadedCharts`, then `charts` in order (for a caller that needs them again, as values files do). */
  loaded: Chart[];
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
  /** `--skip-image PATTERN`: globs on the normalized reference; matching images are left out (and listed in `skipped`). */
  skipImages?: string[];
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
  readonly failures: TemplateFailure[] = [];
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

  result(loaded: Chart[], charts: DiscoveredChart[], skipPatterns: readonly string[]): DiscoveryResult {
    const skip = compileSkipPatterns(skipPatterns);
    const images: DiscoveredImage[] = [];
    for (const e of [...this.entries.values()].sort((a, b) => (a.reference < b.reference ? -1 : a.reference > b.reference ? 1 : 0))) {
      const usage = IMAGE_CLASSES.find((c) => e.sources.some((s) => s.usage === c)) ?? 'optional';
      // values and literals are evidence: when the render uses the image (or hands it to an operator), they point at it
      if (usage === 'used' || usage === 'runtime') {
        for (const s of e.sources) {
          if (s.reason === NOT_RENDERED) {
            s.usage = usage;
            delete s.reason;
          }
        }
      }
      const image: DiscoveredImage = { reference: e.reference, usage, charts: [...e.charts].sort(), sources: e.sources };
      const pods = e.sources.filter((s) => s.usage === 'used' && (s.kind === 'rendered' || (s.kind === 'template' && !s.literal)));
      if (usage === 'used' && pods.length > 0 && pods.every((s) => isTestHook(s.hook))) image.testHook = true;
      if (!skip.drop(image.reference)) images.push(image);
    }
    return { images, charts, warnings: this.warnings, failures: this.failures, skipped: skip.skipped(), loaded };
  }
}

const NOT_RENDERED = 'not in any container image of the default render';

/** helm runs `test` hooks (and helm 2's `test-success`/`test-failure`) only with `helm test`. */
function isTestHook(hook: string | undefined): boolean {
  return hook?.split(',').some((h) => /^test(-success|-failure)?$/.test(h.trim())) ?? false;
}

function fieldOf(m: ManifestImage): string {
  const where = `${m.resource} ${m.list}[${m.container}]`;
  switch (m.field) {
    case 'image':
      return `${where}.image`;
    case 'argument':
      return `${where} argument ${m.detail ?? ''}`.trim();
    case 'env':
      return `${where} env ${m.detail ?? ''}`.trim();
    case 'data':
      return `${m.resource} data ${m.detail ?? ''}`.trim();
    case 'object':
      return `${m.resource} ${m.detail ?? ''}`.trim();
  }
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

/** Adds a render's finds: the default render's are used (pod images) or runtime (the rest); any other render's optional. */
function addFinds(col: Collector, finds: RenderFind[], optionalReason: string | undefined, skip?: Set<string>): void {
  for (const f of finds) {
    const m = f.image;
    if (skip?.has(normalize(m.raw) ?? '')) continue;
    const usage: ImageUsage = optionalReason !== undefined ? 'optional' : m.field === 'image' ? 'used' : 'runtime';
    const source: ImageSource = { kind: 'template', chart: f.instance.path, usage, file: f.file };
    if (f.line !== undefined) source.line = f.line;
    source.field = fieldOf(m);
    source.literal = false;
    if (m.hook !== undefined) source.hook = m.hook;
    if (optionalReason !== undefined) source.reason = optionalReason;
    col.add(m.raw, f.instance.path, source);
  }
}

function refsOf(finds: RenderFind[]): Set<string> {
  return new Set(finds.map((f) => normalize(f.image.raw) ?? ''));
}

async function discoverChart(col: Collector, chart: Chart, user: Values, opts: DiscoverOptions): Promise<DiscoveredChart[]> {
  const warn = (m: string) => col.warn(m);
  const root = resolveChart(chart, user, { warn });
  const instances = allInstances(root);
  const renderOpts = { releaseName: opts.releaseName, namespace: opts.namespace, kubeVersion: opts.kubeVersion };

  // 1. the chart's templates, evaluated with the effective values (what `helm template` would print)
  const rendered = renderChart(root, renderOpts);
  const defaultFinds = findsOf(rendered, col, true);
  addFinds(col, defaultFinds, undefined);
  for (const f of rendered.failures) {
    const message = f.message.replace(/^[^:]*:\d+: /, '');
    col.failures.push({ chart: f.instance.path, file: f.file, message });
    warn(`${f.instance.path}: could not evaluate ${f.file}: ${message}; the values and literal images it reads count as used`);
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
  // 2b. each other string a template compares a value with (`eq .Values.type "postgis"`), one at a time
  const variantFinds: Array<{ reason: string; finds: RenderFind[] }> = [];
  if (opts.exploreOptional !== false) {
    for (const v of stringVariants(root)) {
      const values = deepCopy(user);
      setPath(values, v.path, v.value);
      const result = renderChart(resolveChart(chart, values), renderOpts);
      variantFinds.push({ reason: `only with ${v.path}: ${JSON.stringify(v.value)}`, finds: findsOf(result, col, false) });
    }
  }
  const renderedRefs = refsOf([...defaultFinds, ...allOnFinds, ...variantFinds.flatMap((v) => v.finds)]);
  /** Whether a failed template of the instance reads the values path (or holds the literal line): then the guess stands in for it. */
  const defaultFailed = failedMentions(instances, rendered.failures);
  const allOnFailed = failedMentions(instances, allOn?.failures ?? []);
  const failedFor = (inst: ChartInstance) => (inst.enabled ? defaultFailed : allOnFailed);

  // 3. annotations and images.lock: declared by an enabled chart
  for (const inst of instances) {
    for (const a of annotatedImages(inst.chart, warn)) {
      const source: ImageSource = { kind: 'annotation', chart: inst.path, usage: inst.enabled ? 'declared' : 'optional', path: a.key };
      if (!inst.enabled) source.reason = `chart disabled: ${inst.disabledBy ?? 'disabled'}`;
      col.add(a.raw, inst.path, source);
    }
  }

  // 4. the values walk and 5. literals: "used" only for what a template ferry could not evaluate reads
  for (const inst of instances) {
    const evaluated = inst.enabled || allOn !== undefined;
    for (const v of valuesImages(
      inst.values,
      inst.chart.appVersion,
      inst.children.map((c) => c.name),
    )) {
      const failedReader = failedFor(inst).readsValues(inst, v.path);
      // a reference composed by convention that no render produced: the chart does not follow the convention
      if (v.guesses && evaluated && !failedReader && !renderedRefs.has(normalize(v.raw) ?? '')) continue;
      const used = inst.enabled && v.enabled && defaultFailed.readsValues(inst, v.path);
      const source: ImageSource = { kind: 'values', chart: inst.path, usage: used ? 'used' : 'optional', path: v.path };
      if (!used) {
        source.reason = !inst.enabled ? `chart disabled: ${inst.disabledBy ?? 'disabled'}` : !v.enabled ? `${v.disabledBy} is false` : NOT_RENDERED;
      }
      col.add(v.raw, inst.path, source);
    }
    for (const l of literalImages(inst.chart)) {
      const used = inst.enabled && defaultFailed.holdsLine(inst, l.file, l.text);
      const source: ImageSource = { kind: 'template', chart: inst.path, usage: used ? 'used' : 'optional', file: l.file, line: l.line, literal: true };
      if (!used) source.reason = !inst.enabled ? `chart disabled: ${inst.disabledBy ?? 'disabled'}` : NOT_RENDERED;
      col.add(l.raw, inst.path, source);
    }
  }

  // the other renders' images, only those no earlier render found (the rest would repeat it)
  const seen = refsOf(defaultFinds);
  addFinds(col, allOnFinds, 'only with non-default values (a switch that is off by default turned on)', seen);
  for (const f of allOnFinds) seen.add(normalize(f.image.raw) ?? '');
  for (const v of variantFinds) {
    addFinds(col, v.finds, v.reason, seen);
    for (const f of v.finds) seen.add(normalize(f.image.raw) ?? '');
  }

  return instances.map((i) => {
    const c: DiscoveredChart = { path: i.path, name: i.chart.name, version: i.chart.version, enabled: i.enabled, origin: i.chart.origin };
    if (i.chart.appVersion !== undefined) c.appVersion = i.chart.appVersion;
    if (i.disabledBy) c.disabledBy = i.disabledBy;
    return c;
  });
}

/** Finds the images of charts and rendered manifests. Throws FerryError (usage) for bad input. */
export async function discoverImages(opts: DiscoverOptions): Promise<DiscoveryResult> {
  // a bad pattern is a usage error before any work
  compileSkipPatterns(opts.skipImages ?? []);
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
        usage: m.field === 'image' ? 'used' : 'runtime',
        file: name,
        line: lineAt(input.text, m.offset),
        field: fieldOf(m),
      };
      if (m.hook !== undefined) source.hook = m.hook;
      col.add(m.raw, undefined, source);
    }
  }
  for (const w of col.warnings) opts.log?.(`warning: ${w}`);
  return col.result(loaded, charts, opts.skipImages ?? []);
}

/** Where an image came from, in a few words a user can act on: `templates/x.yaml (Deployment/x containers[y].image)`, `annotation helm.sh/images`. */
export function originOf(image: DiscoveredImage): string {
  const s = IMAGE_CLASSES.flatMap((c) => image.sources.filter((x) => x.usage === c))[0];
  if (!s) return 'unknown';
  const hook = s.hook !== undefined ? `, hook ${s.hook}` : '';
  switch (s.kind) {
    case 'annotation':
      return `chart ${s.chart}, annotation ${s.path}`;
    case 'values':
      return `chart ${s.chart}, values ${s.path}`;
    default:
      return `chart ${s.chart}, ${s.file}${s.line ? `:${s.line}` : ''}${s.field ? ` (${s.field}${hook})` : hook}`;
  }
}
