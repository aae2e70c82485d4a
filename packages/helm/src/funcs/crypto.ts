/**
 * Sprig's crypto functions with node:crypto: private keys (PEM as Go writes
 * them), self-signed and CA-signed X.509 certificates with the fields Sprig's
 * certificate template sets, bcrypt and htpasswd, Master Password's
 * derivePassword, and AES-256-CBC with Sprig's padding and IV layout. The
 * certificates are DER written here (Node can read X.509 but not issue it).
 * A generated key pair is real but made once per type and size in a process
 * and then reused: ferry renders charts to find their images, never installs
 * the output, and an RSA-4096 key costs seconds of CPU on every render.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createHmac,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  randomBytes,
  scryptSync,
  sign,
} from 'node:crypto';
import { isIP } from 'node:net';
import bcrypt from 'bcryptjs';
import { TemplateExecError, type TemplateFunc } from '../template/exec.js';
import { list, str, toInt } from './convert.js';

// --- DER

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
function der(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}
const seq = (...c: Buffer[]) => der(0x30, ...c);
const set = (...c: Buffer[]) => der(0x31, ...c);
const explicit = (n: number, ...c: Buffer[]) => der(0xa0 + n, ...c);
function derInt(bytes: Buffer): Buffer {
  let b = bytes;
  while (b.length > 1 && b[0] === 0 && b[1]! < 0x80) b = b.subarray(1);
  if (b[0]! >= 0x80) b = Buffer.concat([Buffer.from([0]), b]);
  return der(0x02, b);
}
const smallInt = (n: number) => derInt(Buffer.from([n]));
function oid(dotted: string): Buffer {
  const parts = dotted.split('.').map(Number);
  const bytes = [parts[0]! * 40 + parts[1]!];
  for (const p of parts.slice(2)) {
    const chunk: number[] = [p & 0x7f];
    for (let v = p >>> 7; v > 0; v >>>= 7) chunk.unshift((v & 0x7f) | 0x80);
    bytes.push(...chunk);
  }
  return der(0x06, Buffer.from(bytes));
}
const bool = (v: boolean) => der(0x01, Buffer.from([v ? 0xff : 0]));
const octets = (b: Buffer) => der(0x04, b);
const bits = (b: Buffer, unused = 0) => der(0x03, Buffer.from([unused]), b);

function derTime(d: Date): Buffer {
  const iso = d
    .toISOString()
    .replace(/[-:T]/g, '')
    .replace(/\.\d+Z$/, 'Z');
  // RFC 5280: UTCTime through 2049, GeneralizedTime after
  return d.getUTCFullYear() < 2050 ? der(0x17, Buffer.from(iso.slice(2))) : der(0x18, Buffer.from(iso));
}

/** A Name with one CommonName (PrintableString when it can be, as Go's asn1 marshals strings). */
function name(cn: string): Buffer {
  if (cn === '') return seq();
  const printable = /^[A-Za-z0-9 '()+,\-./:=?]*$/.test(cn);
  return seq(set(seq(oid('2.5.4.3'), der(printable ? 0x13 : 0x0c, Buffer.from(cn)))));
}

// --- keys

/** A private key's PEM as Go writes it: PKCS#1 for RSA, SEC 1 for ECDSA, PKCS#8 for Ed25519. */
function keyPem(key: KeyObject): string {
  if (key.asymmetricKeyType === 'rsa') return key.export({ type: 'pkcs1', format: 'pem' }).toString();
  if (key.asymmetricKeyType === 'ec') return key.export({ type: 'sec1', format: 'pem' }).toString();
  if (key.asymmetricKeyType === 'dsa') return dsaPem(key);
  return key.export({ type: 'pkcs8', format: 'pem' }).toString();
}

/** Reads the DER element at `at`: its tag, content and where the next one starts. */
function readDer(b: Buffer, at: number): { tag: number; content: Buffer; next: number } {
  const tag = b[at]!;
  let len = b[at + 1]!;
  let start = at + 2;
  if (len >= 0x80) {
    const n = len & 0x7f;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[at + 2 + i]!;
    start += n;
  }
  return { tag, content: b.subarray(start, start + len), next: start + len };
}
function children(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < b.length; ) {
    const e = readDer(b, at);
    out.push(b.subarray(at, e.next));
    at = e.next;
  }
  return out;
}
const intOf = (el: Buffer) => BigInt(`0x${readDer(el, 0).content.toString('hex') || '0'}`);
function modPow(base: bigint, exp: bigint, mod: bigint): bigint {
  let r = 1n;
  let b = base % mod;
  for (let e = exp; e > 0n; e >>= 1n) {
    if (e & 1n) r = (r * b) % mod;
    b = (b * b) % mod;
  }
  return r;
}
const bigBytes = (n: bigint) =>
  Buffer.from(
    n
      .toString(16)
      .padStart(2, '0')
      .replace(/^(.(..)*)$/, '0$1'),
    'hex',
  );

