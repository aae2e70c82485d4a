/**
 * Ed25519 signing keys (node:crypto) and `ferry.sig`, the detached signature
 * over a bundle id. The signature file names the public key's fingerprint, so
 * "signed by another key" and "changed since signing" are told apart.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, type KeyObject, sign, verify } from 'node:crypto';
import { link, open, readFile, rm } from 'node:fs/promises';
import { FerryError, usageError } from '@ferry/oci-client';
import { z } from 'zod';

export const SIGNATURE_VERSION = 1;

const signatureSchema = z.object({
  formatVersion: z.literal(SIGNATURE_VERSION),
  algorithm: z.literal('ed25519'),
  /** What was signed: the bundle id (sha256 of index.json followed by ferry.json). */
  bundleId: z.string(),
  /** sha256 of the public key's SPKI DER. */
  keyFingerprint: z.string(),
  signature: z.string(),
});

export type BundleSignature = z.infer<typeof signatureSchema>;

export function fingerprint(publicKey: KeyObject): string {
  return (
    'sha256:' +
    createHash('sha256')
      .update(publicKey.export({ type: 'spki', format: 'der' }))
      .digest('hex')
  );
}

/** Writes NAME.key (PKCS#8 PEM, mode 0600) and NAME.pub (SPKI PEM); refuses to overwrite. */
export async function generateKeyPair(name: string): Promise<{ privatePath: string; publicPath: string; fingerprint: string }> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const privatePath = `${name}.key`;
  const publicPath = `${name}.pub`;
  await writeNew(privatePath, privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, 0o600);
  try {
    await writeNew(publicPath, publicKey.export({ type: 'spki', format: 'pem' }) as string, 0o644);
  } catch (e) {
    await rm(privatePath, { force: true });
    throw e;
  }
  return { privatePath, publicPath, fingerprint: fingerprint(publicKey) };
}

/** Creates a file that must not exist yet, through a temporary name. */
async function writeNew(path: string, text: string, mode: number): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  const fh = await open(tmp, 'wx', mode);
  try {
    await fh.writeFile(text);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    // link() refuses an existing name atomically: an existing key is never replaced.
    await link(tmp, path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw usageError(`${path} already exists; ferry will not overwrite a key`);
    throw e;
  } finally {
    await rm(tmp, { force: true });
  }
}

async function readKeyFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw usageError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
}

export async function loadPrivateKey(path: string): Promise<KeyObject> {
  const pem = await readKeyFile(path, 'private key');
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch {
    throw usageError(`${path} is not a PEM private key (make one with \`ferry key generate NAME\`)`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw usageError(`${path} is a ${key.asymmetricKeyType} key; ferry signs with Ed25519 keys`);
  return key;
}

export async function loadPublicKey(path: string): Promise<KeyObject> {
  const pem = await readKeyFile(path, 'public key');
  let key: KeyObject;
  try {
    key = createPublicKey(pem);
  } catch {
    throw usageError(`${path} is not a PEM public key (the NAME.pub that \`ferry key generate NAME\` wrote)`);
  }
  if (key.asymmetricKeyType !== 'ed25519') throw usageError(`${path} is a ${key.asymmetricKeyType} key; ferry verifies Ed25519 signatures`);
  return key;
}

/** The bytes of ferry.sig for a bundle id. */
export function signBundleId(bundleId: string, privateKey: KeyObject): Buffer {
  const doc: BundleSignature = {
    formatVersion: SIGNATURE_VERSION,
    algorithm: 'ed25519',
    bundleId,
    keyFingerprint: fingerprint(createPublicKey(privateKey)),
    signature: sign(null, Buffer.from(bundleId), privateKey).toString('base64'),
  };
  return Buffer.from(`${JSON.stringify(doc, null, 2)}\n`);
}

/**
 * Checks ferry.sig against the bundle id computed from the bundle's bytes and a
 * trusted public key; throws an integrity error that says which check failed.
 */
export function checkSignature(bundleName: string, bundleId: string | undefined, sigBytes: Buffer | undefined, publicKey: KeyObject): void {
  if (!bundleId) throw new FerryError('integrity', `${bundleName} has no ferry.json, so it cannot carry a ferry signature; refusing it under --key`);
  if (!sigBytes) throw new FerryError('integrity', `${bundleName} is not signed (no ferry.sig); refusing it under --key`);
  let sig: BundleSignature;
  try {
    sig = signatureSchema.parse(JSON.parse(sigBytes.toString('utf8')));
  } catch {
    throw new FerryError('integrity', `${bundleName} has a ferry.sig that is not a valid ferry signature`);
  }
  const want = fingerprint(publicKey);
  if (sig.keyFingerprint !== want) {
    throw new FerryError('integrity', `${bundleName} is signed by another key (${sig.keyFingerprint}), not by the given key (${want})`);
  }
  if (sig.bundleId !== bundleId) {
    throw new FerryError(
      'integrity',
      `${bundleName} was changed after signing: index.json or ferry.json differ from what was signed (bundle id ${bundleId}, signed ${sig.bundleId})`,
    );
  }
  if (!verify(null, Buffer.from(sig.bundleId), publicKey, Buffer.from(sig.signature, 'base64'))) {
    throw new FerryError('integrity', `${bundleName} has a signature that does not verify with the given key`);
  }
}
