import type { Migration } from '../sql/migrate.ts';

/**
 * Schema version 4: the export log and the bundles imported (docs/transfer.md). A setup.bin
 * export keeps record number -> PID for every record, because the BIOS zeroes a consumed record
 * (docs/formats.md, "What the BIOS does to a consumed record") and only this log can then say
 * which PID the record carried. No secret is stored here.
 */
export const TRANSFERS_MIGRATION: Migration = {
  version: 4,
  name: 'psk transfers: export log, setup.bin record log, imported bundles',
  statements: [
    `create table psk_exports (
      id text primary key,
      format text not null check (format in ('csv', 'setup-bin', 'bundle')),
      file text not null,
      temp_file text,
      status text not null check (status in ('pending', 'complete')),
      record_count integer not null,
      batch text,
      mode text not null check (mode in ('exported', 'copy', 'move')),
      sha256 text not null,
      bytes integer not null,
      setupbin_version integer,
      do_not_consume integer,
      bundle_id text,
      actor text not null,
      created_at text not null
    )`,
    `create index psk_exports_setupbin on psk_exports (setupbin_version, record_count) where format = 'setup-bin'`,
    `create index psk_exports_pending on psk_exports (status) where status = 'pending'`,
    `create table psk_export_records (
      export_id text not null references psk_exports (id),
      record_number integer not null,
      pid text not null,
      primary key (export_id, record_number)
    )`,
    `create index psk_export_records_pid on psk_export_records (pid)`,
    `create table psk_imports (
      bundle_id text primary key,
      file text not null,
      source_name text not null,
      record_count integer not null,
      inserted integer not null,
      actor text not null,
      imported_at text not null
    )`,
  ],
};
