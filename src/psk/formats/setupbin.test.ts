import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import fc from 'fast-check';
import { isScsError } from '../../errors.ts';
import { Secret } from '../../secret.ts';
import { ALPHABET, checkChar } from '../checksum.ts';
import { generatePid, generatePps } from '../generate.ts';
import type { Pid } from '../pid.ts';
import type { Pps } from '../pps.ts';
import {
  decodeSetupBin,
  DEFAULT_SETUPBIN_VERSION,
  encodeSetupBin,
  type SetupBinEncodeOptions,
  type SetupBinRecordInput,
  type SetupBinVersion,
} from './setupbin.ts';

const symbol = fc.constantFrom(...ALPHABET.split(''));
const pidArb = fc.array(symbol, { minLength: 7, maxLength: 7 }).map((a) => {
  const body = a.join('');
  return (body + checkChar(body)) as Pid;
});
const ppsArb = fc
  .array(fc.array(symbol, { minLength: 3, maxLength: 3 }), { minLength: 8, maxLength: 8 })
  .map((groups) => groups.map((g) => g.join('') + checkChar(g.join(''))).join('') as Pps);

const GUID_HEX: Record<SetupBinVersion, string> = {
  1: 'b516fb7187cbf94ab441ca7b383578f9',
  2: '96b28158cf6b724c8b91a15e512e99c4',
  3: 'a7f7f6c689c4f64793ede2e5020da51d',
  4: 'aaa93452e129a9448d4d081c07b96353',
};

const FIXED_PID = ('ABCDEFG' + checkChar('ABCDEFG')) as Pid;
const FIXED_PPS = ['AAA', 'BBB', 'CCC', 'DDD', 'EEE', 'FFF', 'GGG', 'HHH'].map((g) => g + checkChar(g)).join('') as Pps;
const ADMIN = { currentMebxPassword: new Secret('admin'), newMebxPassword: new Secret('P@ssw0rd!') };

function record(over: Partial<SetupBinRecordInput> = {}): SetupBinRecordInput {
  return { pid: generatePid(), pps: new Secret(generatePps()), ...over };
}

function malformedOf(bytes: Buffer): string {
  try {
    decodeSetupBin(bytes);
  } catch (e) {
    assert.ok(isScsError(e, 'SCS_SETUPBIN_MALFORMED'), String(e));
    return e.message;
  }
  assert.fail('expected SCS_SETUPBIN_MALFORMED');
}

function inputErrorOf(records: SetupBinRecordInput[], options: SetupBinEncodeOptions): string {
  try {
    encodeSetupBin(records, options);
  } catch (e) {
    assert.ok(isScsError(e, 'SCS_FORMAT_INPUT_INVALID'), String(e));
    return e.message;
  }
  assert.fail('expected SCS_FORMAT_INPUT_INVALID');
}

/** What Intel's BIOS does after the MEBx took the next record (UsbProvision.c, RemoveProvisionRecordFromFile). */
function biosConsumesNext(file: Buffer, { writeRecord = true, writeCount = true } = {}): void {
  const consumed = file.readUInt32LE(32);
  const at = 512 * (1 + consumed);
  if (writeRecord) {
    file.fill(0, at + file.readUInt16LE(at + 18), at + 512);
    file.writeUInt32LE(file.readUInt32LE(at + 4) & ~1, at + 4);
  }
  if (writeCount) file.writeUInt32LE(consumed + 1, 32);
}

/** A one-record file with hand-built entries: [module, variable, value bytes]. */
function handBuilt(entries: [number, number, Buffer][], recordOver: (b: Buffer) => void = () => undefined): Buffer {
  const file = Buffer.alloc(1024);
  Buffer.from(GUID_HEX[2], 'hex').copy(file, 0);
  file.writeUInt16LE(1, 16);
  file.writeUInt16LE(46, 18);
  file[24] = 2;
  file[25] = 1;
  file.writeUInt32LE(1, 28);
  file.writeUInt16LE(1, 36);
  file.writeUInt16LE(1, 40);
  file.writeUInt16LE(2, 42);
  file.writeUInt32LE(1, 512);
  file.writeUInt32LE(1, 516);
  file.writeUInt16LE(1, 528);
  file.writeUInt16LE(24, 530);
  file.writeUInt32LE(1, 532);
  let at = 512 + 24;
  for (const [m, v, value] of entries) {
    file.writeUInt16LE(m, at);
    file.writeUInt16LE(v, at + 2);
    file.writeUInt16LE(value.length, at + 4);
    value.copy(file, at + 8);
    at += 8 + ((value.length + 3) & ~3);
  }
  recordOver(file);
  return file;
}

