// Runs the whole test suite on the Node.js the single-file ferry embeds (the node-linux-<arch>
// package pinned in exe/package.json), so that what ships is what was tested. Its JSON report
// is .tmp/vitest-report-pinned-node.json, beside the default run's .tmp/vitest-report.json.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const pkg = `node-linux-${process.arch}`;
const pinned = JSON.parse(readFileSync(join(root, 'exe', 'package.json'), 'utf8')).devDependencies[pkg];
if (!pinned) {
  process.stderr.write(`test:node24: no ${pkg} is pinned in exe/package.json for this machine (${process.arch})\n`);
  process.exit(1);
}
const node = join(createRequire(join(root, 'exe', 'package.json')).resolve(`${pkg}/package.json`), '..', 'bin', 'node');
const r = spawnSync(node, [join(root, 'node_modules', 'vitest', 'vitest.mjs'), 'run', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
  env: { ...process.env, FERRY_VITEST_REPORT: '.tmp/vitest-report-pinned-node.json' },
});
process.exit(r.status ?? 1);
