import { describe, expect, it } from 'vitest';
import { digestOf } from '../src/digest.js';
import { FerryError } from '../src/errors.js';
import {
  descriptorSchema,
  isIndexMediaType,
  isManifestMediaType,
  MANIFEST_ACCEPT,
  MAX_MANIFEST_BYTES,
  MediaType,
  parseManifest,
  referencedDescriptors,
} from '../src/manifest.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;
const enc = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));

const ociManifest = {
  schemaVersion: 2,
  mediaType: MediaType.OCI_MANIFEST,
  config: { mediaType: MediaType.OCI_CONFIG, digest: d('c'), size: 1469 },
  layers: [
    { mediaType: MediaType.OCI_LAYER_GZIP, digest: d('1'), size: 3_000_000 },
    { mediaType: MediaType.OCI_LAYER_ZSTD, digest: d('2'), size: 0 },
  ],
  subject: { mediaType: MediaType.OCI_MANIFEST, digest: d('5'), size: 10 },
  annotations: { 'org.opencontainers.image.created': '2024-01-01T00:00:00Z' },
};

const dockerManifest = {
  schemaVersion: 2,
  mediaType: MediaType.DOCKER_MANIFEST,
  config: { mediaType: MediaType.DOCKER_CONFIG, digest: d('c'), size: 7023 },
  layers: [{ mediaType: MediaType.DOCKER_LAYER, digest: d('1'), size: 32654 }],
};

const dockerList = {
  schemaVersion: 2,
  mediaType: MediaType.DOCKER_MANIFEST_LIST,
  manifests: [
    {
      mediaType: MediaType.DOCKER_MANIFEST,
      digest: d('a'),
      size: 528,
      platform: { architecture: 'amd64', os: 'linux' },
    },
    {
      mediaType: MediaType.DOCKER_MANIFEST,
      digest: d('b'),
      size: 528,
      platform: { architecture: 'arm', os: 'linux', variant: 'v7', features: ['sse4'] },
    },
  ],
};

const ociIndex = {
  schemaVersion: 2,
  mediaType: MediaType.OCI_INDEX,
  manifests: [
    {
      mediaType: MediaType.OCI_MANIFEST,
      digest: d('a'),
      size: 1000,
      platform: { architecture: 'amd64', os: 'windows', 'os.version': '10.0.17763.1234', 'os.features': ['win32k'] },
      annotations: { 'org.opencontainers.image.ref.name': '1.0' },
    },
    {
      mediaType: MediaType.OCI_MANIFEST,
      digest: d('b'),
      size: 500,
      artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      data: 'e30=',
    },
  ],
};

function failure(fn: () => unknown): FerryError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FerryError);
    return e as FerryError;
  }
  throw new Error('expected parseManifest to fail');
}

describe('constants', () => {
  it('Accept list: the four types, OCI first', () => {
    expect(MANIFEST_ACCEPT).toEqual([
      'application/vnd.oci.image.manifest.v1+json',
      'application/vnd.oci.image.index.v1+json',
      'application/vnd.docker.distribution.manifest.v2+json',
      'application/vnd.docker.distribution.manifest.list.v2+json',
    ]);
    expect(MAX_MANIFEST_BYTES).toBe(4194304);
  });

  it('media type predicates ignore parameters and case', () => {
    expect(isIndexMediaType(MediaType.OCI_INDEX)).toBe(true);
    expect(isIndexMediaType(`${MediaType.DOCKER_MANIFEST_LIST}; charset=utf-8`)).toBe(true);
    expect(isIndexMediaType(MediaType.OCI_MANIFEST)).toBe(false);
    expect(isManifestMediaType('Application/VND.OCI.image.manifest.v1+json')).toBe(true);
    expect(isManifestMediaType(MediaType.DOCKER_MANIFEST)).toBe(true);
    expect(isManifestMediaType(MediaType.DOCKER_SCHEMA1_SIGNED)).toBe(false);
  });
});