/** OpenSSL's "DSA PRIVATE KEY" (version, p, q, g, y, x), which Sprig writes; Node exports DSA keys as PKCS#8 only. */
function dsaPem(key: KeyObject): string {
  const pkcs8 = key.export({ type: 'pkcs8', format: 'der' });
  const [, algorithm, privateOctets] = children(readDer(pkcs8, 0).content) as [Buffer, Buffer, Buffer];
  const [, params] = children(readDer(algorithm, 0).content) as [Buffer, Buffer];
  const [p, q, g] = children(readDer(params, 0).content).map(intOf) as [bigint, bigint, bigint];
  const x = intOf(readDer(privateOctets, 0).content);
  const y = modPow(g, x, p);
  const body = seq(smallInt(0), ...[p, q, g, y, x].map((n) => derInt(bigBytes(n))));
  return pem('DSA PRIVATE KEY', body);
}

const generated = new Map<string, KeyObject>();

function generateKey(type: string): KeyObject | undefined {
  let key = generated.get(type);
  if (!key) {
    key = freshKey(type);
    if (key) generated.set(type, key);
  }
  return key;
}

function freshKey(type: string): KeyObject | undefined {
  switch (type) {
    case 'rsa':
      return generateKeyPairSync('rsa', { modulusLength: 4096 }).privateKey;
    case 'ecdsa':
      return generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey;
    case 'ed25519':
      return generateKeyPairSync('ed25519').privateKey;
    case 'dsa':
      return generateKeyPairSync('dsa', { modulusLength: 2048, divisorLength: 256 }).privateKey;
    default:
      return undefined;
  }
}

function parseKey(pem: unknown): KeyObject {
  try {
    return createPrivateKey(str(pem));
  } catch (e) {
    throw new TemplateExecError(`error decoding key: ${(e as Error).message}`, undefined);
  }
}

// --- certificates

interface CertObject {
  Cert: string;
  Key: string;
}

function signatureAlgorithm(key: KeyObject): { id: Buffer; hash: string | null } {
  if (key.asymmetricKeyType === 'rsa') return { id: seq(oid('1.2.840.113549.1.1.11'), der(0x05)), hash: 'sha256' };
  if (key.asymmetricKeyType === 'ec') return { id: seq(oid('1.2.840.10045.4.3.2')), hash: 'sha256' };
  if (key.asymmetricKeyType === 'ed25519') return { id: seq(oid('1.3.101.112')), hash: null };
  throw new TemplateExecError(`unsupported key type ${key.asymmetricKeyType}`, undefined);
}

function pem(label: string, body: Buffer): string {
  return `-----BEGIN ${label}-----\n${body
    .toString('base64')
    .replace(/(.{64})/g, '$1\n')
    .replace(/\n$/, '')}\n-----END ${label}-----\n`;
}

/** The subject key identifier Go computes: SHA-1 of the public key's bits. */
function keyId(pub: KeyObject): Buffer {
  const spki = pub.export({ type: 'spki', format: 'der' });
  const [, keyBits] = children(readDer(spki, 0).content) as [Buffer, Buffer];
  return createHash('sha1').update(readDer(keyBits, 0).content.subarray(1)).digest();
}

