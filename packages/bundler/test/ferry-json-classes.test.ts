// ferry.json's chart images: the four classes, the test-hook mark and the --skip-image record,
// while a bundle of earlier ferry (used and optional only, no record) stays readable.
import { describe, expect, it } from 'vitest';
import { type FerryJson, parseFerryJson, serializeFerryJson } from '../src/format/ferry-json.js';

const DIGEST = `sha256:${'a'.repeat(64)}`;

function doc(images: unknown[], extra: Record<string, unknown> = {}): unknown {
  return {
    formatVersion: 2,
    tool: 'ferry 0.1.0',
    created: '2023-11-14T22:13:20Z',
    inputs: { references: [], charts: ['demo'], platforms: null, dockerPlatform: null },
    images: [],
    totals: { images: 0, blobs: 3, bytes: 10, logicalBytes: 10 },
    base: null,
    charts: [
      {
        ref: 'charts/demo:1.0.0',
        name: 'demo',
        version: '1.0.0',
        appVersion: null,
        source: 'demo',
        upstreamDigest: null,
        digest: DIGEST,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        size: 10,
        images,
        ...extra,
      },
    ],
  };
}

const bytes = (d: unknown) => Buffer.from(JSON.stringify(d));

describe('ferry.json chart images', () => {
  it('reads a bundle of earlier ferry: used and optional, nothing skipped', () => {
    const old = parseFerryJson(
      bytes(
        doc([
          { ref: 'a.io/x:1', usage: 'used', packed: true },
          { ref: 'a.io/y:1', usage: 'optional', packed: false },
        ]),
      ),
    );
    expect(old.charts[0]!.images.map((i) => i.usage)).toEqual(['used', 'optional']);
    expect(old.charts[0]!.skipped).toBeUndefined();
  });

  it('keeps the classes, the test-hook mark and the skip record, in the schema order', () => {
    const images = [
      { ref: 'a.io/d:1', usage: 'declared', packed: true },
      { ref: 'a.io/r:1', usage: 'runtime', packed: true },
      { ref: 'a.io/t:1', usage: 'used', packed: true, testHook: true },
    ];
    const skipped = [{ pattern: 'a.io/k:*', references: ['a.io/k:1'] }];
    const parsed = parseFerryJson(bytes(doc(images, { skipped })));
    expect(parsed.charts[0]).toMatchObject({ images, skipped });
    const text = serializeFerryJson(parsed as FerryJson).toString('utf8');
    expect(text).toContain('"usage": "used",\n          "packed": true,\n          "testHook": true');
    expect(text.indexOf('"skipped"')).toBeGreaterThan(text.indexOf('"images": ['));
  });

  it('refuses a class it does not know, naming the field', () => {
    expect(() => parseFerryJson(bytes(doc([{ ref: 'a.io/x:1', usage: 'sometimes', packed: true }])))).toThrow(
      /^ferry\.json is not valid at charts\.0\.images\.0\.usage: /,
    );
  });
});
