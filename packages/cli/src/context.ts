/**
 * What every command shares: the global options, the registry client built from
 * them, and where output goes (results on stdout, everything else on stderr).
 */
import { CredentialStore, OciClient, type OciClientOptions, type RetryPolicy, usageError } from '@ferry/oci-client';

export interface GlobalOptions {
  json?: boolean;
  quiet?: boolean;
  insecureRegistry?: string[];
  caFile?: string;
  debug?: boolean;
}

export class Context {
  constructor(
    readonly opts: GlobalOptions,
    readonly env: NodeJS.ProcessEnv = process.env,
  ) {}

  /** A registry client configured from the global options; `credentials` overrides the docker config. */
  client(extra: Partial<OciClientOptions> = {}): OciClient {
    return new OciClient({
      insecureRegistries: this.opts.insecureRegistry ?? [],
      caFile: this.opts.caFile,
      userAgent: `ferry/${VERSION}`,
      env: this.env,
      credentials: new CredentialStore({ env: this.env }),
      retry: retryBudget(this.env),
      onRetry: (r) => this.log(`retrying ${r.url} in ${(r.delayMs / 1000).toFixed(1)}s after ${r.reason} (attempt ${r.attempt})`),
      onWarning: (line) => this.log(line),
      ...extra,
    });
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

export const VERSION = '0.1.0';
