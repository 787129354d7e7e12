import { ScsError } from '../../errors.ts';
import { Secret } from '../../secret.ts';
import { appendAudit, guard, write, type SqlContext } from '../sql/sql-store.ts';
import {
  checkProfileComplete,
  checkProfileName,
  checkProfileSecret,
  DEFAULT_PROFILE_NAME,
  DEFAULT_PROFILE_SETTINGS,
  mergeSettings,
  parseStoredSettings,
  PROFILE_SECRET_NAMES,
  type ProfileInput,
  type ProfileRow,
  type ProfileSecretName,
  type ProfileSecretValues,
  type ProfileSettings,
} from './profile.ts';
import type { ProfilesTable } from './schema.ts';
import { db, nowIso, toDate } from './sql-util.ts';
import type { ActorContext, ProfileRepository } from './types.ts';

type Stored = Partial<Record<ProfileSecretName, string>>;

function aad(name: string): string {
  return `profile:${name}`;
}

function notFound(name: string): ScsError {
  return new ScsError('SCS_PROFILE_NOT_FOUND', `no provisioning profile named "${name}"`, {
    details: { profile: name },
  });
}

/** Profiles over the shared SQL core; passwords sealed with the store's SecretBox (AAD profile:<name>). */
export class SqlProfiles implements ProfileRepository {
  readonly #ctx: SqlContext;

  constructor(ctx: SqlContext) {
    this.#ctx = ctx;
  }