const PSK_ENTRIES: [number, number, Buffer][] = [
  [1, 1, Buffer.from('admin')],
  [2, 1, Buffer.from(FIXED_PID)],
  [2, 2, Buffer.from(FIXED_PPS)],
];

describe('setup.bin encoder: exact bytes (protocol.md §2a)', () => {
  const file = encodeSetupBin(
    [
      {
        pid: FIXED_PID,
        pps: new Secret(FIXED_PPS),
        hostName: 'ws-0042',
        provisioningServerAddress: '192.168.10.5',
        provisioningServerPort: 9971,
      },
      record(),
      record(),
    ],
    { ...ADMIN, domainName: 'corp.example', scramble: false },
  );

  it('writes the header fields at their offsets', () => {
    assert.equal(file.length, 512 * 4);
    assert.equal(file.subarray(0, 16).toString('hex'), GUID_HEX[2]);
    assert.equal(file.readUInt16LE(16), 1, 'chunks in the header record');
    assert.equal(file.readUInt16LE(18), 42 + 2 * 2, 'header bytes used: 42 + 2 x module count');
    assert.equal(file.readUInt32LE(20), 0, 'header record number');
    assert.deepEqual([file[24], file[25]], [2, 1], 'major, minor');
    assert.equal(file.readUInt16LE(26), 0, 'flags');
    assert.equal(file.readUInt32LE(28), 3, 'data records');
    assert.equal(file.readUInt32LE(32), 0, 'consumed');
    assert.equal(file.readUInt16LE(36), 1, 'chunks per data record');
    assert.equal(file.readUInt16LE(38), 0, 'reserved');
    assert.deepEqual([file.readUInt16LE(40), file.readUInt16LE(42), file.readUInt16LE(44)], [1, 2, 0], 'module list');
    assert.ok(
      file.subarray(46, 512).every((b) => b === 0),
      'zero padding to 512',
    );
  });

  it('writes each data record header and its 4-byte aligned entries', () => {
    for (let n = 1; n <= 3; n++) {
      const r = 512 * n;
      assert.equal(file.readUInt32LE(r), 1, 'type: data');
      assert.equal(file.readUInt32LE(r + 4), 1, 'flags: valid, not scrambled');
      assert.equal(file.readUInt32LE(r + 8), 0);
      assert.equal(file.readUInt32LE(r + 12), 0);
      assert.equal(file.readUInt16LE(r + 16), 1, 'chunk count');
      assert.equal(file.readUInt16LE(r + 18), 24, 'header bytes');
      assert.equal(file.readUInt32LE(r + 20), n, 'record number');
    }
    const r = 512;
    const entry = (at: number): [number, number, number, number] => [
      file.readUInt16LE(r + at),
      file.readUInt16LE(r + at + 2),
      file.readUInt16LE(r + at + 4),
      file.readUInt16LE(r + at + 6),
    ];
    assert.deepEqual(entry(24), [1, 1, 5, 0]);
    assert.equal(file.toString('latin1', r + 32, r + 37), 'admin');
    assert.deepEqual([...file.subarray(r + 37, r + 40)], [0, 0, 0], 'padding to 4');
    assert.deepEqual(entry(40), [1, 2, 9, 0]);
    assert.equal(file.toString('latin1', r + 48, r + 57), 'P@ssw0rd!');
    assert.deepEqual(entry(60), [2, 1, 8, 0]);
    assert.equal(file.toString('latin1', r + 68, r + 76), FIXED_PID);
    assert.deepEqual(entry(76), [2, 2, 32, 0]);
    assert.equal(file.toString('latin1', r + 84, r + 116), FIXED_PPS, 'PPS: ASCII, no dashes');
    assert.deepEqual(entry(116), [2, 11, 7, 0]);
    assert.equal(file.toString('latin1', r + 124, r + 131), 'ws-0042');
    assert.deepEqual(entry(132), [2, 12, 12, 0]);
    assert.equal(file.toString('latin1', r + 140, r + 152), 'corp.example');
    assert.deepEqual(entry(152), [2, 17, 4, 0]);
    assert.deepEqual([...file.subarray(r + 160, r + 164)], [5, 10, 168, 192], 'IPv4 as a little-endian u32');
    assert.deepEqual(entry(164), [2, 18, 2, 0]);
    assert.equal(file.readUInt16LE(r + 172), 9971, 'port u16 LE');
    assert.deepEqual(entry(176), [0, 0, 0, 0], 'ended by a zero module/variable');
    assert.ok(file.subarray(r + 176, r + 512).every((b) => b === 0));
  });

  it('scrambles exactly the record bodies: each byte plus 17 mod 256, header bytes untouched', () => {
    const scrambled = encodeSetupBin([{ pid: FIXED_PID, pps: new Secret(FIXED_PPS) }], ADMIN);
    const plainFile = encodeSetupBin([{ pid: FIXED_PID, pps: new Secret(FIXED_PPS) }], { ...ADMIN, scramble: false });
    assert.ok(scrambled.subarray(0, 512).equals(plainFile.subarray(0, 512)));
    assert.equal(scrambled.readUInt32LE(516), 0b11, 'flags: valid | scrambled');
    assert.ok(scrambled.subarray(520, 536).equals(plainFile.subarray(520, 536)));
    for (let b = 536; b < 1024; b++) assert.equal(scrambled[b], ((plainFile[b] as number) + 17) & 0xff, `byte ${b}`);
    assert.equal(scrambled.indexOf(Buffer.from(FIXED_PPS)), -1, 'the PPS is not visible in the file');
    assert.equal(decodeSetupBin(scrambled).records[0]?.pps?.reveal(), FIXED_PPS);
  });

  it('writes each version with its GUID and major.minor, v2 as 2.1', () => {
    const expected: Record<SetupBinVersion, [number, number]> = { 1: [1, 0], 2: [2, 1], 3: [3, 0], 4: [4, 0] };
    for (const v of [1, 2, 3, 4] as const) {
      const f = encodeSetupBin([record()], { ...ADMIN, version: v });
      assert.equal(f.subarray(0, 16).toString('hex'), GUID_HEX[v]);
      assert.deepEqual([f[24], f[25]], expected[v]);
      assert.equal(decodeSetupBin(f).version, v);
    }
    assert.equal(DEFAULT_SETUPBIN_VERSION, 2);
  });

  it('sets header flag bit 0 for "do not consume"', () => {
    const f = encodeSetupBin([record()], { ...ADMIN, doNotConsume: true });
    assert.equal(f.readUInt16LE(26), 1);
    assert.equal(decodeSetupBin(f).doNotConsume, true);
  });

  it('writes the optional manageability selection (module 1 var 3) only when asked', () => {
    const f = encodeSetupBin([{ pid: FIXED_PID, pps: new Secret(FIXED_PPS) }], {
      currentMebxPassword: new Secret('Ab1!'),
      enableAmt: true,
      scramble: false,
    });
    assert.deepEqual(
      [f.readUInt16LE(512 + 36), f.readUInt16LE(512 + 38), f.readUInt16LE(512 + 40), f[512 + 44]],
      [1, 3, 1, 1],
    );
    assert.equal(decodeSetupBin(f).records[0]?.enableAmt, true);
    assert.equal(decodeSetupBin(encodeSetupBin([record()], ADMIN)).records[0]?.enableAmt, undefined);
  });

  it('encodes 20,000 records into one buffer of the documented size (about 10 MB)', () => {
    const pairs = Array.from({ length: 20_000 }, () => record());
    const f = encodeSetupBin(pairs, ADMIN);
    assert.equal(f.length, 512 * 20_001);
    const decoded = decodeSetupBin(f);
    assert.equal(decoded.records.length, 20_000);
    assert.equal(decoded.records[19_999]?.pid, pairs[19_999]?.pid);
  });
});

