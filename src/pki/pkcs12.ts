import { createDecipheriv, createHash, createHmac, pbkdf2Sync, timingSafeEqual } from 'node:crypto';
import { ScsError } from '../errors.ts';
import type { Secret } from '../secret.ts';
import { children, DerError, expect, octets, oid, readTlv, smallInt, type Tlv } from './der.ts';

/**
 * A PKCS#12 (PFX, RFC 7292) reader: the certificates and the one private key of a provisioning
 * certificate file, as CAs deliver them. node:crypto has no PKCS#12 parser and the project does
 * not shell out to openssl at run time, so the structure is walked here and the ciphers come
 * from node:crypto. Supported: password integrity (HMAC with SHA-1/SHA-256/SHA-384/SHA-512),
 * PBES2 (PBKDF2 + AES-CBC or 3DES, what OpenSSL 3 and current Windows write), and the PKCS#12
 * PBE with SHA-1 and 3DES (older Windows and `openssl -legacy` keys). RC2 and RC4 (40-bit
 * "export" ciphers of very old files) and public-key integrity/privacy modes are refused with a
 * message that says how to re-export the file.
 */

export interface Pkcs12Contents {
  /** DER of every certificate in the file, in file order. */
  readonly certificates: Buffer[];
  /** PKCS#8 DER of the private key. */
  readonly keyPkcs8: Buffer;
}

const OID = {
  data: '1.2.840.113549.1.7.1',
  encryptedData: '1.2.840.113549.1.7.6',
  keyBag: '1.2.840.113549.1.12.10.1.1',
  shroudedKeyBag: '1.2.840.113549.1.12.10.1.2',
  certBag: '1.2.840.113549.1.12.10.1.3',
  x509Certificate: '1.2.840.113549.1.9.22.1',
  pbes2: '1.2.840.113549.1.5.13',
  pbkdf2: '1.2.840.113549.1.5.12',
  sha1And3KeyTripleDes: '1.2.840.113549.1.12.1.3',
  sha1And2KeyTripleDes: '1.2.840.113549.1.12.1.4',
} as const;

const DIGESTS: Readonly<Record<string, { name: string; u: number; v: number }>> = {
  '1.3.14.3.2.26': { name: 'sha1', u: 20, v: 64 },
  '2.16.840.1.101.3.4.2.1': { name: 'sha256', u: 32, v: 64 },
  '2.16.840.1.101.3.4.2.2': { name: 'sha384', u: 48, v: 128 },
  '2.16.840.1.101.3.4.2.3': { name: 'sha512', u: 64, v: 128 },
};

const PRFS: Readonly<Record<string, string>> = {
  '1.2.840.113549.2.7': 'sha1',
  '1.2.840.113549.2.9': 'sha256',
  '1.2.840.113549.2.10': 'sha384',
  '1.2.840.113549.2.11': 'sha512',
};

const CIPHERS: Readonly<Record<string, { name: string; keyLength: number }>> = {
  '2.16.840.1.101.3.4.1.2': { name: 'aes-128-cbc', keyLength: 16 },
  '2.16.840.1.101.3.4.1.22': { name: 'aes-192-cbc', keyLength: 24 },
  '2.16.840.1.101.3.4.1.42': { name: 'aes-256-cbc', keyLength: 32 },
  '1.2.840.113549.3.7': { name: 'des-ede3-cbc', keyLength: 24 },
};

function invalid(message: string, cause?: unknown): ScsError {
  return new ScsError(
    'SCS_PKI_FILE_INVALID',
    `not a usable PKCS#12 file: ${message}`,
    cause === undefined ? {} : { cause },
  );
}

function unsupported(what: string): ScsError {
  return new ScsError(
    'SCS_PKI_FILE_INVALID',
    `the PKCS#12 file uses ${what}, which amt-scs does not read; re-export it with AES (e.g. \`openssl pkcs12 -export\` from OpenSSL 3, or Windows "AES256-SHA256")`,
  );
}

/** RFC 7292 Appendix B.1: the password as a BMPString (UTF-16BE) with a two-byte terminator. */
function bmpPassword(password: string): Buffer {
  const out = Buffer.alloc(password.length * 2 + 2);
  for (let i = 0; i < password.length; i++) out.writeUInt16BE(password.charCodeAt(i), i * 2);
  return out;
}

