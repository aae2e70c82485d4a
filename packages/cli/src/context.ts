/**
 * What every command shares: the global options, the registry client built from
 * them, and where output goes (results on stdout, everything else on stderr).
 */
import { CredentialStore, OciClient, type OciClientOptions } from '@ferry/oci-client';
import { VERSION } from './version.js';

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
      onRetry: (r) => this.log(`retrying ${r.url} in ${(r.delayMs / 1000).toFixed(1)}s after ${r.reason} (attempt ${r.attempt})`),
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
