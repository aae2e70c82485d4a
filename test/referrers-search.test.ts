// What counts as a signature, and how referrers are looked for. Artifacts are built
// as cosign writes them: `.sig` (simple signing), `.att` (a DSSE envelope of an in-toto
// statement), `.sbom` (`cosign attach sbom`), and cosign 3's Sigstore bundle referrers,
// a signature and an attestation, listed in registry:2.8's fallback index without
// their annotations (as cosign's own fallback write leaves them). ferry.json records
// per image what was looked for; the lookups cost a request or two per repository,
// not five per manifest; two loads at once into one registry:2 keep each other's
// entries of one fallback index.
import type { KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tarEntriesOf } from '@ferry/oci-client';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type BuiltArtifact,
  COSIGN_SIGN_PREDICATE,
  type CosignSignature,
  cosignAttestation,
  cosignSbomAttachment,
  cosignSignature,
  fetchManifest,
  type MemoryRegistry,
  makeTempDir,
  OCI_MANIFEST,
  pushArtifact,
  putFallbackIndex,
  referrerEntry,
  removeTempDir,
  type SeededImage,
  SIGSTORE_BUNDLE,
  SLSA_PROVENANCE_V1,
  seedImage,
  signingKeyPair,
  sigstoreBundle,
  spdxSbom,
  startMemoryRegistry,
  startRegistry,
  type TestRegistry,
} from './harness/index.js';
import { copyResult, type FerryHome, makeFerryHome, runFerry } from './helpers/ferry.js';

let source: TestRegistry;
let target: TestRegistry;
let home: FerryHome;
let dir: string;
let image: SeededImage;
let keys: { privateKey: KeyObject; publicKey: KeyObject };
let sig: CosignSignature;
let att: CosignSignature;
let attached: CosignSignature;
let bundleSign: BuiltArtifact;
let bundleAttest: BuiltArtifact;
const REPO = 'kinds/app';

const ferry = (...args: string[]) => runFerry(args, { home });

beforeAll(async () => {
  [source, target, home, dir] = await Promise.all([startRegistry(), startRegistry(), makeFerryHome(), makeTempDir('ferry-referrer-search-')]);
  image = await seedImage(source, `${REPO}:1.0`, { seed: 'kinds', layerSize: 2048, single: true });
  const subject = { mediaType: OCI_MANIFEST, digest: image.digest, size: image.manifests[0]!.bytes.length };
  keys = signingKeyPair();
  sig = cosignSignature(source.host, REPO, image.digest, keys.privateKey);
  att = cosignAttestation(REPO, image.digest, keys.privateKey);
  attached = cosignSbomAttachment(image.digest);
  bundleSign = sigstoreBundle(subject, COSIGN_SIGN_PREDICATE, keys.privateKey);
  bundleAttest = sigstoreBundle(subject, SLSA_PROVENANCE_V1, keys.privateKey);
  for (const a of [sig, att, attached]) await pushArtifact(source, REPO, a, a.tag);
  for (const a of [bundleSign, bundleAttest]) await pushArtifact(source, REPO, a);
  // cosign's fallback write keeps artifactType but drops the annotations (sigstore/cosign#4641).
  await putFallbackIndex(
    source,
    REPO,
    image.digest,
    [bundleSign, bundleAttest].map((a) => ({ mediaType: a.mediaType, digest: a.digest, size: a.manifest.length, artifactType: SIGSTORE_BUNDLE })),
  );
});

afterAll(async () => {
  await Promise.all([source?.stop(), target?.stop(), home?.remove(), dir ? removeTempDir(dir) : undefined]);
});

async function ferryJsonOf(bundle: string): Promise<{ images: Array<Record<string, unknown>> }> {
  for (const e of tarEntriesOf(await readFile(bundle))) if (e.name === 'ferry.json') return JSON.parse(e.data.toString('utf8'));
  throw new Error(`${bundle} has no ferry.json`);
}

