import { gzipSync } from 'node:zlib';
import { isMap, yamlFile } from '@ferry/helm';
import { digestOf, encodeTarHeader, MediaType, type ParsedManifest, parseManifest, TAR_END_OF_ARCHIVE, tarPadding, usageError } from '@ferry/oci-client';

// ---------------------------------------------------------------------------
// The config: chart.Metadata as Go's encoding/json writes it

/** helm's sanitizeString: every space character becomes ' ', non-printable characters go. */
function sanitize(s: string): string {
  let out = '';
  for (const ch of s) {
    if (/\p{White_Space}/u.test(ch)) out += ' ';
    else if (/[\p{L}\p{M}\p{N}\p{P}\p{S}]/u.test(ch)) out += ch;
  }
  return out;
}

/** A YAML scalar as a Go string field receives it (sigs.k8s.io/yaml turns numbers and booleans into text). */
function text(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  return '';
}

function texts(v: unknown): string[] {
  return Array.isArray(v) ? v.map(text) : [];
}

/**
 * Go's json.Marshal of a value decoded into interface{}: maps with sorted keys.
 * Returns undefined for values Go would drop (undefined).
 */
function goValue(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(goValue);
  if (isMap(v)) {
    const out: Record<string, unknown> = {};
    for (const k of Object.keys(v).sort(goCompare)) out[k] = goValue(v[k]);
    return out;
  }
  if (v instanceof Date) return v.toISOString();
  return v ?? null;
}

/** Go compares strings byte-wise (UTF-8); for the keys charts use this equals code-unit order. */
function goCompare(a: string, b: string): number {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return Buffer.compare(x, y);
}

/**
 * JSON text as Go's json.Marshal writes it: no spaces, and `<`, `>`, `&`, U+2028,
 * U+2029 escaped (Go's HTML-safe default). These characters only occur inside strings.
 */
export function goJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/**
 * The config blob `helm push` writes for a chart: Chart.yaml decoded into helm's
 * chart.Metadata (unknown fields dropped, strings sanitized as helm's loader
 * validates them, apiVersion v1 when absent, dependencies of an apiVersion v1
 * chart from requirements.yaml) and marshalled by Go: fields in the struct's
 * order, empty ones omitted, annotation keys sorted.
 */
export function helmChartConfig(chartYaml: Record<string, unknown>, requirements?: unknown): Buffer {
  const m = chartYaml;
  const out: Record<string, unknown> = {};
  const put = (key: string, value: string) => {
    if (value !== '') out[key] = value;
  };
  const putList = (key: string, value: unknown[]) => {
    if (value.length > 0) out[key] = value;
  };
  put('name', sanitize(text(m.name)));
  put('home', sanitize(text(m.home)));
  putList('sources', texts(m.sources).map(sanitize));
  put('version', text(m.version));
  put('description', sanitize(text(m.description)));
  putList('keywords', texts(m.keywords).map(sanitize));
  const maintainers = Array.isArray(m.maintainers) ? m.maintainers : [];
  putList(
    'maintainers',
    maintainers.map((x) => {
      const mt = isMap(x) ? x : {};
      const o: Record<string, string> = {};
      for (const k of ['name', 'email', 'url']) {
        const s = sanitize(text(mt[k]));
        if (s !== '') o[k] = s;
      }
      return o;
    }),
  );
  put('icon', sanitize(text(m.icon)));
  put('apiVersion', text(m.apiVersion) || 'v1');
  put('condition', sanitize(text(m.condition)));
  put('tags', sanitize(text(m.tags)));
  put('appVersion', sanitize(text(m.appVersion)));
  if (m.deprecated === true) out.deprecated = true;
  if (isMap(m.annotations)) {
    const a = m.annotations;
    const keys = Object.keys(a).sort(goCompare);
    if (keys.length > 0) out.annotations = Object.fromEntries(keys.map((k) => [k, text(a[k])]));
  }
  put('kubeVersion', sanitize(text(m.kubeVersion)));
  let deps: unknown = m.dependencies;
  // helm's loader decodes requirements.yaml into the same Metadata, after Chart.yaml
  if (isMap(requirements) && requirements.dependencies !== undefined) deps = requirements.dependencies;
  if (Array.isArray(deps) && deps.length > 0) {
    out.dependencies = deps.map((x) => {
      const d = isMap(x) ? x : {};
      const o: Record<string, unknown> = { name: sanitize(text(d.name)) };
      const version = sanitize(text(d.version));
      if (version) o.version = version;
      o.repository = sanitize(text(d.repository));
      const condition = sanitize(text(d.condition));
      if (condition) o.condition = condition;
      const tags = texts(d.tags).map(sanitize);
      if (tags.length) o.tags = tags;
      if (d.enabled === true) o.enabled = true;
      if (Array.isArray(d['import-values']) && d['import-values'].length) o['import-values'] = goValue(d['import-values']);
      const alias = text(d.alias);
      if (alias) o.alias = alias;
      return o;
    });
  }
  put('type', text(m.type));
  return Buffer.from(goJson(out));
}

