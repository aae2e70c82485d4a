// The Go template engine behind chart discovery: the text/template semantics
// Helm charts rely on, and the Sprig/Helm functions they call.
import { describe, expect, it } from 'vitest';
import { toYaml } from '../src/encoding.js';
import { helmFuncs } from '../src/funcs/func-map.js';
import { semverSatisfies } from '../src/funcs/semver.js';
import { TemplateSet } from '../src/template/exec.js';
import { TemplateSyntaxError } from '../src/template/parse.js';

function render(src: string, data: unknown = {}, defs: Record<string, string> = {}): string {
  const set = new TemplateSet();
  set.funcs = helmFuncs();
  for (const [name, text] of Object.entries(defs)) set.addFile(name, text);
  set.addFile('t', src);
  return set.execute('t', data).text;
}

describe('Go templates', () => {
  it('trims whitespace around {{- and -}} and drops comments', () => {
    expect(render('a  \n  {{- "b" -}}  \n  c')).toBe('abc');
    expect(render('x {{/* a comment */}} y')).toBe('x  y');
    expect(render('x\n{{- /* trimmed */ -}}\ny')).toBe('xy');
    expect(render('{{ -3 }}')).toBe('-3');
  });

  it('evaluates fields, missing keys as empty, and nil receivers leniently', () => {
    const data = { Values: { a: { b: 'x' }, n: 1.5, big: 1000000 } };
    expect(render('{{ .Values.a.b }}|{{ .Values.missing }}|{{ .Values.missing.deeper }}', data)).toBe('x||');
    expect(render('{{ .Values.n }} {{ .Values.big }}', data)).toBe('1.5 1000000');
  });

  it('runs if/else if/else, with/else and range with variables, else, break and continue', () => {
    const data = { list: ['a', 'b', 'c'], map: { z: 1, a: 2 }, empty: [], flag: false };
    expect(render('{{ if .flag }}1{{ else if .list }}2{{ else }}3{{ end }}', data)).toBe('2');
    expect(render('{{ with .map.a }}[{{ . }}]{{ else }}none{{ end }}{{ with .nothing }}x{{ else }}none{{ end }}', data)).toBe('[2]none');
    expect(render('{{ range $i, $v := .list }}{{ $i }}={{ $v }} {{ end }}', data)).toBe('0=a 1=b 2=c ');
    expect(render('{{ range $k, $v := .map }}{{ $k }}{{ $v }}{{ end }}', data)).toBe('a2z1');
    expect(render('{{ range .empty }}x{{ else }}empty{{ end }}', data)).toBe('empty');
    expect(render('{{ range .list }}{{ if eq . "b" }}{{ continue }}{{ end }}{{ if eq . "c" }}{{ break }}{{ end }}{{ . }}{{ end }}', data)).toBe('a');
    expect(render('{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}')).toBe('2');
    expect(render('{{ range $.list }}{{ $.flag }}{{ end }}', data)).toBe('falsefalsefalse');
  });

  it('short-circuits and/or and follows pipelines into the last argument', () => {
    expect(render('{{ and 1 0 }} {{ or 0 "" "x" }} {{ or 0 "" }}')).toBe('0 x ');
    expect(render('{{ "a" | printf "%s-%s" "b" }}')).toBe('b-a');
    expect(render('{{ and false (fail "not evaluated") }}')).toBe('false');
  });

  it('supports define, template, include, tpl and block, parents overriding', () => {
    const defs = { 'lib/_helpers.tpl': '{{ define "name" }}lib-{{ .n }}{{ end }}{{ define "other" }}o{{ end }}' };
    expect(render('{{ template "name" . }}/{{ include "name" . | upper }}', { n: 'x' }, defs)).toBe('lib-x/LIB-X');
    expect(render('{{ define "name" }}mine{{ end }}{{ include "name" . }}', {}, defs)).toBe('mine');
    expect(render('{{ tpl "{{ .Values.a }}-{{ .Values.b }}" . }}', { Values: { a: 1, b: 'two' } })).toBe('1-two');
    expect(render('{{ block "blk" . }}default {{ .v }}{{ end }}', { v: 1 })).toBe('default 1');
  });

  it('implements the Sprig and Helm functions charts use', () => {
    expect(render('{{ default "d" .x }} {{ default "d" "given" }} {{ .x | default "p" }}')).toBe('d given p');
    expect(render('{{ empty 0 }} {{ empty (dict) }} {{ empty "a" }}')).toBe('true true false');
    expect(render('{{ coalesce "" .nil "c" }} {{ ternary "y" "n" true }}')).toBe('c y');
    expect(render('{{ "abc" | quote }} {{ squote "a" }} {{ trunc 3 "abcdef" }} {{ trunc -2 "abcdef" }}')).toBe('"abc" \'a\' abc ef');
    expect(render('{{ "a-b-" | trimSuffix "-" }} {{ replace "+" "_" "1+2" }} {{ printf "%s:%d:%v" "s" 3 true }}')).toBe('a-b 1_2 s:3:true');
    expect(render('{{ list 1 2 | toJson }} {{ dict "b" 1 "a" (list "x") | toYaml }}')).toBe('[1,2] a:\n- x\nb: 1');
    expect(render('x:{{ dict "k" "v" | toYaml | nindent 2 }}')).toBe('x:\n  k: v');
    expect(render('{{ (fromYaml "a: [1, 2]").a | len }}')).toBe('2');
    expect(render('{{ hasKey (dict "a" 1) "a" }} {{ get (dict "a" 1) "b" | quote }} {{ index (dict "a-b" 2) "a-b" }}')).toBe('true "" 2');
    expect(render('{{ semverCompare ">=1.21-0" .Capabilities.KubeVersion.Version }}', { Capabilities: { KubeVersion: { Version: 'v1.31.0' } } })).toBe('true');
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Go's regexp expansion syntax
    expect(render('{{ regexReplaceAll "a(x*)b" "-ab-axxb-" "${1}W" }} {{ regexMatch "^v[0-9]+" "v12" }}')).toBe('-W-xxW- true');
    expect(render('{{ splitList "," "a,b" | join "+" }} {{ (split "/" "x/y")._1 }}')).toBe('a+b y');
    expect(render('{{ int "12" | add 1 }} {{ sub 5 2 }} {{ div 7 2 }} {{ max 1 5 3 }}')).toBe('13 3 3 5');
    expect(render('{{ kindIs "map" (dict) }} {{ typeOf "" }} {{ kindOf (list) }}')).toBe('true string slice');
    expect(() => render('{{ required "need x" .x }}')).toThrow(/need x/);
    expect(() => render('{{ fail "stop" }}')).toThrow(/stop/);
    expect(render('{{ lookup "v1" "Secret" "ns" "name" | len }}')).toBe('0');
  });

  it('merges like sprig: merge fills missing and empty values and changes its first argument', () => {
    const data = { a: { registry: '', image: 'x' }, g: { registry: 'r.io', image: 'other' } };
    expect(render('{{ $m := merge .a .g }}{{ $m.registry }}/{{ $m.image }} {{ .a.registry }}', data)).toBe('r.io/x r.io');
    expect(render('{{ (mergeOverwrite (dict "a" 1 "b" 2) (dict "b" 3)).b }}')).toBe('3');
  });

  it('cannot reach JavaScript internals from a chart', () => {
    class Obj {
      Get(): string {
        return 'ok';
      }
    }
    const data = { Files: new Obj(), Values: JSON.parse('{"__proto__": {"polluted": 1}}') as unknown };
    expect(render('{{ .Files.Get }}|{{ .Files.constructor }}|{{ .Files.__proto__ }}|{{ .Values.polluted }}', data)).toBe('ok|||');
    expect(render('{{ $d := dict }}{{ $_ := set $d "__proto__" (dict "polluted" 1) }}{{ $d.polluted }}|{{ len $d }}')).toBe('|1');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('reports syntax errors with the file and line', () => {
    expect(() => render('line1\n{{ if .x }}\nno end')).toThrow(TemplateSyntaxError);
    expect(() => render('{{ "unterminated }}')).toThrow(/t:1/);
  });

  it('ends a pipeline at its delimiter after a trailing |, as Go parses it, and refuses an empty command as Go does', () => {
    expect(render('{{ "x" | upper | }}')).toBe('X');
    expect(render('{{- dict "k" "v" | toYaml | nindent 2 | }}')).toBe('\n  k: v');
    expect(render('{{ ("a" | upper | ) }}')).toBe('A');
    expect(() => render('{{ | upper }}')).toThrow('unexpected "|" in command');
    expect(() => render('{{ "a" | | upper }}')).toThrow('unexpected "|" in command');
  });

  it('turns values into YAML the way Helm does', () => {
    expect(toYaml({ b: [1, 'two'], a: { c: null, d: 'yes' } })).toBe('a:\n  c: null\n  d: "yes"\nb:\n- 1\n- two');
    expect(toYaml(undefined)).toBe('null');
  });

  it('compares semantic versions with Masterminds constraints', () => {
    expect(semverSatisfies('>= 1.22.0-0', 'v1.31.0')).toBe(true);
    expect(semverSatisfies('<1.25.0-0', 'v1.31.0')).toBe(false);
    expect(semverSatisfies('^1.2.3', '1.9.0')).toBe(true);
    expect(semverSatisfies('~1.2', '1.3.0')).toBe(false);
    expect(semverSatisfies('>=1.19-0 <1.22-0 || >=1.30', 'v1.31.0')).toBe(true);
  });
});
