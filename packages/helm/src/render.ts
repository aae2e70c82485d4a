/**
 * A `helm template` for discovery: the chart tree with its subcharts enabled or
 * disabled the way Helm decides it (dependency `condition`, first resolvable path
 * wins, then `tags`), values coalesced as Helm does, and every template of every
 * enabled chart executed with a shared set of `define`s.
 */
import { posix } from 'node:path';
import type { Chart, ChartDependency } from './chart-load.js';
import { toYaml } from './encoding.js';
import { deepCopy } from './funcs/convert.js';
import { helmFuncs } from './funcs/func-map.js';
import { type GoStringer, hasOwn, isMap, put, type Segment, TemplateSet } from './template/exec.js';
import { coalesceChartValues, pathValue, type Values, type ValuesNode } from './values.js';

/** A chart as used in a release: its place in the tree, its effective values, enabled or not. */
export interface ChartInstance {
  chart: Chart;
  /** Name in the parent's values (alias or chart name). */
  name: string;
  /** Display path: `openebs`, `openebs/mayastor/etcd`. */
  path: string;
  /** Helm template path prefix: `openebs`, `openebs/charts/mayastor`. */
  templatePrefix: string;
  /** The dependency entry that brought it in (none for the root or an unlisted subchart). */
  dependency: ChartDependency | undefined;
  enabled: boolean;
  /** Why it is disabled, e.g. `condition engines.local.zfs.enabled is false`. */
  disabledBy?: string;
  /** Effective values (only meaningful when enabled; for disabled charts, what they would get). */
  values: Values;
  children: ChartInstance[];
}

export interface ResolveOptions {
  /** Ignore conditions and tags: every subchart on. */
  enableAll?: boolean;
  /** Warnings (missing dependencies, non-bool conditions). */
  warn?: (message: string) => void;
}

interface TreeNode {
  chart: Chart;
  name: string;
  dependency: ChartDependency | undefined;
  children: TreeNode[];
}

function buildTree(chart: Chart, name: string, dependency: ChartDependency | undefined, path: string, warn: (m: string) => void): TreeNode {
  const children: TreeNode[] = [];
  const used = new Set<Chart>();
  for (const dep of chart.dependencies) {
    const sub = chart.subcharts.find((c) => c.name === dep.name);
    if (!sub) {
      warn(`${path}: dependency ${dep.name}${dep.version ? ` ${dep.version}` : ''} is not in its charts/ directory; its images can only come from annotations`);
      continue;
    }
    used.add(sub);
    const childName = dep.alias ?? dep.name;
    children.push(buildTree(sub, childName, dep, `${path}/${childName}`, warn));
  }
  for (const sub of chart.subcharts) {
    if (used.has(sub)) continue;
    children.push(buildTree(sub, sub.name, undefined, `${path}/${sub.name}`, warn));
  }
  return { chart, name, dependency, children };
}

function valuesNode(t: TreeNode, keep: (t: TreeNode) => boolean): ValuesNode {
  return { name: t.name, defaults: t.chart.defaults, children: t.children.filter(keep).map((c) => valuesNode(c, keep)) };
}

/**
 * Decides which subcharts are enabled and computes every chart's effective
 * values from the user values (files merged, --set applied).
 */
