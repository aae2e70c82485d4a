// Reference clients for the pack suite, each run as its own process:
//
//   node bench/dist/fetch-blobs.js LIST.json [--hash] [--write FILE] [-j 8]
//
// GETs every blob of LIST.json ({host, blobs: [{repo, digest, size, kind}]})
// over `-j` keep-alive connections (node:http, no retries, no checks beyond the
// size). Without flags the bytes are thrown away: the registry's read floor.
// With --hash every blob is sha256'd and compared, and with --write it goes by
// positional writes into FILE preallocated at the total size: the least a
// Node.js client must do to build a verified bundle.
import { createHash } from 'node:crypto';
import { closeSync, ftruncateSync, openSync, readFileSync, write } from 'node:fs';
import { Agent, get } from 'node:http';
import { parseArgs } from 'node:util';
import type { CorpusBlob } from './corpus.js';

const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    hash: { type: 'boolean', default: false },
    write: { type: 'string' },
    jobs: { type: 'string', short: 'j', default: '8' },
  },
});
const list = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as { host: string; blobs: CorpusBlob[] };
if (!/^127\.0\.0\.1:\d+$/.test(list.host)) throw new Error(`loopback only: ${list.host}`);
const jobs = Number(values.jobs);
const agent = new Agent({ keepAlive: true, maxSockets: jobs });

let fd: number | undefined;
const offsets = new Map<string, number>();
if (values.write) {
  fd = openSync(values.write, 'w');
  let total = 0;
  for (const b of list.blobs) {
    offsets.set(b.digest, total);
    total += b.size;
  }
  ftruncateSync(fd, total);
}

/** Positional write; resolves when the bytes are in the file. */
function pwrite(buf: Buffer, pos: number): Promise<void> {
  return new Promise((resolve, reject) => write(fd!, buf, 0, buf.length, pos, (e) => (e ? reject(e) : resolve())));
}

function fetchBlob(b: CorpusBlob): Promise<void> {
  const path = `/v2/${b.repo}/${b.kind === 'manifest' ? 'manifests' : 'blobs'}/${b.digest}`;
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port: Number(list.host.split(':')[1]), path, agent, headers: { accept: MANIFEST_ACCEPT } }, (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        reject(new Error(`GET ${path}: ${res.statusCode}`));
        return;
      }
      const hash = values.hash ? createHash('sha256') : undefined;
      let pos = offsets.get(b.digest) ?? 0;
      let received = 0;
      let pending = 0;
      let ended = false;
      let failed = false;
      const done = () => {
        if (!ended || pending > 0 || failed) return;
        if (received !== b.size) return reject(new Error(`${path}: ${received} bytes, expected ${b.size}`));
        if (hash && `sha256:${hash.digest('hex')}` !== b.digest) return reject(new Error(`${path}: digest mismatch`));
        resolve();
      };
      res.on('data', (chunk: Buffer) => {
        received += chunk.length;
        hash?.update(chunk);
        if (fd === undefined) return;
        pending++;
        if (pending >= 4) res.pause();
        pwrite(chunk, pos).then(
          () => {
            pending--;
            if (pending < 4) res.resume();
            done();
          },
          (e: unknown) => {
            failed = true;
            reject(e as Error);
          },
        );
        pos += chunk.length;
      });
      res.on('end', () => {
        ended = true;
        done();
      });
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

// A shared queue drained by `jobs` workers, largest blobs spread like any client would meet them.
const queue = [...list.blobs];
await Promise.all(
  Array.from({ length: jobs }, async () => {
    for (let b = queue.shift(); b; b = queue.shift()) await fetchBlob(b);
  }),
);
if (fd !== undefined) closeSync(fd);
agent.destroy();
