/**
 * The one error type of ferry. Every failure a user can see is a FerryError whose
 * message is one or two human sentences naming what failed and what to do.
 * `kind` decides the exit code: bad usage or bad input exits 2, a cancelled run 130
 * (as a shell reports SIGINT), everything else 1.
 * Messages never carry a password, token or Authorization header.
 */
export type ErrorKind =
  | 'usage' // bad argument, unparsable reference, malformed input file: exit 2
  | 'auth' // 401/403, bad credentials, missing rights
  | 'not-found' // manifest, blob or repository unknown
  | 'integrity' // digest or size mismatch
  | 'network' // connection refused, DNS, TLS, timeout
  | 'registry' // any other registry refusal (5xx after retries, 4xx)
  | 'unsupported' // schema1, oversized manifest, unknown media type
  | 'io' // local files: a full disk, a short write
  | 'cancelled'; // the caller's AbortSignal fired: exit 130

export interface ErrorDetails {
  status?: number | undefined;
  /** Error codes from the distribution error body, e.g. ["UNAUTHORIZED"]. */
  codes?: string[] | undefined;
  registry?: string | undefined;
  repository?: string | undefined;
  /** What was being done, e.g. "pushing", "pulling manifest". */
  operation?: string | undefined;
  cause?: unknown;
}

export class FerryError extends Error {
  override readonly name = 'FerryError';
  readonly kind: ErrorKind;
  readonly status: number | undefined;
  readonly codes: string[];
  readonly registry: string | undefined;
  readonly repository: string | undefined;
  readonly operation: string | undefined;

  constructor(kind: ErrorKind, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.kind = kind;
    this.status = details.status;
    this.codes = details.codes ?? [];
    this.registry = details.registry;
    this.repository = details.repository;
    this.operation = details.operation;
  }

  get exitCode(): 1 | 2 | 130 {
    if (this.kind === 'cancelled') return 130;
    return this.kind === 'usage' ? 2 : 1;
  }
}

export function usageError(message: string): FerryError {
  return new FerryError('usage', message);
}

export function isFerryError(e: unknown): e is FerryError {
  return e instanceof FerryError;
}
