/**
 * Helm values files that point a chart at the mirror: `DIR/<chart>.yaml`, which
 * passed to `helm install -f` makes the chart pull every image it renders from
 * where load put it. Charts compose image references in many ways, so the file
 * is found by trying, not by guessing once: for each image of the default
 * render, candidate overrides come from what discovery knows (the values path an
 * image came from: registry/repository/tag/digest splits, a repository holding a
 * host, a full `image: "repo:tag"` string), then from image maps naming it
 * (`image.name`), then from registry-level values (`imageRegistry`,
 * `global.imageRegistry`, `global.image.registry`). Each is kept only when ferry's
 * own render with it puts the image at its target and moves nothing else
 * wrongly; what no value moves (a literal in a template) is reported, for the
 * runtime mirror config. Tags and digests stay as upstream, except that a
 * digest-pinned image packed with --platform is named by the digest the mirror
 * holds (the filtered index).
 */
import {
  allInstances,
  type Chart,
  type ChartInstance,
  chartFromArchive,
  deepCopy,
  hasOwn,
  isMap,
  readValuesFile,
  resolveChart,
  userValues,
  type Values,
} from '@ferry/helm';
import { FerryError, formatReference, MediaType, parseReference, type Reference } from '@ferry/oci-client';
import { discoverImages, type ImageSource } from '../charts/discover.js';
import { hasHost, IMAGE_NAMED } from '../charts/image-shapes.js';
import type { TargetMapper } from '../load/mapping.js';
import { writeFileUnder } from '../output-files.js';
import type { BundleReader } from '../places/bundle-reader.js';

export interface MovedImage {
  /** The normalized upstream reference the chart renders by default. */
  source: string;
  /** The reference the chart renders with the values file. */
  target: string;
}

export interface UnmovedImage {
  source: string;
  /** Where the render has it: `templates/x.yaml Deployment/x containers[web].image`. */
  where: string;
  /**
   * Why it stays: written literally in a template, no value of the chart moves it,
   * the mirror does not hold it, or ferry's render has it nowhere (an image only
   * declared in annotations, a missing subchart, a template ferry cannot evaluate).
   */
  reason: 'literal' | 'no-value' | 'not-carried' | 'not-rendered';
}

export interface ChartValues {
  chart: string;
  version: string;
  /** The file name under the output directory: `<chart>.yaml`. */
  file: string;
  /** The overrides (also in `text`, as YAML after the header comments). */
  values: Values;
  text: string;
  moved: MovedImage[];
  unmoved: UnmovedImage[];
}

export interface ChartValuesOptions {
  mapper: TargetMapper;
  /** Whether the mirror holds this normalized reference; default: every one. */
  carried?: ((ref: string) => boolean) | undefined;
  /** The digest the mirror holds for a digest-pinned reference, when it is not the pinned one (a filtered index). */
  heldDigest?: ((ref: string) => string | undefined) | undefined;
  /** Values files and --set expressions the chart will be installed with (applied before the overrides, as `helm -f`). */
  valuesFiles?: string[] | undefined;
  set?: string[] | undefined;
  /** The release namespace and Kubernetes version the chart will be installed with (helm's --namespace, --kube-version). */
  namespace?: string | undefined;
  kubeVersion?: string | undefined;
}

type Seg = string | number;

/** One value to set: under a subchart's section (`prefix`), at `path` in that chart's values. */
interface Edit {
  prefix: string[];
  path: Seg[];
  value: unknown;
  /** The effective values `path` is read against (arrays are copied whole: helm replaces lists). */
  from: Values;
}

interface Candidate {
  edits: Edit[];
}

/**
 * The rendered image fields of a render, keyed by chart, file and field; values the normalized
 * references there (one, or several: an env value or data line listing `4.2.0=REF 4.3.0=REF`).
 */
type Observed = Map<string, Set<string>>;

interface Observation {
  images: Observed;
  /** Per key: the source as discovery gave it, for messages. */
  where: Map<string, string>;
  /** Normalized references written literally in a template, with the file. */
  literals: Map<string, Set<string>>;
  /** Per reference: every source discovery gave it (values paths among them). */
  sources: Map<string, ImageSource[]>;
  /** The references the chart will pull: used, runtime and declared (annotations), as pack carries them. */
  used: string[];
}

// ---------------------------------------------------------------------------
// rendering