describe("cosign's artifacts by kind", () => {
  test('--referrers signatures carries .sig and the Sigstore signature bundle, not .att, .sbom or the attestation bundle', async () => {
    const out = copyResult(
      await ferry('copy', '--json', '--referrers', 'signatures', `${source.host}/${REPO}:1.0`, `${target.host}/sigs/app:1.0`),
    ) as unknown as { referrers: Array<{ digest: string; artifactType?: string }> };
    expect(out.referrers).toEqual([
      { digest: sig.digest, subject: image.digest, tag: sig.tag, artifactType: 'application/vnd.dev.cosign.artifact.sig.v1+json' },
      { digest: bundleSign.digest, subject: image.digest, artifactType: SIGSTORE_BUNDLE },
    ]);
    expect((await fetchManifest(target, 'sigs/app', sig.tag))?.equals(sig.manifest)).toBe(true);
    expect((await fetchManifest(target, 'sigs/app', bundleSign.digest))?.equals(bundleSign.manifest)).toBe(true);
    expect(await fetchManifest(target, 'sigs/app', att.tag)).toBeUndefined();
    expect(await fetchManifest(target, 'sigs/app', attached.tag)).toBeUndefined();
    expect(await fetchManifest(target, 'sigs/app', bundleAttest.digest)).toBeUndefined();
    // The fallback index ferry writes lists it with the annotations from its manifest.
    const fallback = JSON.parse((await fetchManifest(target, 'sigs/app', image.digest.replace(':', '-')))!.toString('utf8')) as { manifests: unknown[] };
    expect(fallback.manifests).toEqual([referrerEntry(bundleSign)]);
  });

  test('pack records each kind and, per image, what was looked for; --referrers none records that nothing was', async () => {
    const bundle = join(dir, 'all.tar');
    const packed = await ferry('pack', '-q', '-o', bundle, `${source.host}/${REPO}:1.0`);
    expect(packed.code, packed.stderr).toBe(0);
    const [entry] = (await ferryJsonOf(bundle)).images as Array<{ referrers: Array<Record<string, unknown>>; referrerSearch: unknown }>;
    expect(entry!.referrers.map((r) => [r.digest, r.kind, r.artifactType, r.tag])).toEqual([
      [sig.digest, 'signature', 'application/vnd.dev.cosign.artifact.sig.v1+json', sig.tag],
      [att.digest, 'attestation', 'application/vnd.dev.cosign.artifact.att.v1+json', att.tag],
      [attached.digest, 'sbom', 'application/vnd.dev.cosign.artifact.sbom.v1+json', attached.tag],
      [bundleSign.digest, 'signature', SIGSTORE_BUNDLE, null],
      [bundleAttest.digest, 'attestation', SIGSTORE_BUNDLE, null],
    ]);
    // The image and each of its five referrers were asked about.
    expect(entry!.referrerSearch).toEqual({ mode: 'all', types: null, subjects: 6, listing: ['fallback-tag'], cosignTags: ['.sig', '.att', '.sbom'] });

    const bare = join(dir, 'none.tar');
    expect((await ferry('pack', '-q', '--referrers', 'none', '-o', bare, `${source.host}/${REPO}:1.0`)).code).toBe(0);
    expect((await ferryJsonOf(bare)).images[0]!.referrerSearch).toEqual({ mode: 'none', types: null, subjects: 0, listing: [], cosignTags: [] });
    const text = await ferry('inspect', bare);
    expect(text.stdout).toContain('referrers not looked for (--referrers none): 1 image');
    const json = JSON.parse((await ferry('inspect', '--json', bare)).stdout) as { images: Array<{ referrerSearch: unknown }> };
    expect(json.images[0]!.referrerSearch).toMatchObject({ mode: 'none', subjects: 0 });

    const typed = join(dir, 'typed.tar');
    expect((await ferry('pack', '-q', '--referrers-type', 'application/spdx+json', '-o', typed, `${source.host}/${REPO}:1.0`)).code).toBe(0);
    expect((await ferryJsonOf(typed)).images[0]).not.toHaveProperty('referrers');
    expect((await ferry('inspect', typed)).stdout).toContain(
      "no referrers found (looked for all of type application/spdx+json, 1 manifest, by the fallback tag and cosign's .sig .att .sbom tags): 1 image",
    );
    expect((await ferry('inspect', bundle)).stdout).toContain(
      `${source.host}/${REPO}:1.0: (looked for all, 6 manifests, by the fallback tag and cosign's .sig .att .sbom tags)`,
    );
  });
});