describe('setup.bin round trip', () => {
  it('decodes what it encodes for random pairs, versions, scrambling and settings', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ pid: pidArb, pps: ppsArb }), { minLength: 1, maxLength: 12 }),
        fc.constantFrom<SetupBinVersion>(2, 3, 4),
        fc.boolean(),
        fc.option(fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)), { nil: undefined }),
        fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
        (pairs, version, scramble, ip, port) => {
          const options: SetupBinEncodeOptions = {
            ...ADMIN,
            version,
            scramble,
            domainName: 'example.org',
            ...(ip === undefined ? {} : { provisioningServerAddress: ip.join('.') }),
            ...(port === undefined ? {} : { provisioningServerPort: port }),
          };
          const f = encodeSetupBin(
            pairs.map((p, i) => ({ pid: p.pid, pps: new Secret(p.pps), hostName: `host${i}` })),
            options,
          );
          const d = decodeSetupBin(f);
          assert.equal(d.recordCount, pairs.length);
          assert.equal(d.consumedCount, 0);
          d.records.forEach((r, i) => {
            const p = pairs[i];
            assert.ok(p);
            assert.equal(r.number, i + 1);
            assert.equal(r.valid, true);
            assert.equal(r.scrambled, scramble);
            assert.equal(r.consumed, false);
            assert.equal(r.pid, p.pid);
            assert.equal(r.pps?.reveal(), p.pps);
            assert.equal(r.currentMebxPassword?.reveal(), 'admin');
            assert.equal(r.newMebxPassword?.reveal(), 'P@ssw0rd!');
            assert.equal(r.hostName, `host${i}`);
            assert.equal(r.domainName, 'example.org');
            assert.equal(r.provisioningServerAddress, ip?.join('.'));
            assert.equal(r.provisioningServerPort, port);
            assert.deepEqual(r.skipped, []);
          });
        },
      ),
      { numRuns: 60 },
    );
  });

  it('round-trips format 1 with passwords and the PSK only', () => {
    const r = record();
    const d = decodeSetupBin(encodeSetupBin([r], { ...ADMIN, version: 1 }));
    assert.equal(d.version, 1);
    assert.equal(d.records[0]?.pid, r.pid);
    assert.equal(d.records[0]?.pps?.reveal(), r.pps.reveal());
  });

  it('lets a record override the file-wide settings', () => {
    const d = decodeSetupBin(
      encodeSetupBin([record({ domainName: 'lab.example' }), record()], { ...ADMIN, domainName: 'corp.example' }),
    );
    assert.deepEqual(
      d.records.map((r) => r.domainName),
      ['lab.example', 'corp.example'],
    );
  });
});

