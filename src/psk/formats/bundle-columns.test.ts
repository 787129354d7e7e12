import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isScsError } from '../../errors.ts';
import { Secret } from '../../secret.ts';
import { generatePid, generatePps } from '../generate.ts';
import { BundleDecoder, BundleEncoder, type BundleColumns, type BundleRecord } from './bundle.ts';

/** The smallest scrypt cost the format accepts: real scrypt, quick. */
const KDF = { log2N: 15, r: 8, p: 1 };
const PASS = new Secret('columns test passphrase');

function records(n: number): BundleRecord[] {
  return Array.from({ length: n }, (_, i) => ({
    pid: generatePid(),
    pps: new Secret(generatePps()),
    batch: i < n / 2 ? 'first-batch' : `b.${i % 3}`,
    state: 'exported' as const,
    createdAt: new Date(1_700_000_000_000 + Math.floor(i / 100)),
  }));
}

function columnsOf(rs: readonly BundleRecord[]): BundleColumns {
  return {
    count: rs.length,
    pids: rs.map((r) => r.pid),
    pps: Buffer.from(rs.map((r) => r.pps.reveal()).join(''), 'latin1'),
    state: 'exported',
    createdAt: Float64Array.from(rs.map((r) => r.createdAt.getTime())),
    batches: rs.map((r) => r.batch),
  };
}

function decode(file: Buffer): { records: BundleRecord[]; decoder: BundleDecoder } {
  const decoder = new BundleDecoder({ passphrase: PASS });
  const out = [...decoder.push(file), ...decoder.finish()];
  return { records: out, decoder };
}

function plain(rs: readonly BundleRecord[]): unknown[] {
  return rs.map((r) => ({ ...r, pps: r.pps.reveal(), createdAt: r.createdAt.getTime() }));
}

describe('bundle encoder: columns and async key derivation', () => {
  it('writes from columns the records add() writes, across chunk boundaries, after an async scrypt', async () => {
    const rs = records(700);
    const encoder = new BundleEncoder({
      passphrase: PASS,
      recordCount: rs.length,
      sourceName: 'cols',
      kdfParams: KDF,
      chunkSize: 1024,
    });
    const parts = [await encoder.startAsync()];
    // Mixed on purpose: columns, objects, columns.
    parts.push(...encoder.addColumns(columnsOf(rs.slice(0, 300))));
    parts.push(...encoder.add(rs.slice(300, 350)));
    parts.push(...encoder.addColumns(columnsOf(rs.slice(350))));
    parts.push(encoder.finish());
    const { records: back, decoder } = decode(Buffer.concat(parts));
    assert.equal(decoder.header?.bundleId, encoder.bundleId);
    assert.deepEqual(plain(back), plain(rs));
  });

  it('refuses a column PPS that is not canonical, and more records than the header declares', async () => {
    const rs = records(3);
    const encoder = new BundleEncoder({ passphrase: PASS, recordCount: 3, sourceName: 'x', kdfParams: KDF });
    await encoder.startAsync();
    const bad = columnsOf(rs);
    bad.pps[40] = 0x61; // a lowercase letter inside record 2's PPS
    assert.throws(
      () => encoder.addColumns(bad),
      (e: unknown) => isScsError(e) && e.code === 'SCS_FORMAT_INPUT_INVALID' && /record 2/.test(e.message),
    );
    const again = new BundleEncoder({ passphrase: PASS, recordCount: 2, sourceName: 'x', kdfParams: KDF });
    again.start();
    assert.throws(
      () => again.addColumns(columnsOf(rs)),
      (e: unknown) => isScsError(e) && e.code === 'SCS_FORMAT_INPUT_INVALID',
    );
  });
});