/** A field without the reference in it (an argument's word holds it, after its flag), so that a moved image keeps its key. */
function fieldOnly(field: string): string {
  return field.replace(/( argument )(--?[^=\s]*=)?.*$/, '$1$2').trim();
}

function fieldKey(s: ImageSource): string {
  return `${s.chart}\0${s.file ?? ''}\0${fieldOnly(s.field ?? '')}`;
}

async function observe(chart: Chart, overrides: Values, opts: ChartValuesOptions): Promise<Observation> {
  const r = await discoverImages({
    loadedCharts: [chart],
    valuesFiles: opts.valuesFiles ?? [],
    values: [overrides],
    set: opts.set ?? [],
    ...(opts.namespace !== undefined ? { namespace: opts.namespace } : {}),
    ...(opts.kubeVersion !== undefined ? { kubeVersion: opts.kubeVersion } : {}),
    exploreOptional: false,
  });
  const images: Observed = new Map();
  const where = new Map<string, string>();
  const literals = new Map<string, Set<string>>();
  const sources = new Map(r.images.map((i) => [i.reference, i.sources]));
  for (const img of r.images) {
    for (const s of img.sources) {
      if (s.kind !== 'template') continue;
      if (s.literal) {
        literals.set(img.reference, (literals.get(img.reference) ?? new Set()).add(`${s.file}${s.line ? `:${s.line}` : ''}`));
        continue;
      }
      if (!s.field) continue;
      const key = fieldKey(s);
      images.set(key, (images.get(key) ?? new Set()).add(img.reference));
      where.set(key, `${s.chart === chart.name ? '' : `${s.chart} `}${s.file} ${fieldOnly(s.field)}`.trim());
    }
  }
  return { images, where, literals, sources, used: r.images.filter((i) => i.usage !== 'optional').map((i) => i.reference) };
}

// ---------------------------------------------------------------------------
// reading values

/** The segments of a discovery path (`a.b[0].image`) in these values; keys may hold dots, so the values decide. */
function parsePath(root: unknown, text: string): Seg[] | undefined {
  const segs: Seg[] = [];
  let node = root;
  let rest = text;
  while (rest !== '') {
    const idx = /^\[(\d+)\]\.?/.exec(rest);
    if (idx) {
      if (!Array.isArray(node)) return undefined;
      const i = Number(idx[1]);
      segs.push(i);
      node = node[i];
      rest = rest.slice(idx[0].length);
      continue;
    }
    if (!isMap(node)) return undefined;
    const here = rest;
    const key = Object.keys(node)
      .filter((k) => here === k || here.startsWith(`${k}.`) || here.startsWith(`${k}[`))
      .sort((a, b) => b.length - a.length)[0];
    if (key === undefined) return undefined;
    segs.push(key);
    node = node[key];
    rest = rest.slice(key.length).replace(/^\./, '');
  }
  return segs;
}

function valueAt(root: unknown, segs: Seg[]): unknown {
  let node = root;
  for (const s of segs) {
    if (typeof s === 'number') node = Array.isArray(node) ? node[s] : undefined;
    else node = isMap(node) && hasOwn(node, s) ? node[s] : undefined;
  }
  return node;
}

/** A reference string as `base` (registry and repository) and `suffix` (`:tag`, `@digest`). */
function splitSuffix(s: string): { base: string; suffix: string } {
  const at = s.indexOf('@');
  const name = at < 0 ? s : s.slice(0, at);
  const colon = name.lastIndexOf(':');
  const end = colon > name.lastIndexOf('/') ? colon : name.length;
  return { base: s.slice(0, end), suffix: s.slice(end) };
}

// ---------------------------------------------------------------------------
// candidates

interface Target {
  /** The upstream reference, parsed. */
  source: Reference;
  /** Where the mirror holds it, with the digest it holds. */
  target: Reference;
}

class Candidates {
  private readonly globalRegistryRead: boolean;

  /** The image maps discovery found images in (`instance path\0segments`): their registry is theirs alone. */
  private readonly imageMapPaths = new Set<string>();

