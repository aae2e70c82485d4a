/**
 * The functions Helm adds to Sprig (helm's pkg/engine funcs.go): toYaml,
 * fromYaml, toJson, fromJson, toToml, required and lookup. `include` and `tpl`
 * need the template set, so the executor and the renderer provide them.
 */
import { jsonText, parseYamlValue, toYaml } from '../encoding.js';
import { isMap, TemplateExecError, type TemplateFunc } from '../template/exec.js';
import { str } from './convert.js';

export interface HelmFuncOptions {
  /** `lookup` always answers this (helm template answers an empty map). */
  lookup?: () => unknown;
}

export function helmOwnFuncs(opts: HelmFuncOptions = {}): Record<string, TemplateFunc> {
  return {
    toYaml: (v: unknown) => toYaml(v),
    mustToYaml: (v: unknown) => toYaml(v),
    toYamlPretty: (v: unknown) => toYaml(v),
    fromYaml: (s: unknown) => {
      try {
        const v = parseYamlValue(str(s));
        return isMap(v) ? v : {};
      } catch (e) {
        return { Error: (e as Error).message };
      }
    },
    fromYamlArray: (s: unknown) => {
      try {
        const v = parseYamlValue(str(s));
        return Array.isArray(v) ? v : [];
      } catch (e) {
        return [(e as Error).message];
      }
    },
    toJson: (v: unknown) => jsonText(v),
    mustToJson: (v: unknown) => jsonText(v),
    fromJson: (s: unknown) => {
      try {
        const v: unknown = JSON.parse(str(s));
        return isMap(v) ? v : {};
      } catch (e) {
        return { Error: (e as Error).message };
      }
    },
    fromJsonArray: (s: unknown) => {
      try {
        const v: unknown = JSON.parse(str(s));
        return Array.isArray(v) ? v : [];
      } catch (e) {
        return [(e as Error).message];
      }
    },
    toToml: (v: unknown) => jsonText(v),
    required: (msg: unknown, v: unknown) => {
      if (v === null || v === undefined || v === '') throw new TemplateExecError(str(msg), undefined);
      return v;
    },
    lookup: () => (opts.lookup ? opts.lookup() : {}),
  };
}
