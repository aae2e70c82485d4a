/**
 * Images in Kubernetes manifests (the output of `helm template`, or ours): every
 * pod spec anywhere in every document — Pod, Deployment, StatefulSet, DaemonSet,
 * ReplicaSet, Job, CronJob and any custom kind that embeds one — and in it
 * `containers`, `initContainers` and `ephemeralContainers`. Image references
 * passed to a container as an argument (`--x-image=REF`) or in an environment
 * variable whose name mentions IMAGE are reported too, marked as such.
 */

import { yamlDocuments } from '@ferry/helm';
import { parseReference } from '@ferry/oci-client';
import { isPair, isScalar, isSeq, isMap as isYamlMap, type YAMLMap, type Node as YamlNode } from 'yaml';

export type ManifestImageField = 'image' | 'argument' | 'env';

export interface ManifestImage {
  /** The reference as written. */
  raw: string;
  field: ManifestImageField;
  /** `Deployment/name` of the document. */
  resource: string;
  /** `containers`, `initContainers` or `ephemeralContainers`. */
  list: string;
  container: string;
  /** The env var name for `env`. */
  detail?: string;
  /** Offset of the field in the text (for line numbers). */
  offset: number;
  /** 0-based index of the YAML document in the text. */
  document: number;
}

export interface ManifestProblem {
  document: number;
  message: string;
}

const CONTAINER_LISTS = ['containers', 'initContainers', 'ephemeralContainers'];

function get(map: YAMLMap, key: string): unknown {
  for (const item of map.items) {
    if (isPair(item) && isScalar(item.key) && item.key.value === key) return item.value;
  }
  return undefined;
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

/** `--something-image=REF` (also `--image REF` is not guessed: too ambiguous). */
const ARG_IMAGE = /^--?[A-Za-z0-9_.-]*image[A-Za-z0-9_.-]*=(.+)$/i;

/** Whether the last path component has a tag, or there is a digest. */
export function hasTagOrDigest(ref: string): boolean {
  return ref.slice(ref.lastIndexOf('/') + 1).includes(':') || ref.includes('@');
}

/** Whether a string looks enough like an image reference to report it. */
export function looksLikeImage(s: string): boolean {
  if (s === '' || /\s/.test(s) || s.includes('://') || s.includes('{{')) return false;
  const lastSlash = s.lastIndexOf('/');
  const last = s.slice(lastSlash + 1);
  if (!(last.includes(':') || s.includes('@') || lastSlash >= 0)) return false;
  try {
    parseReference(s);
    return true;
  } catch {
    return false;
  }
}

function containerImages(c: YAMLMap, base: Omit<ManifestImage, 'raw' | 'field' | 'container' | 'offset'>, out: ManifestImage[]): void {
  const name = scalarString(get(c, 'name')) ?? '?';
  const imagePair = getPair(c, 'image');
  const image = scalarString(imagePair?.value);
  if (imagePair && image !== undefined && image.trim() !== '') {
    const off = (imagePair.key as YamlNode | null)?.range?.[0] ?? 0;
    out.push({ ...base, raw: image.trim(), field: 'image', container: name, offset: off });
  }
  for (const key of ['args', 'command']) {
    const seq = get(c, key);
    if (!isSeq(seq)) continue;
    for (const item of seq.items) {
      const s = scalarString(item);
      if (s === undefined) continue;
      for (const word of s.split(/\s+/)) {
        const m = ARG_IMAGE.exec(word.replace(/^["']|["']$/g, ''));
        const ref = m?.[1]?.replace(/^["']|["']$/g, '');
        if (ref && hasTagOrDigest(ref) && looksLikeImage(ref)) {
          out.push({ ...base, raw: ref, field: 'argument', container: name, detail: word, offset: (item as YamlNode).range?.[0] ?? 0 });
        }
      }
    }
  }
  const env = get(c, 'env');
  if (isSeq(env)) {
    for (const e of env.items) {
      if (!isYamlMap(e)) continue;
      const n = scalarString(get(e, 'name'));
      const v = scalarString(get(e, 'value'));
      if (n && v && /image/i.test(n) && hasTagOrDigest(v.trim()) && looksLikeImage(v.trim())) {
        out.push({ ...base, raw: v.trim(), field: 'env', container: name, detail: n, offset: (e as YamlNode).range?.[0] ?? 0 });
      }
    }
  }
}

function walk(node: unknown, resource: string, document: number, out: ManifestImage[]): void {
  if (isYamlMap(node)) {
    for (const list of CONTAINER_LISTS) {
      const seq = get(node, list);
      if (!isSeq(seq)) continue;
      for (const c of seq.items) if (isYamlMap(c)) containerImages(c, { resource, list, document }, out);
    }
    for (const item of node.items) {
      if (!isPair(item)) continue;
      const key = isScalar(item.key) ? item.key.value : undefined;
      if (typeof key === 'string' && CONTAINER_LISTS.includes(key)) continue;
      walk(item.value, resource, document, out);
    }
  } else if (isSeq(node)) {
    for (const item of node.items) walk(item, resource, document, out);
  }
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
      let resource = '?';
      if (isYamlMap(root)) {
        const kind = scalarString(get(root, 'kind')) ?? '?';
        const meta = get(root, 'metadata');
        const name = isYamlMap(meta) ? scalarString(get(meta, 'name')) : undefined;
        resource = `${kind}/${name ?? '?'}`;
      }
      const found: ManifestImage[] = [];
      walk(root, resource, i, found);
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
