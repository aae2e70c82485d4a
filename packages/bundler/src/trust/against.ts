/**
 * `verify --against REGISTRY[/PREFIX]`: does the registry now hold exactly what
 * the bundle held? Every image at its mapped target with the same digest, and
 * every platform child of an index present. The check users run before
 * `helm install` on the isolated side.
 */
import pLimit from 'p-limit';
import { FerryError, formatReference, type OciClient } from '@ferry/oci-client';
import type { TargetMapper } from '../load/mapping.js';
import type { BundleReader } from '../reader/bundle-reader.js';

export type AgainstStatus = 'ok' | 'missing' | 'different' | 'incomplete';

export interface AgainstRow {
  source: string;
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
  const entries = bundle.images().filter((e) => e.named);
  const mappings = mapper.mapAll(entries.map((e) => e.ref));
  const limit = pLimit(concurrency);
  const rows = await Promise.all(
    mappings.map((m, i) =>
      limit(async (): Promise<AgainstRow> => {
        const expected = entries[i]!.descriptor.digest;
        const registry = client.registry(m.target.registry);
        const row: AgainstRow = { source: m.source, target: formatReference(m.target), expected, actual: null, status: 'missing', missingChildren: [] };
        try {
          row.actual = (await registry.resolve(m.target.repository, m.target.tag ?? m.target.digest!)).digest;
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
