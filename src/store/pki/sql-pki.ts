import type { Kysely, Selectable } from 'kysely';
import { ScsError } from '../../errors.ts';
import { Secret } from '../../secret.ts';
import { appendAudit, guard, write, type SqlContext } from '../sql/sql-store.ts';
import type { StoreDb } from '../sql/schema.ts';
import type { NewPkiCert, PkiCertRow, PkiCertsTable, PkiDb, PkiRepository } from './pki.ts';

const keyAad = (leafSha256: string): string => `pki:key:${leafSha256}`;

function db(ctx: SqlContext): Kysely<StoreDb & PkiDb> {
  return ctx.q.withTables<PkiDb>();
}

function toRow(r: Selectable<PkiCertsTable>): PkiCertRow {
  return {
    id: Number(r.id),
    dnsSuffix: r.dns_suffix,
    leafCommonName: r.leaf_cn,
    leafSha256: r.leaf_sha256,
    rootSha256: r.root_sha256,
    rootSha1: r.root_sha1,
    rootSha384: r.root_sha384,
    notBefore: new Date(r.not_before),
    notAfter: new Date(r.not_after),
    chainPem: r.chain_pem,
    createdAt: new Date(r.created_at),
    createdBy: r.created_by,
  };
}

const PUBLIC = [
  'id',
  'dns_suffix',
  'leaf_cn',
  'leaf_sha256',
  'root_sha256',
  'root_sha1',
  'root_sha384',
  'not_before',
  'not_after',
  'chain_pem',
  'created_at',
  'created_by',
] as const;

/** Provisioning certificates over the shared SQL core (same transactions and audit chain). */
export class SqlPki implements PkiRepository {
  readonly #ctx: SqlContext;

  constructor(ctx: SqlContext) {
    this.#ctx = ctx;
  }

  async add(cert: NewPkiCert, context: { readonly actor: string }): Promise<PkiCertRow> {
    const sealed = this.#ctx.box.seal(cert.keyPkcs8.reveal(), keyAad(cert.leafSha256));
    return write(this.#ctx, async (tx) => {
      const q = db(tx);
      const taken = await q
        .selectFrom('pki_certs')
        .select('id')
        .where('leaf_sha256', '=', cert.leafSha256)
        .executeTakeFirst();
      if (taken !== undefined) {
        throw new ScsError('SCS_PKI_CONFLICT', `this provisioning certificate is already stored (id ${taken.id})`, {
          details: { id: Number(taken.id) },
        });
      }
      const now = new Date().toISOString();
      const max = await q
        .selectFrom('pki_certs')
        .select((eb) => eb.fn.max('id').as('m'))
        .executeTakeFirst();
      const id = Number(max?.m ?? 0) + 1;
      await q
        .insertInto('pki_certs')
        .values({
          id,
          dns_suffix: cert.dnsSuffix,
          leaf_cn: cert.leafCommonName,
          leaf_sha256: cert.leafSha256,
          root_sha256: cert.rootSha256,
          root_sha1: cert.rootSha1,
          root_sha384: cert.rootSha384,
          not_before: cert.notBefore.toISOString(),
          not_after: cert.notAfter.toISOString(),
          chain_pem: cert.chainPem,
          key: sealed,
          created_at: now,
          created_by: context.actor,
        })
        .execute();
      await appendAudit(tx, [
        {
          actor: context.actor,
          action: 'pki.import',
          detail: {
            id,
            dnsSuffix: cert.dnsSuffix,
            leafCn: cert.leafCommonName,
            rootSha256: cert.rootSha256,
            notAfter: cert.notAfter.toISOString(),
          },
        },
      ]);
      const row = await q.selectFrom('pki_certs').select(PUBLIC).where('id', '=', id).executeTakeFirstOrThrow();
      return toRow({ ...row, key: Buffer.alloc(0) });
    });
  }

  async list(): Promise<PkiCertRow[]> {
    const rows = await guard(db(this.#ctx).selectFrom('pki_certs').select(PUBLIC).orderBy('id').execute());
    return rows.map((r) => toRow({ ...r, key: Buffer.alloc(0) }));
  }

  async get(id: number): Promise<PkiCertRow | undefined> {
    const r = await guard(db(this.#ctx).selectFrom('pki_certs').select(PUBLIC).where('id', '=', id).executeTakeFirst());
    return r === undefined ? undefined : toRow({ ...r, key: Buffer.alloc(0) });
  }

  async openKey(id: number, context: { readonly actor: string; readonly purpose: string }): Promise<Secret<Buffer>> {
    return write(this.#ctx, async (tx) => {
      const r = await db(tx)
        .selectFrom('pki_certs')
        .select(['key', 'leaf_sha256'])
        .where('id', '=', id)
        .executeTakeFirst();
      if (r === undefined) throw new ScsError('SCS_PKI_NOT_FOUND', `no provisioning certificate with id ${id}`);
      await appendAudit(tx, [
        { actor: context.actor, action: 'pki.key_use', detail: { id, purpose: context.purpose } },
      ]);
      return new Secret(this.#ctx.box.open(Buffer.from(r.key), keyAad(r.leaf_sha256)));
    });
  }

  async remove(id: number, context: { readonly actor: string }): Promise<void> {
    await write(this.#ctx, async (tx) => {
      const r = await db(tx).deleteFrom('pki_certs').where('id', '=', id).executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) {
        throw new ScsError('SCS_PKI_NOT_FOUND', `no provisioning certificate with id ${id}`);
      }
      await appendAudit(tx, [{ actor: context.actor, action: 'pki.remove', detail: { id } }]);
    });
  }
}
