/**
 * Images in Kubernetes manifests (the output of `helm template`, or ours).
 *
 * In a pod spec anywhere in a document — Pod, Deployment, StatefulSet, DaemonSet,
 * ReplicaSet, Job, CronJob and any custom kind that embeds one — the `image` of
 * `containers`, `initContainers` and `ephemeralContainers` (field `image`).
 *
 * Outside those fields, the references an operator pulls at run time: container
 * arguments (`--x-image=REF`, `--x-image REF`, `--anything=host/repo:tag`) and
 * environment values (`*_IMAGE`, `version=REF` lists, `host/repo:tag` under any
 * name), ConfigMap and Secret data (base64 decoded; structured text read as YAML
 * or `KEY=VALUE` lines), and fields of any other object (`spec.image`,
 * `spec.imageName`, `{registry, repository, image, tag, version, digest}` maps).
 * A candidate counts only when it parses as a reference and has a tag, a digest
 * or a registry host, or is the whole value of a field named like an image.
 * CustomResourceDefinitions are skipped: their schemas hold examples, not images.
 */

import { yamlDocuments } from '@ferry/helm';
import { isPair, isScalar, isSeq, isMap as isYamlMap, parseAllDocuments, type YAMLMap, type Node as YamlNode } from 'yaml';
import { hasHost, hasTagOrDigest, IMAGE_NAMED, imageOfObject, NO_CONVENTIONS, parsesAsImage, type ShapeMap } from './image-shapes.js';

export type ManifestImageField = 'image' | 'argument' | 'env' | 'data' | 'object';

export interface ManifestImage {
  /** The reference as written (or composed from the parts of a map). */
  raw: string;
  field: ManifestImageField;
  /** `Deployment/name` of the document. */
  resource: string;
  /** For container fields: `containers`, `initContainers` or `ephemeralContainers`. */
  list?: string;
  container?: string;
  /** The argument (`argument`), env var name (`env`), data key (`data`) or field path (`object`, `spec.cephVersion.image`). */
  detail?: string;
  /** Offset of the field in the text (for line numbers). */
  offset: number;
  /** 0-based index of the YAML document in the text. */
  document: number;
  /** The document's `helm.sh/hook` annotation, when it is a hook. */
  hook?: string;
}

export interface ManifestProblem {
  document: number;
  message: string;
}

const CONTAINER_LISTS = ['containers', 'initContainers', 'ephemeralContainers'];

function get(map: YAMLMap, key: string): unknown {
  return getPair(map, key)?.value;
}

function getPair(map: YAMLMap, key: string) {
  for (const item of map.items) {
    if (isPair(item) && isScalar(item.key) && item.key.value === key) return item;
  }
  return undefined;
}

function scalarString(n: unknown): string | undefined {
  if (isScalar(n) && (typeof n.value === 'string' || typeof n.value === 'number')) return String(n.value);
  return undefined;
}

const offsetOf = (n: unknown): number => (n as YamlNode | null)?.range?.[0] ?? 0;

/**
 * How a value's name vouches for it: `image` (named like one: a tag, digest or host is needed, unless
 * the reference is the whole value), `mentions` (IMAGE elsewhere in the name, as in `--image-repository`:
 * a tag or digest is needed) or `other` (a path and a tag or digest are needed, so `ns/name` and
 * `host:port` do not count).
 */
type Naming = 'image' | 'mentions' | 'other';

function namingOf(name: string): Naming {
  return IMAGE_NAMED.test(name) ? 'image' : /image/i.test(name) ? 'mentions' : 'other';
}

