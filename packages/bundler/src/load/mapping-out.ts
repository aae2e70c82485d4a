/**
 * `--mapping-out FILE`: source reference -> target reference and digest for
 * every loaded image, as YAML or JSON by the file's extension: what a Helm
 * values override or an admission rule that rewrites images needs. A bundle
 * with Helm charts adds `charts:` (name, version, source, target, digest), where
 * `helm pull oci://TARGET-WITHOUT-TAG --version VERSION` finds each.
 */
import { rename, writeFile } from 'node:fs/promises';
import { usageError } from '@ferry/oci-client';

export interface MappingRecord {
  source: string;
  target: string;
  digest: string;
}

export interface ChartMappingRecord {
  name: string;
  version: string;
  /** Where pack read it: a directory, a .tgz or oci://…; its bundle name when unknown. */
  source: string;
  /** `REGISTRY/REPO:TAG` */
  target: string;
  digest: string;
}

export function mappingFormat(path: string): 'yaml' | 'json' {
  if (/\.ya?ml$/i.test(path)) return 'yaml';
  if (/\.json$/i.test(path)) return 'json';
  throw usageError(`--mapping-out ${path}: name a .yaml, .yml or .json file`);
}

/** Writes the mapping through a temporary name, so a reader never sees half a file. */
export async function writeMapping(path: string, records: MappingRecord[], charts: ChartMappingRecord[] = []): Promise<void> {
  const doc = charts.length ? { images: records, charts } : { images: records };
  const text = mappingFormat(path) === 'yaml' ? (await import('yaml')).stringify(doc) : `${JSON.stringify(doc, null, 2)}\n`;
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}
