// Signatures, SBOMs and attestations cross with their images: a cosign signature
// (`sha256-<hex>.sig`, ECDSA P-256 over a simple-signing payload) and an SPDX
// SBOM referrer with `subject` (in registry:2.8's tag-schema fallback index, it
// has no referrers API), with a signature of the SBOM, are carried by `ferry
// copy`, and checked at the target with plain HTTP: tags, digests, the
// signature against the public key, the fallback index merged with what was
// there, the referrers API of a registry that has it.
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tarEntriesOf } from '@ferry/oci-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type BuiltArtifact,
  type CosignSignature,
  checkCosignSignature,
  cosignSignature,
  fetchBlob,
  fetchManifest,
  type MemoryRegistry,
  makeTempDir,
  OCI_INDEX,
  OCI_MANIFEST,
  pushArtifact,
  putFallbackIndex,
  referrerEntry,
  registryFetch,
  removeTempDir,
  type SeededImage,
  SPDX_JSON,
  seedImage,
  signingKeyPair,
  spdxSbom,
  startMemoryRegistry,
  startRegistry,
  type TestRegistry,
} from './harness/index.js';
import { copyResult, type FerryHome, makeFerryHome, runFerry, startServe } from './helpers/ferry.js';

let source: TestRegistry;
let target: TestRegistry;
let withApi: MemoryRegistry;
let home: FerryHome;
let image: SeededImage;
let keys: { privateKey: KeyObject; publicKey: KeyObject };
let signature: CosignSignature;
let childSignature: CosignSignature;
let sbom: BuiltArtifact;
let sbomSignature: CosignSignature;
const REPO = 'signed/app';

beforeAll(async () => {
  [source, target, withApi, home] = await Promise.all([startRegistry(), startRegistry(), startMemoryRegistry(), makeFerryHome()]);
  image = await seedImage(source, `${REPO}:1.0`, { seed: 'signed', layerSize: 8 * 1024 });
  keys = signingKeyPair();
  signature = cosignSignature(source.host, REPO, image.digest, keys.privateKey);
  childSignature = cosignSignature(source.host, REPO, image.manifests[0]!.digest, keys.privateKey);
  sbom = spdxSbom({ mediaType: OCI_INDEX, digest: image.digest, size: image.indexBytes!.length });
  sbomSignature = cosignSignature(source.host, REPO, sbom.digest, keys.privateKey);
  await pushArtifact(source, REPO, signature, signature.tag);
  await pushArtifact(source, REPO, childSignature, childSignature.tag);
  await pushArtifact(source, REPO, sbom);
  await putFallbackIndex(source, REPO, image.digest, [referrerEntry(sbom)]);
  await pushArtifact(source, REPO, sbomSignature, sbomSignature.tag);
});

afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop(), withApi?.stop(), home?.remove()]);
});

const ferry = (...args: string[]) => runFerry(args, { home });

/** The cosign signature is at its tag in `repo` of `reg`, byte for byte, and verifies with the public key. */
async function expectSignature(reg: { url: string; users: Record<string, string> }, repo: string, sig: CosignSignature, subject: string): Promise<void> {
  const manifest = await fetchManifest(reg, repo, sig.tag);
  expect(manifest?.equals(sig.manifest), `manifest at ${sig.tag}`).toBe(true);
  const payload = await fetchBlob(reg, repo, [...sig.blobs.keys()][1]!);
  expect(payload?.equals(sig.payload)).toBe(true);
  const body = JSON.parse(payload!.toString('utf8')) as { critical: { image: { 'docker-manifest-digest': string } } };
  expect(body.critical.image['docker-manifest-digest']).toBe(subject);
  expect(checkCosignSignature(manifest!, payload!, subject, keys.publicKey)).toBe(true);
}

async function expectBlobs(reg: { url: string; users: Record<string, string> }, repo: string, a: BuiltArtifact): Promise<void> {
  for (const [digest, bytes] of a.blobs) expect((await fetchBlob(reg, repo, digest))?.equals(bytes), `blob ${digest}`).toBe(true);
}

