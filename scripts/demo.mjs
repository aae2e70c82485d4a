// The quick start's main job, end to end, on any machine of this kind without
// internet: two local registry:2 instances ("upstream" and the isolated
// "mirror"), a generated multi-platform image set pushed into the first,
// `ferry pack` into one bundle, `ferry inspect`, `ferry load` into the second,
// and the digest check (`ferry verify --against`).
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { MediaType, OciClient } from '../packages/oci-client/dist/index.js';

const root = fileURLToPath(new URL('..', import.meta.url));
const ferryBin = join(root, 'packages/cli/dist/main.js');
const sha256 = (b) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function ensureRegistryBinary() {
  if (spawnSync('sh', ['-c', 'command -v docker-registry'], { stdio: 'ignore' }).status === 0) return;
  console.log('installing docker-registry (Debian package) ...');
  execFileSync('bash', [join(root, 'scripts/system-packages.sh'), 'docker-registry'], { stdio: 'inherit' });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

async function startRegistry(dir, name) {
  const port = await freePort();
  const storage = join(dir, name);
  mkdirSync(storage);
  const config = join(dir, `${name}.yml`);
  writeFileSync(
    config,
    [
      'version: 0.1',
      'log: { level: error }',
      `storage: { filesystem: { rootdirectory: ${storage} }, delete: { enabled: true } }`,
      `http: { addr: "127.0.0.1:${port}" }`,
      '',
    ].join('\n'),
  );
  const child = spawn('docker-registry', ['serve', config], { stdio: 'ignore' });
  const host = `127.0.0.1:${port}`;
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`http://${host}/v2/`)).ok) return { host, child };
    } catch {
      /* not up yet */
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  child.kill();
  throw new Error(`registry ${name} did not start`);
}

/** A small tar.gz layer with one file of random content. */
function layer(size) {
  const data = randomBytes(size);
  const header = Buffer.alloc(512);
  header.write('data.bin', 0);
  header.write('0000644\0', 100);
  header.write('0000000\0', 108);
  header.write('0000000\0', 116);
  header.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
  header.write('00000000000\0', 136);
  header.write('        ', 148);
  header.write('0', 156);
  header.write('ustar\x0000', 257);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
  const pad = Buffer.alloc((512 - (size % 512)) % 512);
  return gzipSync(Buffer.concat([header, data, pad, Buffer.alloc(1024)]));
}

async function pushGeneratedImage(client, host, repo, tag, base) {
  const reg = client.registry(host);
  const blobs = async (bytes, mediaType) => {
    const desc = { mediaType, digest: sha256(bytes), size: bytes.length };
    const { Readable } = await import('node:stream');
    await reg.pushBlob(repo, desc, () => Readable.from([bytes]));
    return desc;
  };
  const children = [];
  for (const [arch, variant] of [['amd64'], ['arm64', 'v8']]) {
    const layers = [await blobs(base, MediaType.OCI_LAYER_GZIP), await blobs(layer(512 * 1024), MediaType.OCI_LAYER_GZIP)];
    const config = Buffer.from(JSON.stringify({ architecture: arch, os: 'linux', ...(variant ? { variant } : {}), rootfs: { type: 'layers', diff_ids: [] } }));
    const manifest = Buffer.from(
      JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_MANIFEST, config: await blobs(config, MediaType.OCI_CONFIG), layers }),
    );
    await reg.putManifest(repo, sha256(manifest), manifest, MediaType.OCI_MANIFEST);
    children.push({
      mediaType: MediaType.OCI_MANIFEST,
      digest: sha256(manifest),
      size: manifest.length,
      platform: { architecture: arch, os: 'linux', ...(variant ? { variant } : {}) },
    });
  }
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.OCI_INDEX, manifests: children }));
  await reg.putManifest(repo, tag, index, MediaType.OCI_INDEX);
  return sha256(index);
}

function ferry(...args) {
  console.log(`\n$ ferry ${args.join(' ')}`);
  execFileSync(process.execPath, [ferryBin, ...args], { stdio: 'inherit' });
}

ensureRegistryBinary();
const dir = mkdtempSync(join(tmpdir(), 'ferry-demo-'));
const registries = [];
try {
  const a = await startRegistry(dir, 'upstream');
  const b = await startRegistry(dir, 'mirror');
  registries.push(a, b);
  console.log(`started registry:2 at ${a.host} (upstream, the connected side) and ${b.host} (mirror, the isolated side)`);
  const client = new OciClient();
  // Three images (linux/amd64 + linux/arm64/v8), all on one shared base layer.
  const base = layer(256 * 1024);
  const refs = [];
  for (const [repo, tag] of [
    ['demo/web', '1.0'],
    ['demo/api', '2.3'],
    ['library/tools', '0.9'],
  ]) {
    const digest = await pushGeneratedImage(client, a.host, repo, tag, base);
    refs.push(`${a.host}/${repo}:${tag}`);
    console.log(`pushed ${a.host}/${repo}:${tag} = ${digest}`);
  }
  await client.close();

  const bundle = join(dir, 'bundle.tar');
  ferry('pack', ...refs, '-o', bundle);
  ferry('inspect', bundle);
  ferry('verify', bundle);
  ferry('load', bundle, '--to', `${b.host}/mirror`);
  ferry('verify', bundle, '--against', `${b.host}/mirror`);
  console.log('\nevery image is in the mirror with its upstream digest: OK');
} catch (e) {
  console.error(`demo failed: ${e.message}`);
  process.exitCode = 1;
} finally {
  for (const r of registries) r.child.kill();
  rmSync(dir, { recursive: true, force: true });
}
