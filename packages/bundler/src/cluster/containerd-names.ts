/**
 * What containerd sees in index.json. `ctr images import` and k3s/RKE2 preload
 * name every entry that carries `io.containerd.image.name` or
 * `org.opencontainers.image.ref.name` and unpack it, so only runnable images may
 * be named there: a Helm chart or another artifact named in index.json makes the
 * whole import fail ("mismatched image rootfs and manifest layers"). Those
 * entries stay unnamed in index.json; ferry.json names them (format version 2).
 * The kubelet asks CRI for `repo:tag`, `repo@digest` or `repo:tag@digest`, and
 * CRI finds an image only under a name containerd holds, so a digest-pinned
 * input gets alias entries `repo:tag` and `repo@digest` (as `ctr images tag`
 * would add) carrying only the containerd name: ferry's reader skips them.
 */
import { type ImageIndex, MediaType, type ParsedManifest, parseReference } from '@ferry/oci-client';

/** Config media types of images a runtime can unpack and run. */
const IMAGE_CONFIGS: ReadonlySet<string> = new Set([MediaType.OCI_CONFIG, MediaType.DOCKER_CONFIG]);

/**
 * Whether a root manifest is a runnable image: an index (of platform images), or
 * an image manifest whose config is an image config. Charts, signatures, SBOMs and
 * other artifacts (their own config media type, or an artifactType) are not.
 */
export function isRunnableRoot(root: ParsedManifest): boolean {
  if (root.kind === 'index') return root.manifest.manifests.some((d) => d.platform !== undefined && d.platform.os !== 'unknown');
  const m = root.manifest as { artifactType?: string; config: { mediaType: string } };
  return m.artifactType === undefined && IMAGE_CONFIGS.has(m.config.mediaType);
}

/**
 * The extra names containerd needs for a digest-pinned reference
 * (`repo:tag@digest`): `repo:tag` and `repo@digest`; none for any other.
 */
export function containerdAliases(ref: string): string[] {
  const r = parseReference(ref);
  if (!r.digest || !r.tag) return [];
  const repo = `${r.registry}/${r.repository}`;
  return [`${repo}:${r.tag}`, `${repo}@${r.digest}`];
}

/**
 * Whether an index.json entry is a containerd alias: it has a containerd name and
 * no ref.name, and an entry with a ref.name holds the same manifest.
 */
export function isContainerdAlias(index: ImageIndex, i: number, refName: string, containerdName: string): boolean {
  const d = index.manifests[i]!;
  const a = d.annotations ?? {};
  if (a[refName] || !a[containerdName]) return false;
  return index.manifests.some((o, j) => j !== i && o.digest === d.digest && Boolean(o.annotations?.[refName]));
}
