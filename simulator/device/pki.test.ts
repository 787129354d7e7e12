import assert from 'node:assert/strict';
import { createHash, createPrivateKey, randomBytes, sign, X509Certificate } from 'node:crypto';
import tls from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { generateProvisioningChain, type GeneratedChain } from '../../src/pki/generate-chain.ts';
import { pooledKeyPairs } from '../wsman/test-harness.ts';
import { SimDevice } from './device.ts';
import { AmtModel } from './model.ts';
import { DEFAULT_ROOT_HASHES } from './pki.ts';
import { PtStatus } from './pt-status.ts';
import { resolveSetup, type DeviceSetup } from './setup.ts';

const UUID = '8c8b2a1e-1d2c-4b5a-9f8e-0123456789ab';
const sha256 = (der: Buffer): string => createHash('sha256').update(der).digest('hex');
const pem = (ders: readonly Buffer[]): string => ders.map((d) => new X509Certificate(d).toString()).join('');

function pkiSetup(chain: GeneratedChain, extra: Partial<DeviceSetup> = {}): DeviceSetup {
  return {
    uuid: UUID,
    mebxPassword: 'P@ssw0rd',
    domainName: 'example.com',
    provisioningState: 'In',
    pki: { userHashes: [sha256(chain.rootDer)] },
    ...extra,
  };
}

function model(setup: DeviceSetup): AmtModel {
  return new AmtModel(resolveSetup(setup), {
    keyPairProvider: pooledKeyPairs(),
    clock: Date.now,
    provisioningWindowMs: 24 * 3_600_000,
    onEvent: () => undefined,
  });
}

function addChain(m: AmtModel, ders: readonly Buffer[]): number {
  let status = 0;
  ders.forEach((d, i) => {
    status = m.addNextCertInChain(d, i === 0, i === ders.length - 1);
  });
  return status;
}