  constructor(
    private readonly chart: Chart,
    private readonly instances: Map<string, ChartInstance>,
    sources: Iterable<ImageSource[]>,
  ) {
    const read = (c: Chart): boolean => c.templates.some((t) => t.text.includes('imageRegistry')) || c.subcharts.some(read);
    this.globalRegistryRead = read(chart);
    for (const list of sources) {
      for (const s of list) {
        const inst = s.kind === 'values' && s.path ? this.instances.get(s.chart) : undefined;
        const segs = inst ? parsePath(inst.values, s.path!) : undefined;
        if (!inst || !segs) continue;
        const map = isMap(valueAt(inst.values, segs)) ? segs : segs.slice(0, -1);
        this.imageMapPaths.add(`${inst.path}\0${JSON.stringify(map)}`);
      }
    }
  }

  private prefixOf(inst: ChartInstance): string[] {
    return inst.path.split('/').slice(1);
  }

  /**
   * Candidates for an image, most specific first. An image can be rendered from
   * several values (two subcharts, list entries): the n-th candidate sets the
   * n-th shape of every one of them.
   */
  of(t: Target, sources: ImageSource[]): Candidate[] {
    const maps = new Set<string>();
    // 1. the values paths discovery found the image at
    const found: Candidate[][] = [];
    for (const s of sources) {
      if (s.kind !== 'values' || !s.path) continue;
      const inst = this.instances.get(s.chart);
      if (!inst) continue;
      const segs = parsePath(inst.values, s.path);
      if (!segs) continue;
      const node = valueAt(inst.values, segs);
      if (isMap(node)) {
        const key = ['repository', 'image', 'name'].find((k) => typeof node[k] === 'string' && node[k] !== '');
        if (key) found.push(this.shapes(inst, segs, node, key, t));
        maps.add(`${inst.path}\0${JSON.stringify(segs)}`);
        continue;
      }
      if (typeof node !== 'string') continue;
      const last = segs.at(-1);
      const parentSegs = segs.slice(0, -1);
      const parent = valueAt(inst.values, parentSegs);
      if (typeof last === 'string' && isMap(parent)) {
        found.push(this.shapes(inst, parentSegs, parent, last, t));
        maps.add(`${inst.path}\0${JSON.stringify(parentSegs)}`);
      } else {
        const { suffix } = splitSuffix(node);
        found.push([{ edits: [this.edit(inst, segs, `${t.target.registry}/${t.target.repository}${this.swap(suffix, t)}`)] }]);
      }
    }
    // 2. image maps that name it (`image: {name: controller, repository: ""}`)
    const naming: Candidate[][] = [];
    for (const inst of this.instances.values()) {
      this.imageMaps(inst.values, [], (segs, m) => {
        if (maps.has(`${inst.path}\0${JSON.stringify(segs)}`)) return;
        const key = this.naming(m, t.source);
        if (key) naming.push(this.shapes(inst, segs, m, hasOwn(m, 'repository') ? 'repository' : key, t));
      });
    }
    // 3. registry-level values (`imageRegistry: quay.io`, `global.image.registry`): right when the mapping keeps the rest
    const registries: Candidate[] = [];
    for (const inst of this.instances.values()) {
      const skip = new Set(inst.children.map((c) => c.name));
      this.registryValues(inst, inst.values, [], skip, (segs, v) => {
        const full = `${t.source.registry}/${t.source.repository}`;
        const value = v.replace(/\/+$/, '');
        if (!full.startsWith(`${value}/`)) return;
        const rest = full.slice(value.length);
        const base = `${t.target.registry}/${t.target.repository}`;
        if (!base.endsWith(rest) || base.length === rest.length) return;
        // globals are one value for every chart: set at the top
        const global = segs[0] === 'global';
        const root = this.instances.get(this.chart.name)!;
        registries.push({ edits: [this.edit(global ? root : inst, segs, `${base.slice(0, -rest.length)}${v.endsWith('/') ? '/' : ''}`)] });
      });
    }
    // 4. empty values named like an image (`imageName: ""`, an override the template prefers to what it composes
    // otherwise, as a custom resource's `spec.imageName` often is), only those whose path shares a word with the
    // rendered field besides the image key itself (`cluster.imageName` for `Cluster/x spec.imageName`), closest first
    const overrides: Array<{ c: Candidate; score: number }> = [];
    const words = (text: string) =>
      new Set(
        text
          .toLowerCase()
          .split(/[^a-z0-9]+/)
          .filter((w) => w.length > 1 && !IMAGE_NAMED.test(w)),
      );
    const fields = sources.filter((s) => s.kind === 'template' && s.field).map((s) => words(s.field!));
    for (const inst of this.instances.values()) {
      const skip = new Set(inst.children.map((c) => c.name));
      this.emptyImageValues(inst.values, [], skip, (segs) => {
        const mine = words(segs.join(' '));
        const score = Math.max(0, ...fields.map((f) => [...mine].filter((w) => f.has(w)).length));
        if (score > 0) overrides.push({ c: { edits: [this.edit(inst, segs, formatReference(t.target))] }, score });
      });
    }
    overrides.sort((a, b) => b.score - a.score);
    const out: Candidate[] = [];
    const seen = new Set<string>();
    for (const c of [...zip(found), ...zip(naming), ...registries, ...overrides.map((o) => o.c)]) {
      const k = JSON.stringify(c.edits.map((e) => [e.prefix, e.path, e.value]));
      if (!seen.has(k)) {
        seen.add(k);
        out.push(c);
      }
    }
    return out;
  }