describe('setup.bin decoder: reading what others wrote', () => {
  it('skips unknown modules and variables, and IPv6 server addresses, without failing', () => {
    const f = handBuilt([
      [1, 1, Buffer.from('admin')],
      [1, 6, Buffer.alloc(16, 7)], // power package GUID
      [2, 1, Buffer.from(FIXED_PID)],
      [2, 2, Buffer.from(FIXED_PPS)],
      [2, 10, Buffer.from([3])], // SOL/IDER
      [2, 17, Buffer.alloc(16, 1)], // IPv6 provisioning server
      [9, 4, Buffer.from('x')], // a module nobody knows
      [2, 99, Buffer.alloc(0)],
    ]);
    const r = decodeSetupBin(f).records[0];
    assert.ok(r);
    assert.equal(r.pid, FIXED_PID);
    assert.equal(r.pps?.reveal(), FIXED_PPS);
    assert.equal(r.provisioningServerAddress, undefined);
    assert.deepEqual(
      r.skipped.map((s) => [s.module, s.variable, s.length]),
      [
        [1, 6, 16],
        [2, 10, 1],
        [2, 17, 16],
        [9, 4, 1],
        [2, 99, 0],
      ],
    );
    assert.equal(r.skipped[0]?.offset, 512 + 24 + 16);
  });

  it('accepts format 2.0 as well as 2.1, a dashed PPS and NUL-padded strings', () => {
    const dashed = (FIXED_PPS.match(/.{4}/g) ?? []).join('-');
    const f = handBuilt(
      [
        [1, 1, Buffer.from('admin\0')],
        [2, 1, Buffer.from(`${FIXED_PID}\0`)],
        [2, 2, Buffer.from(dashed)],
      ],
      (b) => (b[25] = 0),
    );
    const d = decodeSetupBin(f);
    assert.equal(d.minorVersion, 0);
    assert.equal(d.records[0]?.currentMebxPassword?.reveal(), 'admin');
    assert.equal(d.records[0]?.pid, FIXED_PID);
    assert.equal(d.records[0]?.pps?.reveal(), FIXED_PPS);
  });

  it('ignores the "do not consume" bit in a format 1 file, as the BIOS does', () => {
    const f = encodeSetupBin([record()], { ...ADMIN, version: 1 });
    f.writeUInt16LE(1, 26);
    const d = decodeSetupBin(f);
    assert.equal(d.flags, 1);
    assert.equal(d.doNotConsume, false);
  });
});

