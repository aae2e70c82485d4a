/**
 * The copy engine between in-memory places (as oras-go's copy tests with
 * memory.New() and a storage tracker): what it copies, how many transfers it
 * runs at once, that a shared blob moves once, that a stop stops everything,
 * and that a failure says where it happened.
 */
import type { Readable } from 'node:stream';
import { type BlobOutcome, CopyEngine, type Descriptor, FerryError, type ImageSink, type OpenBlob, type ParsedManifest, planImage } from '@ferry/oci-client';
import { describe, expect, it } from 'vitest';
import { MemoryPlace } from '../src/places/memory.js';
import { memoryImage, memoryIndex, sha } from './memory-images.js';

/** A sink over a MemoryPlace that counts writes, tracks how many run at once, and can hold or fail them. */
class TrackingSink implements ImageSink {
  readonly name = 'tracked';
  readonly inner = new MemoryPlace('tracked');
  readonly puts = new Map<string, number>();
  readonly manifestsPut: string[] = [];
  running = 0;
  maxRunning = 0;
  aborted = 0;
  /** Resolves writes waiting at the gate. */
  private release: (() => void) | undefined;
  private gate: Promise<void> | undefined;

  constructor(private readonly failOn?: (digest: string) => Error | undefined) {}

  hold(): void {
    this.gate = new Promise((r) => {
      this.release = r;
    });
  }

  open(): void {
    this.release?.();
    this.gate = undefined;
  }

  hasBlob(desc: Descriptor): Promise<boolean> {
    return this.inner.hasBlob(desc);
  }

  async putBlob(desc: Descriptor, open: OpenBlob, signal?: AbortSignal): Promise<BlobOutcome> {
    this.puts.set(desc.digest, (this.puts.get(desc.digest) ?? 0) + 1);
    this.running++;
    this.maxRunning = Math.max(this.maxRunning, this.running);
    try {
      const stream: Readable = await open();
      if (this.gate) {
        const gate = this.gate;
        await new Promise<void>((resolve, reject) => {
          gate.then(resolve);
          // A stopped transfer ends its source stream: the write fails with the reason.
          stream.once('error', reject);
          signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
        }).catch((e: unknown) => {
          this.aborted++;
          throw e;
        });
      }
      const failure = this.failOn?.(desc.digest);
      if (failure) throw failure;
      return await this.inner.putBlob(desc, () => stream, signal);
    } finally {
      this.running--;
    }
  }

  async putManifest(m: ParsedManifest, tag?: string): Promise<void> {
    this.manifestsPut.push(tag ?? m.digest);
    await this.inner.putManifest(m, tag);
  }
}