/** RFC 7292 Appendix B.2: the PKCS#12 key derivation (ID 1 key, 2 IV, 3 MAC key). */
export function pkcs12Kdf(
  hash: { name: string; u: number; v: number },
  password: Buffer,
  salt: Buffer,
  iterations: number,
  id: 1 | 2 | 3,
  n: number,
): Buffer {
  const { u, v } = hash;
  const fill = (src: Buffer): Buffer => {
    if (src.length === 0) return Buffer.alloc(0);
    const out = Buffer.alloc(v * Math.ceil(src.length / v));
    for (let i = 0; i < out.length; i++) out[i] = src[i % src.length] as number;
    return out;
  };
  const d = Buffer.alloc(v, id);
  const i = Buffer.concat([fill(salt), fill(password)]);
  const out: Buffer[] = [];
  for (let got = 0; got < n; got += u) {
    let a = createHash(hash.name).update(d).update(i).digest();
    for (let r = 1; r < iterations; r++) a = createHash(hash.name).update(a).digest();
    out.push(a);
    const b = Buffer.alloc(v);
    for (let k = 0; k < v; k++) b[k] = a[k % u] as number;
    // I_j = (I_j + B + 1) mod 2^(8v), for each v-byte block of I.
    for (let j = 0; j < i.length; j += v) {
      let carry = 1;
      for (let k = v - 1; k >= 0; k--) {
        const sum = (i[j + k] as number) + (b[k] as number) + carry;
        i[j + k] = sum & 0xff;
        carry = sum >> 8;
      }
    }
  }
  return Buffer.concat(out).subarray(0, n);
}

function decrypt(algorithm: Tlv, data: Buffer, password: string): Buffer {
  const [algOid, params] = children(expect(algorithm, 0x30, 'AlgorithmIdentifier').content);
  const alg = oid(algOid, 'encryption algorithm');
  try {
    if (alg === OID.pbes2) {
      const [kdf, scheme] = children(expect(params, 0x30, 'PBES2 parameters').content);
      const [kdfOid, kdfParams] = children(expect(kdf, 0x30, 'PBES2 key derivation').content);
      if (oid(kdfOid, 'PBES2 KDF') !== OID.pbkdf2) throw unsupported('a key derivation other than PBKDF2');
      const p = children(expect(kdfParams, 0x30, 'PBKDF2 parameters').content);
      const salt = octets(p[0], 'PBKDF2 salt');
      const iterations = smallInt(p[1], 'PBKDF2 iterations');
      let prf = 'sha1';
      for (const extra of p.slice(2)) {
        if (extra.tag === 0x30) {
          const prfOid = oid(children(extra.content)[0], 'PBKDF2 PRF');
          const name = PRFS[prfOid];
          if (name === undefined) throw unsupported(`PBKDF2 PRF ${prfOid}`);
          prf = name;
        }
      }
      const [cipherOid, iv] = children(expect(scheme, 0x30, 'PBES2 encryption scheme').content);
      const cipherId = oid(cipherOid, 'PBES2 cipher');
      const cipher = CIPHERS[cipherId];
      if (cipher === undefined) throw unsupported(`cipher ${cipherId}`);
      // OpenSSL and Windows feed PBKDF2 the password's UTF-8 bytes (not the BMPString).
      const key = pbkdf2Sync(Buffer.from(password, 'utf8'), salt, iterations, cipher.keyLength, prf);
      const d = createDecipheriv(cipher.name, key, octets(iv, 'PBES2 IV'));
      return Buffer.concat([d.update(data), d.final()]);
    }
    if (alg === OID.sha1And3KeyTripleDes || alg === OID.sha1And2KeyTripleDes) {
      const [saltT, iterT] = children(expect(params, 0x30, 'PBE parameters').content);
      const salt = octets(saltT, 'PBE salt');
      const iterations = smallInt(iterT, 'PBE iterations');
      const sha1 = DIGESTS['1.3.14.3.2.26'] as { name: string; u: number; v: number };
      const pw = bmpPassword(password);
      const three = alg === OID.sha1And3KeyTripleDes;
      const key = pkcs12Kdf(sha1, pw, salt, iterations, 1, three ? 24 : 16);
      const iv = pkcs12Kdf(sha1, pw, salt, iterations, 2, 8);
      const d = createDecipheriv(three ? 'des-ede3-cbc' : 'des-ede-cbc', key, iv);
      return Buffer.concat([d.update(data), d.final()]);
    }
  } catch (e) {
    if (e instanceof ScsError) throw e;
    if (e instanceof DerError) throw invalid(e.message, e);
    // A bad padding after a MAC that verified: the file is damaged, or it has no MAC and the passphrase is wrong.
    throw new ScsError('SCS_PKI_PASSPHRASE_WRONG', 'the PKCS#12 file does not decrypt with this passphrase', {
      cause: e,
    });
  }
  throw unsupported(`encryption ${alg} (RC2/RC4 "export" ciphers of old files, or an unknown scheme)`);
}