interface CertRequest {
  cn: string;
  ips: string[];
  dns: string[];
  days: number;
  isCA: boolean;
  key: KeyObject;
  /** The signer; none for a self-signed certificate. */
  parent?: { cert: Buffer; key: KeyObject; subject: Buffer; keyId: Buffer | undefined };
}

function ipBytes(ip: string): Buffer {
  if (isIP(ip) === 4) return Buffer.from(ip.split('.').map(Number));
  const halves = ip.split('::');
  const head = halves[0] ? halves[0].split(':') : [];
  const tail = halves[1] ? halves[1].split(':') : [];
  const groups = [...head, ...Array(8 - head.length - tail.length).fill('0'), ...tail];
  return Buffer.from(groups.flatMap((g) => [Number.parseInt(g, 16) >> 8, Number.parseInt(g, 16) & 0xff]));
}

/** A certificate as Sprig's getBaseCertTemplate describes it, signed by its parent (or itself). */
function issue(r: CertRequest): CertObject {
  const pub = createPublicKey(r.key);
  const signer = r.parent?.key ?? r.key;
  const alg = signatureAlgorithm(signer);
  const now = new Date();
  const serial = randomBytes(16);
  // KeyEncipherment | DigitalSignature, and CertSign for a CA: bits 0, 2 (and 5) of the KeyUsage BIT STRING
  const usage = r.isCA ? bits(Buffer.from([0xa4]), 2) : bits(Buffer.from([0xa0]), 5);
  const extensions = [
    seq(oid('2.5.29.15'), bool(true), octets(usage)),
    seq(oid('2.5.29.37'), octets(seq(oid('1.3.6.1.5.5.7.3.1'), oid('1.3.6.1.5.5.7.3.2')))),
    seq(oid('2.5.29.19'), bool(true), octets(seq(...(r.isCA ? [bool(true)] : [])))),
  ];
  const ownId = r.isCA ? keyId(pub) : undefined;
  if (ownId) extensions.push(seq(oid('2.5.29.14'), octets(octets(ownId))));
  const authority = r.parent ? r.parent.keyId : ownId;
  if (authority && r.parent) extensions.push(seq(oid('2.5.29.35'), octets(seq(der(0x80, authority)))));
  if (r.dns.length > 0 || r.ips.length > 0) {
    const names = [...r.dns.map((d) => der(0x82, Buffer.from(d))), ...r.ips.map((ip) => der(0x87, ipBytes(ip)))];
    extensions.push(seq(oid('2.5.29.17'), octets(seq(...names))));
  }
  const subject = name(r.cn);
  const tbs = seq(
    explicit(0, smallInt(2)),
    derInt(serial),
    alg.id,
    r.parent?.subject ?? subject,
    seq(derTime(now), derTime(new Date(now.getTime() + r.days * 86_400_000))),
    subject,
    pub.export({ type: 'spki', format: 'der' }),
    explicit(3, seq(...extensions)),
  );
  const signature = sign(alg.hash, tbs, signer);
  return { Cert: pem('CERTIFICATE', seq(tbs, alg.id, bits(signature))), Key: keyPem(r.key) };
}

/** The RSA-2048 key Sprig makes for each certificate. */
function certKey(): KeyObject {
  let key = generated.get('rsa-2048');
  if (!key) generated.set('rsa-2048', (key = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey));
  return key;
}

/** The parent of a signed certificate from Sprig's certificate object ({Cert, Key}). */
function parentOf(ca: unknown): CertRequest['parent'] {
  const o = (ca ?? {}) as Partial<CertObject>;
  const block = /-----BEGIN CERTIFICATE-----([\s\S]*?)-----END CERTIFICATE-----/.exec(str(o.Cert ?? ''));
  if (!block) throw new TemplateExecError('error parsing ca cert: no PEM certificate', undefined);
  const cert = Buffer.from(block[1]!.replace(/\s+/g, ''), 'base64');
  const tbs = children(readDer(cert, 0).content)[0]!;
  const fields = children(readDer(tbs, 0).content);
  // version, serial, algorithm, issuer, validity, subject, spki, extensions
  const subject = fields[5]!;
  const spki = fields[6]!;
  return { cert, key: parseKey(o.Key), subject, keyId: keyId(createPublicKey({ key: spki, format: 'der', type: 'spki' })) };
}