  #openSecrets(name: string, sealed: Buffer | null): Stored {
    if (sealed === null) return {};
    const json = this.#ctx.box.open(sealed, aad(name)).toString('utf8');
    return JSON.parse(json) as Stored;
  }

  #toRow(r: ProfilesTable): ProfileRow {
    const stored = this.#openSecrets(r.name, r.secrets);
    const secretsSet = Object.fromEntries(PROFILE_SECRET_NAMES.map((k) => [k, stored[k] !== undefined])) as Record<
      ProfileSecretName,
      boolean
    >;
    return {
      name: r.name,
      settings: parseStoredSettings(r.body),
      secretsSet,
      version: Number(r.version),
      createdAt: toDate(r.created_at),
      updatedAt: toDate(r.updated_at),
    };
  }

  async list(): Promise<ProfileRow[]> {
    const rows = await guard(db(this.#ctx).selectFrom('profiles').selectAll().orderBy('name').execute());
    return rows.map((r) => this.#toRow(r));
  }

  async get(name: string): Promise<ProfileRow | undefined> {
    const r = await guard(db(this.#ctx).selectFrom('profiles').selectAll().where('name', '=', name).executeTakeFirst());
    return r === undefined ? undefined : this.#toRow(r);
  }

  async require(name: string): Promise<ProfileRow> {
    const row = await this.get(name);
    if (row === undefined) throw notFound(name);
    return row;
  }

  async secrets(name: string): Promise<ProfileSecretValues> {
    const r = await guard(
      db(this.#ctx).selectFrom('profiles').select(['name', 'secrets']).where('name', '=', name).executeTakeFirst(),
    );
    if (r === undefined) throw notFound(name);
    const stored = this.#openSecrets(r.name, r.secrets);
    const out: ProfileSecretValues = {};
    for (const k of PROFILE_SECRET_NAMES) {
      const v = stored[k];
      if (v !== undefined) out[k] = new Secret(v);
    }
    return out;
  }

  /** Applies secret changes to the stored set and seals it (null when empty). */
  #sealSecrets(
    name: string,
    current: Stored,
    changes: ProfileInput['secrets'],
  ): { sealed: Buffer | null; set: Stored } {
    const next: Stored = { ...current };
    for (const [key, value] of Object.entries(changes ?? {}) as [
      ProfileSecretName,
      Secret<string> | null | undefined,
    ][]) {
      if (!(PROFILE_SECRET_NAMES as readonly string[]).includes(key)) {
        throw new ScsError('SCS_PROFILE_INVALID', `profile secret ${String(key)}: unknown`, {
          details: { field: key },
        });
      }
      if (value === undefined) continue;
      if (value === null) delete next[key];
      else {
        checkProfileSecret(key, value);
        next[key] = value.reveal();
      }
    }
    const empty = Object.keys(next).length === 0;
    return {
      sealed: empty ? null : this.#ctx.box.seal(Buffer.from(JSON.stringify(next), 'utf8'), aad(name)),
      set: next,
    };
  }

  async create(name: string, input: ProfileInput, context: ActorContext): Promise<ProfileRow> {
    checkProfileName(name);
    const settings = mergeSettings(DEFAULT_PROFILE_SETTINGS, input.settings);
    const { sealed, set } = this.#sealSecrets(name, {}, input.secrets);
    checkProfileComplete(settings, flags(set));
    return write(this.#ctx, async (tx) => {
      const q = db(tx);
      const exists = await q.selectFrom('profiles').select('name').where('name', '=', name).executeTakeFirst();
      if (exists !== undefined) {
        throw new ScsError('SCS_PROFILE_CONFLICT', `a profile named "${name}" already exists`, {
          details: { profile: name },
        });
      }
      const now = nowIso();
      const row: ProfilesTable = {
        name,
        body: JSON.stringify(settings),
        secrets: sealed,
        version: 1,
        created_at: now,
        updated_at: now,
      };
      await q.insertInto('profiles').values(row).execute();
      await appendAudit(tx, [
        { actor: context.actor, action: 'profile.create', detail: auditDetail(name, 1, input, settings) },
      ]);
      return this.#toRow(row);
    });
  }

  async update(
    name: string,
    input: ProfileInput,
    context: ActorContext & { readonly expectedVersion?: number },
  ): Promise<ProfileRow> {
    return write(this.#ctx, async (tx) => {
      const q = db(tx);
      let sel = q.selectFrom('profiles').selectAll().where('name', '=', name);
      if (tx.engine.lockRows) sel = sel.forUpdate();
      const current = await sel.executeTakeFirst();
      if (current === undefined) throw notFound(name);
      const version = Number(current.version);
      if (context.expectedVersion !== undefined && context.expectedVersion !== version) {
        throw new ScsError(
          'SCS_PROFILE_CONFLICT',
          `profile "${name}" is at version ${version}, not ${context.expectedVersion}: it changed since it was read`,
          { details: { profile: name, version, expectedVersion: context.expectedVersion } },
        );
      }
      const settings: ProfileSettings = mergeSettings(parseStoredSettings(current.body), input.settings);
      const { sealed, set } = this.#sealSecrets(name, this.#openSecrets(name, current.secrets), input.secrets);
      checkProfileComplete(settings, flags(set));
      const now = nowIso();
      const res = await q
        .updateTable('profiles')
        .set({ body: JSON.stringify(settings), secrets: sealed, version: version + 1, updated_at: now })
        .where('name', '=', name)
        .where('version', '=', version)
        .executeTakeFirst();
      if (Number(res.numUpdatedRows) !== 1) {
        throw new ScsError('SCS_PROFILE_CONFLICT', `profile "${name}" changed concurrently`, {
          details: { profile: name },
        });
      }
      await appendAudit(tx, [
        { actor: context.actor, action: 'profile.update', detail: auditDetail(name, version + 1, input, settings) },
      ]);
      return this.#toRow({
        ...current,
        body: JSON.stringify(settings),
        secrets: sealed,
        version: version + 1,
        updated_at: now,
      });
    });
  }

  async delete(name: string, context: ActorContext): Promise<void> {
    if (name === DEFAULT_PROFILE_NAME) {
      throw new ScsError('SCS_PROFILE_INVALID', 'the default profile cannot be deleted (change it instead)', {
        details: { profile: name },
      });
    }
    await write(this.#ctx, async (tx) => {
      const q = db(tx);
      const bound = await q.selectFrom('batches').select('name').where('profile', '=', name).limit(5).execute();
      if (bound.length > 0) {
        throw new ScsError(
          'SCS_PROFILE_INVALID',
          `profile "${name}" is bound to batch ${bound.map((b) => `"${b.name}"`).join(', ')}: bind those batches elsewhere first`,
          { details: { profile: name } },
        );
      }
      const res = await q.deleteFrom('profiles').where('name', '=', name).executeTakeFirst();
      if (Number(res.numDeletedRows) === 0) throw notFound(name);
      await appendAudit(tx, [{ actor: context.actor, action: 'profile.delete', detail: { profile: name } }]);
    });
  }

  async bindBatch(batch: string, profile: string | null, context: ActorContext): Promise<void> {
    await write(this.#ctx, async (tx) => {
      const q = db(tx);
      if (profile !== null) {
        const p = await q.selectFrom('profiles').select('name').where('name', '=', profile).executeTakeFirst();
        if (p === undefined) throw notFound(profile);
      }
      const res = await q.updateTable('batches').set({ profile }).where('name', '=', batch).executeTakeFirst();
      if (Number(res.numUpdatedRows) === 0) {
        throw new ScsError('SCS_BATCH_NOT_FOUND', `no batch named "${batch}"`, { details: { batch } });
      }
      await appendAudit(tx, [{ actor: context.actor, action: 'profile.bind', detail: { batch, profile } }]);
    });
  }
}

function flags(set: Stored): Record<ProfileSecretName, boolean> {
  return Object.fromEntries(PROFILE_SECRET_NAMES.map((k) => [k, set[k] !== undefined])) as Record<
    ProfileSecretName,
    boolean
  >;
}

/** Which fields changed, and the settings after: never a secret value, only which secrets were set or removed. */
function auditDetail(
  name: string,
  version: number,
  input: ProfileInput,
  settings: ProfileSettings,
): Record<string, string | number | boolean | null> {
  const detail: Record<string, string | number | boolean | null> = { profile: name, version };
  for (const key of Object.keys(input.settings ?? {})) {
    const v = (settings as unknown as Record<string, unknown>)[key];
    detail[key] = typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean' ? v : null;
  }
  for (const [key, value] of Object.entries(input.secrets ?? {})) {
    if (value !== undefined) detail[`secret.${key}`] = value === null ? 'removed' : 'set';
  }
  return detail;
}
