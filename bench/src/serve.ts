// For investigation by hand: node bench/dist/serve.js [a|b|c|d] starts a fresh
// registry:2 on 127.0.0.1 holding one corpus, prints its image references (one
// a line, usable with `ferry pack -f`), and serves until interrupted.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type CorpusId, ensureCorpus } from './corpus.js';
import { removeOnExit } from './proc.js';
import { startRegistry } from './registry.js';
import { corpusRefs, pushCorpus } from './seed.js';

const id = (process.argv[2] ?? 'a') as CorpusId;
if (!['a', 'b', 'c', 'd'].includes(id)) {
  process.stderr.write('usage: node bench/dist/serve.js [a|b|c|d]\n');
  process.exit(2);
}
const workDir = resolve(dirname(fileURLToPath(import.meta.url)), '..', '.work');
const log = (s: string) => process.stderr.write(`[serve] ${s}\n`);
const corpus = await ensureCorpus(workDir, id, log);
const scratch = join(workDir, 'scratch', `serve-${id}-${process.pid}`);
await mkdir(scratch, { recursive: true });
const registry = await startRegistry(join(scratch, 'registries'));
await pushCorpus(corpus, registry, scratch);
const list = join(scratch, 'refs.txt');
await writeFile(list, `${corpusRefs(corpus, registry).join('\n')}\n`);
log(`registry ${registry.host} (pid ${registry.pid}) holds corpus (${id}); references in ${list}; Ctrl-C to stop`);
process.stdout.write(`${corpusRefs(corpus, registry).join('\n')}\n`);
// The test kit stops the registry and removes its storage on SIGINT/SIGTERM; proc.ts removes the scratch dir.
removeOnExit(scratch);
setInterval(() => undefined, 1 << 30);
