/**
 * The function map a Helm template sees: Go's builtins, then Sprig, then Helm's
 * own on top (Helm replaces Sprig's toJson, as helm's pkg/engine does).
 */
import type { TemplateFunc } from '../template/exec.js';
import { goFuncs } from './go.js';
import { type HelmFuncOptions, helmOwnFuncs } from './helm.js';
import { sprigFuncs } from './sprig.js';

export function helmFuncs(opts: HelmFuncOptions = {}): Record<string, TemplateFunc> {
  return { ...goFuncs(), ...sprigFuncs(), ...helmOwnFuncs(opts) };
}