export function resolveChart(chart: Chart, user: Values, opts: ResolveOptions = {}): ChartInstance {
  const warn = opts.warn ?? (() => {});
  const tree = buildTree(chart, chart.name, undefined, chart.name, warn);
  const full = coalesceChartValues(
    valuesNode(tree, () => true),
    user,
  );
  const tags = isMap(full.tags) ? (full.tags as Values) : {};

  // processDependencyEnabled: top-down, conditions over tags
  const disabled = new Map<TreeNode, string>();
  const decide = (t: TreeNode, values: Values, path: string): void => {
    for (const c of t.children) {
      const childValues = isMap(values[c.name]) ? (values[c.name] as Values) : {};
      let enabled = true;
      let why: string | undefined;
      const dep = c.dependency;
      if (dep && !opts.enableAll) {
        if (dep.tags.length > 0) {
          let hasTrue = false;
          let hasFalse = false;
          for (const tag of dep.tags) {
            const v = tags[tag];
            if (v === true) hasTrue = true;
            else if (v === false) hasFalse = true;
          }
          if (!hasTrue && hasFalse) {
            enabled = false;
            why = `tags ${dep.tags.join(', ')} are false`;
          }
        }
        if (dep.condition) {
          for (const cond of dep.condition
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean)) {
            const v = pathValue(values, cond);
            if (v === undefined) continue;
            if (typeof v === 'boolean') {
              enabled = v;
              why = v ? undefined : `condition ${cond} is false`;
              break;
            }
            warn(`${path}: condition path '${cond}' for chart ${c.name} returned a non-bool value`);
          }
        }
      }
      if (!enabled) disabled.set(c, why ?? 'disabled');
      decide(c, childValues, `${path}/${c.name}`);
    }
  };
  decide(tree, full, chart.name);

  // values again over the pruned tree, as Helm renders them
  const isOn = (t: TreeNode) => !disabled.has(t);
  const pruned = coalesceChartValues(valuesNode(tree, isOn), user);

  const build = (
    t: TreeNode,
    values: Values,
    fullValues: Values,
    path: string,
    prefix: string,
    parentEnabled: boolean,
    parentWhy: string | undefined,
  ): ChartInstance => {
    const own = disabled.get(t);
    const enabled = parentEnabled && own === undefined;
    const inst: ChartInstance = {
      chart: t.chart,
      name: t.name,
      path,
      templatePrefix: prefix,
      dependency: t.dependency,
      enabled,
      values: enabled ? values : fullValues,
      children: [],
    };
    const why = own ?? parentWhy;
    if (!enabled && why) inst.disabledBy = own ? why : `parent chart disabled (${why})`;
    for (const c of t.children) {
      const cv = isMap(values[c.name]) ? (values[c.name] as Values) : {};
      const cf = isMap(fullValues[c.name]) ? (fullValues[c.name] as Values) : {};
      inst.children.push(build(c, enabled ? cv : cf, cf, `${path}/${c.name}`, `${prefix}/charts/${c.name}`, enabled, why));
    }
    return inst;
  };
  return build(tree, pruned, full, chart.name, chart.name, true, undefined);
}

/** Every instance of the tree, depth first, parents before children. */
export function allInstances(root: ChartInstance): ChartInstance[] {
  const out: ChartInstance[] = [];
  const walk = (i: ChartInstance) => {
    out.push(i);
    i.children.forEach(walk);
  };
  walk(root);
  return out;
}

// ---------------------------------------------------------------------------
// Built-in objects

export const DEFAULT_KUBE_VERSION = 'v1.31.0';

/** Group/versions a `helm template` reports (client-go's scheme, as Helm's DefaultVersionSet). */
const API_VERSIONS = [
  'v1',
  'admissionregistration.k8s.io/v1',
  'admissionregistration.k8s.io/v1beta1',
  'admissionregistration.k8s.io/v1alpha1',
  'apiextensions.k8s.io/v1',
  'apiextensions.k8s.io/v1beta1',
  'apiregistration.k8s.io/v1',
  'apps/v1',
  'apps/v1beta1',
  'apps/v1beta2',
  'authentication.k8s.io/v1',
  'authentication.k8s.io/v1beta1',
  'authorization.k8s.io/v1',
  'authorization.k8s.io/v1beta1',
  'autoscaling/v1',
  'autoscaling/v2',
  'autoscaling/v2beta1',
  'autoscaling/v2beta2',
  'batch/v1',
  'batch/v1beta1',
  'certificates.k8s.io/v1',
  'certificates.k8s.io/v1beta1',
  'coordination.k8s.io/v1',
  'coordination.k8s.io/v1beta1',
  'discovery.k8s.io/v1',
  'discovery.k8s.io/v1beta1',
  'events.k8s.io/v1',
  'events.k8s.io/v1beta1',
  'extensions/v1beta1',
  'flowcontrol.apiserver.k8s.io/v1',
  'flowcontrol.apiserver.k8s.io/v1beta3',
  'networking.k8s.io/v1',
  'networking.k8s.io/v1beta1',
  'node.k8s.io/v1',
  'node.k8s.io/v1beta1',
  'policy/v1',
  'policy/v1beta1',
  'rbac.authorization.k8s.io/v1',
  'rbac.authorization.k8s.io/v1beta1',
  'scheduling.k8s.io/v1',
  'scheduling.k8s.io/v1beta1',
  'storage.k8s.io/v1',
  'storage.k8s.io/v1beta1',
];

