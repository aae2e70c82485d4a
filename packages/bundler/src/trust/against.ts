/**
 * `verify --against REGISTRY[/PREFIX]`: does the registry now hold exactly what
 * the bundle held? Every image at its mapped target with the same digest, every
 * manifest below it, and every blob (HEAD, concurrently, once per repository and
 * blob): a registry that lost a blob after the load (garbage collection, a
 * partial restore) fails here, naming the image and the blob. The check users
 * run before `helm install` on the isolated side.
 */
import { createPool, DEFAULT_JOBS, FerryError, formatReference, isManifestRole, type OciClient, parseReference, walkGraph } from '@ferry/oci-client';
import type { TargetMapper } from '../load/mapping.js';
import type { BundleReader } from '../places/bundle-reader.js';

export type AgainstStatus = 'ok' | 'missing' | 'different' | 'incomplete' | 'filtered';

export interface AgainstRow {
  /** The image's source reference, or `chart NAME:TAG` for a Helm chart. */
  source: string;
  /** Set for a Helm chart's row (image rows have no kind). */
  kind?: 'chart';
  target: string;
  expected: string;
  /** What the registry holds at the target, when anything. */
  actual: string | null;
  status: AgainstStatus;
  /** Child manifests (platforms) the registry lacks. */
  missingChildren: string[];
  /** Configs and layers the registry lacks in the target repository. */
  missingBlobs: string[];
  /**
   * A digest-pinned input packed with --platform: the digest the user pinned
   * (upstream) is not at the target, the filtered one is. Status `filtered`
   * unless allowed, since whatever pulls `@upstream` fails.
   */
  filtered?: { reference: string; upstream: string; held: string };
}

export interface AgainstOptions {
  jobs?: number | undefined;
  /** Accept a pinned digest that only exists filtered at the target (status stays ok; `filtered` still says so). */
  allowFiltered?: boolean | undefined;
}

export interface AgainstReport {
  bundle: string;
  rows: AgainstRow[];
  ok: boolean;
}

export async function verifyAgainst(bundle: BundleReader, client: OciClient, mapper: TargetMapper, opts: AgainstOptions = {}): Promise<AgainstReport> {
  const jobs = opts.jobs ?? DEFAULT_JOBS;
  const images = bundle.images().filter((e) => e.named);
  const charts = bundle.charts().filter((c) => c.named);
  const mapped = mapper.mapBundle(
    images.map((e) => e.ref),
    charts,
  );
  // Charts are checked like images: the manifest at the mapped tag must be the bundle's.
  const entries = [...images, ...charts];
  const mappings = [
    ...mapped.images.map((m) => ({ ...m, kind: undefined })),
    ...mapped.charts.map((target, i) => ({ source: `chart ${charts[i]!.name}:${charts[i]!.tag}`, target, kind: 'chart' as const })),
  ];
  // Every request takes a slot of one pool; each is asked once per repository.
  const pool = createPool(jobs);
  const asked = new Map<string, Promise<boolean>>();
  const once = (key: string, ask: () => Promise<boolean>): Promise<boolean> => {
    let answer = asked.get(key);
    if (!answer) asked.set(key, (answer = pool(ask)));
    return answer;
  };
  const rows = await Promise.all(
    mappings.map(async (m, i): Promise<AgainstRow> => {
      const expected = entries[i]!.descriptor.digest;
      const registry = client.registry(m.target.registry);
      const repository = m.target.repository;
      const row: AgainstRow = {
        source: m.source,
        target: formatReference(m.target),
        expected,
        actual: null,
        status: 'missing',
        missingChildren: [],
        missingBlobs: [],
      };
      if (m.kind) row.kind = m.kind;
      try {
        // By tag, or by the bundled digest (a filtered index of a digest-pinned image has a new one).
        row.actual = (await pool(() => registry.resolve(repository, m.target.tag ?? expected))).digest;
      } catch (e) {
        if (e instanceof FerryError && e.kind === 'not-found') return row;
        throw e;
      }
      if (row.actual !== expected) {
        row.status = 'different';
        return row;
      }
      const manifestThere = (digest: string) =>
        once(`${m.target.registry}/${repository}@${digest}`, () =>
          registry.resolve(repository, digest).then(
            () => true,
            (e: unknown) => {
              if (e instanceof FerryError && e.kind === 'not-found') return false;
              throw e;
            },
          ),
        );
      const tagThere = (tag: string, digest: string) =>
        once(`${m.target.registry}/${repository}:${tag}`, () =>
          registry.resolve(repository, tag).then(
            (d) => d.digest === digest,
            (e: unknown) => {
              if (e instanceof FerryError && e.kind === 'not-found') return false;
              throw e;
            },
          ),
        );
      const blobThere = (digest: string) => once(`${m.target.registry}/${repository}:${digest}`, () => registry.blobExists(repository, digest));
      // The bundle's graph says what must be there; the registry is asked about every node.
      const checks: Array<Promise<void>> = [];
      await walkGraph(
        { descriptor: entries[i]!.descriptor },
        {
          read: (d) => bundle.getManifest(d),
          // Its signatures and SBOMs must have arrived too; a cosign one at its tag.
          referrers: (d) => bundle.referrers(d),
          onNode: (node) => {
            const { digest } = node.descriptor;
            if (node.role === 'root') return;
            const manifest = isManifestRole(node.role);
            const tag = node.artifact?.digest === digest ? node.artifact.link.tag : undefined;
            const there = manifest ? (tag !== undefined ? tagThere(tag, digest) : manifestThere(digest)) : blobThere(digest);
            const check = there.then((there) => {
              if (!there) (manifest ? row.missingChildren : row.missingBlobs).push(digest);
            });
            check.catch(() => undefined); // raised below, once the walk is done
            checks.push(check);
            // A manifest the bundle does not carry (a delta's) cannot be walked further.
            return !manifest || bundle.hasBlob(digest);
          },
        },
      );
      await Promise.all(checks);
      row.missingChildren.sort();
      row.missingBlobs.sort();
      row.status = row.missingChildren.length || row.missingBlobs.length ? 'incomplete' : 'ok';
      // The reference the user gave: a pinned digest the bundle holds only filtered.
      const packed = m.kind ? undefined : bundle.ferry?.images.find((img) => img.ref === m.source);
      if (packed && packed.upstreamDigest !== expected && parseReference(m.source).digest === packed.upstreamDigest) {
        if (!(await manifestThere(packed.upstreamDigest))) {
          const reference = `${m.target.registry}/${repository}${m.target.tag ? `:${m.target.tag}` : ''}@${packed.upstreamDigest}`;
          row.filtered = { reference, upstream: packed.upstreamDigest, held: expected };
          if (row.status === 'ok' && !opts.allowFiltered) row.status = 'filtered';
        }
      }
      return row;
    }),
  );
  return { bundle: bundle.name, rows, ok: rows.every((r) => r.status === 'ok') };
}
