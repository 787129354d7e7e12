import { generateKeyPair, sign, X509Certificate, type KeyObject } from 'node:crypto';
import { promisify } from 'node:util';
import { ALG_SHA1_RSA, ALG_SHA256_RSA, bitString, DerError, readChildren, readTlv, tlv, TAG } from './der.ts';
import { PtStatus } from './pt-status.ts';

/**
 * The device's certificate store: key pairs it generated (the private key never leaves), and
 * certificates added to it (protocol.md §6 step 6). Lives in "flash": it survives a reboot and
 * is not pending on CommitChanges; a full Unprovision empties it.
 */
export interface KeyPair {
  publicKey: KeyObject;
  privateKey: KeyObject;
}

/** Supplies RSA key pairs; the fleet injects a pre-generated pool because 2048-bit keygen is slow. */
export type KeyPairProvider = (modulusBits: number) => Promise<KeyPair>;

const generateRsa = promisify(generateKeyPair);

export const generateRsaKeyPair: KeyPairProvider = async (modulusBits) => {
  const { publicKey, privateKey } = await generateRsa('rsa', { modulusLength: modulusBits });
  return { publicKey, privateKey };
};

export interface StoredKey extends KeyPair {
  handle: number;
  instanceId: string;
}

export interface StoredCert {
  handle: number;
  instanceId: string;
  der: Buffer;
  x509: X509Certificate;
  trustedRoot: boolean;
  /** Handle of the device key this certificate certifies (AddCertificate only). */
  keyHandle?: number;
}

export const keyInstanceId = (handle: number): string => `Intel(r) AMT Key: Handle: ${handle}`;
export const certInstanceId = (handle: number): string => `Intel(r) AMT Certificate: Handle: ${handle}`;

/** AMT prints names as comma-joined RDNs, e.g. `C=unknown,O=unknown,CN=MPSRoot-3d3ad6`. */
export function amtName(nodeName: string): string {
  return nodeName.split('\n').filter(Boolean).join(',');
}

/** A value, or the PT_STATUS that refused it. */
export type StatusOr<T> = { ok: true; value: T } | { ok: false; status: number };

export class KeyStore {
  readonly keys = new Map<number, StoredKey>();
  readonly certs = new Map<number, StoredCert>();
  #nextKey = 0;
  #nextCert = 0;

  constructor(private readonly provider: KeyPairProvider) {}

  clear(): void {
    this.keys.clear();
    this.certs.clear();
    this.#nextKey = 0;
    this.#nextCert = 0;
  }

  /** GenerateKeyPair: KeyAlgorithm 0 (RSA) with KeyLength 2048 only, as PSK-era firmware. */
  async generate(keyAlgorithm: number, keyLength: number): Promise<StatusOr<StoredKey>> {
    if (keyAlgorithm !== 0 || keyLength !== 2048) return { ok: false, status: PtStatus.INVALID_PARAMETER };
    const pair = await this.provider(keyLength);
    return { ok: true, value: this.addKey(pair) };
  }

  addKey(pair: KeyPair): StoredKey {
    const handle = this.#nextKey++;
    const stored = { ...pair, handle, instanceId: keyInstanceId(handle) };
    this.keys.set(handle, stored);
    return stored;
  }

  keyByInstanceId(instanceId: string): StoredKey | undefined {
    for (const k of this.keys.values()) if (k.instanceId === instanceId) return k;
    return undefined;
  }

  certByInstanceId(instanceId: string): StoredCert | undefined {
    for (const c of this.certs.values()) if (c.instanceId === instanceId) return c;
    return undefined;
  }

  /**
   * GeneratePKCS10RequestEx: the caller sends a "null-signed" request (its CertificationRequestInfo
   * carries the device key's public key; the signature is anything). The device keeps that info
   * as is and signs it with the private key (RFC 2986 §4.2). SigningAlgorithm 0 = SHA1-RSA,
   * 1 = SHA256-RSA. A request for another key: INVALID_KEY.
   */
  signRequest(key: StoredKey, signingAlgorithm: number, nullSignedDer: Buffer): StatusOr<Buffer> {
    if (signingAlgorithm !== 0 && signingAlgorithm !== 1) return { ok: false, status: PtStatus.INVALID_PARAMETER };
    let info: Buffer;
    try {
      const outer = readTlv(nullSignedDer);
      if (outer.tag !== TAG.SEQUENCE || outer.raw.length !== nullSignedDer.length)
        throw new DerError('not one SEQUENCE');
      const first = readChildren(outer.content)[0];
      if (first === undefined || first.tag !== TAG.SEQUENCE) throw new DerError('no CertificationRequestInfo');
      info = first.raw;
      const fields = readChildren(first.content);
      const spki = fields[2];
      if (spki === undefined || spki.tag !== TAG.SEQUENCE) throw new DerError('no subjectPKInfo');
      const mine = key.publicKey.export({ type: 'spki', format: 'der' });
      if (!spki.raw.equals(mine)) return { ok: false, status: PtStatus.INVALID_KEY };
    } catch (e) {
      if (e instanceof DerError) return { ok: false, status: PtStatus.INVALID_PARAMETER };
      throw e;
    }
    const hash = signingAlgorithm === 0 ? 'sha1' : 'sha256';
    const signature = sign(hash, info, key.privateKey);
    const alg = signingAlgorithm === 0 ? ALG_SHA1_RSA : ALG_SHA256_RSA;
    return { ok: true, value: tlv(TAG.SEQUENCE, Buffer.concat([info, alg, bitString(signature)])) };
  }

  /**
   * AddCertificate: an X.509 certificate (DER) that must certify one of the device's keys
   * (INVALID_CERT when it does not parse, CERT_KEY_NOT_MATCH when no key fits, DUPLICATE when
   * stored already). AddTrustedRootCertificate: any parseable certificate, kept as a trust anchor.
   */
  addCertificate(der: Buffer, trustedRoot: boolean): StatusOr<StoredCert> {
    let x509: X509Certificate;
    try {
      x509 = new X509Certificate(der);
    } catch {
      return { ok: false, status: PtStatus.INVALID_CERT };
    }
    for (const c of this.certs.values()) if (c.der.equals(der)) return { ok: false, status: PtStatus.DUPLICATE };
    let keyHandle: number | undefined;
    if (!trustedRoot) {
      for (const k of this.keys.values()) {
        if (x509.checkPrivateKey(k.privateKey)) {
          keyHandle = k.handle;
          break;
        }
      }
      if (keyHandle === undefined) return { ok: false, status: PtStatus.CERT_KEY_NOT_MATCH };
    }
    const handle = this.#nextCert++;
    const stored: StoredCert = {
      handle,
      instanceId: certInstanceId(handle),
      der: Buffer.from(der),
      x509,
      trustedRoot,
      ...(keyHandle === undefined ? {} : { keyHandle }),
    };
    this.certs.set(handle, stored);
    return { ok: true, value: stored };
  }
}
