// Installs the workspace with the pnpm version pinned in package.json (through npx,
// so a fresh machine needs only Node and npm) and builds the TypeScript packages.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const pm = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')).packageManager;
const run = (cmd, args) => execFileSync(cmd, args, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });

run('npx', ['--yes', pm, 'install', `--frozen-lockfile=${process.env.CI ? 'true' : 'false'}`, '--reporter=silent']);
run(process.execPath, ['node_modules/typescript/bin/tsc', '-b', 'packages/oci-client', 'packages/helm', 'packages/bundler', 'packages/cli']);