const strings = (v: unknown) => (v === null || v === undefined ? [] : list(v).map(str));

function checkIps(ips: string[]): string[] {
  for (const ip of ips) if (isIP(ip) === 0) throw new TemplateExecError(`error parsing ip: ${ip}`, undefined);
  return ips;
}

// --- passwords and AES

const MASTER_PASSWORD_SEED = 'com.lyndir.masterpassword';
const PASSWORD_TEMPLATES: Record<string, string[]> = {
  maximum: ['anoxxxxxxxxxxxxxxxxx', 'axxxxxxxxxxxxxxxxxno'],
  long: [
    'CvcvnoCvcvCvcv',
    'CvcvCvcvnoCvcv',
    'CvcvCvcvCvcvno',
    'CvccnoCvcvCvcv',
    'CvccCvcvnoCvcv',
    'CvccCvcvCvcvno',
    'CvcvnoCvccCvcv',
    'CvcvCvccnoCvcv',
    'CvcvCvccCvcvno',
    'CvcvnoCvcvCvcc',
    'CvcvCvcvnoCvcc',
    'CvcvCvcvCvccno',
    'CvccnoCvccCvcv',
    'CvccCvccnoCvcv',
    'CvccCvccCvcvno',
    'CvcvnoCvccCvcc',
    'CvcvCvccnoCvcc',
    'CvcvCvccCvccno',
    'CvccnoCvcvCvcc',
    'CvccCvcvnoCvcc',
    'CvccCvcvCvccno',
  ],
  medium: ['CvcnoCvc', 'CvcCvcno'],
  short: ['Cvcn'],
  basic: ['aaanaaan', 'aannaaan', 'aaannaaa'],
  pin: ['nnnn'],
};
const PASSWORD_CHARACTERS: Record<string, string> = {
  V: 'AEIOU',
  C: 'BCDFGHJKLMNPQRSTVWXYZ',
  v: 'aeiou',
  c: 'bcdfghjklmnpqrstvwxyz',
  A: 'AEIOUBCDFGHJKLMNPQRSTVWXYZ',
  a: 'AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz',
  n: '0123456789',
  o: "@&%?,=[]_:-+*$#!'^~;()/.",
  x: 'AEIOUaeiouBCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz0123456789!@#$%^&*()',
};

function uint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** Master Password's algorithm, as Sprig's derivePassword. */
function derivePassword(counter: number, type: string, password: string, user: string, site: string): string {
  const templates = PASSWORD_TEMPLATES[type];
  if (!templates) return `cannot find password template ${type}`;
  const userBytes = Buffer.from(user);
  const salt = Buffer.concat([Buffer.from(MASTER_PASSWORD_SEED), uint32(userBytes.length), userBytes]);
  const key = scryptSync(Buffer.from(password), salt, 64, { N: 32768, r: 8, p: 2, maxmem: 128 * 1024 * 1024 });
  const siteBytes = Buffer.from(site);
  const seed = createHmac('sha256', key)
    .update(Buffer.concat([Buffer.from(MASTER_PASSWORD_SEED), uint32(siteBytes.length), siteBytes, uint32(counter)]))
    .digest();
  const template = templates[seed[0]! % templates.length]!;
  let out = '';
  for (const [i, c] of [...template].entries()) {
    const chars = PASSWORD_CHARACTERS[c]!;
    out += chars[seed[i + 1]! % chars.length];
  }
  return out;
}

/** Sprig's AES key: the password's bytes in 32 zero bytes. */
function aesKey(password: string): Buffer {
  const key = Buffer.alloc(32);
  Buffer.from(password).copy(key, 0, 0, 32);
  return key;
}

