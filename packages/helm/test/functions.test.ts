// The functions a chart may call: exactly helm v4's (Go's text/template builtins,
// Sprig v3.3's map without env/expandenv, Helm's own), and the ones whose output
// is random or secret checked for what makes them right (their values differ
// from helm's by nature; the differential tests mask them).
import { createCipheriv, createDecipheriv, createHash, createPrivateKey, X509Certificate } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Helm, startHelm } from '../../../test/harness/helm.js';
import { makeTempDir, removeTempDir } from '../../../test/harness/process.js';
import { helmFuncs } from '../src/funcs/func-map.js';
import { EXECUTOR_FUNCS, TemplateSet } from '../src/template/exec.js';

/**
 * helm v4.1.4's function names, from its sources: Go 1.24 text/template/funcs.go
 * (builtins), github.com/Masterminds/sprig/v3 v3.3.0 functions.go (genericMap;
 * helm deletes env and expandenv) and helm v4.1.4 pkg/engine/funcs.go (funcMap's
 * extra functions). The test below also asks the real helm binary about each.
 */
const HELM_V4_FUNCTIONS = `
and call html index js len not or print printf println slice urlquery eq ge gt le lt ne
hello ago date date_in_zone date_modify dateInZone dateModify duration durationRound htmlDate htmlDateInZone
must_date_modify mustDateModify mustToDate now toDate unixEpoch
abbrev abbrevboth trunc trim upper lower title untitle substr repeat trimall trimAll trimSuffix trimPrefix nospace
initials randAlphaNum randAlpha randAscii randNumeric swapcase shuffle snakecase camelcase kebabcase wrap wrapWith
contains hasPrefix hasSuffix quote squote cat indent nindent replace plural sha1sum sha256sum sha512sum adler32sum toString
atoi int64 int float64 seq toDecimal split splitList splitn toStrings until untilStep add1 add sub div mod mul randInt
add1f addf subf divf mulf biggest max min maxf minf ceil floor round join sortAlpha
default empty coalesce all any compact mustCompact fromJson toJson toPrettyJson toRawJson mustFromJson mustToJson
mustToPrettyJson mustToRawJson ternary deepCopy mustDeepCopy typeOf typeIs typeIsLike kindOf kindIs deepEqual
getHostByName base dir clean ext isAbs osBase osClean osDir osExt osIsAbs b64enc b64dec b32enc b32dec
tuple list dict get set unset hasKey pluck keys pick omit merge mergeOverwrite mustMerge mustMergeOverwrite values
append push mustAppend mustPush prepend mustPrepend first mustFirst rest mustRest last mustLast initial mustInitial
reverse mustReverse uniq mustUniq without mustWithout has mustHas mustSlice concat dig chunk mustChunk
bcrypt htpasswd genPrivateKey derivePassword buildCustomCert genCA genCAWithKey genSelfSignedCert
genSelfSignedCertWithKey genSignedCert genSignedCertWithKey encryptAES decryptAES randBytes uuidv4 semver semverCompare fail
regexMatch mustRegexMatch regexFindAll mustRegexFindAll regexFind mustRegexFind regexReplaceAll mustRegexReplaceAll
regexReplaceAllLiteral mustRegexReplaceAllLiteral regexSplit mustRegexSplit regexQuoteMeta urlParse urlJoin
toToml fromToml toYaml mustToYaml toYamlPretty fromYaml fromYamlArray fromJsonArray include tpl required lookup
`
  .split(/\s+/)
  .filter(Boolean)
  .sort();

const ferryFunctions = [...new Set([...Object.keys(helmFuncs()), ...EXECUTOR_FUNCS])].sort();

function render(src: string, data: unknown = {}): string {
  const set = new TemplateSet();
  set.funcs = helmFuncs();
  set.addFile('t', src);
  return set.execute('t', data).text;
}

describe('the function list', () => {
  it("is helm v4's, no more and no less", () => {
    expect(ferryFunctions).toEqual(HELM_V4_FUNCTIONS);
  });

  describe('against the real helm', () => {
    let helm: Helm;
    let dir: string;
    beforeAll(async () => {
      helm = await startHelm();
      dir = await makeTempDir('ferry-funcs-');
      await mkdir(join(dir, 'chart', 'templates'), { recursive: true });
      await writeFile(join(dir, 'chart', 'Chart.yaml'), 'apiVersion: v2\nname: names\nversion: 0.1.0\n');
    }, 180_000);
    afterAll(async () => {
      await helm?.close();
      if (dir) await removeTempDir(dir);
    });
    const template = (names: string[]) =>
      writeFile(join(dir, 'chart', 'templates', 't.yaml'), names.map((n) => `{{ if false }}{{ ${n} }}{{ end }}`).join('\n'));

    it('helm knows every function of the list (its parser refuses an unknown one)', async () => {
      await template(HELM_V4_FUNCTIONS);
      await expect(helm.run(['template', 'x', join(dir, 'chart')])).resolves.toMatch(/^\s*$/);
      await template(['randSeededNumeric']);
      await expect(helm.run(['template', 'x', join(dir, 'chart')])).rejects.toThrow('function "randSeededNumeric" not defined');
    });
  });
});

