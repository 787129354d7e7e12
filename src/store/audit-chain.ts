import { createHash, hash } from 'node:crypto';
import type { AuditDetail, AuditVerifyResult } from './store.ts';

/**
 * The audit log is a hash chain (docs/psk-database.md, "Audit log"):
 *
 *     hash(n) = SHA-256( bytes(hash(n-1)) || UTF-8(canonical(entry n)) ),   hash(0) = 32 zero bytes
 *
 *     canonical(e) = JSON.stringify([1, seq, at, actor, action, [pid, ...], [[key, value], ...]])
 *
 * `1` is the format version; `at` is the ISO-8601 UTC text with milliseconds exactly as stored;
 * detail pairs are sorted by key (UTF-16 code unit order). Arrays rather than objects keep the
 * serialization identical in any language. Changing a stored entry breaks its own hash;
 * recomputing that hash breaks the next entry's; deleting or inserting breaks the seq run; and
 * the head row (last seq + hash) catches removal from the end.
 */
export const AUDIT_FORMAT = 1;
export const GENESIS_HASH = '0'.repeat(64);

export interface ChainEntry {
  readonly seq: number;
  /** ISO-8601 UTC with milliseconds, as stored. */
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly pids: readonly string[];
  readonly detail: AuditDetail;
}

export function canonicalEntry(e: ChainEntry): string {
  const detail = Object.keys(e.detail)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((k) => [k, e.detail[k] ?? null]);
  return JSON.stringify([AUDIT_FORMAT, e.seq, e.at, e.actor, e.action, e.pids, detail]);
}

export function chainHash(prevHash: string, e: ChainEntry): string {
  // One buffer (previous hash bytes, then the canonical text) and a one-shot digest: the same
  // bytes hashed as by createHash().update().update(), without a Hash object per entry (about
  // a quarter of an entry's hashing time; every provisioned device appends ~20 entries).
  const canonical = canonicalEntry(e);
  const size = Buffer.byteLength(canonical, 'utf8');
  const input = Buffer.allocUnsafe(32 + size);
  if (input.write(prevHash, 0, 32, 'hex') !== 32 || prevHash.length !== 64) {
    // Not 64 hex digits: hashed exactly as before (Buffer.from drops what is not hex).
    return createHash('sha256').update(Buffer.from(prevHash, 'hex')).update(canonical, 'utf8').digest('hex');
  }
  input.write(canonical, 32, size, 'utf8');
  return hash('sha256', input, 'hex');
}

/** A row as stored: the detail still as JSON text (a tampered row may not even parse). */
export interface StoredChainEntry extends Omit<ChainEntry, 'detail'> {
  readonly detailJson: string;
  readonly hash: string;
}

export interface ChainHead {
  readonly seq: number;
  readonly hash: string;
}

/** Walks stored entries in seq order; stops at the first that does not verify. */
export async function verifyChain(rows: AsyncIterable<StoredChainEntry>, head: ChainHead): Promise<AuditVerifyResult> {
  let prev = GENESIS_HASH;
  let expectedSeq = 1;
  let entries = 0;
  for await (const row of rows) {
    const broken = (reason: string): AuditVerifyResult => ({ ok: false, entries, brokenSeq: expectedSeq, reason });
    if (row.seq !== expectedSeq) {
      return broken(
        row.seq > expectedSeq
          ? `entry ${expectedSeq} is missing (next stored entry is ${row.seq})`
          : `entry ${row.seq} is out of order`,
      );
    }
    const detail = parseDetail(row.detailJson);
    if (detail === undefined) return broken('detail is not a flat JSON object');
    if (chainHash(prev, { ...row, detail }) !== row.hash) {
      return broken('hash does not match the entry and the previous hash (entry or chain edited)');
    }
    prev = row.hash;
    expectedSeq++;
    entries++;
  }
  if (head.seq > entries) {
    return {
      ok: false,
      entries,
      brokenSeq: entries + 1,
      reason: `the chain head says ${head.seq} entries but only ${entries} are stored (entries removed from the end)`,
    };
  }
  if (head.seq < entries) {
    return {
      ok: false,
      entries,
      brokenSeq: head.seq + 1,
      reason: `entries after the chain head (seq ${head.seq}) were added outside the audit log`,
    };
  }
  if (head.hash !== prev) {
    return { ok: false, entries, brokenSeq: head.seq, reason: 'the chain head hash does not match the last entry' };
  }
  return { ok: true, entries, headSeq: head.seq, headHash: head.hash };
}

export function parseDetail(json: string): AuditDetail | undefined {
  let value: unknown;
  try {
    value = JSON.parse(json);
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  for (const v of Object.values(value)) {
    if (v !== null && typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') return undefined;
  }
  return value as AuditDetail;
}
