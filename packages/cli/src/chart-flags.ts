/**
 * The render flags `--namespace` and `--kube-version`, checked as helm checks them.
 * Their own module: pack and values use them without loading the chart engine.
 */
import { usageError } from '@ferry/oci-client';

/** helm's chartutil.ParseKubeVersion: MAJOR.MINOR[.PATCH], written back as vMAJOR.MINOR.PATCH. */
export function helmKubeVersion(text: string): string {
  const m = /^v?(\d+)\.(\d+)(?:\.(\d+))?$/.exec(text.trim());
  if (!m) throw usageError(`--kube-version "${text}" is not a Kubernetes version (e.g. 1.30 or v1.30.2)`);
  return `v${Number(m[1])}.${Number(m[2])}.${Number(m[3] ?? 0)}`;
}

/** --namespace must be a Kubernetes namespace name (a DNS label), as helm's release namespace. */
export function checkNamespace(namespace: string): void {
  if (!/^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(namespace)) {
    throw usageError(`--namespace "${namespace}" is not a Kubernetes namespace name (lowercase letters, digits and -, at most 63)`);
  }
}
