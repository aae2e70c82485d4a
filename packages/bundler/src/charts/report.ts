/**
 * What `ferry images` prints: the plain list, the JSON document, and for
 * `--check LIST` the diff and whether the command must fail (exit 1).
 */
import { FerryError } from '@ferry/oci-client';
import { checkImageList, formatImageListCheck, type ImageListCheck, parseImageList } from './check.js';
import { type DiscoverOptions, type DiscoveryResult, discoverImages } from './discover.js';

export interface ImagesReportOptions extends DiscoverOptions {
  /** `--check LIST`: the list file's name and text. */
  check?: { name: string; text: string };
  /** List optional images too in the plain list (JSON always has them, marked). */
  includeOptional?: boolean;
}

export interface ImagesReport {
  /** The plain output: one normalized reference a line, or the --check diff. */
  text: string;
  /** The --json document. */
  json: {
    images: DiscoveryResult['images'];
    charts: DiscoveryResult['charts'];
    warnings: string[];
    check?: ImageListCheck & { list: string };
  };
  result: DiscoveryResult;
  check?: ImageListCheck;
  /** Set when --check finds used images missing from the list: the command fails with exit code 1. */
  failure?: FerryError;
  /** One line for the log: counts. */
  summary: string;
}

export async function imagesReport(opts: ImagesReportOptions): Promise<ImagesReport> {
  // parse the list first: a bad list is a usage error before any work
  const list = opts.check ? parseImageList(opts.check.text, opts.check.name) : undefined;
  const result = await discoverImages(opts);
  const used = result.images.filter((i) => i.usage === 'used');
  const optional = result.images.filter((i) => i.usage === 'optional');
  const summary =
    `${used.length} image${used.length === 1 ? '' : 's'} used, ${optional.length} optional` +
    (optional.length > 0 && !opts.includeOptional && !opts.check ? ' (--optional lists them too)' : '');
  const report: ImagesReport = {
    text: '',
    json: { images: result.images, charts: result.charts, warnings: result.warnings },
    result,
    summary,
  };
  if (opts.check && list) {
    const check = checkImageList(result.images, list);
    report.check = check;
    report.json.check = { list: opts.check.name, ...check };
    report.text = formatImageListCheck(check, opts.check.name);
    if (!check.ok) {
      const n = check.missing.filter((m) => m.usage === 'used').length;
      report.failure = new FerryError(
        'not-found',
        `${opts.check.name} is missing ${n} image${n === 1 ? '' : 's'} the chart uses (listed above with "+"); add ${n === 1 ? 'it' : 'them'} to the list.`,
      );
    }
  } else {
    report.text = (opts.includeOptional ? result.images : used).map((i) => i.reference).join('\n');
  }
  return report;
}
