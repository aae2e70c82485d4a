/**
 * `ferry images --check LIST`: compares discovered images with a list file
 * (one reference a line, `#` comments) — the CI guard that keeps a chart's image
 * list honest.
 */
import { formatReference, parseReference, usageError } from '@ferry/oci-client';
import type { DiscoveredImage, ImageUsage } from './discover.js';

/** Parses a list file: normalized references, in order, without duplicates. Throws a usage error naming the line. */
export function parseImageList(text: string, name = 'the list'): string[] {
  const out: string[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    const s = line.replace(/#.*$/, '').trim();
    if (s === '') return;
    let ref: string;
    try {
      ref = formatReference(parseReference(s));
    } catch (e) {
      throw usageError(`${name} line ${i + 1}: ${(e as Error).message}`);
    }
    if (!out.includes(ref)) out.push(ref);
  });
  return out;
}

export interface ImageListCheck {
  /** Discovered images the list lacks; `required` when the list must have them. */
  missing: Array<{ reference: string; usage: ImageUsage; required: boolean }>;
  /** Listed images no source references. */
  extra: string[];
  /** Nothing required is missing. */
  ok: boolean;
}

/** The classes a list must hold by default: what `pack --chart` carries. */
export const REQUIRED_CLASSES: readonly ImageUsage[] = ['used', 'runtime', 'declared'];

export function checkImageList(
  images: readonly DiscoveredImage[],
  list: readonly string[],
  required: readonly ImageUsage[] = REQUIRED_CLASSES,
): ImageListCheck {
  const listed = new Set(list);
  const known = new Set(images.map((i) => i.reference));
  const missing = images.filter((i) => !listed.has(i.reference)).map((i) => ({ reference: i.reference, usage: i.usage, required: required.includes(i.usage) }));
  const extra = [...listed].filter((r) => !known.has(r)).sort();
  return { missing, extra, ok: !missing.some((m) => m.required) };
}

/** A readable diff: what the list lacks (required, then the rest) and what it has that the chart does not reference. */
export function formatImageListCheck(check: ImageListCheck, listName: string): string {
  const lines: string[] = [];
  const used = check.missing.filter((m) => m.required);
  const optional = check.missing.filter((m) => !m.required);
  if (used.length > 0) {
    lines.push(`missing from ${listName} (used by the chart):`);
    for (const m of used) lines.push(`+ ${m.reference}${m.usage === 'used' ? '' : `  # ${m.usage}`}`);
  }
  if (optional.length > 0) {
    if (lines.length > 0) lines.push('');
    lines.push(`not in ${listName}, optional (only with non-default values, or not carried with --only-used):`);
    for (const m of optional) lines.push(`? ${m.reference}${m.usage === 'optional' ? '' : `  # ${m.usage}`}`);
  }
  if (check.extra.length > 0) {
    if (lines.length > 0) lines.push('');
    lines.push(`in ${listName} but not referenced by the chart:`);
    for (const r of check.extra) lines.push(`- ${r}`);
  }
  if (lines.length > 0) lines.push('');
  lines.push(
    check.ok
      ? `${listName}: OK, every used image is listed` +
          (optional.length + check.extra.length > 0 ? ` (${optional.length} optional not listed, ${check.extra.length} listed but not referenced)` : '')
      : `${listName}: ${used.length} ${used.every((m) => m.usage === 'used') ? 'used ' : ''}image${used.length === 1 ? '' : 's'} ${used.every((m) => m.usage === 'used') ? '' : 'the chart needs '}missing`,
  );
  return lines.join('\n');
}
