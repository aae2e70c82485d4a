/**
 * The distribution-spec error body (`{"errors":[{code,message,detail}]}`) and
 * the codes ferry serve answers with, each with the status registry:2 gives it.
 */
import type { ServerResponse } from 'node:http';

export const ErrorCode = {
  BLOB_UNKNOWN: 404,
  MANIFEST_UNKNOWN: 404,
  NAME_UNKNOWN: 404,
  NAME_INVALID: 400,
  DIGEST_INVALID: 400,
  PAGINATION_NUMBER_INVALID: 400,
  RANGE_INVALID: 416,
  UNAUTHORIZED: 401,
  UNSUPPORTED: 405,
  UNKNOWN: 500,
} as const;

export type ErrorCodeName = keyof typeof ErrorCode;

export class ServeError extends Error {
  constructor(
    readonly code: ErrorCodeName,
    message: string,
    readonly detail?: unknown,
    readonly status: number = ErrorCode[code],
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** Writes the error as registry:2 does: JSON body, its length, and no body for HEAD. */
export function sendError(res: ServerResponse, method: string, e: ServeError, headers: Record<string, string> = {}): void {
  const body = Buffer.from(JSON.stringify({ errors: [{ code: e.code, message: e.message, ...(e.detail === undefined ? {} : { detail: e.detail }) }] }));
  res.writeHead(e.status, {
    ...headers,
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(body.length),
  });
  res.end(method === 'HEAD' ? undefined : body);
}