describe('random and secret functions', () => {
  it('genCA and genSignedCert issue a CA and a server certificate it signed, with the names asked for', () => {
    const out = render(
      '{{ $ca := genCA "my-ca" 365 }}{{ $c := genSignedCert "svc.local" (list "10.0.0.1" "::1") (list "svc.local" "svc") 30 $ca }}{{ list $ca.Cert $ca.Key $c.Cert $c.Key | toJson }}',
    );
    const [caCert, caKey, cert, key] = JSON.parse(out) as string[];
    const ca = new X509Certificate(caCert!);
    const leaf = new X509Certificate(cert!);
    expect(ca.subject).toBe('CN=my-ca');
    expect(ca.ca).toBe(true);
    expect(ca.verify(ca.publicKey)).toBe(true);
    expect(caKey).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
    expect(leaf.subject).toBe('CN=svc.local');
    expect(leaf.issuer).toBe('CN=my-ca');
    expect(leaf.ca).toBe(false);
    expect(leaf.subjectAltName).toBe('DNS:svc.local, DNS:svc, IP Address:10.0.0.1, IP Address:0:0:0:0:0:0:0:1');
    expect(leaf.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(leaf.checkIssued(ca)).toBe(true);
    expect(leaf.verify(ca.publicKey)).toBe(true);
    expect(leaf.checkPrivateKey(createPrivateKey(key!))).toBe(true);
    const days = (Date.parse(leaf.validTo) - Date.parse(leaf.validFrom)) / 86_400_000;
    expect(days).toBe(30);
  });

  it('genSelfSignedCertWithKey and genCAWithKey use the key given; genPrivateKey writes each type as Go does', () => {
    const out = render(
      '{{ $k := genPrivateKey "ecdsa" }}{{ $c := genSelfSignedCertWithKey "self" nil (list "a.local") 1 $k }}{{ list $k $c.Cert $c.Key (genPrivateKey "ed25519") (genPrivateKey "dsa") | toJson }}',
    );
    const [key, cert, certKey, ed, dsa] = JSON.parse(out) as string[];
    expect(key).toMatch(/^-----BEGIN EC PRIVATE KEY-----\n/);
    expect(certKey).toBe(key);
    const c = new X509Certificate(cert!);
    expect(c.checkPrivateKey(createPrivateKey(key!))).toBe(true);
    expect(c.verify(c.publicKey)).toBe(true);
    expect(c.subjectAltName).toBe('DNS:a.local');
    expect(ed).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(createPrivateKey(ed!).asymmetricKeyType).toBe('ed25519');
    expect(dsa).toMatch(/^-----BEGIN DSA PRIVATE KEY-----\n/);
    expect(createPrivateKey(dsa!).asymmetricKeyType).toBe('dsa');
    expect(render('{{ genPrivateKey "nope" }}')).toBe('Unknown type nope');
    expect(() => render('{{ mustDateModify "x" now }}')).toThrow('error calling mustDateModify: time: invalid duration "x"');
    expect(() => render('{{ mustToDate "2006" "x" }}')).toThrow('error calling mustToDate: parsing time "x" as "2006": cannot parse "x" as "2006"');
    expect(() => render('{{ mustSlice (list 1) 0 5 }}')).toThrow('error calling mustSlice: reflect.Value.Slice: slice index out of bounds');
    expect(() => render('{{ mustRegexMatch "(" "a" }}')).toThrow('error calling mustRegexMatch: error parsing regexp:');
  });

  it('bcrypt and htpasswd write $2a$ hashes that verify; encryptAES is AES-256-CBC with the IV first', async () => {
    const { default: bcrypt } = await import('bcryptjs');
    const [hash, line, sealed] = JSON.parse(render('{{ list (bcrypt "pw") (htpasswd "user" "pw") (encryptAES "key" "some text") | toJson }}')) as string[];
    expect(hash).toMatch(/^\$2a\$10\$/);
    expect(bcrypt.compareSync('pw', hash!)).toBe(true);
    expect(line).toMatch(/^user:\$2a\$10\$/);
    expect(bcrypt.compareSync('pw', line!.slice('user:'.length))).toBe(true);
    const data = Buffer.from(sealed!, 'base64');
    const k = Buffer.alloc(32);
    k.write('key');
    const d = createDecipheriv('aes-256-cbc', k, data.subarray(0, 16));
    expect(Buffer.concat([d.update(data.subarray(16)), d.final()]).toString()).toBe('some text');
    const iv = Buffer.alloc(16, 7);
    const e = createCipheriv('aes-256-cbc', k, iv);
    const mine = Buffer.concat([iv, e.update('from node'), e.final()]).toString('base64');
    expect(render(`{{ decryptAES "key" "${mine}" }}`)).toBe('from node');
  });

  it('uuidv4, randAlphaNum, randInt, shuffle and now are random and real', () => {
    const a = render('{{ uuidv4 }} {{ randAlphaNum 20 }} {{ randInt 5 6 }} {{ shuffle "aabbcc" }} {{ now | unixEpoch }}').split(' ');
    const b = render('{{ uuidv4 }} {{ randAlphaNum 20 }}').split(' ');
    expect(a[0]).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a[0]).not.toBe(b[0]);
    expect(a[1]).toMatch(/^[A-Za-z0-9]{20}$/);
    expect(a[1]).not.toBe(b[1]);
    expect(a[2]).toBe('5');
    expect([...a[3]!].sort().join('')).toBe('aabbcc');
    expect(Math.abs(Number(a[4]) - Date.now() / 1000)).toBeLessThan(5);
    expect(createHash('sha256').update('x').digest('hex')).toBe(render('{{ sha256sum "x" }}'));
  });
});
