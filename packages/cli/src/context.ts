/**
 * What every command shares: the global options, the registry client built from
 * them, and where output goes (results on stdout, everything else on stderr).
 */
import { CredentialStore, FerryError, OciClient, type OciClientOptions, type RetryPolicy, type TransportOptions, usageError } from '@ferry/oci-client';
import { VERSION } from './version.js';

export interface GlobalOptions {
  json?: boolean;
  quiet?: boolean;
  insecureRegistry?: string[];
  caFile?: string;
  debug?: boolean;
}

export class Context {
  private interrupt: AbortController | undefined;

  constructor(
    readonly opts: GlobalOptions,
    readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** A registry client configured from the global options; `credentials` overrides the docker config. */
  client(extra: Partial<OciClientOptions> = {}): OciClient {
    return new OciClient({ ...this.transportOptions(), credentials: new CredentialStore({ env: this.env }), ...extra });
  }

  /** What every HTTP transport of the command shares (registries and Helm repositories): trust, proxies, retries, logs. */
  transportOptions(): TransportOptions {
    return {
      insecureRegistries: this.opts.insecureRegistry ?? [],
      ...(this.opts.caFile ? { caFile: this.opts.caFile } : {}),
      userAgent: `ferry/${VERSION}`,
      env: this.env,
      retry: retryBudget(this.env),
      onRetry: (r) => this.log(`retrying ${r.url} in ${(r.delayMs / 1000).toFixed(1)}s after ${r.reason} (attempt ${r.attempt})`),
      onWarning: (line) => this.log(line),
    };
  }

  /**
   * Aborted by the first Ctrl-C (or SIGTERM): the command stops its transfers,
   * keeps what a rerun resumes from, and exits 130. A second one exits at once.
   */
  get signal(): AbortSignal {
    if (!this.interrupt) {
      const controller = new AbortController();
      this.interrupt = controller;
      const stop = (name: NodeJS.Signals): void => {
        if (controller.signal.aborted) process.exit(130);
        controller.abort(new FerryError('cancelled', `stopped by ${name}; run the same command again to go on where it stopped`));
      };
      process.on('SIGINT', stop).on('SIGTERM', stop);
    }
    return this.interrupt.signal;
  }

  /** A progress or log line on stderr, unless --quiet. */
  log(line: string): void {
    if (!this.opts.quiet) process.stderr.write(`${line}\n`);
  }

  /** The command's result: a JSON document with --json, else text lines. */
  result(text: string, json: unknown): void {
    process.stdout.write(this.opts.json ? `${JSON.stringify(json, null, 2)}\n` : `${text}\n`);
  }
}

/**
 * FERRY_RETRY_BUDGET=SECONDS: how long a request keeps being retried after its first
 * failure (default 60). For networks whose outages are longer, and for tests.
 */
function retryBudget(env: NodeJS.ProcessEnv): Partial<RetryPolicy> {
  const value = env.FERRY_RETRY_BUDGET;
  if (value === undefined || value === '') return {};
  const s = Number(value);
  if (!/^\d+(\.\d+)?$/.test(value.trim()) || !Number.isFinite(s) || s > 24 * 3600) {
    throw usageError(`FERRY_RETRY_BUDGET must be a number of seconds from 0 to 86400, not "${value}"`);
  }
  return { budgetMs: Math.round(s * 1000) };
}