  private edit(inst: ChartInstance, path: Seg[], value: unknown): Edit {
    return { prefix: this.prefixOf(inst), path, value, from: inst.values };
  }

  /** The upstream digest in a tag, digest or reference string, replaced by the one the mirror holds. */
  private swap(s: string, t: Target): string {
    return t.source.digest && t.target.digest && t.source.digest !== t.target.digest ? s.replaceAll(t.source.digest, t.target.digest) : s;
  }

  /** Overrides for an image map `m` at `segs` whose `key` holds the repository (or the whole reference). */
  private shapes(inst: ChartInstance, segs: Seg[], m: Values, key: string, t: Target): Candidate[] {
    const at = (k: string, v: unknown) => this.edit(inst, [...segs, k], v);
    const repo = typeof m[key] === 'string' ? (m[key] as string) : '';
    const suffix = this.swap(splitSuffix(repo).suffix, t);
    // digests elsewhere in the map (`digest`, `digestChroot`, a tag with @digest)
    const swaps: Edit[] = [];
    for (const [k, v] of Object.entries(m)) {
      if (k !== key && typeof v === 'string' && this.swap(v, t) !== v) swaps.push(at(k, this.swap(v, t)));
    }
    const ownRegistry = typeof m.registry === 'string' && m.registry !== '';
    // a registry written with its slash (`registry.k8s.io/`, templates then join without one) keeps it
    const slash = typeof m.registry === 'string' && m.registry.endsWith('/') ? '/' : '';
    const split: Candidate = { edits: [at('registry', `${t.target.registry}${slash}`), at(key, `${t.target.repository}${suffix}`), ...swaps] };
    const full: Candidate = {
      edits: [at(key, `${t.target.registry}/${t.target.repository}${suffix}`), ...(ownRegistry ? [at('registry', '')] : []), ...swaps],
    };
    const g = isMap(inst.values.global) ? inst.values.global : {};
    const registryAround = hasOwn(m, 'registry') || hasOwn(g, 'imageRegistry') || hasOwn(g, 'registry') || (isMap(g.image) && hasOwn(g.image, 'registry'));
    const out = !hasHost(repo) && registryAround ? [split, full] : [full, split];
    if (this.globalRegistryRead) {
      // bitnami's common.images.image: global.imageRegistry wins over the image's own registry
      const root = this.instances.get(this.chart.name)!;
      out.push({
        edits: [
          this.edit(root, ['global', 'imageRegistry'], t.target.registry),
          ...(hasOwn(m, 'registry') ? [at('registry', t.target.registry)] : []),
          at(key, `${t.target.repository}${suffix}`),
          ...swaps,
        ],
      });
    }
    return out;
  }

  /** The key of `m` whose value names the image (its repository, or its last path part), if any. */
  private naming(m: Values, source: Reference): string | undefined {
    const last = source.repository.split('/').at(-1)!;
    const names = new Set([source.repository, last, `${source.registry}/${source.repository}`]);
    return ['repository', 'image', 'name'].find((k) => typeof m[k] === 'string' && names.has(splitSuffix(m[k] as string).base));
  }

