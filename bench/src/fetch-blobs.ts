// Reference clients for the pack and load suites, each run as its own process:
//
//   node bench/dist/fetch-blobs.js LIST.json [--hash] [--write FILE] [-j 8]
//   node bench/dist/fetch-blobs.js LIST.json --push --from DIR [--host H] [--prefix P] [-j 8]
//
// GETs every blob of LIST.json ({host, blobs: [{repo, digest, size, kind}]})
// over `-j` keep-alive connections (node:http, no retries, no checks beyond the
// size). Without flags the bytes are thrown away: the registry's read floor.
// With --hash every blob is sha256'd and compared, and with --write it goes by
// positional writes into FILE preallocated at the total size: the least a
// Node.js client must do to build a verified bundle.
//
// With --push it is the registry's write floor instead (load suite): every
// blob that is not a manifest goes to H (default LIST's host) as one POST
// /v2/P/REPO/blobs/uploads/ and one monolithic PUT of the file DIR/blobs/sha256/HEX,
// over `-j` keep-alive connections; no HEAD, no mount, no client-side hashing,
// no manifests. Only a 201 (the registry checked the digest) counts. Prints
// "pushed N blobs, B bytes". With --push --hash the client also sha256es every
// blob as it sends it: the least a Node.js client that checks what it pushes must do.
import { createHash, type Hash } from 'node:crypto';
import { closeSync, createReadStream, ftruncateSync, openSync, readFileSync, write } from 'node:fs';
import { Agent, get, type IncomingMessage, request } from 'node:http';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
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
    push: { type: 'boolean', default: false },
    from: { type: 'string' },
    host: { type: 'string' },
    prefix: { type: 'string', default: '' },
  },
});
const list = JSON.parse(readFileSync(positionals[0]!, 'utf8')) as { host: string; blobs: CorpusBlob[] };
if (values.host) list.host = values.host;
if (!/^127\.0\.0\.1:\d+$/.test(list.host)) throw new Error(`loopback only: ${list.host}`);
const port = Number(list.host.split(':')[1]);
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
    const req = get({ host: '127.0.0.1', port, path, agent, headers: { accept: MANIFEST_ACCEPT } }, (res) => {
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

/** One request on the keep-alive agent; resolves with the response, its body read and dropped. */
function send(method: string, path: string, headers: Record<string, string>, body?: { file: string; hash?: Hash }): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, method, path, agent, headers }, (res) => {
      res.resume();
      res.once('end', () => resolve(res));
      res.once('error', reject);
    });
    req.once('error', reject);
    if (body === undefined) req.end();
    else {
      // The file streams in; the response comes once the registry has it all.
      const file = createReadStream(body.file, { highWaterMark: 1 << 20 });
      if (body.hash) file.on('data', (c) => body.hash!.update(c));
      pipeline(file, req).catch(reject);
    }
  });
}

let pushedBytes = 0;
async function pushBlob(b: CorpusBlob): Promise<void> {
  const repo = values.prefix ? `${values.prefix.replace(/\/+$/, '')}/${b.repo}` : b.repo;
  const start = await send('POST', `/v2/${repo}/blobs/uploads/`, { 'content-length': '0' });
  const location = start.headers.location;
  if (start.statusCode !== 202 || !location) throw new Error(`POST /v2/${repo}/blobs/uploads/: ${start.statusCode}`);
  const url = new URL(location, `http://${list.host}`);
  if (url.host !== list.host) throw new Error(`upload location ${location} is not on ${list.host}`);
  url.searchParams.set('digest', b.digest);
  const file = join(values.from!, 'blobs', 'sha256', b.digest.slice('sha256:'.length));
  // --hash: the client checks each blob's digest on the way out, as a verifying client must
  // (a real one would abort the upload on a mismatch; here the check comes after it).
  const hash = values.hash ? createHash('sha256') : undefined;
  const done = await send(
    'PUT',
    url.pathname + url.search,
    { 'content-type': 'application/octet-stream', 'content-length': String(b.size) },
    { file, ...(hash ? { hash } : {}) },
  );
  if (done.statusCode !== 201) throw new Error(`PUT ${b.digest} to ${repo}: ${done.statusCode}`);
  if (hash && `sha256:${hash.digest('hex')}` !== b.digest) throw new Error(`${file}: digest mismatch`);
  pushedBytes += b.size;
}

// A shared queue drained by `jobs` workers, largest blobs spread like any client would meet them.
const queue = values.push ? list.blobs.filter((b) => b.kind === 'blob') : [...list.blobs];
if (values.push && !values.from) throw new Error('--push needs --from DIR (an OCI layout holding the blobs)');
const count = queue.length;
await Promise.all(
  Array.from({ length: jobs }, async () => {
    for (let b = queue.shift(); b; b = queue.shift()) await (values.push ? pushBlob(b) : fetchBlob(b));
  }),
);
if (fd !== undefined) closeSync(fd);
agent.destroy();
if (values.push) process.stdout.write(`pushed ${count} blobs, ${pushedBytes} bytes\n`);
