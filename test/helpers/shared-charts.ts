// Where the real public charts the tests read in place are: `shared/charts` beside
// the repository (as CI has it), or FERRY_SHARED_CHARTS when they are elsewhere.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const SHARED_CHARTS = process.env.FERRY_SHARED_CHARTS ? resolve(process.env.FERRY_SHARED_CHARTS) : resolve(REPO_ROOT, '..', 'shared', 'charts');
