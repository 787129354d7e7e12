import { amtName, type StoredCert, type StoredKey } from '../../device/keystore.ts';
import type { AmtModel } from '../../device/model.ts';
import { PtStatus } from '../../device/pt-status.ts';
import { WsmanFault } from '../fault.ts';
import { ANONYMOUS, resourceUriOf } from '../namespaces.ts';
import type { Epr } from '../request.ts';
import { serviceKeys, serviceProperties, type Instance, type ResourceClass } from '../resource.ts';

const KEY_PAIR = 'AMT_PublicPrivateKeyPair';
const CERTIFICATE = 'AMT_PublicKeyCertificate';

export function keyRef(key: StoredKey): Epr {
  return {
    address: ANONYMOUS,
    resourceUri: resourceUriOf(KEY_PAIR),
    selectors: [{ name: 'InstanceID', value: key.instanceId }],
  };
}

export function certRef(cert: StoredCert): Epr {
  return {
    address: ANONYMOUS,
    resourceUri: resourceUriOf(CERTIFICATE),
    selectors: [{ name: 'InstanceID', value: cert.instanceId }],
  };
}

/** Strict base64 (whitespace allowed, as PEM bodies are often pasted with line breaks). */
function base64(text: string | undefined): Buffer | undefined {
  if (text === undefined) return undefined;
  const t = text.replace(/\s+/g, '');
  if (t === '' || t.length % 4 !== 0 || !/^[A-Za-z0-9+/]+={0,2}$/.test(t)) return undefined;
  return Buffer.from(t, 'base64');
}

/** A certificate or key used by the TLS credential context (committed or pending) cannot be deleted. */
function inUse(model: AmtModel, certHandle: number): boolean {
  return model.committed.tlsContextCert === certHandle || model.working.tlsContextCert === certHandle;
}

/**
 * AMT_PublicKeyManagementService (protocol.md §6 step 6): key generation inside the device,
 * PKCS#10 signing with the device key, and the certificate store.
 */
export function publicKeyManagementService(model: AmtModel): ResourceClass {
  const className = 'AMT_PublicKeyManagementService';
  const name = 'Intel(r) AMT Public Key Management Service';
  const store = model.keystore;
  return {
    className,
    resourceUri: resourceUriOf(className),
    instances: () => [{ keys: serviceKeys(className, name), properties: serviceProperties(className, name) }],
    methods: {
      GenerateKeyPair: async (input) => {
        const alg = input.uint('KeyAlgorithm');
        const len = input.uint('KeyLength');
        if (alg === undefined || len === undefined) return { returnValue: PtStatus.INVALID_PARAMETER };
        const r = await store.generate(alg, len);
        if (!r.ok) return { returnValue: r.status };
        return { returnValue: 0, output: [['KeyPair', keyRef(r.value)]] };
      },
      GeneratePKCS10RequestEx: (input) => {
        const ref = input.instanceRef('KeyPair');
        const alg = input.uint('SigningAlgorithm');
        const csr = base64(input.text('NullSignedCertificateRequest'));
        if (ref === undefined || alg === undefined || csr === undefined)
          return { returnValue: PtStatus.INVALID_PARAMETER };
        const key = store.keyByInstanceId(ref);
        if (key === undefined) return { returnValue: PtStatus.INVALID_PARAMETER };
        const r = store.signRequest(key, alg, csr);
        if (!r.ok) return { returnValue: r.status };
        return { returnValue: 0, output: [['SignedCertificateRequest', r.value.toString('base64')]] };
      },
      AddCertificate: (input) => {
        const der = base64(input.text('CertificateBlob'));
        if (der === undefined) return { returnValue: PtStatus.INVALID_CERT };
        const r = store.addCertificate(der, false);
        if (!r.ok) return { returnValue: r.status };
        return { returnValue: 0, output: [['CreatedCertificate', certRef(r.value)]] };
      },
      AddTrustedRootCertificate: (input) => {
        const der = base64(input.text('CertificateBlob'));
        if (der === undefined) return { returnValue: PtStatus.INVALID_CERT };
        const r = store.addCertificate(der, true);
        if (!r.ok) return { returnValue: r.status };
        return { returnValue: 0, output: [['CreatedCertificate', certRef(r.value)]] };
      },
    },
  };
}

export function publicPrivateKeyPair(model: AmtModel): ResourceClass {
  const store = model.keystore;
  const instance = (k: StoredKey): Instance => ({
    keys: { InstanceID: k.instanceId },
    properties: [
      // AMT shows the public key as a PKCS#1 RSAPublicKey, DER, base64.
      ['DERKey', k.publicKey.export({ type: 'pkcs1', format: 'der' }).toString('base64')],
      ['ElementName', 'Intel(r) AMT Key'],
      ['InstanceID', k.instanceId],
    ],
  });
  return {
    className: KEY_PAIR,
    resourceUri: resourceUriOf(KEY_PAIR),
    instances: () => [...store.keys.values()].map(instance),
    delete(target) {
      const key = store.keyByInstanceId(target.keys.InstanceID ?? '');
      if (key === undefined) throw new WsmanFault('InvalidSelectors');
      for (const c of store.certs.values()) {
        if (c.keyHandle === key.handle && inUse(model, c.handle)) {
          throw new WsmanFault('InvalidParameter', 'The key belongs to the certificate TLS uses.');
        }
      }
      store.keys.delete(key.handle);
    },
  };
}

export function publicKeyCertificate(model: AmtModel): ResourceClass {
  const store = model.keystore;
  const instance = (c: StoredCert): Instance => ({
    keys: { InstanceID: c.instanceId },
    properties: [
      ['ElementName', 'Intel(r) AMT Certificate'],
      ['InstanceID', c.instanceId],
      ['Issuer', amtName(c.x509.issuer)],
      ['ReadOnlyCertificate', false],
      ['Subject', amtName(c.x509.subject)],
      // Sic: the AMT schema spells it this way.
      ['TrustedRootCertficate', c.trustedRoot],
      ['X509Certificate', c.der.toString('base64')],
    ],
  });
  return {
    className: CERTIFICATE,
    resourceUri: resourceUriOf(CERTIFICATE),
    instances: () => [...store.certs.values()].map(instance),
    delete(target) {
      const cert = store.certByInstanceId(target.keys.InstanceID ?? '');
      if (cert === undefined) throw new WsmanFault('InvalidSelectors');
      if (inUse(model, cert.handle)) throw new WsmanFault('InvalidParameter', 'TLS uses this certificate.');
      store.certs.delete(cert.handle);
    },
  };
}
