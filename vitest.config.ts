import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/test/**/*.test.ts', 'test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // No name but loopback resolves in test workers either: no DNS query leaves the machine.
    setupFiles: ['test/helpers/loopback-only.mjs'],
    // The JSON report is what .ci/run counts; the default reporter is for people.
    reporters: ['default', ['json', { outputFile: '.tmp/vitest-report.json' }]],
  },
});
