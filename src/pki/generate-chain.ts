import { randomBytes, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';
import { Secret } from '../secret.ts';
import { AMT_PROVISIONING_EKU } from './chain.ts';

x509.cryptoProvider.set(webcrypto);

/**
 * A throw-away provisioning chain (root -> intermediate -> leaf with Intel's provisioning EKU
 * and CN inside `dnsSuffix`), for `demo --mode pki` and tests. Real deployments import a chain
 * bought from a CA whose root AMT firmware lists.
 */
const ALG = {
  name: 'RSASSA-PKCS1-v1_5',
  hash: 'SHA-256',
  modulusLength: 2048,
  publicExponent: new Uint8Array([1, 0, 1]),
} as const;

export interface GeneratedChain {
  /** Leaf first, root last. */
  readonly certificates: Buffer[];
  readonly keyPkcs8: Secret<Buffer>;
  readonly rootDer: Buffer;
  readonly leafCommonName: string;
}

function serial(): string {
  const b = randomBytes(12);
  b[0] = (b[0] as number) & 0x7f;
  return b.toString('hex');
}

export interface GenerateChainOptions {
  readonly dnsSuffix: string;
  /** Leaf CN; default `provisioning.<dnsSuffix>`. */
  readonly commonName?: string;
  readonly notBefore?: Date;
  readonly notAfter?: Date;
  /** Leave out Intel's EKU (to test the refusal). */
  readonly withoutProvisioningEku?: boolean;
}

export async function generateProvisioningChain(o: GenerateChainOptions): Promise<GeneratedChain> {
  const notBefore = o.notBefore ?? new Date(Date.now() - 3_600_000);
  const notAfter = o.notAfter ?? new Date(Date.now() + 365 * 86_400_000);
  const [rootKeys, midKeys, leafKeys] = await Promise.all([
    webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']),
    webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']),
    webcrypto.subtle.generateKey(ALG, true, ['sign', 'verify']),
  ]);
  const ca = (path: number): x509.Extension[] => [
    new x509.BasicConstraintsExtension(true, path, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
  ];
  const root = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serial(),
    name: 'CN=amt-scs demo provisioning root, O=amt-scs demo',
    notBefore,
    notAfter,
    signingAlgorithm: ALG,
    keys: rootKeys,
    extensions: ca(1),
  });
  const mid = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: 'CN=amt-scs demo provisioning intermediate, O=amt-scs demo',
    issuer: root.subject,
    notBefore,
    notAfter,
    signingAlgorithm: ALG,
    publicKey: midKeys.publicKey,
    signingKey: rootKeys.privateKey,
    extensions: ca(0),
  });
  const cn = o.commonName ?? `provisioning.${o.dnsSuffix}`;
  const leaf = await x509.X509CertificateGenerator.create({
    serialNumber: serial(),
    subject: `CN=${cn}, O=amt-scs demo`,
    issuer: mid.subject,
    notBefore,
    notAfter,
    signingAlgorithm: ALG,
    publicKey: leafKeys.publicKey,
    signingKey: midKeys.privateKey,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment, true),
      new x509.ExtendedKeyUsageExtension(
        o.withoutProvisioningEku === true
          ? [x509.ExtendedKeyUsage.clientAuth]
          : [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth, AMT_PROVISIONING_EKU],
      ),
    ],
  });
  const keyPkcs8 = Buffer.from(await webcrypto.subtle.exportKey('pkcs8', leafKeys.privateKey));
  return {
    certificates: [leaf, mid, root].map((c) => Buffer.from(c.rawData)),
    keyPkcs8: new Secret(keyPkcs8),
    rootDer: Buffer.from(root.rawData),
    leafCommonName: cn,
  };
}
