import { createPrivateKey, createPublicKey, generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';
import type { KeyPair, KeyPairProvider } from '../device/keystore.ts';

const generateRsa = promisify(generateKeyPair);

/**
 * RSA-2048 key generation costs 50-200 ms of CPU; 10,000 devices each making one on
 * GenerateKeyPair would take minutes of CPU during the run. The fleet instead makes a small
 * pool once, before the devices start, and hands the same keys to many devices (device i's
 * k-th key is pool[(i + k) mod size]). A device still holds its key pair and signs its own
 * PKCS#10; only distinct devices may share a public key. docs/simulator-fleet.md says so.
 */
export const DEFAULT_KEY_POOL_SIZE = 16;

/** PKCS#8 / SPKI PEM, so the pool can cross to worker processes over IPC. */
export interface PooledKeyPem {
  privateKeyPem: string;
  publicKeyPem: string;
}

export async function generateKeyPool(size: number, modulusBits = 2048): Promise<PooledKeyPem[]> {
  return Promise.all(
    Array.from({ length: size }, async () => {
      const { privateKey, publicKey } = await generateRsa('rsa', { modulusLength: modulusBits });
      return {
        privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
        publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
      };
    }),
  );
}

export class KeyPool {
  readonly #pairs: readonly KeyPair[];

  constructor(pems: readonly PooledKeyPem[]) {
    this.#pairs = pems.map((p) => ({
      privateKey: createPrivateKey(p.privateKeyPem),
      publicKey: createPublicKey(p.publicKeyPem),
    }));
  }

  get size(): number {
    return this.#pairs.length;
  }

  /** The provider for device `index`; undefined when the pool is empty (the device makes its own keys). */
  providerFor(index: number): KeyPairProvider | undefined {
    if (this.#pairs.length === 0) return undefined;
    let k = 0;
    const pairs = this.#pairs;
    return (modulusBits) => {
      const pair = pairs[(index + k++) % pairs.length];
      // A request for another size than the pool holds gets a fresh key of that size.
      if (pair === undefined || pair.privateKey.asymmetricKeyDetails?.modulusLength !== modulusBits) {
        return generateRsa('rsa', { modulusLength: modulusBits });
      }
      return Promise.resolve(pair);
    };
  }
}
