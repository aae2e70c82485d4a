/**
 * The one graph walk: node order, de-duplication, which index children are
 * platforms, the depth bound, and strict against tolerant walks.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type GraphNode, indexChildPlatform, MAX_INDEX_DEPTH, walkGraph } from '../src/copy/graph.js';
import { FerryError } from '../src/errors.js';
import { type Descriptor, MediaType, type ParsedManifest, parseManifest } from '../src/manifest.js';

const store = new Map<string, ParsedManifest>();
const read = async (d: Descriptor): Promise<ParsedManifest> => {
  const m = store.get(d.digest);
  if (!m) throw new FerryError('not-found', `no manifest ${d.digest}`);
  return m;
};

function blob(name: string): Descriptor {
  const bytes = Buffer.from(name);
  return { mediaType: 'application/octet-stream', digest: `sha256:${createHash('sha256').update(bytes).digest('hex')}`, size: bytes.length };
}

function put(doc: object): { m: ParsedManifest; d: Descriptor } {
  const m = parseManifest(Buffer.from(JSON.stringify(doc)));
  store.set(m.digest, m);
  return { m, d: { mediaType: m.mediaType, digest: m.digest, size: m.bytes.byteLength } };
}

function image(...layers: string[]) {
  return put({
    schemaVersion: 2,
    mediaType: MediaType.OCI_MANIFEST,
    config: { ...blob(`config ${layers.join()}`), mediaType: MediaType.OCI_CONFIG },
    layers: layers.map(blob),
  });
}

function index(children: Descriptor[]) {
  return put({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: children });
}

async function walk(root: Descriptor, tolerant = false) {
  const nodes: GraphNode[] = [];
  const manifests: string[] = [];
  const unreadable: string[] = [];
  await walkGraph(
    { descriptor: root },
    {
      read,
      onNode: (n) => void nodes.push(n),
      onManifest: (_n, m) => void manifests.push(m.digest),
      ...(tolerant ? { onUnreadable: (n: GraphNode, e: unknown) => void unreadable.push(`${n.descriptor.digest}: ${(e as Error).message}`) } : {}),
    },
  );
  return { nodes, manifests, unreadable };
}

describe('walkGraph', () => {
  const amd = image('base', 'amd64 layer');
  const arm = image('base', 'arm64 layer');
  const attestation = image('provenance');
  const root = index([
    { ...amd.d, platform: { os: 'linux', architecture: 'amd64' } },
    { ...arm.d, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    { ...attestation.d, platform: { os: 'unknown', architecture: 'unknown' }, annotations: { 'vnd.docker.reference.digest': amd.d.digest } },
  ]);

  it('visits parents before children in document order, each digest once, and hears of manifests children first', async () => {
    const { nodes, manifests } = await walk(root.d);
    expect(nodes.map((n) => `${n.role}@${n.depth}`)).toEqual([
      'root@0',
      'manifest@1',
      'manifest@1',
      'manifest@1',
      'config@2',
      'layer@2',
      'layer@2',
      'config@2',
      'layer@2', // the shared base is not visited again
      'config@2',
      'layer@2',
    ]);
    expect(manifests).toEqual([amd.d.digest, arm.d.digest, attestation.d.digest, root.d.digest]);
  });

  it('names platforms only for children that stand for one: not attestations, not unknown/unknown', async () => {
    const { nodes } = await walk(root.d);
    expect(nodes.filter((n) => n.platform).map((n) => n.platform)).toEqual([
      { os: 'linux', architecture: 'amd64' },
      { os: 'linux', architecture: 'arm64', variant: 'v8' },
    ]);
    expect(indexChildPlatform({ ...amd.d, platform: { os: 'unknown', architecture: 'unknown' } })).toBeUndefined();
  });

  it(`refuses indexes nested deeper than ${MAX_INDEX_DEPTH} levels, or reports them in a tolerant walk`, async () => {
    let top = image('deep');
    for (let i = 0; i < MAX_INDEX_DEPTH + 1; i++) top = index([top.d]);
    await expect(walk(top.d)).rejects.toThrow(`index nesting deeper than ${MAX_INDEX_DEPTH} levels in the image`);
    const { unreadable } = await walk(top.d, true);
    expect(unreadable).toHaveLength(1);
    expect(unreadable[0]).toContain(`index nesting deeper than ${MAX_INDEX_DEPTH} levels`);
  });

  it('a tolerant walk reports a missing manifest and goes on; a strict one fails with its error', async () => {
    const missing = { ...image('never stored').d };
    store.delete(missing.digest);
    const partial = index([missing, amd.d]);
    await expect(walk(partial.d)).rejects.toThrow(`no manifest ${missing.digest}`);
    const { nodes, unreadable } = await walk(partial.d, true);
    expect(unreadable).toEqual([`${missing.digest}: no manifest ${missing.digest}`]);
    expect(nodes.filter((n) => n.role === 'layer')).toHaveLength(2);
  });

  it('leaves a manifest unread when the visitor says so', async () => {
    const nodes: GraphNode[] = [];
    const onNode = (n: GraphNode): boolean => {
      nodes.push(n);
      return n.descriptor.digest !== arm.d.digest;
    };
    await walkGraph({ descriptor: root.d }, { read, onNode });
    expect(nodes.filter((n) => n.role === 'layer')).toHaveLength(3); // amd's two and the attestation's one
  });
});