  private imageMaps(v: unknown, segs: Seg[], visit: (segs: Seg[], m: Values) => void, depth = 0): void {
    if (depth > 16) return;
    if (Array.isArray(v)) {
      for (const [i, x] of v.entries()) this.imageMaps(x, [...segs, i], visit, depth + 1);
    } else if (isMap(v)) {
      const key = segs.at(-1);
      if (typeof key === 'string' && /image$/i.test(key)) visit(segs, v);
      for (const [k, x] of Object.entries(v)) this.imageMaps(x, [...segs, k], visit, depth + 1);
    }
  }

  /** Empty strings under keys named like an image (`imageName`, `image`), outside subchart sections. */
  private emptyImageValues(v: unknown, segs: Seg[], skip: Set<string>, visit: (segs: Seg[]) => void, depth = 0): void {
    if (depth > 16 || !isMap(v)) return;
    for (const [k, x] of Object.entries(v)) {
      if (depth === 0 && skip.has(k)) continue;
      if (x === '' && IMAGE_NAMED.test(k)) visit([...segs, k]);
      else this.emptyImageValues(x, [...segs, k], skip, visit, depth + 1);
    }
  }

  /**
   * String values named `*registry`, outside subchart sections (walked with the
   * subchart) and outside the image maps of other images.
   */
  private registryValues(inst: ChartInstance, v: unknown, segs: Seg[], skip: Set<string>, visit: (segs: Seg[], value: string) => void, depth = 0): void {
    if (depth > 16 || !isMap(v)) return;
    if (this.imageMapPaths.has(`${inst.path}\0${JSON.stringify(segs)}`)) return;
    for (const [k, x] of Object.entries(v)) {
      if (depth === 0 && skip.has(k)) continue;
      if (typeof x === 'string' && /registry$/i.test(k) && x !== '') visit([...segs, k], x);
      else this.registryValues(inst, x, [...segs, k], skip, visit, depth + 1);
    }
  }
}

/** The n-th candidate of every list, as one candidate each. */
function zip(lists: Candidate[][]): Candidate[] {
  const n = Math.max(0, ...lists.map((l) => l.length));
  return Array.from({ length: n }, (_, i) => ({ edits: lists.flatMap((l) => l[i]?.edits ?? []) }));
}

/** The overrides document the edits make, in order (a later edit of one path wins). */
function overridesOf(candidates: Candidate[]): Values {
  const doc: Values = {};
  for (const c of candidates) {
    for (const e of c.edits) {
      let node: Values = doc;
      for (const p of e.prefix) {
        if (!isMap(node[p])) node[p] = {};
        node = node[p] as Values;
      }
      let here: unknown = node;
      for (const [i, seg] of e.path.entries()) {
        const last = i === e.path.length - 1;
        const container = here as Record<string | number, unknown>;
        if (last) {
          container[seg] = e.value;
          break;
        }
        const next = e.path[i + 1]!;
        if (typeof next === 'number') {
          // helm replaces a list whole: the effective one, with this change
          if (!Array.isArray(container[seg])) container[seg] = deepCopy(valueAt(e.from, e.path.slice(0, i + 1)) ?? []);
        } else if (!isMap(container[seg])) container[seg] = {};
        here = container[seg];
      }
    }
  }
  return doc;
}

// ---------------------------------------------------------------------------
// the search