/** The requests `pack --referrers all` sends beyond `--referrers none`, by "METHOD kind"; the bundles are `NAME-all.tar` and `NAME-none.tar`. */
async function requestsForLookups(reg: MemoryRegistry, name: string, refs: string[]): Promise<Record<string, number>> {
  const counts: Record<string, Record<string, number>> = {};
  for (const mode of ['none', 'all']) {
    reg.clearRequests();
    const res = await ferry('pack', '-q', '--insecure-registry', reg.host, '--referrers', mode, '-o', join(dir, `${name}-${mode}.tar`), ...refs);
    expect(res.code, res.stderr).toBe(0);
    counts[mode] = reg.counts();
  }
  return Object.fromEntries(
    Object.entries(counts.all!)
      .map(([k, n]) => [k, n - (counts.none![k] ?? 0)])
      .filter(([, n]) => n !== 0),
  );
}

describe('the lookups cost a request or two per repository', () => {
  test('a registry without the referrers API: one tag list and one referrers probe per repository, none per manifest', async () => {
    const reg = await startMemoryRegistry({ referrers: false });
    try {
      const refs: string[] = [];
      for (let i = 0; i < 4; i++) {
        reg.seedImage(`look/app${i}:1.0`, { seed: `look-${i}`, layerSize: 512 });
        refs.push(`${reg.host}/look/app${i}:1.0`);
      }
      // Two tags of one image: one lookup per manifest.
      reg.seedImage('look/app0:latest', { seed: 'look-0', layerSize: 512 });
      refs.push(`${reg.host}/look/app0:latest`);
      const extra = await requestsForLookups(reg, 'look', refs);
      // Each image is an index of two platforms: 3 manifests, 5 tags' worth asked about, in 4 repositories.
      expect(extra).toEqual({ 'GET tags': 4, 'GET referrers': 4 });
      const search = (await ferryJsonOf(join(dir, 'look-all.tar'))).images.map((i) => i.referrerSearch);
      expect(search).toEqual(refs.map(() => ({ mode: 'all', types: null, subjects: 3, listing: ['fallback-tag'], cosignTags: ['.sig', '.att', '.sbom'] })));
    } finally {
      await reg.stop();
    }
  });

  test('a registry that pages its tags is asked tag by tag', async () => {
    const reg = await startMemoryRegistry({ referrers: false, pageSize: 1 });
    try {
      reg.seedImage('paged/app:1.0', { seed: 'paged', layerSize: 512, single: true });
      reg.seedImage('paged/app:2.0', { seed: 'paged-2', layerSize: 512, single: true });
      const extra = await requestsForLookups(reg, 'paged', [`${reg.host}/paged/app:1.0`]);
      // One manifest: its three cosign tags, the referrers probe, the fallback tag.
      expect(extra).toEqual({ 'GET tags': 1, 'HEAD manifest': 3, 'GET referrers': 1, 'GET manifest': 1 });
    } finally {
      await reg.stop();
    }
  });
});

describe('two loads at once into one registry:2', () => {
  test('keep both bundles’ entries of one subject’s fallback index', async () => {
    const subject = { mediaType: OCI_MANIFEST, digest: image.digest, size: image.manifests[0]!.bytes.length };
    const repo = 'race/app';
    const shared = await seedImage(source, `${repo}:1.0`, { seed: 'kinds', layerSize: 2048, single: true });
    expect(shared.digest).toBe(image.digest);
    const sboms = Array.from({ length: 16 }, (_, i) => spdxSbom(subject, `race-${i}`));
    for (const a of sboms) await pushArtifact(source, repo, a);
    const bundles = [join(dir, 'race-1.tar'), join(dir, 'race-2.tar')];
    for (const [i, half] of [sboms.slice(0, 8), sboms.slice(8)].entries()) {
      await putFallbackIndex(source, repo, image.digest, half.map(referrerEntry));
      const res = await ferry('pack', '-q', '-o', bundles[i]!, `${source.host}/${repo}:1.0`);
      expect(res.code, res.stderr).toBe(0);
    }
    const fresh = await startRegistry();
    try {
      const loads = await Promise.all(bundles.map((b) => ferry('load', '-q', b, '--to', fresh.host)));
      for (const l of loads) expect(l.code, l.stderr).toBe(0);
      const index = JSON.parse((await fetchManifest(fresh, repo, image.digest.replace(':', '-')))!.toString('utf8')) as {
        manifests: Array<{ digest: string }>;
      };
      expect(index.manifests.map((d) => d.digest).sort()).toEqual(sboms.map((a) => a.digest).sort());
      for (const a of sboms) expect((await fetchManifest(fresh, repo, a.digest))?.equals(a.manifest)).toBe(true);
    } finally {
      await fresh.stop();
    }
  });
});
