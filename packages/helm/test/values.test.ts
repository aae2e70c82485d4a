// Values as Helm computes them from the command line: --set (Helm's strvals
// syntax) and --values files merged in order.
import { FerryError } from '@ferry/oci-client';
import { describe, expect, it } from 'vitest';
import { applySet, userValues } from '../src/values.js';

describe('--set syntax', () => {
  it('parses dotted paths, list indexes, several assignments, lists and types', () => {
    const v: Record<string, unknown> = { a: { keep: 1 } };
    applySet(v, 'a.b=c,d=e');
    applySet(v, 'list[1].name=x');
    applySet(v, 'n=12,t=true,z=0,lead=012,f=1.10,nul=null,empty=');
    applySet(v, 'arr={x,y}');
    applySet(v, 'dotted\\.key=v');
    expect(v).toEqual({
      a: { keep: 1, b: 'c' },
      d: 'e',
      list: [null, { name: 'x' }],
      n: 12,
      t: true,
      z: 0,
      lead: '012',
      f: '1.10',
      nul: null,
      empty: '',
      arr: ['x', 'y'],
      'dotted.key': 'v',
    });
    expect(() => applySet({}, 'novalue')).toThrow(/is not KEY=VALUE/);
    expect(() => applySet({}, 'a[x]=1')).toThrow(FerryError);
  });

  it('merges values files in order, --set last', () => {
    expect(userValues([{ a: { b: 1, c: 2 } }, { a: { c: 3 } }], ['a.d=4'])).toEqual({ a: { b: 1, c: 3, d: 4 } });
  });
});
