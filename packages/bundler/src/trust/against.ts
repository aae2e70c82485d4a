/**
 * `verify --against REGISTRY[/PREFIX]`: does the registry now hold exactly what
 * the bundle held? Every image at its mapped target with the same digest, and
 * every platform child of an index present. The check users run before
 * `helm install` on the isolated side.
 */

import { FerryError, formatReference, type OciClient } from '@ferry/oci-client';
import pLimit from 'p-limit';
import type { TargetMapper } from '../load/mapping.js';
import type { BundleReader } from '../places/bundle-reader.js';

export type AgainstStatus = 'ok' | 'missing' | 'different' | 'incomplete';

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
}

export interface AgainstReport {
  bundle: string;
  rows: AgainstRow[];
  ok: boolean;
}

export async function verifyAgainst(bundle: BundleReader, client: OciClient, mapper: TargetMapper, concurrency = 8): Promise<AgainstReport> {
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
  const limit = pLimit(concurrency);
  const rows = await Promise.all(
    mappings.map((m, i) =>
      limit(async (): Promise<AgainstRow> => {
        const expected = entries[i]!.descriptor.digest;
        const registry = client.registry(m.target.registry);
        const row: AgainstRow = { source: m.source, target: formatReference(m.target), expected, actual: null, status: 'missing', missingChildren: [] };
        if (m.kind) row.kind = m.kind;
        try {
          // By tag, or by the bundled digest (a filtered index of a digest-pinned image has a new one).
          row.actual = (await registry.resolve(m.target.repository, m.target.tag ?? expected)).digest;
        } catch (e) {
          if (e instanceof FerryError && e.kind === 'not-found') return row;
          throw e;
        }
        if (row.actual !== expected) {
          row.status = 'different';
          return row;
        }
        const root = await bundle.getManifest(entries[i]!.descriptor);
        if (root.kind === 'index') {
          for (const child of root.manifest.manifests) {
            try {
              await registry.resolve(m.target.repository, child.digest);
            } catch (e) {
              if (e instanceof FerryError && e.kind === 'not-found') row.missingChildren.push(child.digest);
              else throw e;
            }
          }
        }
        row.status = row.missingChildren.length ? 'incomplete' : 'ok';
        return row;
      }),
    ),
  );
  return { bundle: bundle.name, rows, ok: rows.every((r) => r.status === 'ok') };
}
