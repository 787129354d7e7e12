import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isScsError } from '../../errors.ts';
import { Secret } from '../../secret.ts';
import { generatePid, generatePps } from '../generate.ts';
import { BundleEncoder, scryptKdf } from './bundle.ts';
import { encodeCsvHeader, encodeCsvRows } from './csv.ts';
import { detectFormat, DETECT_SAMPLE_BYTES } from './detect.ts';
import { encodeSetupBin } from './setupbin.ts';

function pair() {
  return { pid: generatePid(), pps: new Secret(generatePps()) };
}

function unknownMessage(sample: Buffer): string {
  try {
    detectFormat(sample);
  } catch (e) {
    assert.ok(isScsError(e, 'SCS_FORMAT_UNKNOWN'), String(e));
    return e.message;
  }
  assert.fail('expected SCS_FORMAT_UNKNOWN');
}

describe('format detection', () => {
  it('recognises a bundle by its magic, even cut short', () => {
    const enc = new BundleEncoder({
      passphrase: new Secret('pass'),
      recordCount: 0,
      sourceName: 's',
      kdfParams: { log2N: 15, r: 8, p: 1 },
      kdf: scryptKdf,
    });
    const header = enc.start();
    assert.equal(detectFormat(header), 'bundle');
    assert.equal(detectFormat(header.subarray(0, 3)), 'bundle');
  });

  it('recognises setup.bin of every format by its GUID', () => {
    for (const version of [1, 2, 3, 4] as const) {
      const file = encodeSetupBin([pair()], {
        version,
        currentMebxPassword: new Secret('admin'),
        newMebxPassword: new Secret('P@ssw0rd!'),
      });
      assert.equal(detectFormat(file.subarray(0, DETECT_SAMPLE_BYTES)), 'setupbin');
    }
  });

  it('takes text as CSV: exports, a BOM, a sample cut inside a UTF-8 character', () => {
    assert.equal(detectFormat(Buffer.concat([encodeCsvHeader(), encodeCsvRows([pair()])])), 'csv');
    assert.equal(detectFormat(Buffer.from('\uFEFFpid,pps\n', 'utf8')), 'csv');
    assert.equal(detectFormat(Buffer.from('batch Zürich').subarray(0, 8)), 'csv');
  });

  it('refuses empty files and unknown binary content without quoting it', () => {
    assert.match(unknownMessage(Buffer.alloc(0)), /the file is empty/);
    assert.match(unknownMessage(Buffer.from([0x50, 0x4b, 0x03, 0x04])), /binary content \(byte 0x03 at offset 2\)/);
    assert.match(unknownMessage(Buffer.from([0x41, 0xff, 0xfe, 0x41])), /neither UTF-8 text nor a known binary format/);
    // a setup.bin GUID with one byte changed is not a setup.bin
    const file = encodeSetupBin([pair()], { currentMebxPassword: new Secret('a') });
    file[0] = 0x00;
    assert.match(unknownMessage(file), /binary content/);
  });
});