/** The references a string holds: one, or a list (`4.2.0=quay.io/x:1 …`, comma or space separated). */
export function referencesIn(value: string, naming: Naming): string[] {
  const tokens = value
    .split(/[\s,;]+/)
    .map((t) => t.replace(/^[["'(]+|[\]"')]+$/g, ''))
    .map((t) => t.slice(t.lastIndexOf('=') + 1))
    .filter((t) => t !== '');
  return tokens.filter((t) => {
    if (!parsesAsImage(t)) return false;
    if (naming === 'image') return hasTagOrDigest(t) || hasHost(t) || tokens.length === 1;
    if (naming === 'mentions') return hasTagOrDigest(t);
    return t.includes('/') && hasTagOrDigest(t);
  });
}

type Base = Pick<ManifestImage, 'resource' | 'document'> & { hook?: string };

function push(out: ManifestImage[], base: Base, found: Omit<ManifestImage, 'resource' | 'document' | 'hook'>): void {
  const m: ManifestImage = { ...found, resource: base.resource, document: base.document };
  if (base.hook !== undefined) m.hook = base.hook;
  out.push(m);
}

/** `--x-image` alone: the reference is the next argument. */
const IMAGE_FLAG = /^--?[A-Za-z0-9_.-]*image[A-Za-z0-9_.-]*$/i;
const FLAG_VALUE = /^--?([A-Za-z0-9_.-]+)=(.+)$/;

function containerImages(c: YAMLMap, list: string, base: Base, out: ManifestImage[]): void {
  const container = scalarString(get(c, 'name')) ?? '?';
  const at = { list, container };
  const imagePair = getPair(c, 'image');
  const image = scalarString(imagePair?.value);
  if (imagePair && image !== undefined && image.trim() !== '') {
    push(out, base, { ...at, raw: image.trim(), field: 'image', offset: offsetOf(imagePair.key) });
  }
  for (const key of ['command', 'args']) {
    const seq = get(c, key);
    if (!isSeq(seq)) continue;
    const words = seq.items.flatMap((item) => (scalarString(item) ?? '').split(/\s+/).map((w) => ({ w: w.replace(/^["']|["']$/g, ''), item })));
    words.forEach(({ w, item }, i) => {
      const m = FLAG_VALUE.exec(w);
      const flag = m ? m[1]! : IMAGE_FLAG.test(w) ? w.replace(/^-+/, '') : undefined;
      const value = m ? m[2]! : flag !== undefined ? words[i + 1]?.w : undefined;
      // `--x-image --next-flag`: no value
      if (flag === undefined || value === undefined || value.startsWith('-')) return;
      const naming = namingOf(flag);
      for (const raw of referencesIn(value, naming))
        push(out, base, { ...at, raw, field: 'argument', detail: m ? w : `${w} ${value}`, offset: offsetOf(item) });
    });
  }
  const env = get(c, 'env');
  if (isSeq(env)) {
    for (const e of env.items) {
      if (!isYamlMap(e)) continue;
      const n = scalarString(get(e, 'name'));
      const v = scalarString(get(e, 'value'));
      if (!n || !v) continue;
      for (const raw of referencesIn(v, namingOf(n))) push(out, base, { ...at, raw, field: 'env', detail: n, offset: offsetOf(e) });
    }
  }
}

/** The scalar members of a map, for the shape rules. */
function shallow(map: YAMLMap): ShapeMap {
  const m: ShapeMap = {};
  for (const item of map.items) {
    if (isPair(item) && isScalar(item.key) && typeof item.key.value === 'string' && isScalar(item.value)) m[item.key.value] = item.value.value;
  }
  return m;
}

interface WalkState {
  base: Base;
  /** For text embedded in data: every find is at the data key's offset. */
  offset?: number;
  /** Only container lists: the document is not a Kubernetes object. */
  podSpecsOnly?: boolean;
}

function walk(node: unknown, path: string, key: string, st: WalkState, out: ManifestImage[], depth = 0): void {
  if (depth > 100) return;
  const join = (k: string) => (path === '' ? k : `${path}.${k}`);
  if (isYamlMap(node)) {
    for (const list of CONTAINER_LISTS) {
      const seq = get(node, list);
      if (!isSeq(seq)) continue;
      for (const c of seq.items) if (isYamlMap(c)) containerImages(c, list, st.base, out);
    }
    const consumed = new Set<string>();
    if (path !== '' && !st.podSpecsOnly) {
      const obj = imageOfObject(shallow(node), key, NO_CONVENTIONS);
      // a reference made of parts needs its tag or digest written: the operator would choose it otherwise
      const composed = obj !== undefined && (obj.consumed.length > 1 || obj.consumed[0] !== 'image');
      if (obj && !obj.incomplete && parsesAsImage(obj.raw) && (hasTagOrDigest(obj.raw) || (!composed && (IMAGE_NAMED.test(key) || hasHost(obj.raw))))) {
        push(out, st.base, { raw: obj.raw, field: 'object', detail: path, offset: st.offset ?? offsetOf(node) });
      }
      // the parts of a reference are not references of their own, even when they make none
      for (const c of obj?.consumed ?? []) consumed.add(c);
    }
    for (const item of node.items) {
      if (!isPair(item) || !isScalar(item.key) || typeof item.key.value !== 'string') continue;
      const k = item.key.value;
      if (consumed.has(k) || (CONTAINER_LISTS.includes(k) && isSeq(item.value))) continue;
      if (path === '' && (k === 'metadata' || k === 'status' || k === 'apiVersion' || k === 'kind')) continue;
      const v = scalarString(item.value);
      if (v !== undefined) {
        if (IMAGE_NAMED.test(k) && !st.podSpecsOnly) {
          for (const raw of referencesIn(v, 'image')) push(out, st.base, { raw, field: 'object', detail: join(k), offset: st.offset ?? offsetOf(item.key) });
        }
        continue;
      }
      walk(item.value, join(k), k, st, out, depth + 1);
    }
  } else if (isSeq(node)) {
    for (const [i, item] of node.items.entries()) walk(item, `${path}[${i}]`, key, st, out, depth + 1);
  }
}

/** A `KEY=VALUE` or `KEY: VALUE` line with a key named like an image. */
const IMAGE_LINE = /^\s*(?:export\s+)?([A-Za-z0-9_.-]+)\s*[=:]\s*(.+?)\s*$/;

/** Image references in a ConfigMap or Secret value: the whole value under an image key, else structured text. */
function dataImages(key: string, text: string, offset: number, st: WalkState, out: ManifestImage[]): void {
  const base = st.base;
  if (IMAGE_NAMED.test(key)) {
    for (const raw of referencesIn(text, 'image')) push(out, base, { raw, field: 'data', detail: key, offset });
    return;
  }
  // only text with a key named like an image can hold one (dashboards that mention images do not)
  if (!/images?(?:_?name)?["']?\s*[:=]/i.test(text)) return;
  let structured = false;
  try {
    for (const doc of parseAllDocuments(text, { uniqueKeys: false })) {
      if (doc.errors.length > 0 || !(isYamlMap(doc.contents) || isSeq(doc.contents))) continue;
      structured = true;
      const found: ManifestImage[] = [];
      walk(doc.contents, '', '', { base, offset }, found);
      for (const f of found) out.push({ ...f, field: 'data', detail: `${key}: ${f.detail ?? f.container ?? ''}`.trim() });
    }
  } catch {
    structured = false;
  }
  if (structured) return;
  for (const line of text.split('\n')) {
    const m = IMAGE_LINE.exec(line);
    if (m && IMAGE_NAMED.test(m[1]!)) {
      for (const raw of referencesIn(m[2]!.replace(/^["']|["']$/g, ''), 'image')) push(out, base, { raw, field: 'data', detail: `${key}: ${m[1]}`, offset });
    }
  }
}

/** Base64 data as text, when it decodes to text. */
function decodeBase64(s: string): string | undefined {
  const compact = s.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(compact)) return undefined;
  const text = Buffer.from(compact, 'base64').toString('utf8');
  // binary content (certificates in DER, keystores) holds no references: control characters or invalid UTF-8
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 9 && c !== 10 && c !== 13) || c === 0xfffd) return undefined;
  }
  return text;
}

function documentImages(root: YAMLMap, base: Base, out: ManifestImage[]): void {
  const kind = scalarString(get(root, 'kind'));
  if (kind === 'CustomResourceDefinition') return;
  // not a Kubernetes object (no kind): only its pod specs count, nothing would hand its other fields to an operator
  const st: WalkState = { base, podSpecsOnly: kind === undefined };
  if (kind === 'ConfigMap' || kind === 'Secret') {
    for (const [field, b64] of [
      ['data', kind === 'Secret'],
      ['stringData', false],
    ] as const) {
      const data = get(root, field);
      if (!isYamlMap(data)) continue;
      for (const item of data.items) {
        if (!isPair(item) || !isScalar(item.key)) continue;
        const raw = scalarString(item.value);
        const text = raw === undefined ? undefined : b64 ? decodeBase64(raw) : raw;
        if (text !== undefined) dataImages(String(item.key.value), text, offsetOf(item.key), st, out);
      }
    }
    return;
  }
  walk(root, '', '', st, out);
}

/** Helm's releaseutil.SplitManifests separator: it splits before parsing, so `---# comment` works. */
const SEPARATOR = /(?:^|\s*\n)---\s*/g;

/** Splits a multi-document text the way Helm does; each part with its offset in the text. */
export function splitManifests(text: string): Array<{ text: string; offset: number }> {
  const parts: Array<{ text: string; offset: number }> = [];
  let last = 0;
  for (const m of text.matchAll(SEPARATOR)) {
    parts.push({ text: text.slice(last, m.index), offset: last });
    last = m.index + m[0].length;
  }
  parts.push({ text: text.slice(last), offset: last });
  return parts.filter((p) => p.text.trim() !== '');
}

/** Images of every pod spec in a multi-document YAML text. */
export function imagesInManifests(text: string): { images: ManifestImage[]; problems: ManifestProblem[] } {
  const images: ManifestImage[] = [];
  const problems: ManifestProblem[] = [];
  let index = 0;
  for (const part of splitManifests(text)) {
    for (const doc of yamlDocuments(part.text)) {
      const i = index++;
      // a document that does not parse is only a problem if it may hold images
      if (doc.errors.length > 0 && /image/i.test(part.text)) {
        problems.push({ document: i, message: doc.errors[0]!.message.split('\n')[0]! });
      }
      const root = doc.contents;
      if (!root) continue;
      if (!isYamlMap(root)) continue;
      const kind = scalarString(get(root, 'kind')) ?? '?';
      const meta = get(root, 'metadata');
      const name = isYamlMap(meta) ? scalarString(get(meta, 'name')) : undefined;
      const annotations = isYamlMap(meta) ? get(meta, 'annotations') : undefined;
      const hook = isYamlMap(annotations) ? scalarString(get(annotations, 'helm.sh/hook')) : undefined;
      const base: Base = { resource: `${kind}/${name ?? '?'}`, document: i };
      if (hook !== undefined) base.hook = hook;
      const found: ManifestImage[] = [];
      documentImages(root, base, found);
      for (const f of found) images.push({ ...f, offset: f.offset + part.offset });
    }
  }
  return { images, problems };
}

/** 1-based line of an offset in a text. */
export function lineAt(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}
