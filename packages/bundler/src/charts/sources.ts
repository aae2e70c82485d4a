/**
 * Image sources that need no template evaluation:
 *  - Chart.yaml annotations (`helm.sh/images` of HIP-0015, `artifacthub.io/images`,
 *    a bare `images`) and an `images.lock` file;
 *  - a walk of the effective values recognising the common image shapes;
 *  - image references written literally in templates.
 */
import { posix } from 'node:path';
import { type Chart, hasOwn, isMap, parseYamlValue, type Values } from '@ferry/helm';
import { hasTagOrDigest, imageOfObject, looksLikeImage, type ShapeContext, scalarText as scalar } from './image-shapes.js';

// ---------------------------------------------------------------------------
// annotations and images.lock

export const IMAGE_ANNOTATIONS = ['helm.sh/images', 'artifacthub.io/images', 'images'] as const;

export interface AnnotatedImage {
  raw: string;
  /** The annotation key, or `images.lock`. */
  key: string;
  /** The entry's `name`, when given. */
  name?: string;
}

function entriesOf(v: unknown): unknown[] {
  if (typeof v === 'string') {
    try {
      const parsed = parseYamlValue(v);
      if (Array.isArray(parsed)) return parsed;
      if (typeof parsed === 'string') return parsed.split(/[\s,]+/).filter(Boolean);
    } catch {
      return v.split(/[\s,]+/).filter(Boolean);
    }
    return [];
  }
  return Array.isArray(v) ? v : [];
}

function entryImage(e: unknown): { raw: string; name?: string } | undefined {
  if (typeof e === 'string') return { raw: e.trim() };
  if (isMap(e)) {
    const image = e.image;
    if (typeof image === 'string' && image.trim() !== '') {
      const out: { raw: string; name?: string } = { raw: image.trim() };
      if (typeof e.name === 'string') out.name = e.name;
      return out;
    }
  }
  return undefined;
}

