import { DEFAULT_PROFILE_NAME, DEFAULT_PROFILE_SETTINGS } from '../provisioning/profile.ts';
import { DEVICE_STATES, ESCROW_PURPOSES, ESCROW_STATUSES, JOB_STATES } from '../provisioning/types.ts';
import type { Migration } from '../sql/migrate.ts';

const list = (values: readonly string[]): string => values.map((v) => `'${v}'`).join(', ');
/** ISO-8601 UTC with milliseconds, the text form every other timestamp column uses. */
const NOW = `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`;
const defaultBody = JSON.stringify(DEFAULT_PROFILE_SETTINGS).replaceAll("'", "''");

/**
 * Schema version 2: what provisioning keeps (docs/provisioning.md, "What the store keeps").
 * Secrets (profile passwords, escrowed device passwords, the CA key) are sealed with the
 * store's SecretBox; the columns that hold them are blobs. Kept to SQL with a direct
 * PostgreSQL equivalent (partial unique index included).
 */
export const PROVISIONING_MIGRATION: Migration = {
  version: 2,
  name: 'provisioning: profiles, devices, jobs, escrow, ca',
  statements: [
    // body: the profile's settings as JSON (no secrets); secrets: sealed JSON, AAD profile:<name>.
    `create table profiles (
      name text primary key,
      body text not null,
      secrets blob,
      version integer not null,
      created_at text not null,
      updated_at text not null
    )`,
    `insert into profiles (name, body, secrets, version, created_at, updated_at)
      values ('${DEFAULT_PROFILE_NAME}', '${defaultBody}', null, 1, ${NOW}, ${NOW})`,
    `create table devices (
      uuid text primary key,
      state text not null check (state in (${list(DEVICE_STATES)})),
      address text,
      amt_version text,
      host_name text,
      domain_name text,
      profile text,
      admin_user text,
      admin_escrow_id integer,
      mebx_escrow_id integer,
      cert_pem text,
      cert_fingerprint text,
      cert_not_after text,
      pid text,
      last_job_id integer,
      provisioned_at text,
      created_at text not null,
      updated_at text not null
    )`,
    `create index devices_state on devices (state)`,
    `create table jobs (
      id integer primary key,
      device_uuid text not null,
      pid text not null,
      address text not null,
      profile text not null,
      state text not null check (state in (${list(JOB_STATES)})),
      step text,
      attempts integer not null,
      error_code text,
      error_message text,
      lease_owner text,
      lease_until text,
      data text not null,
      created_at text not null,
      updated_at text not null,
      finished_at text
    )`,
    // At most one unfinished job per device: a second hello is a duplicate, never a second job,
    // even with two servers on one database.
    `create unique index jobs_active_device on jobs (device_uuid) where state in ('queued', 'running')`,
    `create index jobs_unfinished on jobs (state) where state in ('queued', 'running')`,
    `create index jobs_device on jobs (device_uuid)`,
    // secret: sealed, AAD escrow:<device uuid>:<purpose>.
    `create table escrow (
      id integer primary key,
      device_uuid text not null,
      purpose text not null check (purpose in (${list(ESCROW_PURPOSES)})),
      username text,
      secret blob not null,
      job_id integer,
      status text not null check (status in (${list(ESCROW_STATUSES)})),
      created_at text not null,
      updated_at text not null
    )`,
    `create index escrow_device on escrow (device_uuid)`,
    // One row: the SCS CA that signs device TLS certificates; key sealed, AAD ca:key.
    `create table ca (
      id integer primary key check (id = 1),
      cert_pem text not null,
      key blob not null,
      created_at text not null
    )`,
  ],
};
