// Chart fixtures shared by the helm and bundler tests: a chart directory as the
// .tgz `helm package` writes (with the workspace's tar module), and a minimal
// registry on 127.0.0.1 serving one chart the way `helm push` stores it.
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { join, relative } from 'node:path';
import { gzipSync } from 'node:zlib';
import { encodeTarHeader, TAR_END_OF_ARCHIVE, tarPadding } from '@ferry/oci-client';

const HELM_CHART_CONFIG = 'application/vnd.cncf.helm.config.v1+json';
const HELM_CHART_CONTENT = 'application/vnd.cncf.helm.chart.content.v1.tar+gzip';

async function filesOf(dir: string): Promise<string[]> {
  const out: string[] = [];
  const walk = async (d: string) => {
    for (const e of await readdir(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) await walk(p);
      else out.push(p);
    }
  };
  await walk(dir);
  return out.sort();
}

/** A chart archive as `helm package` writes it: every file under `<top>/`, gzip-compressed; `extra` entries as named. */
export async function tgzOf(dir: string, top: string, extra: Array<{ name: string; data: string }> = []): Promise<Buffer> {
  const entries: Array<{ name: string; data: Buffer }> = [];
  for (const f of await filesOf(dir)) entries.push({ name: `${top}/${relative(dir, f).split('\\').join('/')}`, data: await readFile(f) });
  for (const e of extra) entries.push({ name: e.name, data: Buffer.from(e.data) });
  const parts = entries.flatMap((e) => [
    encodeTarHeader({ name: e.name, size: e.data.length, type: 'file', mtime: 0 }),
    e.data,
    Buffer.alloc(tarPadding(e.data.length)),
  ]);
  return gzipSync(Buffer.concat([...parts, TAR_END_OF_ARCHIVE]));
}

export interface ChartRegistry {
  /** host:port */
  host: string;
  /** "METHOD URL" of every request, in order. */
  requests: string[];
  manifestDigest: string;
  close(): Promise<void>;
}

const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/**
 * Serves `archive` as chart `charts/<name>` at tag `version` (a manifest with the
 * helm config and one chart layer), listing `tags`; anything else is a 404.
 */
export async function startChartRegistry(archive: Buffer, opts: { name: string; version: string; tags: string[] }): Promise<ChartRegistry> {
  const repo = `charts/${opts.name}`;
  const config = Buffer.from(JSON.stringify({ name: opts.name, version: opts.version, apiVersion: 'v2' }));
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: HELM_CHART_CONFIG, digest: sha(config), size: config.length },
      layers: [{ mediaType: HELM_CHART_CONTENT, digest: sha(archive), size: archive.length }],
    }),
  );
  const blobs = new Map([
    [sha(config), config],
    [sha(archive), archive],
  ]);
  const requests: string[] = [];
  const server = createServer((req, res) => {
    const url = req.url ?? '';
    requests.push(`${req.method} ${url}`);
    if (url === '/v2/') return res.writeHead(200).end();
    if (url.split('?')[0] === `/v2/${repo}/tags/list`) {
      res.writeHead(200, { 'content-type': 'application/json' });
      return res.end(JSON.stringify({ name: repo, tags: opts.tags }));
    }
    const m = new RegExp(`^/v2/${repo}/manifests/(.+)$`).exec(url);
    if (m && (m[1] === opts.version || m[1] === sha(manifest))) {
      res.writeHead(200, {
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'docker-content-digest': sha(manifest),
        'content-length': manifest.length,
      });
      return res.end(req.method === 'HEAD' ? undefined : manifest);
    }
    const b = new RegExp(`^/v2/${repo}/blobs/(.+)$`).exec(url);
    const blob = b ? blobs.get(b[1]!) : undefined;
    if (blob) {
      res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': blob.length });
      return res.end(blob);
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ errors: [{ code: 'MANIFEST_UNKNOWN', message: 'unknown' }] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return {
    host: `127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`,
    requests,
    manifestDigest: sha(manifest),
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

export interface IndexEntry {
  name: string;
  version: string;
  urls: string[];
  /** The archive's digest as index.yaml writes it (sha256 hex); omitted when undefined. */
  digest?: string;
}

/** An index.yaml as `helm repo index` writes it (the fields ferry reads). */
export function indexYaml(entries: IndexEntry[]): string {
  const byName = new Map<string, IndexEntry[]>();
  for (const e of entries) byName.set(e.name, [...(byName.get(e.name) ?? []), e]);
  const lines = ['apiVersion: v1', 'entries:'];
  for (const [name, list] of byName) {
    lines.push(`  ${name}:`);
    for (const e of list) {
      lines.push('  - apiVersion: v2', `    name: ${name}`, `    version: ${e.version}`, '    urls:', ...e.urls.map((u) => `    - ${u}`));
      if (e.digest !== undefined) lines.push(`    digest: ${e.digest}`);
    }
  }
  lines.push('generated: "2024-01-01T00:00:00Z"', '');
  return lines.join('\n');
}

export interface ChartRepository {
  /** http://127.0.0.1:PORT */
  origin: string;
  /** Path and whether it carried an Authorization header, of every request, in order. */
  requests: Array<{ path: string; authorization: string | undefined }>;
  /** Files served, by path (`/index.yaml`, `/charts/demo-1.0.0.tgz`); change them between requests as needed. */
  files: Map<string, Buffer>;
  close(): Promise<void>;
}

/**
 * A classic Helm repository on 127.0.0.1: static files by path; with `auth`,
 * paths under `authPrefix` (default all) answer 401 without that Basic credential.
 */
export async function startChartRepository(
  files: Map<string, Buffer>,
  opts: { auth?: { username: string; password: string }; authPrefix?: string } = {},
): Promise<ChartRepository> {
  const requests: ChartRepository['requests'] = [];
  const expected = opts.auth ? `Basic ${Buffer.from(`${opts.auth.username}:${opts.auth.password}`).toString('base64')}` : undefined;
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0]!;
    requests.push({ path, authorization: req.headers.authorization });
    if (expected && path.startsWith(opts.authPrefix ?? '/') && req.headers.authorization !== expected) {
      return res.writeHead(401, { 'www-authenticate': 'Basic realm="charts"' }).end('unauthorized');
    }
    const data = files.get(path);
    if (!data) return res.writeHead(404).end('not found');
    res.writeHead(200, { 'content-type': path.endsWith('.yaml') ? 'application/x-yaml' : 'application/octet-stream', 'content-length': data.length });
    res.end(data);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const addr = server.address();
  return {
    origin: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : 0}`,
    requests,
    files,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** The hex sha256 of bytes, as index.yaml writes a digest. */
export function sha256Hex(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}