describe('setup.bin reconciling what the BIOS consumed', () => {
  const pairs = [record(), record(), record()];
  const fresh = (): Buffer => encodeSetupBin(pairs, ADMIN);

  it('sees a consumed record as wiped (PID and PPS gone), valid bit cleared, counted in the header', () => {
    const f = fresh();
    biosConsumesNext(f);
    const d = decodeSetupBin(f);
    assert.equal(d.consumedCount, 1);
    const [first, second] = d.records;
    assert.ok(first && second);
    assert.deepEqual([first.valid, first.wiped, first.consumed, first.scrambled], [false, true, true, true]);
    assert.equal(first.pid, undefined, 'the BIOS zeroes the record body');
    assert.deepEqual([second.valid, second.consumed, second.pid], [true, false, pairs[1]?.pid]);
  });

  it('counts a record as consumed when only the count or only the record reached the key', () => {
    const countOnly = fresh();
    biosConsumesNext(countOnly, { writeRecord: false });
    const a = decodeSetupBin(countOnly).records[0];
    assert.deepEqual([a?.valid, a?.consumed, a?.pid], [true, true, pairs[0]?.pid]);
    const recordOnly = fresh();
    biosConsumesNext(recordOnly, { writeCount: false });
    const b = decodeSetupBin(recordOnly);
    assert.equal(b.consumedCount, 0);
    assert.deepEqual([b.records[0]?.valid, b.records[0]?.consumed], [false, true]);
  });

  it('decodes a fully consumed file', () => {
    const f = fresh();
    for (let i = 0; i < 3; i++) biosConsumesNext(f);
    const d = decodeSetupBin(f);
    assert.equal(d.consumedCount, 3);
    assert.ok(d.records.every((r) => r.consumed && r.wiped));
  });
});

