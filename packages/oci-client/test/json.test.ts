// The JSON depth bound: counted on the raw text (strings skipped), applied by
// parseManifest before anything walks the document.
import { describe, expect, it } from 'vitest';
import { digestOf } from '../src/digest.js';
import { FerryError } from '../src/errors.js';
import { jsonDepth, MAX_JSON_DEPTH, parseBoundedJson } from '../src/json.js';
import { parseManifest } from '../src/manifest.js';

const enc = (s: string) => new TextEncoder().encode(s);
const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

/** An OCI index whose only platform carries a field nested `depth` levels below it. */
function indexWithDeepField(depth: number): Uint8Array {
  return enc(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${'a'.repeat(64)}`,
          size: 1,
          platform: { architecture: 'amd64', os: 'linux', x: 0 },
        },
      ],
    }).replace('"x":0', `"x":${nested(depth)}`),
  );
}

describe('JSON depth', () => {
  it('counts objects and arrays, not brackets inside strings or after escapes', () => {
    expect(jsonDepth('{}')).toBe(1);
    expect(jsonDepth('{"a":[{"b":[]}]}')).toBe(4);
    expect(jsonDepth('{"a":"[[[[{{{{"}')).toBe(1);
    expect(jsonDepth('{"a":"\\"[[[["}')).toBe(1);
    expect(jsonDepth('"plain"')).toBe(0);
  });

  it('parses text at the bound and refuses text one level deeper', () => {
    const fail = () => new Error('bad');
    expect(parseBoundedJson(nested(MAX_JSON_DEPTH), fail, () => new Error('deep'))).toBeDefined();
    expect(() => parseBoundedJson(nested(MAX_JSON_DEPTH + 1), fail, () => new Error('deep'))).toThrow('deep');
    expect(() => parseBoundedJson('{nope', fail, () => new Error('deep'))).toThrow('bad');
  });

  it('parseManifest refuses an index with a field nested 200,000 deep in one line, quickly', () => {
    const bytes = indexWithDeepField(200_000);
    const started = Date.now();
    let e: unknown;
    try {
      parseManifest(bytes);
    } catch (err) {
      e = err;
    }
    expect(e).toBeInstanceOf(FerryError);
    expect((e as FerryError).kind).toBe('unsupported');
    expect((e as FerryError).message).toBe(`manifest ${digestOf(bytes)} nests JSON deeper than 64 levels, which no manifest needs; ferry refuses it.`);
    expect(Date.now() - started).toBeLessThan(1000);
    // The same index with the field 60 deep (its own nesting adds 4) is read.
    expect(parseManifest(indexWithDeepField(60)).kind).toBe('index');
  });
});
