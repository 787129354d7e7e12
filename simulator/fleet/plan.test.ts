import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isScsError } from '../../src/errors.ts';
import { generatePid, generatePps } from '../../src/psk/generate.ts';
import { formatPid } from '../../src/psk/pid.ts';
import { isValidPps } from '../../src/psk/pps.ts';
import { Secret } from '../../src/secret.ts';
import { uuidToBytes } from '../hello/uuid.ts';
import { parseFaultSpec } from './faults.ts';
import { deviceAddress, deviceDigestRealm, deviceUuid, wrongPps } from './identity.ts';
import { generateKeyPool, KeyPool } from './key-pool.ts';
import { planFleet } from './plan.ts';
import { parsePskCsv } from './psk-file.ts';
import { StateFileWriter } from './state-file.ts';

const psks = (n: number) => Array.from({ length: n }, () => ({ pid: generatePid(), pps: new Secret(generatePps()) }));

describe('device addresses', () => {
  it('count up from the base, skipping last octets 0 and 255', () => {
    assert.equal(deviceAddress('127.10.0.1', 0), '127.10.0.1');
    assert.equal(deviceAddress('127.10.0.1', 253), '127.10.0.254');
    assert.equal(deviceAddress('127.10.0.1', 254), '127.10.1.1');
    assert.equal(deviceAddress('127.10.0.250', 10), '127.10.1.6');
    const all = Array.from({ length: 10_000 }, (_, i) => deviceAddress('127.10.0.1', i));
    assert.equal(new Set(all).size, 10_000);
    assert.ok(all.every((a) => !a.endsWith('.0') && !a.endsWith('.255')));
    assert.equal(all.at(-1), '127.10.39.94');
  });

  it('refuse a base outside 127/8, a base ending in .0 and a fleet running past 127.255.255.254', () => {
    for (const [base, i] of [
      ['10.0.0.1', 0],
      ['127.0.0.0', 0],
      ['not-an-ip', 0],
      ['127.255.255.250', 10],
    ] as const) {
      assert.throws(
        () => deviceAddress(base, i),
        (e) => isScsError(e, 'SCS_SIM_CONFIG_INVALID'),
      );
    }
  });
});

describe('device identity', () => {
  it('gives RFC 4122 version-4 UUIDs and Digest realms that repeat for a seed', () => {
    const u = deviceUuid('s', 3);
    assert.match(u, /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    assert.equal(deviceUuid('s', 3), u);
    assert.notEqual(deviceUuid('s', 4), u);
    assert.notEqual(deviceUuid('t', 3), u);
    assert.equal(uuidToBytes(u).length, 16);
    assert.match(deviceDigestRealm('s', 3), /^Digest:[0-9A-F]{32}$/);
  });

  it('makes a wrong PPS that is valid (check characters right) and not the real one', () => {
    const real = generatePps();
    const wrong = wrongPps('s', 0, real);
    assert.ok(isValidPps(wrong));
    assert.notEqual(wrong, real);
    assert.equal(wrongPps('s', 0, real), wrong);
  });
});

describe('fleet plan', () => {
  it('gives device i pair i, its own address and In state; wrong-psk devices a PPS other than the file', () => {
    const pairs = psks(20);
    const plans = planFleet({
      devices: 20,
      psks: pairs,
      seed: 'p',
      faults: parseFaultSpec('wrong-psk:10%;drop@2:50%'),
      mebxPassword: 'P@ssw0rd',
      addressBase: '127.50.0.1',
    });
    for (const [i, p] of plans.entries()) {
      assert.equal(p.setup.pid, pairs[i]?.pid);
      assert.equal(p.csvPid, pairs[i]?.pid);
      assert.equal(p.address, deviceAddress('127.50.0.1', i));
      assert.equal(p.setup.provisioningState, 'In');
      assert.equal(p.setup.pps === pairs[i]?.pps.reveal(), !p.wrongPsk);
    }
    assert.equal(plans.filter((p) => p.wrongPsk).length, 2);
    assert.equal(plans.filter((p) => p.faults.dropAtCall === 2).length, 10);
  });

  it('is the same for the same seed', () => {
    const pairs = psks(30);
    const opts = {
      devices: 30,
      psks: pairs,
      seed: 'same',
      faults: parseFaultSpec('wrong-psk:10%;latency=50:20%'),
      mebxPassword: 'P@ssw0rd',
      addressBase: '127.50.0.1',
    };
    assert.deepEqual(planFleet(opts), planFleet(opts));
  });
});

describe('PSK file', () => {
  it('refuses a PID listed twice, naming the line', () => {
    const pid = generatePid();
    const csv = `PID,PPS\n${formatPid(pid)},${generatePps()}\n${pid},${generatePps()}\n`;
    assert.throws(
      () => parsePskCsv(Buffer.from(csv)),
      (e) => isScsError(e, 'SCS_CSV_MALFORMED') && /line 3: PID .* appears twice/.test(e.message),
    );
  });
});

describe('key pool', () => {
  it('hands device i the pool keys from position i, a different key per GenerateKeyPair', async () => {
    const pool = new KeyPool(await generateKeyPool(3, 1024));
    const provider = pool.providerFor(1);
    assert.ok(provider);
    const a = await provider(1024);
    const b = await provider(1024);
    const other = await pool.providerFor(2)?.(1024);
    assert.notEqual(
      a.publicKey.export({ type: 'spki', format: 'der' }).toString('hex'),
      b.publicKey.export({ type: 'spki', format: 'der' }).toString('hex'),
    );
    assert.equal(
      b.publicKey.export({ type: 'spki', format: 'der' }).toString('hex'),
      other?.publicKey.export({ type: 'spki', format: 'der' }).toString('hex'),
    );
    assert.equal(new KeyPool([]).providerFor(0), undefined);
    // Another size than the pool's: a fresh key of that size.
    const fresh = await provider(2048);
    assert.equal(fresh.privateKey.asymmetricKeyDetails?.modulusLength, 2048);
  });
});

describe('state file writer', () => {
  it('coalesces changes into few writes and leaves only the complete file behind', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'amt-sim-state-'));
    try {
      const file = path.join(dir, 'state.json');
      let n = 0;
      const w = new StateFileWriter(file, () => ({ n }), { debounceMs: 30, maxWaitMs: 1000 });
      for (let i = 0; i < 100; i++) {
        n = i;
        w.changed();
      }
      await new Promise((r) => setTimeout(r, 100));
      assert.equal(w.writes, 1);
      assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { n: 99 });
      n = 100;
      await w.flush();
      assert.deepEqual(JSON.parse(await readFile(file, 'utf8')), { n: 100 });
      assert.deepEqual(await readdir(dir), ['state.json']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('reports a write it cannot make without throwing', async () => {
    const w = new StateFileWriter('/nonexistent-dir/state.json', () => ({}));
    await w.flush();
    assert.ok(isScsError(w.lastError, 'SCS_FILE_IO'));
  });
});
