// What a benchmark suite (pack today, load next) provides to the runner: for
// one corpus, a set of tools that each do the same job once per call.
import type { Corpus } from './corpus.js';
import type { ProcessUsage } from './proc.js';
import type { Registry } from './registry.js';

export interface RunResult {
  /** Wall time of the whole job, spawn of the first process to exit of the last. */
  wallMs: number;
  /** CPU seconds of every process the tool ran (GNU time, wait4 rusage). */
  userS: number;
  sysS: number;
  /** Largest peak RSS of any one process the tool ran (ru_maxrss), bytes. */
  maxRssBytes: number | undefined;
  /** How many processes the tool ran. */
  processes: number;
  /** Wall time of named parts of the job, ms (e.g. skopeo copies vs. tar). */
  phases?: Record<string, number>;
  /** Size of what the job produced, bytes. */
  outputBytes?: number;
  /** Counts the tool reported (e.g. blobs uploaded, mounted, skipped). */
  counts?: Record<string, number>;
}

export interface Measurement extends RunResult {
  tool: string;
  run: number;
  /** CPU seconds the registries used while the tool ran (from /proc/PID/stat). */
  registryCpuS: number;
  /** 1-minute load average when the run started: other work on the machine shows here. */
  loadAvg: number;
}

export interface Tool {
  name: string;
  /** Untimed preparation before a run (fresh directories, a fresh target registry). */
  prepare?(run: number): Promise<void>;
  /** The timed job. */
  run(run: number): Promise<RunResult>;
  /** Untimed: checks what the run produced (throws if wrong), then removes it. */
  checkAndClean(run: number): Promise<void>;
}

export interface Target {
  description: string;
  /** Computes the figure from the medians/measurements and says whether it is met. */
  evaluate(m: Measurement[]): { value: string; met: boolean | undefined };
}

export interface SuiteInstance {
  tools: Tool[];
  /**
   * Registries whose CPU time counts against a run, asked just before and just
   * after it (a load suite returns the fresh target its prepare() started).
   */
  registries(): Registry[];
  /** The tool under test and what it is compared with, for ratios. */
  subject: string;
  baselines: string[];
  targets: Target[];
  /**
   * One extra, untimed run of the subject, for investigation: under
   * `node --cpu-prof` (returns the .cpuprofile files) or with the request
   * trace preload (returns the trace file). Files go into `dir`.
   */
  diagnose?(kind: 'cpu-prof' | 'trace', dir: string): Promise<string[]>;
  /** Turns the trace file of `diagnose('trace')` into figures (JSON) and one line of text. */
  summarizeTrace?(file: string): Promise<{ data: unknown; text: string }>;
  teardown(): Promise<void>;
}

export interface SuiteContext {
  corpus: Corpus;
  /** Scratch space for this suite and corpus (removed afterwards). */
  workDir: string;
  /** Where generated data is cached between benchmark runs. */
  cacheDir: string;
  jobs: number;
  /** ferry's CLI entry point (packages/cli/dist/main.js). */
  ferryMain: string;
  /** The single-file ferry (a copy of dist/ferry-linux-ARCH), when built. */
  ferryExe: string | undefined;
  /** Tools to include (default all). */
  only: string[] | undefined;
  /** Environment for every measured process. */
  env: NodeJS.ProcessEnv;
  log(line: string): void;
}

export interface Suite {
  name: string;
  description: string;
  setup(ctx: SuiteContext): Promise<SuiteInstance>;
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

export function medianWall(ms: Measurement[], tool: string): number | undefined {
  const xs = ms.filter((m) => m.tool === tool).map((m) => m.wallMs);
  return xs.length ? median(xs) : undefined;
}

/** Target: median(subject) / median(other) at most `limit`. */
export function ratioTarget(subject: string, other: string, limit: number): Target {
  return {
    description: `${subject} ≤ ${limit}× ${other}`,
    evaluate(ms) {
      const a = medianWall(ms, subject);
      const b = medianWall(ms, other);
      if (a === undefined || b === undefined) return { value: 'not measured', met: undefined };
      const r = a / b;
      return { value: `${r.toFixed(2)}×`, met: r <= limit };
    },
  };
}

/** Target: the largest peak RSS of `subject` over all runs below `limitMB`. */
export function rssTarget(subject: string, limitMB: number): Target {
  return {
    description: `${subject} peak RSS < ${limitMB} MB`,
    evaluate(ms) {
      const xs = ms.filter((m) => m.tool === subject && m.maxRssBytes !== undefined).map((m) => m.maxRssBytes!);
      if (!xs.length) return { value: 'not measured', met: undefined };
      const peak = Math.max(...xs) / 1e6;
      return { value: `${peak.toFixed(0)} MB`, met: peak < limitMB };
    },
  };
}

/** One run's result from the usage of its processes: CPU summed, the largest peak RSS. */
export function runResult(usages: ProcessUsage[], wallMs: number, extra: Partial<RunResult> = {}): RunResult {
  const rss = usages.map((u) => u.maxRssBytes).filter((x): x is number => x !== undefined);
  return {
    wallMs,
    userS: usages.reduce((n, u) => n + u.userS, 0),
    sysS: usages.reduce((n, u) => n + u.sysS, 0),
    maxRssBytes: rss.length ? Math.max(...rss) : undefined,
    processes: usages.length,
    ...extra,
  };
}