/** Images a chart declares in Chart.yaml annotations (and a top-level `images` list) and in images.lock. */
export function annotatedImages(chart: Chart, warn: (m: string) => void = () => {}): AnnotatedImage[] {
  const out: AnnotatedImage[] = [];
  const annotations = isMap(chart.metadata.annotations) ? (chart.metadata.annotations as Values) : {};
  const add = (key: string, value: unknown) => {
    for (const e of entriesOf(value)) {
      const img = entryImage(e);
      if (!img) {
        warn(`${chart.origin}: an entry of ${key} has no image; skipped`);
        continue;
      }
      out.push({ key, ...img });
    }
  };
  for (const key of IMAGE_ANNOTATIONS) if (hasOwn(annotations, key)) add(key, annotations[key]);
  if (Array.isArray(chart.metadata.images)) add('images', chart.metadata.images);
  const lock = chart.files.get('images.lock');
  if (lock) {
    try {
      const doc = parseYamlValue(lock.toString('utf8'));
      if (isMap(doc)) add('images.lock', doc.images);
    } catch (e) {
      warn(`${chart.origin}: images.lock is not valid YAML (${(e as Error).message.split('\n')[0]}); skipped`);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------
// values walk

export interface ValuesImage {
  raw: string;
  /** Dotted path of the image in the values, e.g. `controller.image`, `initContainers[0].image`. */
  path: string;
  /** Nothing up the path says `enabled: false`. */
  enabled: boolean;
  /** The `enabled: false` that turns it off, e.g. `grafana.enabled`. */
  disabledBy?: string;
  /**
   * Conventions the reference was composed with (`global registry`, `global tag`,
   * `appVersion`, `global.imageRegistry`): right for most charts, but only the
   * templates know. Absent when every part is written in the values.
   */
  guesses?: string[];
}

const IMAGE_KEY = /image$/i;

function contextOf(values: Values, appVersion: string | undefined): ShapeContext {
  const g = isMap(values.global) ? (values.global as Values) : {};
  const gImage = isMap(g.image) ? (g.image as Values) : {};
  const bitnami = scalar(g.imageRegistry);
  return {
    bitnamiRegistry: bitnami,
    globalRegistry: bitnami ?? scalar(gImage.registry) ?? scalar(g.registry),
    globalTag: scalar(g.tag) ?? scalar(gImage.tag),
    appVersion,
  };
}

/**
 * Walks effective values and returns the images it recognises, with their path
 * and enabled state. `skip` names top-level keys not to walk (subchart sections,
 * walked with the subchart's own values and appVersion).
 */
export function valuesImages(values: Values, appVersion: string | undefined, skip: readonly string[] = []): ValuesImage[] {
  const ctx = contextOf(values, appVersion);
  const out: ValuesImage[] = [];
  const seen = new Set<string>();
  const push = (raw: string, path: string, disabledBy: string | undefined, guesses: string[] = []) => {
    if (raw.includes('{{') || !looksLikeImage(raw)) return;
    const k = `${path}\0${raw}`;
    if (seen.has(k)) return;
    seen.add(k);
    const img: ValuesImage = { raw, path, enabled: disabledBy === undefined };
    if (disabledBy !== undefined) img.disabledBy = disabledBy;
    if (guesses.length > 0) img.guesses = guesses;
    out.push(img);
  };
  const walk = (v: unknown, path: string, key: string, disabledBy: string | undefined, depth: number) => {
    if (depth > 64) return;
    if (isMap(v)) {
      let off = disabledBy;
      if (off === undefined && v.enabled === false) off = path === '' ? 'enabled' : `${path}.enabled`;
      const obj = imageOfObject(v, key, ctx);
      const consumed = new Set<string>();
      if (obj) {
        // name the key holding the reference when the map itself is not an image key
        const at = path === '' ? obj.consumed[0]! : IMAGE_KEY.test(key) ? path : `${path}.${obj.consumed[0]!}`;
        if (!obj.incomplete) push(obj.raw, at, off, obj.guesses);
        for (const c of obj.consumed) consumed.add(c);
      }
      for (const k of Object.keys(v)) {
        if (consumed.has(k)) continue;
        if (depth === 0 && skip.includes(k)) continue;
        const child = v[k];
        const p = path === '' ? k : `${path}.${k}`;
        if (typeof child === 'string' && IMAGE_KEY.test(k)) {
          // image: "repo:tag" (with a sibling tag when the string has none)
          const siblingTag = scalar(v.tag) ?? scalar(v[`${k}Tag`]) ?? scalar(v.imageTag);
          const raw = hasTagOrDigest(child) || siblingTag === undefined ? child.trim() : `${child.trim()}:${siblingTag}`;
          push(raw, p, off);
          continue;
        }
        walk(child, p, k, off, depth + 1);
      }
    } else if (Array.isArray(v)) {
      for (const [i, item] of v.entries()) walk(item, `${path}[${i}]`, key, disabledBy, depth + 1);
    }
  };
  walk(values, '', '', undefined, 0);
  return out;
}

// ---------------------------------------------------------------------------
// template literals

export interface LiteralImage {
  raw: string;
  /** Path in the chart, e.g. `templates/hook.yaml`. */
  file: string;
  line: number;
  /** The template line it is written on. */
  text: string;
}

const LITERAL_IMAGE = /(?:^|[\s{,-])["']?image["']?\s*:\s*["']?([^\s"'{}]+)["']?\s*[,}]?\s*$/;
const LITERAL_ARG = /--?[A-Za-z0-9_.-]*image[A-Za-z0-9_.-]*=["']?([^\s"'{}]+)/gi;

/** Image references written literally in a chart's templates (outside `{{ }}` and comments). */
export function literalImages(chart: Chart): LiteralImage[] {
  const out: LiteralImage[] = [];
  for (const t of chart.templates) {
    if (posix.basename(t.path) === 'NOTES.txt') continue;
    // blank out template comments and actions, keeping line structure
    const text = t.text
      .replace(/\{\{-?\s*\/\*[\s\S]*?\*\/\s*-?\}\}/g, (m) => m.replace(/[^\n]/g, ' '))
      .replace(/\{\{[\s\S]*?\}\}/g, (m) => m.replace(/[^\n]/g, ' ').replace(/^ /, '{'));
    const originalLines = t.text.split('\n');
    text.split('\n').forEach((lineText, i) => {
      if (/^\s*#/.test(lineText)) return;
      const found: string[] = [];
      const m = LITERAL_IMAGE.exec(lineText);
      if (m?.[1]) found.push(m[1]);
      for (const a of lineText.matchAll(LITERAL_ARG)) if (a[1] && hasTagOrDigest(a[1])) found.push(a[1]);
      for (const raw of found) {
        const original = originalLines[i] ?? '';
        // a value glued to a template expression is not a literal
        if (original.includes(`${raw}{{`) || original.includes(`}}${raw}`)) continue;
        if (looksLikeImage(raw)) out.push({ raw, file: t.path, line: i + 1, text: original });
      }
    });
  }
  return out;
}
