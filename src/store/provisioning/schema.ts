import type { Generated, Kysely } from 'kysely';
import type { StoreDb } from '../sql/schema.ts';
import type { DeviceState, EscrowPurpose, EscrowStatus, JobState } from './types.ts';

/**
 * The provisioning tables (schema version 2, src/store/sqlite/provisioning-migration.ts) as
 * kysely sees them. Timestamps are ISO-8601 UTC text, as in the PSK tables. Type aliases, not
 * interfaces: Kysely.withTables needs index-signature-compatible types.
 */
export type ProvisioningDb = {
  profiles: ProfilesTable;
  devices: DevicesTable;
  jobs: JobsTable;
  escrow: EscrowTable;
  ca: CaTable;
};

export type ProfilesTable = {
  name: string;
  body: string;
  secrets: Buffer | null;
  version: number;
  created_at: string;
  updated_at: string;
};

export type DevicesTable = {
  uuid: string;
  state: DeviceState;
  address: string | null;
  amt_version: string | null;
  host_name: string | null;
  domain_name: string | null;
  profile: string | null;
  admin_user: string | null;
  admin_escrow_id: number | null;
  mebx_escrow_id: number | null;
  cert_pem: string | null;
  cert_fingerprint: string | null;
  cert_not_after: string | null;
  pid: string | null;
  last_job_id: number | null;
  provisioned_at: string | null;
  created_at: string;
  updated_at: string;
};

export type JobsTable = {
  id: Generated<number>;
  device_uuid: string;
  pid: string;
  address: string;
  profile: string;
  state: JobState;
  step: string | null;
  attempts: number;
  error_code: string | null;
  error_message: string | null;
  lease_owner: string | null;
  lease_until: string | null;
  data: string;
  created_at: string;
  updated_at: string;
  finished_at: string | null;
};

export type EscrowTable = {
  id: Generated<number>;
  device_uuid: string;
  purpose: EscrowPurpose;
  username: string | null;
  secret: Buffer;
  job_id: number | null;
  status: EscrowStatus;
  created_at: string;
  updated_at: string;
};

export type CaTable = {
  id: number;
  cert_pem: string;
  key: Buffer;
  created_at: string;
};

export type Db = Kysely<StoreDb & ProvisioningDb>;
