// Summarizes a V8 .cpuprofile (node --cpu-prof): self time by function and by
// broad area, to see where the main thread of ferry spends its time.
import { readFile } from 'node:fs/promises';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
}

interface ProfileNode {
  id: number;
  callFrame: CallFrame;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileSummary {
  totalMs: number;
  byArea: Array<{ area: string; ms: number; share: number }>;
  topFunctions: Array<{ fn: string; ms: number; share: number }>;
}

function area(f: CallFrame): string {
  const { url, functionName } = f;
  if (functionName === '(idle)') return 'idle (waiting for I/O)';
  if (functionName === '(garbage collector)') return 'garbage collector';
  if (functionName === '(program)') return 'V8/native (program)';
  if (url.includes('/packages/')) return `ferry (${url.replace(/^.*\/packages\/([^/]+)\/.*$/, '$1')})`;
  if (url.includes('undici')) return 'undici (HTTP)';
  if (/node:internal\/crypto/.test(url)) return 'node crypto (hashing)';
  if (/node:internal\/(fs|streams\/fs)/.test(url) || url === 'node:fs') return 'node fs';
  if (/node:internal\/streams|node:stream/.test(url)) return 'node streams';
  if (/node:internal\/(net|stream_base|http)/.test(url) || url === 'node:net') return 'node net';
  if (url.startsWith('node:')) return 'node other';
  if (url.includes('node_modules')) return 'dependencies';
  if (!url && functionName) return 'native (Node bindings)';
  return functionName ? 'other JS' : 'native/anonymous';
}

export async function summarizeProfile(file: string, top = 15): Promise<ProfileSummary> {
  const p = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const byId = new Map(p.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  for (let i = 0; i < p.samples.length; i++) {
    const id = p.samples[i]!;
    self.set(id, (self.get(id) ?? 0) + (p.timeDeltas[i] ?? 0));
  }
  const areas = new Map<string, number>();
  const fns = new Map<string, number>();
  let total = 0;
  for (const [id, us] of self) {
    const f = byId.get(id)!.callFrame;
    total += us;
    const a = area(f);
    areas.set(a, (areas.get(a) ?? 0) + us);
    const short = f.url.replace(/^.*\/(packages|node_modules)\//, '').replace(/^file:\/\//, '');
    const key = `${f.functionName || '(anonymous)'} ${short ? `${short}:${f.lineNumber + 1}` : ''}`.trim();
    fns.set(key, (fns.get(key) ?? 0) + us);
  }
  const rows = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).map(([k, us]) => ({ k, ms: us / 1000, share: us / total }));
  return {
    totalMs: total / 1000,
    byArea: rows(areas).map(({ k, ms, share }) => ({ area: k, ms, share })),
    topFunctions: rows(fns)
      .slice(0, top)
      .map(({ k, ms, share }) => ({ fn: k, ms, share })),
  };
}
