/**
 * Dependencies flow one way: cli -> bundler -> {helm, oci-client}; helm may use
 * oci-client; oci-client uses no other package of the workspace. Each package's
 * source imports only what this allows and what its package.json declares, and
 * declares nothing it does not import (as go-containerregistry's depcheck tests).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const ALLOWED: Record<string, string[]> = {
  '@ferry/oci-client': [],
  '@ferry/helm': ['@ferry/oci-client'],
  '@ferry/bundler': ['@ferry/oci-client', '@ferry/helm'],
  '@ferry/cli': ['@ferry/oci-client', '@ferry/helm', '@ferry/bundler'],
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    return statSync(path).isDirectory() ? sources(path) : name.endsWith('.ts') ? [path] : [];
  });
}

/** The package each import or export names: `@scope/name` or `name`; relative and node: imports are skipped. */
function importedPackages(file: string): Set<string> {
  const text = readFileSync(file, 'utf8');
  const out = new Set<string>();
  for (const m of text.matchAll(/(?:^|\n)\s*(?:import|export)\b[^'"`;]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g)) {
    const spec = m[1] ?? m[2]!;
    if (spec.startsWith('.') || spec.startsWith('node:') || builtinModules.includes(spec)) continue;
    const parts = spec.split('/');
    out.add(spec.startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]!);
  }
  return out;
}

const packages = readdirSync(join(root, 'packages')).map((dir) => {
  const manifest = JSON.parse(readFileSync(join(root, 'packages', dir, 'package.json'), 'utf8')) as {
    name: string;
    dependencies?: Record<string, string>;
  };
  const imports = new Set(sources(join(root, 'packages', dir, 'src')).flatMap((f) => [...importedPackages(f)]));
  return { dir, name: manifest.name, declared: Object.keys(manifest.dependencies ?? {}), imports };
});

describe('dependency direction', () => {
  it('knows every package of the workspace, and only those', () => {
    expect(packages.map((p) => p.name).sort()).toEqual(Object.keys(ALLOWED).sort());
  });

  for (const p of packages) {
    it(`${p.name} imports only the workspace packages below it`, () => {
      const workspace = [...p.imports].filter((i) => i.startsWith('@ferry/')).sort();
      expect(workspace.filter((i) => !(ALLOWED[p.name] ?? []).includes(i))).toEqual([]);
    });

    it(`${p.name} declares exactly what it imports`, () => {
      expect([...p.imports].filter((i) => !p.declared.includes(i)).sort()).toEqual([]);
      expect(p.declared.filter((d) => !p.imports.has(d)).sort()).toEqual([]);
    });
  }
});
