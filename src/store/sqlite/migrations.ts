import { GENESIS_HASH } from '../audit-chain.ts';
import { PSK_STATES } from '../lifecycle.ts';
import type { Migration } from '../sql/migrate.ts';
import { PKI_MIGRATION } from './pki-migration.ts';
import { PROVISIONING_MIGRATION } from './provisioning-migration.ts';
import { TOKENS_MIGRATION } from './tokens-migration.ts';
import { TRANSFERS_MIGRATION } from './transfers-migration.ts';

const states = PSK_STATES.map((s) => `'${s}'`).join(', ');

/**
 * SQLite schema, one entry per version; never edit a released entry, add a new one
 * (docs/psk-database.md, "Schema"). Kept to SQL that has a direct PostgreSQL equivalent.
 */
export const SQLITE_MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'psk database: data keys, batches, psks, audit log',
    statements: [
      `create table data_keys (
        key_id integer primary key,
        wrapped blob not null,
        created_at text not null,
        status text not null check (status in ('active', 'retired'))
      )`,
      `create table batches (
        name text primary key,
        created_at text not null,
        profile text
      )`,
      // id: insertion order (the rowid), the keyset-paging cursor; new rows append at the end
      // of every index that ends in it, so only the PID index takes random inserts.
      `create table psks (
        id integer primary key,
        pid text not null unique check (length(pid) = 8),
        pps blob not null,
        batch text not null references batches (name),
        state text not null check (state in (${states})),
        prior_state text check (prior_state in ('available', 'exported')),
        device_uuid text,
        created_at text not null,
        updated_at text not null
      )`,
      `create index psks_state on psks (state)`,
      `create index psks_batch on psks (batch)`,
      `create index psks_device on psks (device_uuid) where device_uuid is not null`,
      `create table audit_log (
        seq integer primary key,
        at text not null,
        actor text not null,
        action text not null,
        pids text not null,
        detail text not null,
        hash text not null
      )`,
      // Append-only by construction for anyone using SQL by mistake; the hash chain is what
      // detects deliberate edits (a determined editor can drop these triggers).
      `create trigger audit_log_no_update before update on audit_log
        begin select raise(abort, 'audit_log is append-only'); end`,
      `create trigger audit_log_no_delete before delete on audit_log
        begin select raise(abort, 'audit_log is append-only'); end`,
      `create table audit_head (
        id integer primary key check (id = 1),
        seq integer not null,
        hash text not null
      )`,
      `insert into audit_head (id, seq, hash) values (1, 0, '${GENESIS_HASH}')`,
    ],
  },
  PROVISIONING_MIGRATION,
  TOKENS_MIGRATION,
  TRANSFERS_MIGRATION,
  PKI_MIGRATION,
];