// ---------------------------------------------------------------------------
// The manifest

/** RFC 3339 in UTC without fractions, as Go's time.RFC3339 prints a UTC time. */
export function rfc3339(epochSeconds: number): string {
  return new Date(Math.floor(epochSeconds) * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** helm's generateOCIAnnotations: chart fields as org.opencontainers.image.*, then the chart's own annotations. */
function helmAnnotations(config: Record<string, unknown>, created: string): Record<string, string> {
  const a: Record<string, string> = {};
  const add = (k: string, v: unknown) => {
    if (typeof v === 'string' && v.trim() !== '') a[k] = v;
  };
  add('org.opencontainers.image.description', config.description);
  add('org.opencontainers.image.title', config.name);
  add('org.opencontainers.image.version', config.version);
  add('org.opencontainers.image.url', config.home);
  add('org.opencontainers.image.created', created);
  const sources = config.sources;
  if (Array.isArray(sources) && sources.length > 0) add('org.opencontainers.image.source', sources[0]);
  const maintainers = config.maintainers;
  if (Array.isArray(maintainers) && maintainers.length > 0) {
    const authors = maintainers.map((m: Record<string, string>) => `${m.name ?? ''}${m.email ? ` (${m.email})` : ''}`).join(', ');
    add('org.opencontainers.image.authors', authors);
  }
  const own = config.annotations;
  if (isMap(own)) {
    for (const [k, v] of Object.entries(own)) {
      if (k === 'org.opencontainers.image.version' || k === 'org.opencontainers.image.title') continue;
      a[k] = String(v);
    }
  }
  return Object.fromEntries(
    Object.keys(a)
      .sort(goCompare)
      .map((k) => [k, a[k]!]),
  );
}

export interface HelmArtifact {
  manifest: ParsedManifest & { kind: 'image' };
  config: Buffer;
  layer: Buffer;
  /** The chart's `.prov` file, a second layer as `helm push` stores it. */
  provenance?: Buffer;
}

/**
 * The manifest `helm push` writes (helm's tagManifest: Go's ocispec.Manifest with
 * schemaVersion, config, layers and annotations; no mediaType field, the registry
 * learns it from the Content-Type); a `.prov` file is a second layer.
 */
export function helmArtifact(config: Buffer, layer: Buffer, created: string, provenance?: Buffer): HelmArtifact {
  const meta = JSON.parse(config.toString('utf8')) as Record<string, unknown>;
  const layers: Array<{ mediaType: string; digest: string; size: number }> = [{ mediaType: MediaType.HELM_CHART, digest: digestOf(layer), size: layer.length }];
  // helm push: the provenance file, when there is one, is the layer after the chart
  if (provenance) layers.push({ mediaType: MediaType.HELM_PROVENANCE, digest: digestOf(provenance), size: provenance.length });
  const doc = {
    schemaVersion: 2,
    config: { mediaType: MediaType.HELM_CONFIG, digest: digestOf(config), size: config.length },
    layers,
    annotations: helmAnnotations(meta, created),
  };
  const bytes = Buffer.from(goJson(doc));
  const manifest = parseManifest(bytes, MediaType.OCI_MANIFEST);
  if (manifest.kind !== 'image') throw new Error('a chart manifest parsed as an index');
  return { manifest, config, layer, ...(provenance ? { provenance } : {}) };
}

// ---------------------------------------------------------------------------
// The archive

/**
 * A deterministic chart archive: every file under `<name>/`, sorted by path,
 * mode 0644, uid/gid 0, no user names, mtime fixed; gzip without a file name or
 * time, and with Go's "unknown" OS byte (255), whatever the machine.
 */
export function chartArchive(name: string, files: Map<string, Buffer>, mtime: number): Buffer {
  const parts: Buffer[] = [];
  const paths = [...files.keys()].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  for (const p of paths) {
    const data = files.get(p)!;
    parts.push(
      encodeTarHeader({ name: `${name}/${p}`, size: data.length, type: 'file', mtime: Math.floor(mtime) }),
      data,
      Buffer.alloc(tarPadding(data.length)),
    );
  }
  parts.push(TAR_END_OF_ARCHIVE);
  const gz = gzipSync(Buffer.concat(parts), { level: 6 });
  gz[4] = gz[5] = gz[6] = gz[7] = 0; // MTIME
  gz[8] = 0; // XFL for the default level
  gz[9] = 255; // OS: unknown, as Go writes it
  return gz;
}

/** Chart.yaml (and requirements.yaml) of a chart's files, parsed. */
export function chartYamlOf(files: Map<string, Buffer>, origin: string): { chartYaml: Record<string, unknown>; requirements: unknown } {
  const parse = (path: string): unknown => yamlFile(files, path, origin);
  const chartYaml = parse('Chart.yaml');
  if (!isMap(chartYaml)) throw usageError(`${origin} is not a Helm chart: it has no Chart.yaml`);
  return { chartYaml, requirements: parse('requirements.yaml') };
}
