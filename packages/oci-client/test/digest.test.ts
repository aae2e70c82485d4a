import { createHash } from 'node:crypto';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { describe, expect, it } from 'vitest';
import { DigestVerifier, digestOf, hashStream, isDigest, parseDigest, verifyBytes } from '../src/digest.js';
import { FerryError } from '../src/errors.js';

const EMPTY_SHA256 = 'sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';
const hello = new TextEncoder().encode('hello world\n');
const HELLO_SHA256 = `sha256:${createHash('sha256').update(hello).digest('hex')}`;

function collect(): { sink: Writable; chunks: Buffer[] } {
  const chunks: Buffer[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(chunk);
      cb();
    },
  });
  return { sink, chunks };
}

async function expectIntegrity(p: Promise<unknown>, message: string): Promise<FerryError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FerryError);
  expect((err as FerryError).kind).toBe('integrity');
  expect((err as FerryError).exitCode).toBe(1);
  expect((err as FerryError).message).toBe(message);
  return err as FerryError;
}

describe('parseDigest / isDigest', () => {
  it('accepts sha256 and sha512', () => {
    expect(parseDigest(EMPTY_SHA256)).toEqual({
      algorithm: 'sha256',
      hex: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855',
    });
    const d512 = `sha512:${'0f'.repeat(64)}`;
    expect(parseDigest(d512)).toEqual({ algorithm: 'sha512', hex: '0f'.repeat(64) });
    expect(isDigest(d512)).toBe(true);
  });

  it('refuses malformed digests with a sentence naming the problem', () => {
    const cases: Array<[string, string]> = [
      ['abc', 'invalid digest "abc": a digest has the form "sha256:" followed by 64 lowercase hexadecimal characters'],
      [`md5:${'0'.repeat(32)}`, `invalid digest "md5:${'0'.repeat(32)}": the algorithm "md5" is not supported (supported: sha256, sha512)`],
      [`sha384:${'0'.repeat(96)}`, `invalid digest "sha384:${'0'.repeat(96)}": the algorithm "sha384" is not supported (supported: sha256, sha512)`],
      ['sha256:abc', 'invalid digest "sha256:abc": a sha256 digest must have 64 lowercase hexadecimal characters after "sha256:", not 3'],
      [`sha256:${'A'.repeat(64)}`, `invalid digest "sha256:${'A'.repeat(64)}": a sha256 digest must have 64 lowercase hexadecimal characters after "sha256:"`],
      [
        `sha512:${'a'.repeat(64)}`,
        `invalid digest "sha512:${'a'.repeat(64)}": a sha512 digest must have 128 lowercase hexadecimal characters after "sha512:", not 64`,
      ],
    ];
    for (const [input, message] of cases) {
      expect(isDigest(input)).toBe(false);
      let err: unknown;
      try {
        parseDigest(input);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(FerryError);
      expect((err as FerryError).kind).toBe('usage');
      expect((err as FerryError).message).toBe(message);
    }
  });
});

describe('digestOf', () => {
  it('hashes bytes', () => {
    expect(digestOf(new Uint8Array())).toBe(EMPTY_SHA256);
    expect(digestOf(hello)).toBe(HELLO_SHA256);
    expect(digestOf(hello, 'sha512')).toBe(`sha512:${createHash('sha512').update(hello).digest('hex')}`);
  });
});

describe('verifyBytes', () => {
  it('passes good content and names both digests on a mismatch', () => {
    verifyBytes(hello, { digest: HELLO_SHA256, size: hello.length });
    expect(() => verifyBytes(hello, { digest: EMPTY_SHA256 }, 'manifest of x.io/a')).toThrow(
      `integrity check failed for manifest of x.io/a: expected digest ${EMPTY_SHA256} but got ${HELLO_SHA256}`,
    );
    expect(() => verifyBytes(hello, { digest: HELLO_SHA256, size: 3 })).toThrow(
      `integrity check failed for content ${HELLO_SHA256}: expected 3 bytes but got 12`,
    );
  });
});

describe('DigestVerifier', () => {
  it('passes bytes through unchanged and records the digest', async () => {
    const v = new DigestVerifier({ digest: HELLO_SHA256, size: hello.length });
    const { sink, chunks } = collect();
    await pipeline(Readable.from([Buffer.from(hello.subarray(0, 5)), Buffer.from(hello.subarray(5))]), v, sink);
    expect(Buffer.concat(chunks).equals(Buffer.from(hello))).toBe(true);
    expect(v.bytesSeen).toBe(12);
    expect(v.actualDigest).toBe(HELLO_SHA256);
  });

  it('works without a size and with sha512', async () => {
    const d512 = digestOf(hello, 'sha512');
    const v = new DigestVerifier({ digest: d512 });
    await pipeline(Readable.from([Buffer.from(hello)]), v, collect().sink);
    expect(v.actualDigest).toBe(d512);
  });

  it('fails a corrupted stream with an integrity error naming both digests', async () => {
    const corrupted = Buffer.from(hello);
    corrupted[0] = 0x48; // 'H'
    const actual = digestOf(corrupted);
    const ctx = `blob ${HELLO_SHA256} of docker.io/library/nginx`;
    const v = new DigestVerifier({ digest: HELLO_SHA256, size: hello.length }, ctx);
    await expectIntegrity(
      pipeline(Readable.from([corrupted]), v, collect().sink),
      `integrity check failed for ${ctx}: expected digest ${HELLO_SHA256} but got ${actual}`,
    );
    expect(v.actualDigest).toBe(actual);
  });

  it('fails a short stream at the end, naming the sizes', async () => {
    const v = new DigestVerifier({ digest: HELLO_SHA256, size: hello.length });
    await expectIntegrity(
      pipeline(Readable.from([Buffer.from(hello.subarray(0, 4))]), v, collect().sink),
      `integrity check failed for content ${HELLO_SHA256}: expected 12 bytes but received 4`,
    );
  });

  it('fails a too-long stream as soon as the excess arrives, before passing it on', async () => {
    const v = new DigestVerifier({ digest: HELLO_SHA256, size: hello.length });
    const { sink, chunks } = collect();
    let pulled = 0;
    // An endless source: only an early failure can end this pipeline.
    const endless = new Readable({
      read() {
        pulled++;
        this.push(Buffer.alloc(8, 0x61));
      },
    });
    await expectIntegrity(pipeline(endless, v, sink), `integrity check failed for content ${HELLO_SHA256}: expected 12 bytes but received more (at least 16)`);
    // It stopped at the first chunk past the size; the source only ran ahead by its own buffer
    // (16 KiB by default on Node 20, 64 KiB from Node 22) and the two chunks read.
    expect(v.bytesSeen).toBe(16);
    expect(pulled * 8).toBeLessThanOrEqual(endless.readableHighWaterMark + 16);
    // Only the first chunk (8 bytes, within the size) went through.
    expect(Buffer.concat(chunks).length).toBe(8);
  });

  it('in front of a consumer that has stopped, takes in at most 128 KiB before it pushes back', async () => {
    const size = 4 << 20;
    const v = new DigestVerifier({ digest: `sha256:${createHash('sha256').update(Buffer.alloc(size)).digest('hex')}`, size });
    // A paused consumer: nothing is read from the verifier.
    let accepted = 0;
    let more = true;
    while (accepted < size && more) {
      more = v.write(Buffer.alloc(16 * 1024));
      accepted += 16 * 1024;
    }
    await new Promise((r) => setImmediate(r));
    // Its readable side (what the consumer has not taken) and its writable side, 64 KiB each at most.
    expect(accepted).toBeGreaterThanOrEqual(64 * 1024);
    expect(accepted).toBeLessThanOrEqual(128 * 1024);
    expect(v.readableLength + v.writableLength).toBeLessThanOrEqual(128 * 1024);
    v.destroy();
  });

  it('refuses a malformed expected digest', () => {
    expect(() => new DigestVerifier({ digest: 'sha256:nope' })).toThrow('invalid digest "sha256:nope"');
  });
});

describe('hashStream', () => {
  it('returns digest and size', async () => {
    const pt = new PassThrough();
    pt.end(Buffer.from(hello));
    expect(await hashStream(pt)).toEqual({ digest: HELLO_SHA256, size: 12 });
    expect(await hashStream(Readable.from([]))).toEqual({ digest: EMPTY_SHA256, size: 0 });
    expect(await hashStream(Readable.from([Buffer.from(hello)]), 'sha512')).toEqual({
      digest: digestOf(hello, 'sha512'),
      size: 12,
    });
  });
});