function verifyMac(macData: Tlv, authSafe: Buffer, password: string): void {
  const [digestInfo, saltT, iterT] = children(expect(macData, 0x30, 'MacData').content);
  const [algId, digestT] = children(expect(digestInfo, 0x30, 'DigestInfo').content);
  const digestOid = oid(children(expect(algId, 0x30, 'digest algorithm').content)[0], 'digest algorithm');
  const hash = DIGESTS[digestOid];
  if (hash === undefined) throw unsupported(`MAC digest ${digestOid}`);
  const iterations = iterT === undefined ? 1 : smallInt(iterT, 'MAC iterations');
  const key = pkcs12Kdf(hash, bmpPassword(password), octets(saltT, 'MAC salt'), iterations, 3, hash.u);
  const mac = createHmac(hash.name, key).update(authSafe).digest();
  const expected = octets(digestT, 'MAC digest');
  if (expected.length !== mac.length || !timingSafeEqual(expected, mac)) {
    throw new ScsError('SCS_PKI_PASSPHRASE_WRONG', 'the PKCS#12 passphrase is wrong (the file integrity check fails)');
  }
}

function readBags(safeContents: Buffer, password: string, out: { certs: Buffer[]; keys: Buffer[] }): void {
  for (const bag of children(expect(readTlv(safeContents), 0x30, 'SafeContents').content)) {
    const [bagIdT, valueT] = children(expect(bag, 0x30, 'SafeBag').content);
    const bagId = oid(bagIdT, 'SafeBag id');
    const value = children(expect(valueT, 0xa0, 'SafeBag value').content)[0];
    if (bagId === OID.certBag) {
      const [certIdT, certValueT] = children(expect(value, 0x30, 'CertBag').content);
      if (oid(certIdT, 'CertBag id') !== OID.x509Certificate) continue; // SDSI certificates: none in practice
      out.certs.push(
        Buffer.from(octets(children(expect(certValueT, 0xa0, 'CertBag value').content)[0], 'certificate')),
      );
    } else if (bagId === OID.keyBag) {
      out.keys.push(Buffer.from(expect(value, 0x30, 'KeyBag').raw));
    } else if (bagId === OID.shroudedKeyBag) {
      const [algT, encT] = children(expect(value, 0x30, 'EncryptedPrivateKeyInfo').content);
      out.keys.push(decrypt(algT as Tlv, octets(encT, 'encrypted key'), password));
    }
    // CRL and secret bags are not needed for a provisioning certificate.
  }
}

/** Reads a PFX; wrong passphrase: SCS_PKI_PASSPHRASE_WRONG; anything else unusable: SCS_PKI_FILE_INVALID. */
export function readPkcs12(file: Buffer, passphrase: Secret<string>): Pkcs12Contents {
  const password = passphrase.reveal();
  try {
    const pfx = readTlv(file);
    if (pfx.tag !== 0x30 || pfx.raw.length !== file.length) throw invalid('the file is not one DER SEQUENCE');
    const [versionT, authSafeT, macDataT] = children(pfx.content);
    if (smallInt(versionT, 'PFX version') !== 3) throw invalid('PFX version is not 3');
    const [typeT, contentT] = children(expect(authSafeT, 0x30, 'authSafe').content);
    if (oid(typeT, 'authSafe type') !== OID.data) throw unsupported('public-key integrity mode');
    const authSafe = octets(children(expect(contentT, 0xa0, 'authSafe content').content)[0], 'authSafe data');
    if (macDataT !== undefined) verifyMac(macDataT, authSafe, password);
    const found = { certs: [] as Buffer[], keys: [] as Buffer[] };
    for (const ci of children(expect(readTlv(authSafe), 0x30, 'AuthenticatedSafe').content)) {
      const [ctT, cT] = children(expect(ci, 0x30, 'ContentInfo').content);
      const ct = oid(ctT, 'ContentInfo type');
      const inner = children(expect(cT, 0xa0, 'ContentInfo content').content)[0];
      if (ct === OID.data) {
        readBags(octets(inner, 'SafeContents'), password, found);
      } else if (ct === OID.encryptedData) {
        const [, eci] = children(expect(inner, 0x30, 'EncryptedData').content);
        const [, algT, encT] = children(expect(eci, 0x30, 'EncryptedContentInfo').content);
        if (algT === undefined || encT === undefined) throw invalid('EncryptedContentInfo without content');
        // [0] IMPLICIT OCTET STRING: primitive 0x80 or constructed 0xa0.
        const enc =
          encT.tag === 0xa0
            ? octets({ ...encT, tag: 0x24 }, 'encrypted content')
            : expect(encT, 0x80, 'encrypted content').content;
        readBags(decrypt(algT, enc, password), password, found);
      } else {
        throw unsupported('public-key privacy mode (enveloped data)');
      }
    }
    if (found.keys.length !== 1) throw invalid(`expected one private key, found ${found.keys.length}`);
    if (found.certs.length === 0) throw invalid('no certificate in the file');
    return { certificates: found.certs, keyPkcs8: found.keys[0] as Buffer };
  } catch (e) {
    if (e instanceof ScsError) throw e;
    throw invalid(e instanceof Error ? e.message : String(e), e);
  }
}