describe('ferry copy carries signatures and SBOMs', () => {
  test('to registry:2.8: cosign tags as tags, the SBOM by digest and in the fallback index, merged with what was there', async () => {
    // The target already lists another referrer of the image: the copy keeps it.
    const other = spdxSbom({ mediaType: OCI_INDEX, digest: image.digest, size: image.indexBytes!.length }, 'other');
    await pushArtifact(target, 'copied/app', other);
    await putFallbackIndex(target, 'copied/app', image.digest, [referrerEntry(other)]);

    const res = await ferry('copy', '--json', `${source.host}/${REPO}:1.0`, `${target.host}/copied/app:1.0`);
    const out = copyResult(res) as unknown as { digest: string; referrers: Array<{ digest: string; subject: string; tag?: string; artifactType?: string }> };
    expect(out.digest).toBe(image.digest);
    // Walk order: the index's children, then the index, then the referrers of referrers.
    expect(out.referrers).toEqual([
      {
        digest: childSignature.digest,
        subject: image.manifests[0]!.digest,
        tag: childSignature.tag,
        artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
      },
      { digest: signature.digest, subject: image.digest, tag: signature.tag, artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json' },
      { digest: sbom.digest, subject: image.digest, artifactType: 'application/spdx+json' },
      { digest: sbomSignature.digest, subject: sbom.digest, tag: sbomSignature.tag, artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json' },
    ]);

    await expectSignature(target, 'copied/app', signature, image.digest);
    await expectSignature(target, 'copied/app', childSignature, image.manifests[0]!.digest);
    await expectSignature(target, 'copied/app', sbomSignature, sbom.digest);
    expect((await fetchManifest(target, 'copied/app', sbom.digest))?.equals(sbom.manifest)).toBe(true);
    await expectBlobs(target, 'copied/app', sbom);
    const fallback = await fetchManifest(target, 'copied/app', image.digest.replace(':', '-'));
    const listed = (JSON.parse(fallback!.toString('utf8')) as { manifests: unknown[] }).manifests;
    expect(listed).toEqual([referrerEntry(other), referrerEntry(sbom)]);

    // A rerun changes nothing: the fallback index is not rewritten.
    const again = await ferry('copy', '--json', `${source.host}/${REPO}:1.0`, `${target.host}/copied/app:1.0`);
    expect(again.code).toBe(0);
    expect((await fetchManifest(target, 'copied/app', image.digest.replace(':', '-')))?.equals(fallback!)).toBe(true);
  });

  test('to a registry with the referrers API: the SBOM is listed for the digest, no fallback tag is written', async () => {
    const res = await ferry('copy', '--json', '--insecure-registry', withApi.host, `${source.host}/${REPO}:1.0`, `${withApi.host}/api/app:1.0`);
    expect(res.code, res.stderr).toBe(0);
    const list = await registryFetch(withApi, `/v2/api/app/referrers/${image.digest}`);
    const body = (await list.json()) as { manifests: Array<{ digest: string; artifactType?: string }> };
    expect(body.manifests.map((d) => [d.digest, d.artifactType])).toEqual([[sbom.digest, 'application/spdx+json']]);
    expect(await fetchManifest(withApi, 'api/app', image.digest.replace(':', '-'))).toBeUndefined();
    await expectSignature(withApi, 'api/app', signature, image.digest);
    await expectSignature(withApi, 'api/app', sbomSignature, sbom.digest);
    await expectBlobs(withApi, 'api/app', sbom);
  });

  test('--referrers signatures leaves the SBOM (and its signature) behind; none carries nothing', async () => {
    const sigs = copyResult(
      await ferry('copy', '--json', '--referrers', 'signatures', `${source.host}/${REPO}:1.0`, `${target.host}/sigs/app:1.0`),
    ) as unknown as {
      referrers: Array<{ digest: string }>;
    };
    expect(sigs.referrers.map((r) => r.digest)).toEqual([childSignature.digest, signature.digest]);
    expect(await fetchManifest(target, 'sigs/app', sbom.digest)).toBeUndefined();
    expect(await fetchManifest(target, 'sigs/app', image.digest.replace(':', '-'))).toBeUndefined();
    await expectSignature(target, 'sigs/app', signature, image.digest);

    const typed = copyResult(
      await ferry('copy', '--json', '--referrers-type', 'application/spdx+json', `${source.host}/${REPO}:1.0`, `${target.host}/typed/app:1.0`),
    ) as unknown as { referrers: Array<{ digest: string }> };
    expect(typed.referrers.map((r) => r.digest)).toEqual([sbom.digest]);

    const none = copyResult(await ferry('copy', '--json', '--referrers', 'none', `${source.host}/${REPO}:1.0`, `${target.host}/none/app:1.0`)) as unknown as {
      referrers: unknown[];
    };
    expect(none.referrers).toEqual([]);
    expect(await fetchManifest(target, 'none/app', signature.tag)).toBeUndefined();
  });

  test('a bad --referrers is a usage error', async () => {
    const res = await ferry('copy', '--referrers', 'some', `${source.host}/${REPO}:1.0`, `${target.host}/bad/app:1.0`);
    expect(res.code).toBe(2);
    expect(res.stderr).toMatch(/^ferry: .*--referrers.*'some' is invalid/m);
  });
});

describe('a bundle carries signatures and SBOMs', () => {
  let dir: string;
  let bundle: string;
  let fresh: TestRegistry;
  beforeAll(async () => {
    [dir, fresh] = await Promise.all([makeTempDir('ferry-referrers-'), startRegistry()]);
    bundle = join(dir, 'signed.tar');
  });
  afterAll(async () => {
    await Promise.all([fresh?.stop(), dir ? removeTempDir(dir) : undefined]);
  });

  test('pack names them in ferry.json, not in index.json; inspect lists them; verify walks them', async () => {
    const packed = await ferry('pack', '-q', '-o', bundle, `${source.host}/${REPO}:1.0`);
    expect(packed.code, packed.stderr).toBe(0);
    const tar = await readTar(bundle);
    const index = JSON.parse(tar.get('index.json')!.toString('utf8')) as { manifests: Array<{ digest: string }> };
    // index.json lists the image alone: what containerd, skopeo and podman import is unchanged.
    expect(index.manifests.map((d) => d.digest)).toEqual([image.digest]);
    const doc = JSON.parse(tar.get('ferry.json')!.toString('utf8')) as { images: Array<{ referrers: unknown[] }> };
    expect(doc.images[0]!.referrers).toEqual([
      {
        digest: childSignature.digest,
        mediaType: OCI_MANIFEST,
        size: childSignature.manifest.length,
        artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
        kind: 'signature',
        subject: image.manifests[0]!.digest,
        tag: childSignature.tag,
      },
      {
        digest: signature.digest,
        mediaType: OCI_MANIFEST,
        size: signature.manifest.length,
        artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
        kind: 'signature',
        subject: image.digest,
        tag: signature.tag,
      },
      { digest: sbom.digest, mediaType: OCI_MANIFEST, size: sbom.manifest.length, artifactType: SPDX_JSON, kind: 'sbom', subject: image.digest, tag: null },
      {
        digest: sbomSignature.digest,
        mediaType: OCI_MANIFEST,
        size: sbomSignature.manifest.length,
        artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
        kind: 'signature',
        subject: sbom.digest,
        tag: sbomSignature.tag,
      },
    ]);
    // Their manifests and blobs are ordinary blobs.
    for (const a of [signature, childSignature, sbom, sbomSignature]) {
      expect(tar.get(`blobs/sha256/${a.digest.slice(7)}`)?.equals(a.manifest)).toBe(true);
      for (const [digest, bytes] of a.blobs) expect(tar.get(`blobs/sha256/${digest.slice(7)}`)?.equals(bytes)).toBe(true);
    }

    const inspected = JSON.parse((await ferry('inspect', '--json', bundle)).stdout) as {
      images: Array<{ referrers: unknown[] }>;
      totals: { unreferenced: { blobs: number } };
    };
    expect(inspected.images[0]!.referrers).toEqual([
      {
        kind: 'signature',
        artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
        digest: childSignature.digest,
        subject: image.manifests[0]!.digest,
        tag: childSignature.tag,
      },
      {
        kind: 'signature',
        artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
        digest: signature.digest,
        subject: image.digest,
        tag: signature.tag,
      },
      { kind: 'sbom', artifactType: SPDX_JSON, digest: sbom.digest, subject: image.digest, tag: null },
      {
        kind: 'signature',
        artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json',
        digest: sbomSignature.digest,
        subject: sbom.digest,
        tag: sbomSignature.tag,
      },
    ]);
    expect(inspected.totals.unreferenced.blobs).toBe(0);
    const text = (await ferry('inspect', bundle)).stdout;
    expect(text).toContain(`  sbom         ${sbom.digest.slice(0, 19)}`);

    const verified = await ferry('verify', '--json', bundle);
    expect(verified.code, verified.stdout + verified.stderr).toBe(0);
  });

  test('load pushes them after the image into registry:2.8; verify --against checks they arrived', async () => {
    const loaded = await ferry('load', '-q', bundle, '--to', fresh.host);
    expect(loaded.code, loaded.stderr).toBe(0);
    await expectSignature(fresh, REPO, signature, image.digest);
    await expectSignature(fresh, REPO, childSignature, image.manifests[0]!.digest);
    await expectSignature(fresh, REPO, sbomSignature, sbom.digest);
    await expectBlobs(fresh, REPO, sbom);
    const fallback = await fetchManifest(fresh, REPO, image.digest.replace(':', '-'));
    expect((JSON.parse(fallback!.toString('utf8')) as { manifests: unknown[] }).manifests).toEqual([referrerEntry(sbom)]);
    const reloaded = await ferry('load', '-q', bundle, '--to', fresh.host);
    expect(reloaded.code, reloaded.stderr).toBe(0);
    expect((await fetchManifest(fresh, REPO, image.digest.replace(':', '-')))?.equals(fallback!)).toBe(true);

    const against = await ferry('verify', '--json', bundle, '--against', fresh.host);
    expect(against.code, against.stdout).toBe(0);

    // The image without its referrers is incomplete.
    await ferry('copy', '-q', '--referrers', 'none', `${source.host}/${REPO}:1.0`, `${target.host}/bare/${REPO}:1.0`);
    const bare = await ferry('verify', '--json', bundle, '--against', `${target.host}/bare`);
    expect(bare.code).toBe(1);
    const rows = (JSON.parse(bare.stdout) as { rows: Array<{ status: string; missingChildren: string[] }> }).rows;
    expect(rows[0]!.status).toBe('incomplete');
    expect(rows[0]!.missingChildren).toEqual([signature.digest, childSignature.digest, sbom.digest, sbomSignature.digest].sort());
  });

  test('serve answers for them from the bundle: cosign tags, the referrers API, and verify --against the served registry', async () => {
    const served = await startServe([bundle], { home });
    try {
      const sig = await fetch(`http://${served.host}/v2/${REPO}/manifests/${image.digest.replace(':', '-')}.sig`, {
        headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
      });
      expect(sig.status).toBe(200);
      expect(sig.headers.get('docker-content-digest')).toBe(signature.digest);
      const listed = (await (await fetch(`http://${served.host}/v2/${REPO}/referrers/${image.digest}`)).json()) as { manifests: Array<{ digest: string }> };
      expect(listed.manifests.map((m) => m.digest)).toEqual([sbom.digest]);
      const against = await ferry('verify', '--json', bundle, '--against', served.host);
      expect(against.code, against.stdout).toBe(0);
    } finally {
      expect(await served.stop()).toBe(0);
    }
  });

  test('--referrers none packs the image alone, as before', async () => {
    const plain = join(dir, 'plain.tar');
    expect((await ferry('pack', '-q', '--referrers', 'none', '-o', plain, `${source.host}/${REPO}:1.0`)).code).toBe(0);
    const doc = JSON.parse((await readTar(plain)).get('ferry.json')!.toString('utf8')) as { images: Array<Record<string, unknown>> };
    expect('referrers' in doc.images[0]!).toBe(false);
  });
});

/** Every regular file of a tar, by name. */
async function readTar(path: string): Promise<Map<string, Buffer>> {
  const files = new Map<string, Buffer>();
  for (const e of tarEntriesOf(await readFile(path))) if (e.type === 'file') files.set(e.name, e.data);
  return files;
}

describe('the referrer walk is bounded', () => {
  test('referrers of referrers are followed three levels deep, no further', async () => {
    const chained = await seedImage(source, 'chain/app:1.0', { seed: 'chain', layerSize: 1024, single: true });
    let subject = { mediaType: OCI_MANIFEST, digest: chained.digest, size: chained.manifests[0]!.bytes.length };
    const levels: BuiltArtifact[] = [];
    for (let i = 1; i <= 4; i++) {
      const a = spdxSbom(subject, `level-${i}`);
      await pushArtifact(source, 'chain/app', a);
      await putFallbackIndex(source, 'chain/app', subject.digest, [referrerEntry(a)]);
      levels.push(a);
      subject = { mediaType: OCI_MANIFEST, digest: a.digest, size: a.manifest.length };
    }
    const out = copyResult(await ferry('copy', '--json', `${source.host}/chain/app:1.0`, `${target.host}/chain/app:1.0`)) as unknown as {
      referrers: Array<{ digest: string }>;
    };
    expect(out.referrers.map((r) => r.digest)).toEqual(levels.slice(0, 3).map((a) => a.digest));
    expect(await fetchManifest(target, 'chain/app', levels[3]!.digest)).toBeUndefined();
  });
});