/** The values file for one chart: overrides that ferry's render proves, and what stays where it is. */
export async function chartValues(chart: Chart, opts: ChartValuesOptions): Promise<ChartValues> {
  const carried = opts.carried ?? (() => true);
  const files: Values[] = [];
  for (const f of opts.valuesFiles ?? []) files.push(await readValuesFile(f));
  const root = resolveChart(chart, userValues(files, opts.set ?? []));
  const instances = new Map(allInstances(root).map((i) => [i.path, i]));

  const base = await observe(chart, {}, opts);
  const candidates = new Candidates(chart, instances, base.sources.values());
  // per field: each reference of the default render, and the reference wanted in its place
  const want = new Map<string, Map<string, string>>();
  const targets = new Map<string, Target>();
  for (const [key, refs] of base.images) {
    const here = new Map<string, string>();
    want.set(key, here);
    for (const ref of refs) {
      if (!carried(ref)) {
        here.set(ref, ref);
        continue;
      }
      let t = targets.get(ref);
      if (!t) {
        const source = parseReference(ref);
        const target = opts.mapper.map(ref);
        const held = opts.heldDigest?.(ref);
        if (held) target.digest = held;
        targets.set(ref, (t = { source, target }));
      }
      here.set(ref, formatReference(t.target));
    }
  }
  const keysOf = new Map<string, string[]>();
  for (const [key, refs] of base.images) for (const ref of refs) if (targets.has(ref)) keysOf.set(ref, [...(keysOf.get(ref) ?? []), key]);
  const pending = new Map<string, Candidate[]>();
  for (const [ref, t] of targets) {
    pending.set(ref, candidates.of(t, base.sources.get(ref) ?? []));
  }

  const okIn = (o: Observation, key: string, ref: string) => o.images.get(key)?.has(want.get(key)!.get(ref)!) === true;
  const allOk = (o: Observation, ref: string) => keysOf.get(ref)!.every((k) => okIn(o, k, ref));
  // a candidate is kept when it moves a place of its image that was not moved yet
  const fixesSome = (before: Observation, after: Observation, ref: string) => keysOf.get(ref)!.some((k) => !okIn(before, k, ref) && okIn(after, k, ref));
  // nothing that was right goes wrong (a field whose reference no longer parses is gone from the render: wrong too),
  // and no field gets a reference that is neither what it had nor what is wanted there (another image moved wrongly)
  const noWorse = (before: Observation, after: Observation) =>
    [...want].every(([k, refs]) => [...refs.keys()].every((ref) => !okIn(before, k, ref) || okIn(after, k, ref))) &&
    [...after.images].every(([k, refs]) => {
      const wanted = new Set(want.get(k)?.values() ?? []);
      return [...refs].every((ref) => wanted.has(ref) || before.images.get(k)?.has(ref) === true);
    });

  let accepted: Candidate[] = [];
  let current = base;
  // a value an accepted candidate set is not set again otherwise (that would undo it)
  const set = new Map<string, string>();
  const pathOf = (e: Edit) => JSON.stringify([e.prefix, e.path]);
  const clashes = (c: Candidate, values: Map<string, string>) =>
    c.edits.some((e) => values.has(pathOf(e)) && values.get(pathOf(e)) !== JSON.stringify(e.value));
  const accept = (c: Candidate) => {
    accepted = [...accepted, c];
    for (const e of c.edits) set.set(pathOf(e), JSON.stringify(e.value));
  };
  /** Tries candidates together; a group that breaks something is halved until the culprit is alone (and dropped). */
  const attempt = async (group: Array<[string, Candidate]>): Promise<void> => {
    const trial = await observe(chart, overridesOf([...accepted, ...group.map(([, c]) => c)]), opts);
    if (noWorse(current, trial)) {
      const fixed = group.filter(([ref]) => fixesSome(current, trial, ref));
      for (const [, c] of fixed) accept(c);
      current = fixed.length === group.length ? trial : await observe(chart, overridesOf(accepted), opts);
      return;
    }
    if (group.length === 1) return;
    const half = Math.ceil(group.length / 2);
    await attempt(group.slice(0, half));
    await attempt(group.slice(half));
  };
  for (let round = 0; round < 16; round++) {
    const trying: Array<[string, Candidate]> = [];
    const thisRound = new Map<string, string>();
    for (const ref of targets.keys()) {
      if (allOk(current, ref)) continue;
      const list = pending.get(ref)!;
      while (list.length > 0 && clashes(list[0]!, set)) list.shift();
      const next = list[0];
      // two candidates setting one value differently wait for separate rounds
      if (!next || clashes(next, thisRound)) continue;
      list.shift();
      for (const e of next.edits) thisRound.set(pathOf(e), JSON.stringify(e.value));
      trying.push([ref, next]);
    }
    if (trying.length === 0) break;
    await attempt(trying);
  }

  const moved: MovedImage[] = [];
  const unmoved: UnmovedImage[] = [];
  for (const [ref, t] of targets) {
    if (allOk(current, ref)) moved.push({ source: ref, target: formatReference(t.target) });
  }
  for (const [key, refs] of base.images) {
    for (const ref of refs) {
      if (okIn(current, key, ref) && targets.has(ref)) continue;
      const literal = base.literals.has(ref) && [...base.literals.get(ref)!].some((f) => key.split('\0')[1] === f.split(':')[0]);
      const where = base.where.get(key)!;
      if (!targets.has(ref)) unmoved.push({ source: ref, where, reason: 'not-carried' });
      else unmoved.push({ source: ref, where, reason: literal ? 'literal' : 'no-value' });
    }
  }
  const rendered = new Set([...base.images.values()].flatMap((refs) => [...refs]));
  for (const ref of base.used) {
    if (rendered.has(ref) || !carried(ref)) continue;
    const s = base.sources.get(ref)?.[0];
    const where =
      s?.kind === 'annotation' ? `Chart.yaml ${s.path}` : s?.kind === 'values' ? `${s.chart} values ${s.path}` : `${s?.chart} ${s?.file ?? ''}`.trim();
    unmoved.push({ source: ref, where, reason: 'not-rendered' });
  }
  moved.sort((a, b) => a.source.localeCompare(b.source));
  unmoved.sort((a, b) => a.source.localeCompare(b.source) || a.where.localeCompare(b.where));
  const values = overridesOf(accepted);
  return {
    chart: chart.name,
    version: chart.version,
    file: `${chart.name}.yaml`,
    values,
    text: await valuesText(chart, values, moved, unmoved),
    moved,
    unmoved,
  };
}