function encryptAES(password: string, text: string): string {
  if (text === '') return '';
  const iv = randomBytes(16);
  // PKCS#7 padding, as Sprig pads (Node's own padding is the same)
  const cipher = createCipheriv('aes-256-cbc', aesKey(password), iv);
  return Buffer.concat([iv, cipher.update(text), cipher.final()]).toString('base64');
}

function decryptAES(password: string, text: string): string {
  const data = Buffer.from(text, 'base64');
  if (data.length < 16) throw new TemplateExecError('ciphertext too short', undefined);
  const decipher = createDecipheriv('aes-256-cbc', aesKey(password), data.subarray(0, 16));
  decipher.setAutoPadding(false);
  const plain = Buffer.concat([decipher.update(data.subarray(16)), decipher.final()]);
  return plain.subarray(0, plain.length - (plain.at(-1) ?? 0)).toString();
}

function bcryptHash(input: string): string {
  // Go's bcrypt writes the $2a$ prefix; the hash is the same for passwords under 256 bytes
  return bcrypt.hashSync(input, 10).replace(/^\$2b\$/, '$2a$');
}

export function cryptoFuncs(): Record<string, TemplateFunc> {
  return {
    // Sprig answers an unknown type with this text, not an error
    genPrivateKey: (type: unknown) => {
      const key = generateKey(str(type));
      return key ? keyPem(key) : `Unknown type ${str(type)}`;
    },
    genCA: (cn: unknown, days: unknown) => issue({ cn: str(cn), ips: [], dns: [], days: toInt(days), isCA: true, key: certKey() }),
    genCAWithKey: (cn: unknown, days: unknown, key: unknown) => issue({ cn: str(cn), ips: [], dns: [], days: toInt(days), isCA: true, key: parseKey(key) }),
    genSelfSignedCert: (cn: unknown, ips: unknown, dns: unknown, days: unknown) =>
      issue({ cn: str(cn), ips: checkIps(strings(ips)), dns: strings(dns), days: toInt(days), isCA: false, key: certKey() }),
    genSelfSignedCertWithKey: (cn: unknown, ips: unknown, dns: unknown, days: unknown, key: unknown) =>
      issue({ cn: str(cn), ips: checkIps(strings(ips)), dns: strings(dns), days: toInt(days), isCA: false, key: parseKey(key) }),
    genSignedCert: (cn: unknown, ips: unknown, dns: unknown, days: unknown, ca: unknown) =>
      issue({ cn: str(cn), ips: checkIps(strings(ips)), dns: strings(dns), days: toInt(days), isCA: false, key: certKey(), parent: parentOf(ca) }),
    genSignedCertWithKey: (cn: unknown, ips: unknown, dns: unknown, days: unknown, ca: unknown, key: unknown) =>
      issue({ cn: str(cn), ips: checkIps(strings(ips)), dns: strings(dns), days: toInt(days), isCA: false, key: parseKey(key), parent: parentOf(ca) }),
    buildCustomCert: (cert: unknown, key: unknown) => {
      const c = Buffer.from(str(cert), 'base64').toString();
      const k = Buffer.from(str(key), 'base64').toString();
      if (!c.includes('-----BEGIN CERTIFICATE-----')) throw new TemplateExecError('unable to decode base64 certificate', undefined);
      parseKey(k);
      return { Cert: c, Key: k };
    },
    bcrypt: (s: unknown) => bcryptHash(str(s)),
    htpasswd: (user: unknown, password: unknown) => {
      if (str(user).includes(':')) return `invalid username: ${str(user)}`;
      return `${str(user)}:${bcryptHash(str(password))}`;
    },
    derivePassword: (counter: unknown, type: unknown, password: unknown, user: unknown, site: unknown) =>
      derivePassword(toInt(counter), str(type), str(password), str(user), str(site)),
    encryptAES: (password: unknown, text: unknown) => encryptAES(str(password), str(text)),
    decryptAES: (password: unknown, text: unknown) => decryptAES(str(password), str(text)),
  };
}
