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
  | 'cancelled'; // stopped: the caller's AbortSignal fired (Ctrl-C): exit 130

export interface ErrorDetails {
  status?: number | undefined;
  /** Error codes from the distribution error body, e.g. ["UNAUTHORIZED"]. */
  codes?: string[] | undefined;
  registry?: string | undefined;
  repository?: string | undefined;
  /** What was being done, e.g. "pushing", "pulling manifest". */
  operation?: string | undefined;
  /** Which side of a copy failed, set once by the copy engine. */
  origin?: ErrorOrigin | undefined;
  cause?: unknown;
}

/** Where in a copy a failure happened (oras-go's CopyError{Op, Origin}). */
export interface ErrorOrigin {
  side: 'source' | 'sink';
  /** The place's name: "127.0.0.1:5000/team/app", "bundle.tar". */
  place: string;
  operation: 'read manifest' | 'read blob' | 'check blob' | 'check image' | 'write blob' | 'mount blob' | 'write manifest';
  /** The blob or manifest concerned. */
  digest?: string | undefined;
  /** The image being copied, as the caller named it. */
  image?: string | undefined;
}

export class FerryError extends Error {
  override readonly name = 'FerryError';
  readonly kind: ErrorKind;
  readonly status: number | undefined;
  readonly codes: string[];
  readonly registry: string | undefined;
  readonly repository: string | undefined;
  readonly operation: string | undefined;
  readonly origin: ErrorOrigin | undefined;

  constructor(kind: ErrorKind, message: string, details: ErrorDetails = {}) {
    super(message, details.cause === undefined ? undefined : { cause: details.cause });
    this.kind = kind;
    this.status = details.status;
    this.codes = details.codes ?? [];
    this.registry = details.registry;
    this.repository = details.repository;
    this.operation = details.operation;
    this.origin = details.origin;
  }

  get exitCode(): 1 | 2 | 130 {
    return this.kind === 'usage' ? 2 : this.kind === 'cancelled' ? 130 : 1;
  }

  /** The details, to build a new error that says more about the same failure. */
  details(): ErrorDetails {
    return { status: this.status, codes: this.codes, registry: this.registry, repository: this.repository, operation: this.operation, origin: this.origin };
  }
}

export function usageError(message: string): FerryError {
  return new FerryError('usage', message);
}

/** The error an aborted signal stands for: its reason when that is one of ours, else a cancellation. */
export function abortReason(signal: AbortSignal): Error {
  const r: unknown = signal.reason;
  // abort() without a reason gives a DOMException AbortError: that is a plain cancellation.
  if (r instanceof Error && r.name !== 'AbortError') return r;
  return new FerryError('cancelled', typeof r === 'string' ? r : 'cancelled');
}

export function isFerryError(e: unknown): e is FerryError {
  return e instanceof FerryError;
}
