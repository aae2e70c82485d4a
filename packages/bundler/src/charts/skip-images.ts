/**
 * `--skip-image PATTERN`: images a user leaves out on purpose. A pattern is a
 * glob on the normalized reference (`*` any run of characters, `?` one), e.g.
 * `docker.io/bitnami/kubectl:*`; one without wildcards is a reference and is
 * normalized first (`bitnami/kubectl:1.25` drops `docker.io/bitnami/kubectl:1.25`).
 */
import { formatReference, parseReference, usageError } from '@ferry/oci-client';

export interface SkippedImages {
  pattern: string;
  /** The normalized references it dropped, sorted. */
  references: string[];
}

export interface SkipPatterns {
  /** Whether a normalized reference is dropped (and records that it was). */
  drop(reference: string): boolean;
  /** Each pattern with what it dropped, in the order given. */
  skipped(): SkippedImages[];
}

function matcher(pattern: string): RegExp {
  if (pattern.trim() === '' || /\s/.test(pattern)) throw usageError(`--skip-image "${pattern}" is not a pattern (a reference, with * and ? as wildcards)`);
  if (!/[*?]/.test(pattern)) {
    let ref: string;
    try {
      ref = formatReference(parseReference(pattern));
    } catch (e) {
      throw usageError(`--skip-image ${pattern}: ${(e as Error).message}`);
    }
    return new RegExp(`^${ref.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
  }
  const body = pattern
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replaceAll('*', '.*')
    .replaceAll('?', '.');
  return new RegExp(`^${body}$`);
}

/** Compiles the patterns; throws a usage error (exit 2) for one that is not a pattern. */
export function compileSkipPatterns(patterns: readonly string[]): SkipPatterns {
  const compiled = patterns.map((pattern) => ({ pattern, re: matcher(pattern), references: new Set<string>() }));
  return {
    drop(reference) {
      let dropped = false;
      for (const p of compiled) {
        if (p.re.test(reference)) {
          p.references.add(reference);
          dropped = true;
        }
      }
      return dropped;
    },
    skipped: () => compiled.map((p) => ({ pattern: p.pattern, references: [...p.references].sort() })),
  };
}
