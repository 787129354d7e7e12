import { sql, type Kysely } from 'kysely';
import { generateDataKey, readKeyId, type SecretBox, wrapDataKey } from '../../crypto/envelope.ts';
import { ScsError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { AuditDetail } from '../store.ts';
import { escrowAad } from '../provisioning/sql-escrow.ts';
import type { EscrowPurpose } from '../provisioning/types.ts';
import { DATA_KEY_POLL_MS, unwrapAll } from './data-keys.ts';
import { appendAudit, type SqlEngine } from './sql-store.ts';
import type { StoreDb } from './schema.ts';

/**
 * Data key rotation (`amt-scs key rotate --data-key`, docs/security.md "Keys and backups"):
 *
 * 1. start (one transaction, data_keys locked on PostgreSQL): a new data key, wrapped under the
 *    master key, becomes the only `active` one; the others become `retired` (they still open,
 *    they no longer seal). Audited `key.data.rotate` phase `start`. If retired keys exist
 *    already, an earlier rotation was interrupted: it is resumed (phase `resume`), no new key.
 * 2. settle: wait until every open store has had time to load the new key (they poll
 *    data_keys every DATA_KEY_POLL_MS): from then on they seal under it and open what is
 *    re-sealed under it.
 * 3. re-seal, table by table in batches (one transaction each, keyset order): every secret
 *    whose blob names another key is opened and sealed under the new key, written with
 *    `... WHERE <key> = ? AND <blob> = <the old blob>` so a row changed meanwhile is left to the
 *    next pass. Each row is replaced in one statement: at every moment each secret is sealed
 *    under a key that data_keys holds, so it opens.
 * 4. finish (one transaction): every retired key that no blob names any more is deleted;
 *    audited phase `finish` with the counts. A blob still under a retired key (a process that
 *    had not loaded the new key sealed it after its table's pass) sends it back to 3, up to
 *    three passes.
 *
 * A crash anywhere leaves every secret readable; running the command again resumes at 3.
 */

/** Where sealed secrets live, and the associated data each was sealed with (see each repository). */
interface SealedColumn {
  readonly table: string;
  /** Primary key: keyset order and the row the re-sealed blob is written back to. */
  readonly key: string;
  /** The primary key's PostgreSQL type (a VALUES list needs it spelled out). */
  readonly keyType: 'bigint' | 'text';
  readonly blob: string;
  /** Further columns the associated data is built from. */
  readonly extra: readonly string[];
  readonly aad: (row: Readonly<Record<string, unknown>>) => string;
}

const text = (v: unknown): string => (typeof v === 'string' ? v : String(v));

/** Every sealed column of the schema; the AAD formats are those of the owning repositories. */
export const SEALED_COLUMNS: readonly SealedColumn[] = [
  { table: 'psks', key: 'id', keyType: 'bigint', blob: 'pps', extra: ['pid'], aad: (r) => text(r.pid) },
  // src/store/provisioning/sql-profiles.ts: profile:<name>
  {
    table: 'profiles',
    key: 'name',
    keyType: 'text',
    blob: 'secrets',
    extra: [],
    aad: (r) => `profile:${text(r.k)}`,
  },
  {
    table: 'escrow',
    key: 'id',
    keyType: 'bigint',
    blob: 'secret',
    extra: ['device_uuid', 'purpose'],
    aad: (r) => escrowAad(text(r.device_uuid), text(r.purpose) as EscrowPurpose),
  },
  // src/store/provisioning/sql-ca.ts: ca:key
  { table: 'ca', key: 'id', keyType: 'bigint', blob: 'key', extra: [], aad: () => 'ca:key' },
  // src/store/pki/sql-pki.ts: pki:key:<leaf sha256>
  {
    table: 'pki_certs',
    key: 'id',
    keyType: 'bigint',
    blob: 'key',
    extra: ['leaf_sha256'],
    aad: (r) => `pki:key:${text(r.leaf_sha256)}`,
  },
];

/** The 4 key-id bytes of a blob (bytes 2..5, 1-based), for SQL that compares them. */
function keyIdBytes(id: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(id);
  return b;
}

export interface DataKeyProgress {
  readonly table: string;
  /** Secrets of this table re-sealed so far in this pass. */
  readonly done: number;
  /** Secrets of this table under another key when the pass started. */
  readonly total: number;
}

export interface RotateDataKeyOptions {
  readonly actor: string;
  /** Secrets per transaction (default 1000, at most 10,000). */
  readonly batchSize?: number;
  /** How long to wait after creating the key before re-sealing (default 2.5 x DATA_KEY_POLL_MS). */
  readonly settleMs?: number;
  readonly onProgress?: (p: DataKeyProgress) => void;
  readonly log?: Logger;
  /** Tests: called after every committed batch; a throw there plays a crash. */
  readonly afterBatch?: (p: DataKeyProgress) => void | Promise<void>;
}

export interface RotateDataKeyResult {
  readonly keyId: number;
  /** True when an interrupted rotation was resumed (no new key was created). */
  readonly resumed: boolean;
  /** Secrets re-sealed, per table. */
  readonly resealed: Readonly<Record<string, number>>;
  /** Data keys deleted at the end (nothing referred to them any more). */
  readonly deleted: readonly number[];
}

const SETTLE_DEFAULT_MS = Math.round(DATA_KEY_POLL_MS * 2.5);
const MAX_PASSES = 3;
const MAX_BATCH = 10_000;

export async function rotateDataKey(
  db: Kysely<StoreDb>,
  engine: SqlEngine,
  masterKey: Buffer,
  options: RotateDataKeyOptions,
): Promise<RotateDataKeyResult> {
  const batchSize = options.batchSize ?? 1000;
  // PostgreSQL takes at most 65,535 parameters per statement; a batch's update uses 3 per row.
  if (!Number.isInteger(batchSize) || batchSize < 1 || batchSize > MAX_BATCH) {
    throw new ScsError(
      'SCS_ARGUMENT_INVALID',
      `the batch size must be a whole number 1..${MAX_BATCH}, got ${batchSize}`,
    );
  }
  const audit = async (trx: Kysely<StoreDb>, box: SecretBox, detail: AuditDetail): Promise<void> => {
    await appendAudit({ root: db, q: trx, inTx: true, engine, box }, [
      { actor: options.actor, action: 'key.data.rotate', detail },
    ]);
  };
  // The master key must open every data key before anything is written.
  const before = await unwrapAll(db, masterKey);
  let start: { keyId: number; resumed: boolean; createdAt: string };
  try {
    start = await db.transaction().execute(async (trx) => {
      let q = trx.selectFrom('data_keys').select(['key_id', 'status', 'created_at']).orderBy('key_id');
      if (engine.lockRows) q = q.forUpdate();
      const rows = await q.execute();
      const active = rows.filter((r) => r.status === 'active').at(-1);
      const retired = rows.filter((r) => r.status === 'retired').map((r) => Number(r.key_id));
      if (active !== undefined && retired.length > 0) {
        await audit(trx, before, { phase: 'resume', keyId: Number(active.key_id), retired: retired.join(',') });
        return { keyId: Number(active.key_id), resumed: true, createdAt: active.created_at };
      }
      const keyId = Math.max(0, ...rows.map((r) => Number(r.key_id))) + 1;
      const dek = generateDataKey();
      const createdAt = new Date().toISOString();
      try {
        await trx
          .insertInto('data_keys')
          .values({
            key_id: keyId,
            wrapped: wrapDataKey(masterKey, keyId, dek),
            created_at: createdAt,
            status: 'active',
          })
          .execute();
      } finally {
        dek.fill(0);
      }
      const old = rows.map((r) => Number(r.key_id));
      if (old.length > 0) {
        await trx.updateTable('data_keys').set({ status: 'retired' }).where('key_id', 'in', old).execute();
      }
      await audit(trx, before, { phase: 'start', keyId, retired: old.join(',') });
      return { keyId, resumed: false, createdAt };
    });
  } finally {
    await before.close();
  }
  options.log?.info({ keyId: start.keyId, resumed: start.resumed }, 'data key rotation: re-sealing secrets');

  // Running stores load the new key within one poll; re-sealing waits until they have.
  const settle = (options.settleMs ?? SETTLE_DEFAULT_MS) - (Date.now() - Date.parse(start.createdAt));
  if (settle > 0) await new Promise((resolve) => setTimeout(resolve, settle));

  const box = await unwrapAll(db, masterKey);
  const resealed: Record<string, number> = {};
  try {
    if (box.currentKeyId !== start.keyId) {
      throw new ScsError('SCS_STORE_FAILED', `data key ${start.keyId} is not the active data key any more`);
    }
    for (let pass = 1; ; pass++) {
      for (const col of SEALED_COLUMNS) {
        resealed[col.table] =
          (resealed[col.table] ?? 0) + (await resealTable(db, engine, box, col, start.keyId, batchSize, options));
      }
      const finished = await db.transaction().execute(async (trx) => {
        let q = trx.selectFrom('data_keys').select(['key_id', 'status']).orderBy('key_id');
        if (engine.lockRows) q = q.forUpdate();
        const retired = (await q.execute()).filter((r) => r.status === 'retired').map((r) => Number(r.key_id));
        const stillUsed: number[] = [];
        for (const id of retired) if ((await references(trx, id)) > 0) stillUsed.push(id);
        if (stillUsed.length > 0) return undefined;
        if (retired.length > 0) await trx.deleteFrom('data_keys').where('key_id', 'in', retired).execute();
        await audit(trx, box, {
          phase: 'finish',
          keyId: start.keyId,
          deleted: retired.join(','),
          ...Object.fromEntries(Object.entries(resealed).map(([t, n]) => [`resealed_${t}`, n])),
        });
        return retired;
      });
      if (finished !== undefined) {
        options.log?.info({ keyId: start.keyId, deleted: finished, resealed }, 'data key rotated');
        return { keyId: start.keyId, resumed: start.resumed, resealed, deleted: finished };
      }
      if (pass >= MAX_PASSES) {
        throw new ScsError(
          'SCS_STORE_FAILED',
          `secrets are still being sealed under a retired data key after ${pass} passes (a process that has not ` +
            `loaded data key ${start.keyId}?): run "key rotate --data-key" again to resume`,
        );
      }
    }
  } finally {
    await box.close();
  }
}

/** Re-seals every blob of `col` not under `keyId`, in batches; returns how many. */
async function resealTable(
  db: Kysely<StoreDb>,
  engine: SqlEngine,
  box: SecretBox,
  col: SealedColumn,
  keyId: number,
  batchSize: number,
  options: RotateDataKeyOptions,
): Promise<number> {
  const target = keyIdBytes(keyId);
  const blob = sql.ref(col.blob);
  const key = sql.ref(col.key);
  const extra = col.extra.length === 0 ? sql`` : sql`, ${sql.join(col.extra.map((c) => sql.ref(c)))}`;
  const notTarget = sql`${blob} is not null and substr(${blob}, 2, 4) <> ${target}`;
  const counted = await sql<{
    n: number | string;
  }>`select count(*) as n from ${sql.table(col.table)} where ${notTarget}`.execute(db);
  const total = Number(counted.rows[0]?.n ?? 0);
  if (total === 0) return 0;
  let done = 0;
  let cursor: unknown;
  for (;;) {
    const after = cursor === undefined ? sql`` : sql` and ${key} > ${cursor}`;
    const page = await sql<
      Record<string, unknown>
    >`select ${key} as k, ${blob} as b${extra} from ${sql.table(col.table)}
      where ${notTarget}${after} order by ${key} limit ${batchSize}`.execute(db);
    if (page.rows.length === 0) break;
    cursor = page.rows.at(-1)?.k;
    const updates: { k: unknown; sealed: Buffer; old: Buffer }[] = [];
    for (const row of page.rows) {
      const old = Buffer.from(row.b as Uint8Array);
      if (old.length >= 5 && readKeyId(old) === keyId) continue;
      const aad = col.aad(row);
      const plain = box.open(old, aad);
      try {
        updates.push({ k: row.k, sealed: box.seal(plain, aad), old });
      } finally {
        plain.fill(0);
      }
    }
    const changed = await db.transaction().execute(async (trx) => {
      if (engine.name === 'postgres') {
        // One statement per batch (a round trip per row made 1,000 rows cost ~2.7 s).
        if (updates.length === 0) return 0;
        const cast = sql.raw(col.keyType);
        const values = sql.join(updates.map((u) => sql`(${u.k}::${cast}, ${u.sealed}::bytea, ${u.old}::bytea)`));
        const r = await sql`update ${sql.table(col.table)} as t set ${blob} = v.b
          from (values ${values}) as v(k, b, old) where t.${key} = v.k and t.${blob} = v.old`.execute(trx);
        return Number(r.numAffectedRows ?? 0);
      }
      // SQLite: statements are in-process calls; one per row.
      let n = 0;
      for (const u of updates) {
        const r = await sql`update ${sql.table(col.table)} set ${blob} = ${u.sealed}
          where ${key} = ${u.k} and ${blob} = ${u.old}`.execute(trx);
        n += Number(r.numAffectedRows ?? 0);
      }
      return n;
    });
    done += changed;
    const progress = { table: col.table, done, total };
    options.onProgress?.(progress);
    await options.afterBatch?.(progress);
  }
  return done;
}

/** How many blobs in the schema name data key `id`. */
async function references(db: Kysely<StoreDb>, id: number): Promise<number> {
  let n = 0;
  for (const col of SEALED_COLUMNS) {
    const blob = sql.ref(col.blob);
    const r = await sql<{ n: number | string }>`select count(*) as n from ${sql.table(col.table)}
      where ${blob} is not null and substr(${blob}, 2, 4) = ${keyIdBytes(id)}`.execute(db);
    n += Number(r.rows[0]?.n ?? 0);
  }
  return n;
}