describe('simulated device: certificate-based setup', () => {
  let chain: GeneratedChain;
  let stranger: GeneratedChain;
  before(async () => {
    [chain, stranger] = await Promise.all([
      generateProvisioningChain({ dnsSuffix: 'example.com' }),
      generateProvisioningChain({ dnsSuffix: 'example.com' }),
    ]);
  });

  it('sends a version 3 hello with Intel default hashes and the user-added root hash', () => {
    const d = new SimDevice(pkiSetup(chain), { keyPairProvider: pooledKeyPairs() });
    const id = d.helloIdentity();
    assert.ok(id?.hashes !== undefined);
    assert.equal(id.hashes.length, DEFAULT_ROOT_HASHES.length + 1);
    assert.ok(
      id.hashes.some((h) => h.algorithm === 2 && Buffer.from(h.hash).toString('hex') === sha256(chain.rootDer)),
    );
    assert.equal(d.snapshot().pkiSetup, true);
  });

  it('takes a trusted chain leaf to root and goes to admin control mode on a valid AdminSetup signature', () => {
    const m = model(pkiSetup(chain));
    assert.equal(addChain(m, chain.certificates), PtStatus.SUCCESS);
    const mc = randomBytes(20);
    const key = createPrivateKey({ key: chain.keyPkcs8.reveal(), format: 'der', type: 'pkcs8' });
    const signature = sign('sha256', Buffer.concat([m.configurationNonce, mc]), key);
    const ha1 = createHash('md5').update(`admin:${m.digestRealm}:N3w-Admin!`).digest('hex');
    assert.equal(m.adminSetup(2, ha1, mc, 2, signature), PtStatus.SUCCESS);
    assert.equal(m.state, 2);
    assert.equal(m.controlMode, 2);
    assert.equal(m.mode, 1);
    assert.equal(m.ha1For('admin')?.toString('hex'), ha1);
  });

  it('refuses a signature over another nonce, and a replayed one (the nonce is used up)', () => {
    const m = model(pkiSetup(chain));
    addChain(m, chain.certificates);
    const key = createPrivateKey({ key: chain.keyPkcs8.reveal(), format: 'der', type: 'pkcs8' });
    const mc = randomBytes(20);
    const ha1 = '0'.repeat(32);
    const wrong = sign('sha256', Buffer.concat([randomBytes(20), mc]), key);
    assert.equal(m.adminSetup(2, ha1, mc, 2, wrong), PtStatus.AUTHENTICATION_FAILED);
    const stale = m.configurationNonce;
    const replay = sign('sha256', Buffer.concat([stale, mc]), key);
    assert.equal(
      m.adminSetup(99, ha1, mc, 2, replay),
      PtStatus.INVALID_PARAMETER,
      'an attempt that fails on its parameters',
    );
    assert.equal(m.adminSetup(2, ha1, mc, 2, replay), PtStatus.AUTHENTICATION_FAILED, 'still used the nonce up');
    assert.notDeepEqual(m.configurationNonce, stale);
    assert.equal(m.state, 1);
  });

  it('refuses a chain whose root it does not trust, a CN outside its DNS suffix, and AdminSetup before a chain', () => {
    const m = model(pkiSetup(chain));
    assert.equal(addChain(m, stranger.certificates), PtStatus.INVALID_CERT);
    assert.equal(m.lastPkiRefusal, 'root-not-trusted');
    assert.equal(m.adminSetup(2, '0'.repeat(32), randomBytes(20), 2, Buffer.alloc(256)), PtStatus.DATA_MISSING);
    const other = model(pkiSetup(chain, { domainName: 'corp.test' }));
    assert.equal(addChain(other, chain.certificates), PtStatus.INVALID_CERT);
    assert.equal(other.lastPkiRefusal, 'dns-suffix');
    const mebx = model(
      pkiSetup(chain, {
        domainName: 'corp.test',
        pki: { dnsSuffix: 'example.com', userHashes: [sha256(chain.rootDer)] },
      }),
    );
    assert.equal(
      addChain(mebx, chain.certificates),
      PtStatus.SUCCESS,
      'the MEBx PKI DNS suffix wins over the DHCP domain',
    );
  });

  describe('mutual TLS on 16993', () => {
    let device: SimDevice;
    let port: number;
    before(async () => {
      device = new SimDevice(pkiSetup(chain), { keyPairProvider: pooledKeyPairs() });
      ({ tlsPort: port } = await device.start({ tlsPort: 0, httpPort: 0 }));
    });
    after(() => device.stop());

    function connect(c: GeneratedChain): Promise<{ status: string }> {
      return new Promise((resolve) => {
        const keyPem = createPrivateKey({ key: c.keyPkcs8.reveal(), format: 'der', type: 'pkcs8' }).export({
          type: 'pkcs8',
          format: 'pem',
        });
        const s = tls.connect({
          host: '127.0.0.1',
          port,
          key: keyPem,
          cert: pem(c.certificates),
          rejectUnauthorized: false,
          minVersion: 'TLSv1.2',
        });
        let data = '';
        s.on('secureConnect', () => s.write('POST /wsman HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n'));
        s.on('data', (b: Buffer) => {
          data += b.toString();
          if (data.includes('\r\n\r\n')) s.destroy();
        });
        s.on('error', () => undefined);
        s.on('close', () => resolve({ status: data.split('\r\n')[0] ?? '' }));
      });
    }

    it('answers HTTP once the client presents a trusted provisioning chain', async () => {
      const r = await connect(chain);
      assert.match(r.status, /^HTTP\/1\.1 401/);
    });

    it('closes the connection before any HTTP when the chain root is not trusted', async () => {
      const failed = new Promise<string>((resolve) => device.once('handshakeFailed', ({ code }) => resolve(code)));
      const r = await connect(stranger);
      assert.equal(r.status, '');
      assert.equal(await failed, 'CLIENT_CERTIFICATE_REFUSED');
      assert.equal(device.snapshot().lastPkiRefusal, 'root-not-trusted');
    });
  });
});
