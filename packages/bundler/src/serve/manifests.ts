/**
 * Which stored manifest a GET or HEAD answers with, negotiated by `Accept` as
 * registry:2 does: an OCI manifest or index is served only to a client whose
 * Accept names its type (else 404 MANIFEST_UNKNOWN, as distribution answers);
 * Docker types are served as stored (no schema 1 rewriting, as distribution 3).
 */
import { MediaType, normalizeMediaType } from '@ferry/oci-client';
import type { ServedManifest } from './content.js';
import { ServeError } from './errors.js';

/** The media types an Accept header (or several) names, without parameters or q values. */
export function acceptedTypes(accept: string | string[] | undefined): Set<string> {
  const values = accept === undefined ? [] : Array.isArray(accept) ? accept : [accept];
  return new Set(
    values
      .flatMap((v) => v.split(','))
      .map((t) => normalizeMediaType(t))
      .filter(Boolean),
  );
}

export function negotiate(m: ServedManifest, accept: string | string[] | undefined): void {
  const type = normalizeMediaType(m.mediaType);
  const accepted = acceptedTypes(accept);
  if (type === MediaType.OCI_MANIFEST && !accepted.has(type)) {
    throw new ServeError('MANIFEST_UNKNOWN', 'OCI manifest found, but accept header does not support OCI manifests');
  }
  if (type === MediaType.OCI_INDEX && !accepted.has(type)) {
    throw new ServeError('MANIFEST_UNKNOWN', 'OCI index found, but accept header does not support OCI indexes');
  }
}
