import type { Kysely } from 'kysely';
import { generateDataKey, SecretBox, unwrapDataKey, wrapDataKey } from '../../crypto/envelope.ts';
import { finishInterruptedRotation, masterKeyFingerprint, readKeyIfPresent } from '../../crypto/key-rotation.ts';
import { isScsError, ScsError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import type { StoreDb } from './schema.ts';

/**
 * Every data key unwrapped with the master key, the newest active one sealing new secrets. A
 * wrong master key fails here (SCS_MASTER_KEY_MISMATCH from unwrapDataKey), before anything is
 * written. Portable SQL: both adapters open their store through it.
 */
export async function unwrapAll(db: Kysely<StoreDb>, masterKey: Buffer): Promise<SecretBox> {
  const rows = await db.selectFrom('data_keys').selectAll().orderBy('key_id').execute();
  const keys = rows.map((r) => [Number(r.key_id), unwrapDataKey(masterKey, Number(r.key_id), r.wrapped)] as const);
  const active = rows.filter((r) => r.status === 'active').at(-1);
  if (active === undefined) throw new ScsError('SCS_STORE_FAILED', 'the database has no active data key');
  const box = new SecretBox(keys, Number(active.key_id));
  for (const [, k] of keys) k.fill(0);
  return box;
}

/**
 * The start-up check of the master key, before anything is written (both adapters): the key
 * file's key must unwrap every data key. If it does not:
 *
 * 1. a rotation on this node that committed but did not rename `<key>.next` yet is completed
 *    (src/crypto/key-rotation.ts) and the new key returned;
 * 2. a key that a rotation replaced (its fingerprint is the `oldKey` of a `key.rotate` audit
 *    entry: another node rotated, this node was not given the new file) is
 *    SCS_MASTER_KEY_ROTATED, naming when and by whom;
 * 3. anything else stays SCS_MASTER_KEY_MISMATCH.
 *
 * Returns the key that opens the database (the caller's own buffer when it did).
 */
export async function checkMasterKey(
  db: Kysely<StoreDb>,
  masterKey: Buffer,
  masterKeyFile: string,
  log?: Logger,
): Promise<Buffer> {
  try {
    await (await unwrapAll(db, masterKey)).close();
    return masterKey;
  } catch (e) {
    if (!isScsError(e) || e.code !== 'SCS_MASTER_KEY_MISMATCH') throw e;
    const opens = (k: Buffer): Promise<boolean> =>
      unwrapAll(db, k).then(
        async (box) => {
          await box.close();
          return true;
        },
        () => false,
      );
    const next = await finishInterruptedRotation(masterKeyFile, opens, log);
    if (next !== undefined) return next;
    throw (await replacedBy(db, masterKey, masterKeyFile)) ?? e;
  }
}

/** SCS_MASTER_KEY_ROTATED when a `key.rotate` audit entry names `masterKey` as the key it replaced. */
async function replacedBy(db: Kysely<StoreDb>, masterKey: Buffer, file: string): Promise<ScsError | undefined> {
  const fingerprint = masterKeyFingerprint(masterKey);
  const rows = await db
    .selectFrom('audit_log')
    .select(['seq', 'at', 'actor', 'detail'])
    .where('action', '=', 'key.rotate')
    .orderBy('seq', 'desc')
    .execute()
    .catch(() => []);
  for (const r of rows) {
    let detail: unknown;
    try {
      detail = JSON.parse(r.detail);
    } catch {
      continue;
    }
    if (typeof detail !== 'object' || detail === null || !('oldKey' in detail) || detail.oldKey !== fingerprint) {
      continue;
    }
    const from = 'keyFile' in detail && typeof detail.keyFile === 'string' ? ` (${detail.keyFile} there)` : '';
    return new ScsError(
      'SCS_MASTER_KEY_ROTATED',
      `the master key in ${file} (fingerprint ${fingerprint}) was replaced by "key rotate" at ${r.at} by ${r.actor} ` +
        `(audit entry ${Number(r.seq)}): copy the new key file from the node that rotated${from} to ${file}, then start again`,
      { details: { file, fingerprint, auditSeq: Number(r.seq) } },
    );
  }
  return undefined;
}

/** Creates data key 1 inside the caller's (migration) transaction when the database has none. */
export async function ensureDataKey(trx: Kysely<StoreDb>, masterKey: Buffer, where: string): Promise<void> {
  const keys = await trx.selectFrom('data_keys').select('key_id').execute();
  if (keys.length > 0) return;
  const used = await trx.selectFrom('psks').select('id').limit(1).executeTakeFirst();
  if (used !== undefined) {
    throw new ScsError('SCS_MASTER_KEY_MISMATCH', `database ${where} holds PSKs but no data key`);
  }
  const dek = generateDataKey();
  try {
    await trx
      .insertInto('data_keys')
      .values({
        key_id: 1,
        wrapped: wrapDataKey(masterKey, 1, dek),
        created_at: new Date().toISOString(),
        status: 'active',
      })
      .execute();
  } finally {
    dek.fill(0);
  }
}

/** How often an open store looks for data keys created by another process (a data key rotation). */
export const DATA_KEY_POLL_MS = 5000;

export interface DataKeyWatcher {
  /** Loads data keys this store does not hold yet; resolves when done (tests, and the poll). */
  check(): Promise<void>;
  stop(): void;
}

/**
 * The store's data keys at open: every key unwrapped, and a watcher that loads the keys another
 * process adds while this one runs (`key rotate --data-key` next to a running server or node).
 */
export async function openDataKeys(
  db: Kysely<StoreDb>,
  masterKey: Buffer,
  masterKeyFile: string,
  log: Logger | undefined,
): Promise<{ readonly box: SecretBox; readonly watcher: DataKeyWatcher }> {
  const box = await unwrapAll(db, masterKey);
  const watcher = watchDataKeys({ db, box, masterKey, masterKeyFile, ...(log === undefined ? {} : { log }) });
  return { box, watcher };
}

/**
 * Keeps an open store's SecretBox in step with `data_keys` while other processes (another node,
 * `key rotate --data-key` next to a running server) add data keys: every `intervalMs` the key ids
 * are read (one small query); a new key is unwrapped and becomes the one new secrets are sealed
 * under, so secrets re-sealed elsewhere open here too. The master key is kept in memory for
 * that; if it no longer unwraps the new key (the master key was rotated meanwhile), the key
 * file is read again (the operator installs the new file on every node) and, if that key
 * opens it, used from then on. Otherwise an error is logged once per key, and secrets sealed
 * under that key do not open on this node until it is restarted with the new key file.
 */
export function watchDataKeys(options: {
  readonly db: Kysely<StoreDb>;
  readonly box: SecretBox;
  readonly masterKey: Buffer;
  readonly masterKeyFile: string;
  readonly log?: Logger;
  readonly intervalMs?: number;
}): DataKeyWatcher {
  const { db, box, masterKeyFile, log } = options;
  let master: Buffer = Buffer.from(options.masterKey);
  const reported = new Set<number>();
  let running: Promise<void> | undefined;
  let stopped = false;

  const unwrapWith = (key: Buffer, rows: readonly { key_id: number; wrapped: Buffer }[]): [number, Buffer][] =>
    rows.map((r) => [Number(r.key_id), unwrapDataKey(key, Number(r.key_id), r.wrapped)]);

  const load = async (): Promise<void> => {
    const ids = await db.selectFrom('data_keys').select(['key_id', 'status']).orderBy('key_id').execute();
    const held = new Set(box.keyIds);
    const active = ids.filter((r) => r.status === 'active').at(-1);
    const activeId = active === undefined ? box.currentKeyId : Number(active.key_id);
    const missing = ids.filter((r) => !held.has(Number(r.key_id))).map((r) => Number(r.key_id));
    if (missing.length === 0 && activeId === box.currentKeyId) return;
    let keys: [number, Buffer][] = [];
    if (missing.length > 0) {
      const rows = await db
        .selectFrom('data_keys')
        .select(['key_id', 'wrapped'])
        .where('key_id', 'in', missing)
        .execute();
      try {
        keys = unwrapWith(master, rows);
      } catch {
        const fromFile = await readKeyIfPresent(masterKeyFile).catch(() => undefined);
        try {
          if (fromFile === undefined) throw new Error('no key file');
          keys = unwrapWith(fromFile, rows);
          master.fill(0);
          master = fromFile;
          log?.info({ file: masterKeyFile }, 'the master key was rotated: using the new key file for new data keys');
        } catch {
          fromFile?.fill(0);
          for (const id of missing) {
            if (reported.has(id)) continue;
            reported.add(id);
            log?.error(
              { keyId: id, file: masterKeyFile, code: 'SCS_MASTER_KEY_ROTATED' },
              'a new data key is wrapped under a master key this node does not hold: install the new key file and restart',
            );
          }
          return;
        }
      }
    }
    try {
      if (held.has(activeId) || keys.some(([id]) => id === activeId)) {
        box.addKeys(keys, activeId);
        log?.info(
          { keyId: activeId, added: keys.map(([id]) => id) },
          'data keys reloaded: new secrets are sealed under the newest',
        );
      }
    } finally {
      for (const [, k] of keys) k.fill(0);
    }
  };

  const check = (): Promise<void> => {
    if (stopped) return Promise.resolve();
    running ??= load()
      .catch((e: unknown) => {
        // The store was closed under the poll, or the database is briefly unreachable: next time.
        if (!stopped)
          log?.debug({ err: { message: e instanceof Error ? e.message : String(e) } }, 'data key poll failed');
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const timer = setInterval(() => void check(), options.intervalMs ?? DATA_KEY_POLL_MS);
  timer.unref();
  return {
    check,
    stop() {
      stopped = true;
      clearInterval(timer);
      master.fill(0);
    },
  };
}