describe('setup.bin malformations, each named with the record and offset', () => {
  const good = (): Buffer => encodeSetupBin([record(), record()], ADMIN);
  const cases: [string, (b: Buffer) => Buffer, RegExp][] = [
    ['too short', (b) => b.subarray(0, 100), /^setup\.bin header at offset 0: the file has 100 bytes/],
    ['unknown GUID', (b) => (b.fill(0xee, 0, 16), b), /header at offset 0: unknown file-type GUID/],
    ['version not matching the GUID', (b) => ((b[24] = 3), b), /header at offset 24: version 3\.1 does not match/],
    ['minor not accepted', (b) => ((b[25] = 2), b), /header at offset 24: version 2\.2 does not match/],
    ['header chunks 0', (b) => (b.writeUInt16LE(0, 16), b), /header at offset 16: the header occupies 0 chunks/],
    ['header bytes too small', (b) => (b.writeUInt16LE(10, 18), b), /header at offset 18: header byte count 10/],
    [
      'header record number',
      (b) => (b.writeUInt32LE(5, 20), b),
      /header at offset 20: the header record number is not 0/,
    ],
    ['record chunks 0', (b) => (b.writeUInt16LE(0, 36), b), /header at offset 36: chunks per data record is 0/],
    ['record chunks 11', (b) => (b.writeUInt16LE(11, 36), b), /header at offset 36: chunks per data record is 11/],
    [
      'consumed > count',
      (b) => (b.writeUInt32LE(3, 32), b),
      /header at offset 32: 3 records consumed but the file has 2/,
    ],
    ['truncated', (b) => b.subarray(0, 1500), /header at offset 1500: truncated: 1500 bytes, 2 records need 1536/],
    ['count too high', (b) => (b.writeUInt32LE(3, 28), b), /truncated: 1536 bytes, 3 records need 2048/],
    [
      'trailing bytes',
      (b) => Buffer.concat([b, Buffer.alloc(7)]),
      /header at offset 1536: 7 bytes after the last of 2/,
    ],
    [
      'module list unterminated',
      (b) => (b.fill(0x01, 40, 512), b),
      /header at offset 40: the module list has no 0 terminator/,
    ],
    ['record type', (b) => (b.writeUInt32LE(7, 1024), b), /^setup\.bin record 2 at offset 1024: record type 7/],
    [
      'record chunk count',
      (b) => (b.writeUInt16LE(2, 512 + 16), b),
      /record 1 at offset 528: the record says 2 chunks/,
    ],
    [
      'record header bytes',
      (b) => (b.writeUInt16LE(20, 512 + 18), b),
      /record 1 at offset 530: record header byte count 20/,
    ],
    ['record number', (b) => (b.writeUInt32LE(1, 1024 + 20), b), /record 2 at offset 1044: the record is numbered 1/],
  ];
  for (const [name, damage, expected] of cases) {
    it(`names: ${name}`, () => {
      assert.match(malformedOf(damage(good())), expected);
    });
  }

  const entryCases: [string, [number, number, Buffer][], RegExp][] = [
    ['PID of the wrong length', [[2, 1, Buffer.from('ABC')]], /record 1 at offset 536: PID of 3 bytes/],
    [
      'PID with a bad check character',
      [[2, 1, Buffer.from(`${FIXED_PID.slice(0, 7)}${FIXED_PID[7] === 'A' ? 'B' : 'A'}`)]],
      /record 1 at offset 536: PID ".{8}" is invalid: check character/,
    ],
    [
      'PPS of the wrong length',
      [[2, 2, Buffer.from(FIXED_PPS.slice(0, 31))]],
      /record 1 at offset 536: PPS of 31 bytes/,
    ],
    ['password too long', [[1, 1, Buffer.alloc(33, 0x61)]], /MEBx password of 33 bytes/],
    ['manageability length', [[1, 3, Buffer.from([1, 0])]], /manageability feature selection of 2 bytes/],
    ['server address length', [[2, 17, Buffer.alloc(5)]], /provisioning server address of 5 bytes/],
    ['server port length', [[2, 18, Buffer.alloc(4)]], /provisioning server port of 4 bytes/],
    [
      'duplicate entry',
      [...PSK_ENTRIES, [2, 1, Buffer.from(FIXED_PID)]],
      /record 1 at offset 608: entry 2\/1 appears twice/,
    ],
    [
      'value past the end',
      [[2, 11, Buffer.alloc(480, 0x61)]],
      /record 1 at offset 536: entry 2\/11 value of 489 bytes runs past/,
    ],
  ];
  for (const [name, entries, expected] of entryCases) {
    it(`names: ${name}`, () => {
      const f = handBuilt(entries);
      if (name === 'value past the end') f.writeUInt16LE(489, 536 + 4);
      assert.match(malformedOf(f), expected);
    });
  }

  it('names an entry header cut by the end of the record', () => {
    const f = handBuilt([[2, 99, Buffer.alloc(476, 0x61)]]);
    // 24 + 8 + 476 = 508: a nonzero module/variable in the last 4 bytes has no room for its length
    f.writeUInt16LE(2, 512 + 508);
    f.writeUInt16LE(12, 512 + 510);
    assert.match(malformedOf(f), /record 1 at offset 1020: entry 2\/12 header runs past the end of the record/);
  });

  it('names a PPS with a bad check character without echoing it', () => {
    const bad = FIXED_PPS.slice(0, 31) + (FIXED_PPS[31] === '0' ? '1' : '0');
    const message = malformedOf(
      handBuilt([
        [1, 1, Buffer.from('admin')],
        [2, 2, Buffer.from(bad)],
      ]),
    );
    assert.match(message, /record 1 at offset 552: PPS is invalid: check character of group 8 is wrong$/);
    for (let i = 0; i + 6 <= 32; i++) assert.ok(!message.includes(bad.slice(i, i + 6)), message);
  });

  it('never reads past the buffer: damaged files fail only with SCS_SETUPBIN_MALFORMED', () => {
    const base = encodeSetupBin([record(), record(), record()], { ...ADMIN, domainName: 'corp.example' });
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(base.length - 1), fc.nat(255)), { minLength: 1, maxLength: 6 }),
        fc.option(fc.nat(base.length), { nil: undefined }),
        (edits, cut) => {
          const f = Buffer.from(base);
          for (const [at, value] of edits) f[at] = value;
          try {
            decodeSetupBin(cut === undefined ? f : f.subarray(0, cut));
          } catch (e) {
            assert.ok(isScsError(e, 'SCS_SETUPBIN_MALFORMED'), String(e));
          }
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('setup.bin encoder input checks', () => {
  it('requires a current MEBx password, and a new one when the current is "admin"', () => {
    assert.match(inputErrorOf([record()], {}), /record 1: a current MEBx password is required/);
    assert.match(
      inputErrorOf([record()], { currentMebxPassword: new Secret('admin') }),
      /record 1: the current MEBx password is the factory default, so a new MEBx password is required/,
    );
  });

  it('refuses a weak new MEBx password without echoing it', () => {
    const message = inputErrorOf([record()], {
      currentMebxPassword: new Secret('admin'),
      newMebxPassword: new Secret('weakpassword'),
    });
    assert.match(message, /new MEBx password must be 8-32 printable ASCII characters/);
    assert.ok(!message.includes('weakpassword'));
  });

  it('refuses values a MEBx would refuse or a format cannot carry', () => {
    assert.match(inputErrorOf([record({ hostName: 'bad_host' })], ADMIN), /host name must be one DNS label/);
    assert.match(inputErrorOf([record({ hostName: 'h'.repeat(64) })], ADMIN), /host name/);
    assert.match(inputErrorOf([record({ domainName: 'd'.repeat(256) })], ADMIN), /domain name/);
    assert.match(inputErrorOf([record({ provisioningServerAddress: '10.0.0.256' })], ADMIN), /IPv4 dotted quad/);
    assert.match(inputErrorOf([record({ provisioningServerAddress: '::1' })], ADMIN), /IPv4 dotted quad/);
    assert.match(inputErrorOf([record({ provisioningServerPort: 0 })], ADMIN), /port must be 1-65535/);
    assert.match(inputErrorOf([record({ hostName: 'a' })], { ...ADMIN, version: 1 }), /need format 2 or later/);
    assert.match(
      inputErrorOf([record()], { ...ADMIN, version: 1, doNotConsume: true }),
      /format 1 has no "do not consume"/,
    );
    assert.match(inputErrorOf([record(), record()], { ...ADMIN, doNotConsume: true }), /only ever hands out record 1/);
    assert.match(inputErrorOf([], ADMIN), /no records/);
    assert.match(
      inputErrorOf([record({ pid: 'ABCD-EFGH' as Pid })], ADMIN),
      /record 1: the PID is not in canonical form/,
    );
  });

  it('refuses a record whose values do not fit in 512 bytes', () => {
    const long = {
      currentMebxPassword: new Secret('C'.repeat(32)),
      newMebxPassword: new Secret('Aa1!'.repeat(8)),
      hostName: 'h'.repeat(63),
      domainName: `${'d'.repeat(63)}.${'e'.repeat(63)}.${'f'.repeat(63)}.${'g'.repeat(63)}`,
      provisioningServerAddress: '10.1.2.3',
      provisioningServerPort: 9971,
    };
    assert.match(inputErrorOf([record()], long), /record 1: the values need 520 bytes but a record is 512/);
  });
});
