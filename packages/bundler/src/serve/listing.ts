/**
 * `tags/list` and `_catalog` pages as registry:2 gives them: names in lexical
 * order, those after `last`, at most `n`, and a `Link: <…>; rel="next"` header
 * when more follow.
 */
import { ServeError } from './errors.js';

export interface Page {
  items: string[];
  /** The Link header value for the next page, when there is one. */
  link: string | undefined;
}

/** The largest page ferry serve gives, whatever `n` asks (registry:2 caps at 1000 too). */
export const MAX_PAGE = 1000;

export function paginate(all: Iterable<string>, query: URLSearchParams, path: string): Page {
  const nText = query.get('n');
  let n = MAX_PAGE;
  if (nText !== null && nText !== '') {
    if (!/^\d+$/.test(nText)) throw new ServeError('PAGINATION_NUMBER_INVALID', `invalid number of results requested: ${nText}`, { n: nText });
    n = Math.min(Number(nText), MAX_PAGE);
  }
  const last = query.get('last') ?? '';
  const sorted = [...all].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const after = last ? sorted.filter((s) => s > last) : sorted;
  const items = after.slice(0, n);
  const more = items.length > 0 && after.length > items.length;
  const link = more ? `<${path}?last=${encodeURIComponent(items[items.length - 1]!)}&n=${n}>; rel="next"` : undefined;
  return { items, link };
}
