/**
 * The functions Helm adds to Sprig (helm's pkg/engine funcs.go): toYaml,
 * toYamlPretty, fromYaml(Array), toJson, fromJson(Array), toToml, fromToml, required and lookup. `include` and `tpl`
 * need the template set, so the executor and the renderer provide them.
 */
import { jsonText, parseYamlValue, toYaml, toYamlPretty, yamlSafe } from '../encoding.js';
import { isMap, TemplateExecError, type TemplateFunc } from '../template/exec.js';
import { parseToml, toToml } from '../toml.js';
import { str } from './convert.js';

export interface HelmFuncOptions {
  /** `lookup` always answers this (helm template answers an empty map). */
  lookup?: () => unknown;
}

export function helmOwnFuncs(opts: HelmFuncOptions = {}): Record<string, TemplateFunc> {
  return {
    toYaml: (v: unknown) => toYaml(v),
    mustToYaml: (v: unknown) => toYaml(v),
    toYamlPretty: (v: unknown) => toYamlPretty(v),
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
    toToml: (v: unknown) => toToml(yamlSafe(v)),
    fromToml: (s: unknown) => {
      try {
        return parseToml(str(s));
      } catch (e) {
        return { Error: (e as Error).message };
      }
    },
    required: (msg: unknown, v: unknown) => {
      if (v === null || v === undefined || v === '') throw new TemplateExecError(str(msg), undefined);
      return v;
    },
    lookup: () => (opts.lookup ? opts.lookup() : {}),
  };
}
