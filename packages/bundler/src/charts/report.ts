/**
 * What `ferry images` prints: the plain list, the JSON document, and for
 * `--check LIST` the diff and whether the command must fail (exit 1).
 *
 * The plain list is one normalized reference a line; an image not in a pod spec
 * of the render carries its class as a `#` comment (`# runtime`, `# declared`,
 * `# optional`), one only `helm test` pods use `# test hook`, so the output is
 * itself a valid list file.
 */
import { FerryError } from '@ferry/oci-client';
import { checkImageList, formatImageListCheck, type ImageListCheck, parseImageList, REQUIRED_CLASSES } from './check.js';
import { type DiscoveredImage, type DiscoverOptions, type DiscoveryResult, discoverImages, IMAGE_CLASSES, type ImageUsage } from './discover.js';

export interface ImagesReportOptions extends DiscoverOptions {
  /** `--check LIST`: the list file's name and text. */
  check?: { name: string; text: string };
  /** `--optional`: list optional images too in the plain list (JSON always has them, marked). */
  includeOptional?: boolean;
  /** `--only-used`: only the images of pod specs (not runtime or declared ones), in the list and for --check. */
  onlyUsed?: boolean;
}

export interface ImagesReport {
  /** The plain output: one normalized reference a line, or the --check diff. */
  text: string;
  /** The --json document. */
  json: {
    images: DiscoveryResult['images'];
    charts: DiscoveryResult['charts'];
    warnings: string[];
    failures: DiscoveryResult['failures'];
    skipped: DiscoveryResult['skipped'];
    check?: ImageListCheck & { list: string };
  };
  result: DiscoveryResult;
  check?: ImageListCheck;
  /** Set when --check finds required images missing from the list: the command fails with exit code 1. */
  failure?: FerryError;
  /** One line for the log: counts. */
  summary: string;
}

/** The classes the plain list (and --check) holds. */
function listedClasses(opts: ImagesReportOptions): ImageUsage[] {
  if (opts.onlyUsed) return ['used'];
  return opts.includeOptional ? [...IMAGE_CLASSES] : [...REQUIRED_CLASSES];
}

function listLine(i: DiscoveredImage): string {
  const label = i.testHook ? 'test hook' : i.usage === 'used' ? '' : i.usage;
  return label === '' ? i.reference : `${i.reference}  # ${label}`;
}

export async function imagesReport(opts: ImagesReportOptions): Promise<ImagesReport> {
  // parse the list first: a bad list is a usage error before any work
  const list = opts.check ? parseImageList(opts.check.text, opts.check.name) : undefined;
  const result = await discoverImages(opts);
  const count = (c: ImageUsage) => result.images.filter((i) => i.usage === c).length;
  const classes = listedClasses(opts);
  const summary =
    `${count('used')} image${count('used') === 1 ? '' : 's'} used, ${count('runtime')} runtime, ${count('declared')} declared, ${count('optional')} optional` +
    (opts.check
      ? ''
      : opts.onlyUsed
        ? ' (--only-used: listing the used ones)'
        : count('optional') > 0 && !opts.includeOptional
          ? ' (--optional lists them too)'
          : '') +
    result.skipped.map((s) => `; --skip-image ${s.pattern} left out ${s.references.length}`).join('');
  const report: ImagesReport = {
    text: '',
    json: { images: result.images, charts: result.charts, warnings: result.warnings, failures: result.failures, skipped: result.skipped },
    result,
    summary,
  };
  if (opts.check && list) {
    const check = checkImageList(result.images, list, opts.onlyUsed ? ['used'] : REQUIRED_CLASSES);
    report.check = check;
    report.json.check = { list: opts.check.name, ...check };
    report.text = formatImageListCheck(check, opts.check.name);
    if (!check.ok) {
      const n = check.missing.filter((m) => m.required).length;
      report.failure = new FerryError(
        'not-found',
        `${opts.check.name} is missing ${n} image${n === 1 ? '' : 's'} the chart uses (listed above with "+"); add ${n === 1 ? 'it' : 'them'} to the list.`,
      );
    }
  } else {
    report.text = result.images
      .filter((i) => classes.includes(i.usage))
      .map(listLine)
      .join('\n');
  }
  return report;
}
