import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

export default defineConfig({
  resolve: {
    // Tests use the kit's sources (no build step); the benchmark imports its build through @ferry/test's exports.
    alias: { '@ferry/test/harness': fileURLToPath(new URL('./test/harness/index.ts', import.meta.url)) },
  },
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // No name but loopback resolves in test workers either: no DNS query leaves the machine.
    setupFiles: ['test/helpers/loopback-only.mjs'],
    // The JSON report is what .ci/run counts; the default reporter is for people. A run on
    // another Node (npm run test:node24) names its own report, so that both are counted.
    reporters: ['default', ['json', { outputFile: process.env.FERRY_VITEST_REPORT ?? '.tmp/vitest-report.json' }]],
  },
});
