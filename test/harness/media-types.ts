// The media types tests and the benchmark write into images, named once (from
// the client's own table, which the real-registry tests keep honest).
import { MANIFEST_ACCEPT as CLIENT_MANIFEST_ACCEPT, MediaType } from '@ferry/oci-client';

export { MediaType };
export const OCI_INDEX = MediaType.OCI_INDEX;
export const OCI_MANIFEST = MediaType.OCI_MANIFEST;
export const OCI_CONFIG = MediaType.OCI_CONFIG;
export const OCI_LAYER_GZIP = MediaType.OCI_LAYER_GZIP;
export const DOCKER_MANIFEST = MediaType.DOCKER_MANIFEST;
export const DOCKER_MANIFEST_LIST = MediaType.DOCKER_MANIFEST_LIST;
/** The four manifest types, OCI first, joined for an Accept header. */
export const MANIFEST_ACCEPT = CLIENT_MANIFEST_ACCEPT.join(', ');
