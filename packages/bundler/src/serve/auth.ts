/**
 * Basic auth from an htpasswd file of bcrypt entries (`htpasswd -B`), the
 * only kind registry:2 reads. bcrypt is slow on purpose, so a credential that
 * passed is remembered (by its sha256, never in the clear) for later requests.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { usageError } from '@ferry/oci-client';
import bcrypt from 'bcryptjs';

const MAX_HTPASSWD = 1024 * 1024;
const REMEMBERED = 1024;

export class Htpasswd {
  private readonly passed = new Set<string>();

  private constructor(private readonly users: Map<string, string>) {}

  static async load(file: string): Promise<Htpasswd> {
    let text: string;
    try {
      const bytes = await readFile(file);
      if (bytes.length > MAX_HTPASSWD) throw usageError(`--htpasswd ${file} has more than ${MAX_HTPASSWD} bytes`);
      text = bytes.toString('utf8');
    } catch (e) {
      if ((e as { kind?: string }).kind === 'usage') throw e;
      throw usageError(`cannot read --htpasswd ${file}: ${(e as Error).message}`);
    }
    const users = new Map<string, string>();
    for (const [i, raw] of text.split('\n').entries()) {
      const line = raw.trim();
      if (!line || line.startsWith('#')) continue;
      const colon = line.indexOf(':');
      const hash = line.slice(colon + 1);
      if (colon <= 0 || !/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash)) {
        throw usageError(`--htpasswd ${file} line ${i + 1} is not a bcrypt entry (write it with htpasswd -B)`);
      }
      users.set(line.slice(0, colon), hash);
    }
    if (users.size === 0) throw usageError(`--htpasswd ${file} has no entries`);
    return new Htpasswd(users);
  }

  /** Whether an Authorization header carries a user and password of the file. */
  async check(header: string | undefined): Promise<boolean> {
    const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header ?? '');
    if (!m) return false;
    const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) return false;
    const user = decoded.slice(0, colon);
    const hash = this.users.get(user);
    if (!hash) return false;
    const key = createHash('sha256').update(hash).update('\0').update(decoded).digest('hex');
    if (this.passed.has(key)) return true;
    if (!(await bcrypt.compare(decoded.slice(colon + 1), hash))) return false;
    if (this.passed.size >= REMEMBERED) this.passed.clear();
    this.passed.add(key);
    return true;
  }
}