class KubeVersion implements GoStringer {
  readonly Major: string;
  readonly Minor: string;
  readonly GitVersion: string;
  constructor(readonly Version: string) {
    const m = /^v?(\d+)\.(\d+)/.exec(Version);
    this.Major = m?.[1] ?? '1';
    this.Minor = m?.[2] ?? '0';
    this.GitVersion = Version;
  }
  String(): string {
    return this.Version;
  }
  goString(): string {
    return this.Version;
  }
}

class APIVersions implements GoStringer {
  constructor(private readonly set: readonly string[]) {}
  Has(v: unknown): boolean {
    return this.set.includes(String(v));
  }
  goString(): string {
    return `[${this.set.join(' ')}]`;
  }
}

function globToRegExp(glob: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') {
      if (glob[i + 1] === '*') {
        re += '.*';
        i++;
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '{') {
      const end = glob.indexOf('}', i);
      if (end < 0) re += '\\{';
      else {
        re +=
          '(?:' +
          glob
            .slice(i + 1, end)
            .split(',')
            .map((s) => s.replace(/[.+^$()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*'))
            .join('|') +
          ')';
        i = end;
      }
    } else if (c === '[') {
      const end = glob.indexOf(']', i);
      if (end < 0) re += '\\[';
      else {
        re += glob.slice(i, end + 1).replace(/^\[!/, '[^');
        i = end;
      }
    } else re += c.replace(/[.+^$()|\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** `.Files`: the chart's non-template files. */
class ChartFiles implements GoStringer {
  constructor(private readonly files: Map<string, Buffer>) {}
  Get(name: unknown): string {
    return this.files.get(String(name))?.toString('utf8') ?? '';
  }
  GetBytes(name: unknown): string {
    return this.Get(name);
  }
  Lines(name: unknown): string[] {
    const s = this.Get(name);
    return s === '' ? [] : s.split('\n');
  }
  Glob(pattern: unknown): ChartFiles {
    const re = globToRegExp(String(pattern));
    return new ChartFiles(new Map([...this.files].filter(([p]) => re.test(p))));
  }
  AsConfig(): string {
    const out: Record<string, string> = {};
    for (const [p, d] of this.files) put(out, posix.basename(p), d.toString('utf8'));
    return Object.keys(out).length === 0 ? '' : toYaml(out);
  }
  AsSecrets(): string {
    const out: Record<string, string> = {};
    for (const [p, d] of this.files) put(out, posix.basename(p), d.toString('base64'));
    return Object.keys(out).length === 0 ? '' : toYaml(out);
  }
  /** For `range $path, $bytes := .Files.Glob …`. */
  rangeEntries(): Array<[string, string]> {
    return [...this.files].sort(([a], [b]) => (a < b ? -1 : 1)).map(([p, d]) => [p, d.toString('utf8')]);
  }
  goString(): string {
    return `map[${[...this.files.keys()].sort().join(' ')}]`;
  }
}

const META_FIELDS: Record<string, string> = {
  apiVersion: 'APIVersion',
  appVersion: 'AppVersion',
  kubeVersion: 'KubeVersion',
};

/** `.Chart`: the metadata, named as the release uses the chart (an aliased dependency is its alias, as helm's getAliasDependency makes it). */
function chartObject(chart: Chart, name: string, isRoot: boolean): Values {
  const out: Values = {};
  for (const [k, v] of Object.entries(chart.metadata)) {
    const key = META_FIELDS[k] ?? k.charAt(0).toUpperCase() + k.slice(1);
    put(out, key, v);
  }
  out.Name = name;
  out.Version = chart.version;
  out.AppVersion = chart.appVersion ?? '';
  out.IsRoot = isRoot;
  if (!hasOwn(out, 'Annotations')) out.Annotations = {};
  return out;
}

// ---------------------------------------------------------------------------
// Rendering

export interface RenderOptions {
  releaseName?: string;
  namespace?: string;
  kubeVersion?: string;
}

export interface RenderedTemplate {
  instance: ChartInstance;
  /** Path in the chart, e.g. `templates/deployment.yaml`. */
  file: string;
  text: string;
  segments: Segment[];
}

export interface RenderFailure {
  instance: ChartInstance;
  file: string;
  message: string;
}

export interface RenderResult {
  rendered: RenderedTemplate[];
  failures: RenderFailure[];
  unknownFuncs: string[];
}

function depth(p: string): number {
  return p.split('/').length;
}

/** Renders every template of every enabled chart of the tree. */
export function renderChart(root: ChartInstance, opts: RenderOptions = {}): RenderResult {
  const instances = allInstances(root).filter((i) => i.enabled);
  const set = new TemplateSet();
  set.funcs = helmFuncs();
  const failures: RenderFailure[] = [];

  // Helm parses templates deepest path first, then in reverse order, so parents' defines win.
  const all: Array<{ inst: ChartInstance; file: string; name: string; text: string }> = [];
  for (const inst of instances) {
    for (const t of inst.chart.templates) all.push({ inst, file: t.path, name: `${inst.templatePrefix}/${t.path}`, text: t.text });
  }
  all.sort((a, b) => depth(b.name) - depth(a.name) || (a.name < b.name ? 1 : a.name > b.name ? -1 : 0));
  const parsed = new Set<string>();
  for (const t of all) {
    try {
      set.addFile(t.name, t.text);
      parsed.add(t.name);
    } catch (e) {
      failures.push({ instance: t.inst, file: t.file, message: (e as Error).message });
    }
  }

  const release = {
    Name: opts.releaseName ?? 'release-name',
    Namespace: opts.namespace ?? 'default',
    Service: 'Helm',
    IsInstall: true,
    IsUpgrade: false,
    Revision: 1,
  };
  const capabilities = {
    KubeVersion: new KubeVersion(opts.kubeVersion ?? DEFAULT_KUBE_VERSION),
    APIVersions: new APIVersions(API_VERSIONS),
    HelmVersion: { Version: 'v3.17.0', GitCommit: '', GitTreeState: 'clean', GoVersion: 'go1.23' },
  };

  // templates may change values (sprig's merge and set do): each render works on a copy
  const copies = new Map<ChartInstance, Values>();
  const valuesOf = (inst: ChartInstance): Values => {
    let v = copies.get(inst);
    if (!v) copies.set(inst, (v = deepCopy(inst.values)));
    return v;
  };
  const dataFor = (inst: ChartInstance, isRoot: boolean): Values => {
    const subcharts: Values = {};
    const data: Values = {
      Values: valuesOf(inst),
      Chart: chartObject(inst.chart, inst.name, isRoot),
      Release: release,
      Capabilities: capabilities,
      Files: new ChartFiles(inst.chart.files),
      Subcharts: subcharts,
    };
    for (const c of inst.children) {
      if (!c.enabled) continue;
      Object.defineProperty(subcharts, c.name, { enumerable: true, configurable: true, get: () => dataFor(c, false) });
    }
    return data;
  };

  const rendered: RenderedTemplate[] = [];
  for (const inst of instances) {
    // a library chart only lends its defines
    if (inst.chart.type === 'library') continue;
    const base = dataFor(inst, inst === root);
    for (const t of inst.chart.templates) {
      const baseName = posix.basename(t.path);
      if (baseName.startsWith('_') || t.path === 'templates/NOTES.txt') continue;
      const name = `${inst.templatePrefix}/${t.path}`;
      if (!parsed.has(name)) continue;
      const data: Values = { ...base, Template: { Name: name, BasePath: `${inst.templatePrefix}/templates` } };
      try {
        const out = set.execute(name, data);
        rendered.push({ instance: inst, file: t.path, text: out.text, segments: out.segments });
      } catch (e) {
        failures.push({ instance: inst, file: t.path, message: (e as Error).message });
      }
    }
  }
  return { rendered, failures, unknownFuncs: [...set.unknownFuncs].sort() };
}
