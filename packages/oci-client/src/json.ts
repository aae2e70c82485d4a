/**
 * JSON from registries and bundles, parsed with a nesting bound: no manifest, index,
 * token or listing needs more than a few levels, and a document nested hundreds of
 * thousands deep would exhaust the stack of whatever walks it (validation, platform
 * matching). The depth is counted on the raw text before parsing.
 */

/** The deepest nesting accepted; real manifests use under 10 levels. */
export const MAX_JSON_DEPTH = 64;

const OPEN_OBJECT = 0x7b;
const OPEN_ARRAY = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_ARRAY = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** The deepest nesting of objects and arrays in JSON text (strings skipped; invalid JSON gives some number). */
export function jsonDepth(text: Uint8Array | string): number {
  const bytes = typeof text === 'string' ? Buffer.from(text, 'utf8') : text;
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < bytes.length; i++) {
    const c = bytes[i]!;
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_OBJECT || c === OPEN_ARRAY) {
      if (++depth > deepest) deepest = depth;
    } else if (c === CLOSE_OBJECT || c === CLOSE_ARRAY) {
      depth--;
    }
  }
  return deepest;
}

/** True when the text nests deeper than `max`. */
export function tooDeep(text: Uint8Array | string, max = MAX_JSON_DEPTH): boolean {
  return jsonDepth(text) > max;
}

/**
 * JSON.parse with the depth bound. Throws `onTooDeep()` for a document nested too
 * deep and `onInvalid()` for text that is not JSON.
 */
export function parseBoundedJson(text: Uint8Array | string, onInvalid: () => Error, onTooDeep: () => Error): unknown {
  if (tooDeep(text)) throw onTooDeep();
  try {
    return JSON.parse(typeof text === 'string' ? text : new TextDecoder('utf-8', { fatal: true }).decode(text));
  } catch {
    throw onInvalid();
  }
}