function twoPlatformImage(source: MemoryPlace, name: string, shared: string) {
  const amd = memoryImage(source, [shared, `${name}-amd64`]);
  const arm = memoryImage(source, [shared, `${name}-arm64`], { os: 'linux', architecture: 'arm64' });
  const index = memoryIndex(
    source,
    [
      { manifest: amd.manifest, extra: { platform: { os: 'linux', architecture: 'amd64' } } },
      { manifest: arm.manifest, extra: { platform: { os: 'linux', architecture: 'arm64' } } },
    ],
    name,
  );
  return { index, amd, arm };
}

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('CopyEngine between memory places', () => {
  it('copies an index with every child, blob and tag, children before parents, digests kept', async () => {
    const source = new MemoryPlace('src');
    const { index, amd, arm } = twoPlatformImage(source, 'app', 'base');
    const sink = new TrackingSink();
    const plan = await planImage(source, 'app');
    expect(plan.platforms).toEqual(['linux/amd64', 'linux/arm64']);
    const engine = new CopyEngine();
    await engine.copy(source, sink, plan, { tag: '1.0' });
    expect(sink.manifestsPut).toEqual([amd.manifest.digest, arm.manifest.digest, '1.0']);
    expect(sink.inner.tags.get('1.0')).toBe(index.digest);
    for (const b of [amd.config, arm.config, ...amd.layers, ...arm.layers]) expect(sink.inner.blobs.get(sha(b))).toEqual(b);
    // The shared base layer is one blob: five distinct blobs, each written once.
    expect([...sink.puts.values()]).toEqual([1, 1, 1, 1, 1]);
    expect(engine.stats).toEqual({ uploaded: 5, mounted: 0, skipped: 0, bytes: [...sink.inner.blobs.values()].reduce((n, b) => n + b.length, 0) });
  });

  it('moves a blob shared by images once, however many images want it at the same time', async () => {
    const source = new MemoryPlace('src');
    const images = ['a', 'b', 'c'].map((n) => twoPlatformImage(source, n, 'one shared base'));
    const sink = new TrackingSink();
    const engine = new CopyEngine();
    const plans = await Promise.all(['a', 'b', 'c'].map((n) => planImage(source, n)));
    await Promise.all(plans.map((p, i) => engine.copy(source, sink, p, { tag: ['a', 'b', 'c'][i] })));
    expect(sink.puts.get(sha(Buffer.from('one shared base')))).toBe(1);
    expect(Math.max(...sink.puts.values())).toBe(1);
    expect(sink.puts.size).toBe(1 + 3 * 2 + 2); // the base, each image's own layers, two distinct configs
    for (const img of images) expect(sink.inner.tags.has(img.index.digest) || [...sink.inner.tags.values()].includes(img.index.digest)).toBe(true);
  });

  it('runs at most `jobs` transfers at once across all images', async () => {
    const source = new MemoryPlace('src');
    const layers = Array.from({ length: 12 }, (_, i) => `layer ${i}`);
    memoryImage(source, layers.slice(0, 6));
    const second = memoryImage(source, layers.slice(6), { os: 'linux', architecture: 'arm64' });
    const sink = new TrackingSink();
    sink.hold();
    const engine = new CopyEngine({ jobs: 3 });
    const plans = await Promise.all([...source.manifests.keys()].map((d) => planImage(source, d)));
    const copies = Promise.all(plans.map((p) => engine.copy(source, sink, p)));
    await tick();
    expect(sink.running).toBe(3);
    sink.open();
    await copies;
    expect(sink.maxRunning).toBe(3);
    expect(sink.inner.manifests.has(second.manifest.digest)).toBe(true);
  });

  it('stops every transfer when its signal is aborted: nothing new starts, no manifest is written', async () => {
    const source = new MemoryPlace('src');
    memoryImage(
      source,
      Array.from({ length: 10 }, (_, i) => `layer ${i}`),
    );
    const plan = await planImage(source, [...source.manifests.keys()][0]!);
    const sink = new TrackingSink();
    sink.hold();
    const stop = new AbortController();
    const engine = new CopyEngine({ jobs: 2, signal: stop.signal });
    const copy = engine.copy(source, sink, plan, { tag: 'x' });
    await tick();
    const reason = new FerryError('cancelled', 'stopped by SIGINT');
    stop.abort(reason);
    await expect(copy).rejects.toMatchObject({ kind: 'cancelled' });
    // The two under way ended with the stop; the other nine never started.
    expect(sink.aborted).toBe(2);
    expect(sink.puts.size).toBe(2);
    expect(sink.manifestsPut).toEqual([]);
    await expect(engine.copy(source, sink, plan)).rejects.toBe(reason);
  });

  it("an image's failure stops that image; a blob another image still wants goes on", async () => {
    const source = new MemoryPlace('src');
    const broken = memoryImage(source, ['shared', 'broken own']);
    const healthy = memoryImage(source, ['shared', 'healthy own'], { os: 'linux', architecture: 'arm64' });
    const failing = sha(Buffer.from('broken own'));
    const sink = new TrackingSink((d) => (d === failing ? new FerryError('registry', 'disk on fire') : undefined));
    const engine = new CopyEngine({ jobs: 4 });
    const [pb, ph] = await Promise.all([planImage(source, broken.manifest.digest), planImage(source, healthy.manifest.digest)]);
    const results = await Promise.allSettled([engine.copy(source, sink, pb, { tag: 'broken' }), engine.copy(source, sink, ph, { tag: 'healthy' })]);
    expect(results[0]).toMatchObject({ status: 'rejected' });
    expect(results[1]).toMatchObject({ status: 'fulfilled' });
    expect(sink.inner.blobs.has(sha(Buffer.from('shared')))).toBe(true);
    expect(sink.inner.tags.has('broken')).toBe(false);
    expect(sink.inner.tags.get('healthy')).toBe(healthy.manifest.digest);
  });

  it('says where a failure happened: the source reading a blob, the sink writing one or a manifest', async () => {
    const source = new MemoryPlace('src');
    const img = memoryImage(source, ['good', 'gone']);
    const plan = await planImage(source, img.manifest.digest);
    const gone = sha(Buffer.from('gone'));
    source.blobs.set(gone, Buffer.from('tampered'));
    const read = await new CopyEngine().copy(source, new TrackingSink(), plan, { label: 'app:1' }).catch((e: unknown) => e);
    expect(read).toBeInstanceOf(FerryError);
    expect((read as FerryError).kind).toBe('integrity');
    expect((read as FerryError).origin).toEqual({ side: 'source', place: 'src', operation: 'read blob', digest: gone, image: 'app:1' });

    source.blobs.set(gone, Buffer.from('gone'));
    const refusing = new TrackingSink((d) => (d === gone ? new Error('no space left') : undefined));
    const write = (await new CopyEngine().copy(source, refusing, plan, { label: 'app:1', prefixErrors: true }).catch((e: unknown) => e)) as FerryError;
    expect(write.origin).toEqual({ side: 'sink', place: 'tracked', operation: 'write blob', digest: gone, image: 'app:1' });
    expect(write.message).toBe('app:1: no space left');

    const manifestRefused = new TrackingSink();
    manifestRefused.putManifest = async () => {
      throw new FerryError('registry', '400 MANIFEST_INVALID');
    };
    const put = (await new CopyEngine().copy(source, manifestRefused, plan).catch((e: unknown) => e)) as FerryError;
    expect(put.origin).toMatchObject({ side: 'sink', operation: 'write manifest', digest: img.manifest.digest });
    expect(put.message).toBe('400 MANIFEST_INVALID');
  });

  it("writes a large index's image manifests at once within the pool, nested indexes after what they list, the root last", async () => {
    const source = new MemoryPlace('src');
    const images = Array.from({ length: 24 }, (_, i) => memoryImage(source, [`child ${i}`]));
    const inner = memoryIndex(
      source,
      images.slice(0, 4).map((img) => ({ manifest: img.manifest })),
    );
    const root = memoryIndex(source, [{ manifest: inner }, ...images.slice(4).map((img) => ({ manifest: img.manifest }))], 'big');
    const sink = new TrackingSink();
    let running = 0;
    let most = 0;
    const put = sink.putManifest.bind(sink);
    sink.putManifest = async (m: ParsedManifest, tag?: string) => {
      most = Math.max(most, ++running);
      await tick();
      try {
        await put(m, tag);
      } finally {
        running--;
      }
    };
    await new CopyEngine({ jobs: 6 }).copy(source, sink, await planImage(source, 'big'), { tag: 'big' });
    expect(most).toBe(6);
    expect(sink.manifestsPut.slice(-2)).toEqual([inner.digest, 'big']);
    expect(sink.manifestsPut.slice(0, -2).sort()).toEqual(images.map((img) => img.manifest.digest).sort());
    expect(sink.inner.tags.get('big')).toBe(root.digest);
  });

  it('mounts through a sink that can, without asking first, and writes through one that cannot', async () => {
    const source = new MemoryPlace('src');
    const img = memoryImage(source, ['layer']);
    const plan = await planImage(source, img.manifest.digest);
    const mounted: string[] = [];
    const mounting = Object.assign(new TrackingSink(), {
      location: { registry: 'reg', repository: 'team/app' },
      async mountBlob(desc: Descriptor, from: string): Promise<BlobOutcome> {
        mounted.push(`${desc.digest} from ${from}`);
        return 'mounted';
      },
    });
    let asked = 0;
    const hasBlob = mounting.hasBlob.bind(mounting);
    mounting.hasBlob = (d: Descriptor) => {
      asked++;
      return hasBlob(d);
    };
    const engine = new CopyEngine({ mountFrom: () => 'team/base' });
    await engine.copy(source, mounting, plan);
    expect(mounted.sort()).toEqual(plan.blobs.map((b) => `${b.digest} from team/base`).sort());
    expect(engine.stats.mounted).toBe(2);
    // A mount answers whether or not the blob was there: no HEAD first.
    expect(asked).toBe(0);
    const plain = new TrackingSink();
    await new CopyEngine({ mountFrom: () => 'team/base' }).copy(source, plain, plan);
    expect(plain.puts.size).toBe(2);
  });
});
