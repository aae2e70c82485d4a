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
  /** Discovered images the list lacks. */
  missing: Array<{ reference: string; usage: ImageUsage }>;
  /** Listed images no source references. */
  extra: string[];
  /** Nothing used is missing. */
  ok: boolean;
}

export function checkImageList(images: readonly DiscoveredImage[], list: readonly string[]): ImageListCheck {
  const listed = new Set(list);
  const known = new Set(images.map((i) => i.reference));
  const missing = images.filter((i) => !listed.has(i.reference)).map((i) => ({ reference: i.reference, usage: i.usage }));
  const extra = [...listed].filter((r) => !known.has(r)).sort();
  return { missing, extra, ok: !missing.some((m) => m.usage === 'used') };
}

/** A readable diff: what the list lacks (used, then optional) and what it has that the chart does not reference. */
export function formatImageListCheck(check: ImageListCheck, listName: string): string {
  const lines: string[] = [];
  const used = check.missing.filter((m) => m.usage === 'used');
  const optional = check.missing.filter((m) => m.usage === 'optional');
  if (used.length > 0) {
    lines.push(`missing from ${listName} (used by the chart):`);
    for (const m of used) lines.push(`+ ${m.reference}`);
  }
  if (optional.length > 0) {
    if (lines.length > 0) lines.push('');
    lines.push(`not in ${listName}, optional (only with non-default values, or in container arguments or env):`);
    for (const m of optional) lines.push(`? ${m.reference}`);
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
      : `${listName}: ${used.length} used image${used.length === 1 ? '' : 's'} missing`,
  );
  return lines.join('\n');
}