describe('parseManifest', () => {
  it('parses an OCI image manifest, keeping the bytes and the sha256 of those bytes', () => {
    // Unusual whitespace: the digest is of the bytes as received, never of a re-serialization.
    const bytes = enc(JSON.stringify(ociManifest, null, 3));
    const m = parseManifest(bytes, MediaType.OCI_MANIFEST);
    expect(m.kind).toBe('image');
    expect(m.mediaType).toBe(MediaType.OCI_MANIFEST);
    expect(m.bytes).toBe(bytes);
    expect(m.digest).toBe(digestOf(bytes));
    if (m.kind !== 'image') throw new Error('unreachable');
    expect(m.manifest.layers).toHaveLength(2);
    expect(m.manifest.subject?.digest).toBe(d('5'));
    // Config and layers, not the subject.
    expect(referencedDescriptors(m).map((x) => x.digest)).toEqual([d('c'), d('1'), d('2')]);
  });

  it('parses Docker v2 manifests and manifest lists', () => {
    const m = parseManifest(enc(dockerManifest), 'application/vnd.docker.distribution.manifest.v2+json');
    expect(m).toMatchObject({ kind: 'image', mediaType: MediaType.DOCKER_MANIFEST });
    const l = parseManifest(enc(dockerList));
    expect(l).toMatchObject({ kind: 'index', mediaType: MediaType.DOCKER_MANIFEST_LIST });
    expect(referencedDescriptors(l).map((x) => x.digest)).toEqual([d('a'), d('b')]);
    if (l.kind !== 'index') throw new Error('unreachable');
    expect(l.manifest.manifests[1]?.platform).toEqual({
      architecture: 'arm',
      os: 'linux',
      variant: 'v7',
      features: ['sse4'],
    });
  });

  it('parses an OCI index with os.version, artifactType and data', () => {
    const m = parseManifest(enc(ociIndex));
    expect(m.kind).toBe('index');
    expect(m.mediaType).toBe(MediaType.OCI_INDEX);
    if (m.kind !== 'index') throw new Error('unreachable');
    expect(m.manifest.manifests[0]?.platform?.['os.version']).toBe('10.0.17763.1234');
    expect(m.manifest.manifests[1]?.data).toBe('e30=');
  });

  it('keeps unknown fields at every level', () => {
    const doc = {
      ...ociManifest,
      futureField: { x: 1 },
      config: { ...ociManifest.config, vendorThing: 'kept' },
    };
    const m = parseManifest(enc(doc));
    if (m.kind !== 'image') throw new Error('unreachable');
    expect((m.manifest as Record<string, unknown>).futureField).toEqual({ x: 1 });
    expect((m.manifest.config as Record<string, unknown>).vendorThing).toBe('kept');
  });

  it('takes the media type from the body, then Content-Type, then the shape', () => {
    const { mediaType: _omit, ...bare } = dockerManifest;
    // No mediaType in the body: Content-Type decides (parameters ignored).
    expect(parseManifest(enc(bare), `${MediaType.DOCKER_MANIFEST}; charset=utf-8`).mediaType).toBe(MediaType.DOCKER_MANIFEST);
    // Body and header disagree: the body wins.
    expect(parseManifest(enc(dockerManifest), MediaType.OCI_MANIFEST).mediaType).toBe(MediaType.DOCKER_MANIFEST);
    // Neither: guessed from the shape; a generic Content-Type is not a manifest type.
    expect(parseManifest(enc(bare), 'application/json').mediaType).toBe(MediaType.OCI_MANIFEST);
    const { mediaType: _o2, ...bareIndex } = ociIndex;
    expect(parseManifest(enc(bareIndex)).mediaType).toBe(MediaType.OCI_INDEX);
    expect(parseManifest(enc(bareIndex)).kind).toBe('index');
  });

  it('refuses Docker schema 1', () => {
    const schema1 = {
      schemaVersion: 1,
      name: 'library/busybox',
      tag: 'latest',
      architecture: 'amd64',
      fsLayers: [{ blobSum: d('1') }],
      history: [{ v1Compatibility: '{}' }],
    };
    const bytes = enc(schema1);
    for (const ct of [undefined, MediaType.DOCKER_SCHEMA1, MediaType.DOCKER_SCHEMA1_SIGNED]) {
      const e = failure(() => parseManifest(bytes, ct));
      expect(e.kind).toBe('unsupported');
      expect(e.message).toBe(
        `Docker schema 1 manifests are not supported (manifest ${digestOf(bytes)}); ` +
          're-push the image with a current client (docker, buildah, skopeo or crane) to convert it to schema 2 or OCI.',
      );
    }
    // A schema 1 Content-Type without schemaVersion in the body is refused too.
    const e = failure(() => parseManifest(enc({ name: 'x' }), MediaType.DOCKER_SCHEMA1_SIGNED));
    expect(e.message).toContain('Docker schema 1 manifests are not supported');
  });

  it('refuses a manifest of 4 MiB + 1 bytes, accepts exactly 4 MiB', () => {
    const head = `${JSON.stringify(ociManifest).slice(0, -1)},"pad":"`;
    const exact = `${head + 'x'.repeat(MAX_MANIFEST_BYTES - head.length - 2)}"}`;
    expect(exact.length).toBe(MAX_MANIFEST_BYTES);
    expect(parseManifest(enc(exact)).kind).toBe('image');

    const over = new Uint8Array(MAX_MANIFEST_BYTES + 1);
    const e = failure(() => parseManifest(over));
    expect(e.kind).toBe('unsupported');
    expect(e.message).toBe('manifest of 4194305 bytes is larger than 4 MiB (4194304 bytes), the limit registries enforce; ferry refuses it.');
  });

  it('refuses bytes that are not JSON or not an object', () => {
    const notJson = enc('<html>502 Bad Gateway</html>');
    let e = failure(() => parseManifest(notJson));
    expect(e.kind).toBe('unsupported');
    expect(e.message).toBe(`manifest ${digestOf(notJson)} is not valid JSON, so it is not a manifest ferry can read.`);
    const arr = enc('[1,2]');
    e = failure(() => parseManifest(arr));
    expect(e.message).toBe(`manifest ${digestOf(arr)} is not a JSON object, so it is not a manifest ferry can read.`);
    e = failure(() => parseManifest(new Uint8Array([0x7b, 0xff, 0x7d])));
    expect(e.message).toContain('is not valid JSON');
  });

  it('refuses unknown media types and shapeless documents', () => {
    const art = enc({ schemaVersion: 2, mediaType: 'application/vnd.oci.artifact.manifest.v1+json', blobs: [] });
    let e = failure(() => parseManifest(art));
    expect(e.kind).toBe('unsupported');
    expect(e.message).toBe(
      `manifest ${digestOf(art)} has media type "application/vnd.oci.artifact.manifest.v1+json", which ferry does not support ` +
        `(supported: ${MANIFEST_ACCEPT.join(', ')}).`,
    );
    const shapeless = enc({ schemaVersion: 2 });
    e = failure(() => parseManifest(shapeless));
    expect(e.message).toBe(
      `manifest ${digestOf(shapeless)} has no mediaType and neither "manifests" nor "config", so it is neither an image manifest nor an index.`,
    );
  });

  it('names the path of the bad field', () => {
    const badDigest = structuredClone(ociManifest);
    badDigest.layers[1]!.digest = 'sha256:1234';
    let bytes = enc(badDigest);
    let e = failure(() => parseManifest(bytes));
    expect(e.kind).toBe('unsupported');
    expect(e.message).toBe(
      `manifest ${digestOf(bytes)} is not a valid OCI image manifest: layers[1].digest: invalid digest "sha256:1234": ` +
        'a sha256 digest must have 64 lowercase hexadecimal characters after "sha256:", not 4.',
    );

    const badSize = structuredClone(dockerManifest) as { config: { size: unknown } };
    badSize.config.size = -1;
    bytes = enc(badSize);
    e = failure(() => parseManifest(bytes));
    expect(e.message).toBe(`manifest ${digestOf(bytes)} is not a valid Docker image manifest: config.size: Too small: expected number to be >=0.`);

    const badPlatform = structuredClone(ociIndex) as { manifests: Array<{ platform?: Record<string, unknown> }> };
    badPlatform.manifests[0]!.platform!['os.version'] = 10;
    bytes = enc(badPlatform);
    e = failure(() => parseManifest(bytes));
    expect(e.message).toContain('is not a valid OCI image index: manifests[0].platform["os.version"]: ');

    const v3 = enc({ ...dockerList, schemaVersion: 3 });
    e = failure(() => parseManifest(v3));
    expect(e.message).toContain('is not a valid Docker manifest list: schemaVersion: ');

    const noLayers = enc({ schemaVersion: 2, config: ociManifest.config, mediaType: MediaType.OCI_MANIFEST });
    expect(failure(() => parseManifest(noLayers)).message).toContain('OCI image manifest: layers: ');

    // The body says index but it has the shape of an image manifest.
    const mislabelled = enc({ ...ociManifest, mediaType: MediaType.OCI_INDEX });
    expect(failure(() => parseManifest(mislabelled)).message).toContain('OCI image index: manifests: ');

    const many = structuredClone(ociManifest) as Record<string, unknown>;
    many.layers = [{}, {}];
    expect(failure(() => parseManifest(enc(many))).message).toMatch(/layers\[0\]\.mediaType: .* \(and 5 more problems\)\.$/);
  });
});

describe('descriptorSchema', () => {
  it('validates data as base64 and size as a non-negative integer', () => {
    const base = { mediaType: MediaType.OCI_EMPTY, digest: d('4'), size: 2 };
    expect(descriptorSchema.safeParse({ ...base, data: 'e30=' }).success).toBe(true);
    expect(descriptorSchema.safeParse({ ...base, data: 'not base64!' }).success).toBe(false);
    expect(descriptorSchema.safeParse({ ...base, size: 1.5 }).success).toBe(false);
    expect(descriptorSchema.safeParse({ ...base, urls: ['https://example.com/x'] }).success).toBe(true);
    expect(descriptorSchema.safeParse({ ...base, digest: `sha512:${'a'.repeat(128)}` }).success).toBe(true);
  });
});