/** One line a user reads for an image the file leaves in place. */
export function unmovedLine(chart: string, u: UnmovedImage): string {
  const cause = {
    literal: 'written literally in the template',
    'no-value': 'no value of the chart moves it',
    'not-rendered': "not in ferry's render of the chart",
  };
  const why =
    u.reason === 'not-carried' ? 'not in the bundle; left as it is' : `${cause[u.reason]}; point the runtime at the mirror for it (ferry load --mirror-config)`;
  return `${chart}: ${u.source} (${u.where}): ${why}`;
}

async function valuesText(chart: Chart, values: Values, moved: MovedImage[], unmoved: UnmovedImage[]): Promise<string> {
  const { stringify } = await import('yaml');
  const lines = [
    `# Written by ferry for chart ${chart.name} ${chart.version}: helm install -f ${chart.name}.yaml … pulls its images from the mirror.`,
    `# ${moved.length} image${moved.length === 1 ? '' : 's'} moved (checked by rendering the chart with these values).`,
  ];
  if (unmoved.length) lines.push('# Not moved by these values:');
  for (const u of unmoved) lines.push(`#   ${unmovedLine(chart.name, u).slice(chart.name.length + 2)}`);
  return `${lines.join('\n')}\n${stringify(values)}`;
}

// ---------------------------------------------------------------------------
// bundles and files

/** The Helm charts a bundle carries, read from their OCI artifacts. */
export async function bundleCharts(bundle: BundleReader): Promise<Chart[]> {
  const out: Chart[] = [];
  for (const c of bundle.charts()) {
    const m = await bundle.getManifest(c.descriptor);
    const layer = m.kind === 'image' ? m.manifest.layers.find((l) => l.mediaType === MediaType.HELM_CHART) : undefined;
    if (!layer) throw new FerryError('integrity', `${bundle.name}: chart ${c.ref} has no ${MediaType.HELM_CHART} layer`);
    out.push(chartFromArchive(await bundle.readBlob(layer), `${bundle.name}:${c.ref}`));
  }
  return out;
}

/** What the mirror holds of a bundle: its image references, and the filtered digests of pinned ones. */
export function bundleHoldings(bundle: BundleReader): Pick<ChartValuesOptions, 'carried' | 'heldDigest'> {
  const refs = new Set(
    bundle
      .images()
      .filter((i) => i.named)
      .map((i) => i.ref),
  );
  const held = new Map<string, string>();
  for (const img of bundle.ferry?.images ?? []) {
    if (img.digest !== img.upstreamDigest && parseReference(img.ref).digest === img.upstreamDigest) held.set(img.ref, img.digest);
  }
  return { carried: (ref) => refs.has(ref), heldDigest: (ref) => held.get(ref) };
}

/** The values files of these charts, written under `dir` (one `<chart>.yaml` each; a name twice adds the version). */
export async function writeChartValues(dir: string, charts: Chart[], opts: ChartValuesOptions): Promise<ChartValues[]> {
  const out: ChartValues[] = [];
  for (const chart of charts) {
    const v = await chartValues(chart, opts);
    if (charts.filter((c) => c.name === chart.name).length > 1) v.file = `${chart.name}-${chart.version.replaceAll('+', '_')}.yaml`;
    out.push(v);
  }
  for (const v of out) await writeFileUnder(dir, v.file, v.text);
  return out;
}
