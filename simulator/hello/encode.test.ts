import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isScsError } from '../../src/errors.ts';
import { decodeHello } from '../../src/hello/decode.ts';
import { checkChar } from '../../src/psk/checksum.ts';
import { CertHashAlgorithm, encodePkiHello, encodePskHello, PSK_HELLO_LENGTH } from './encode.ts';
import { normalizeUuid, uuidFromBytes, uuidToBytes } from './uuid.ts';

// SMBIOS 2.6+ §7.2.1's own example: text 00112233-4455-6677-8899-AABBCCDDEEFF is stored as
// 33 22 11 00 55 44 77 66 88 99 AA BB CC DD EE FF (first three fields little-endian).
const SMBIOS_TEXT = '00112233-4455-6677-8899-aabbccddeeff';
const SMBIOS_WIRE = Buffer.from('33221100554477668899aabbccddeeff', 'hex');

describe('UUID text form (protocol.md §1c)', () => {
  it('turns text into SMBIOS-order bytes (the SMBIOS specification example)', () => {
    assert.deepEqual(uuidToBytes(SMBIOS_TEXT), SMBIOS_WIRE);
  });

  it('turns SMBIOS-order bytes into lowercase text (the SMBIOS specification example)', () => {
    assert.equal(uuidFromBytes(SMBIOS_WIRE), SMBIOS_TEXT);
  });

  it('accepts uppercase and surrounding spaces, printing lowercase', () => {
    assert.deepEqual(uuidToBytes('  00112233-4455-6677-8899-AABBCCDDEEFF '), SMBIOS_WIRE);
    assert.equal(normalizeUuid('00112233-4455-6677-8899-AABBCCDDEEFF'), SMBIOS_TEXT);
  });

  it('round-trips every byte value in every position', () => {
    for (let v = 0; v < 256; v++) {
      const bytes = Buffer.alloc(16);
      for (let i = 0; i < 16; i++) bytes[i] = (v + i * 17) & 0xff;
      assert.deepEqual(uuidToBytes(uuidFromBytes(bytes)), bytes);
    }
  });

  it('refuses text that is not 8-4-4-4-12 hex and byte arrays that are not 16 long', () => {
    for (const bad of ['', '00112233445566778899aabbccddeeff', '00112233-4455-6677-8899-aabbccddeefg']) {
      assert.throws(
        () => uuidToBytes(bad),
        (e) => isScsError(e, 'SCS_SIM_CONFIG_INVALID'),
      );
    }
    assert.throws(
      () => uuidFromBytes(new Uint8Array(15)),
      (e) => isScsError(e, 'SCS_SIM_CONFIG_INVALID'),
    );
  });
});

describe('PSK hello, interface version 2 (protocol.md §1a)', () => {
  it('writes every field at its §1a offset, little-endian, in exactly 32 bytes', () => {
    const hello = encodePskHello({
      adminCredentialsSet: true,
      retryCount: 0x01020304,
      uuid: SMBIOS_TEXT,
      pid: 'ABCD1234',
    });
    assert.equal(hello.length, PSK_HELLO_LENGTH);
    // Read raw bytes, not through the encoder's own offsets table.
    assert.deepEqual([...hello.subarray(0, 2)], [1, 0]);
    assert.deepEqual([...hello.subarray(2, 4)], [2, 0]);
    assert.deepEqual([...hello.subarray(4, 8)], [4, 3, 2, 1]);
    assert.deepEqual(hello.subarray(8, 24), SMBIOS_WIRE);
    assert.equal(hello.subarray(24, 32).toString('latin1'), 'ABCD1234');
  });

  it('writes AdminCredentialsSet 0 when the MEBx password is still the default', () => {
    const hello = encodePskHello({ adminCredentialsSet: false, retryCount: 14, uuid: SMBIOS_TEXT, pid: 'ABCD1234' });
    assert.deepEqual([...hello.subarray(0, 8)], [0, 0, 2, 0, 14, 0, 0, 0]);
  });

  it('refuses a dashed or lowercase PID and a RetryCount outside u32', () => {
    const base = { adminCredentialsSet: true, retryCount: 0, uuid: SMBIOS_TEXT };
    for (const pid of ['ABCD-1234', 'abcd1234', 'ABC123']) {
      assert.throws(
        () => encodePskHello({ ...base, pid }),
        (e) => isScsError(e, 'SCS_SIM_CONFIG_INVALID'),
      );
    }
    for (const retryCount of [-1, 2 ** 32, 1.5]) {
      assert.throws(
        () => encodePskHello({ ...base, retryCount, pid: 'ABCD1234' }),
        (e) => isScsError(e, 'SCS_SIM_CONFIG_INVALID'),
      );
    }
  });
});

describe('PKI hello, interface version 3 (protocol.md §1b)', () => {
  it('writes the §1a header with version 3, the hash count at 24 and {algorithm, length, hash} entries', () => {
    const sha1 = Buffer.alloc(20, 0xaa);
    const sha256 = Buffer.alloc(32, 0xbb);
    const hello = encodePkiHello({ adminCredentialsSet: false, retryCount: 7, uuid: SMBIOS_TEXT }, [
      { algorithm: CertHashAlgorithm.Sha1, hash: sha1 },
      { algorithm: CertHashAlgorithm.Sha256, hash: sha256 },
    ]);
    assert.equal(hello.length, 25 + 2 + 20 + 2 + 32);
    assert.deepEqual([...hello.subarray(0, 8)], [0, 0, 3, 0, 7, 0, 0, 0]);
    assert.deepEqual(hello.subarray(8, 24), SMBIOS_WIRE);
    assert.equal(hello[24], 2);
    assert.deepEqual([...hello.subarray(25, 27)], [1, 20]);
    assert.deepEqual(hello.subarray(27, 47), sha1);
    assert.deepEqual([...hello.subarray(47, 49)], [2, 32]);
    assert.deepEqual(hello.subarray(49), sha256);
  });

  it('refuses a hash whose length does not match its algorithm', () => {
    assert.throws(
      () =>
        encodePkiHello({ adminCredentialsSet: false, retryCount: 0, uuid: SMBIOS_TEXT }, [
          { algorithm: CertHashAlgorithm.Sha384, hash: Buffer.alloc(32) },
        ]),
      (e) => isScsError(e, 'SCS_SIM_CONFIG_INVALID'),
    );
  });
});

describe('simulator encoder and server decoder agree (two independent implementations of §1)', () => {
  it('the server decodes a simulator v2 hello to the same fields', () => {
    // The server checks the PID's check character; the encoder sends whatever the device holds.
    const fields = {
      adminCredentialsSet: true,
      retryCount: 17,
      uuid: '4c4c4544-0042-3510-8052-b4c04f4b4e31',
      pid: `ABCD123${checkChar('ABCD123')}`,
    };
    const hello = decodeHello(encodePskHello(fields));
    assert.deepEqual(hello, { version: 2, ...fields });
  });

  it('the server decodes a simulator v3 hello with its hashes', () => {
    const sha256 = Buffer.alloc(32, 0x5a);
    const hello = decodeHello(
      encodePkiHello({ adminCredentialsSet: false, retryCount: 0, uuid: SMBIOS_TEXT }, [
        { algorithm: CertHashAlgorithm.Sha256, hash: sha256 },
      ]),
    );
    assert.equal(hello.version, 3);
    assert.equal(hello.uuid, SMBIOS_TEXT);
    assert.deepEqual(hello.version === 3 ? hello.hashes : [], [{ algorithm: 'sha256', hash: sha256.toString('hex') }]);
  });
});
