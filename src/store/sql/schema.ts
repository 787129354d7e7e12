import type { Generated } from 'kysely';
import type { PskState } from '../lifecycle.ts';
import type { ApiTokensTable } from '../tokens/tokens.ts';
import type { PskExportRecordsTable, PskExportsTable, PskImportsTable } from '../transfers/transfers.ts';

/**
 * Tables as the shared SQL code (src/store/sql) sees them; each adapter's migrations create
 * them in its own dialect (docs/psk-database.md, "Schema"). Timestamps are ISO-8601 UTC text
 * with milliseconds: the audit hash covers the exact text, and it sorts as time. Integer
 * columns may come back as strings from PostgreSQL (int8), so readers wrap them in Number().
 */
export interface StoreDb {
  schema_migrations: SchemaMigrationsTable;
  data_keys: DataKeysTable;
  batches: BatchesTable;
  psks: PsksTable;
  audit_log: AuditLogTable;
  audit_head: AuditHeadTable;
  api_tokens: ApiTokensTable;
  psk_exports: PskExportsTable;
  psk_export_records: PskExportRecordsTable;
  psk_imports: PskImportsTable;
}

export interface SchemaMigrationsTable {
  version: number;
  name: string;
  applied_at: string;
}

export interface DataKeysTable {
  key_id: number;
  /** The DEK sealed by the master key (src/crypto/envelope.ts blob layout). */
  wrapped: Buffer;
  created_at: string;
  /** `active` seals new secrets; `retired` only opens old ones (rotation, a later issue). */
  status: 'active' | 'retired';
}

export interface BatchesTable {
  name: string;
  created_at: string;
  profile: string | null;
}

export interface PsksTable {
  id: Generated<number>;
  pid: string;
  /** Sealed PPS, associated data = the PID. */
  pps: Buffer;
  batch: string;
  state: PskState;
  prior_state: PskState | null;
  device_uuid: string | null;
  created_at: string;
  updated_at: string;
}

export interface AuditLogTable {
  seq: number;
  at: string;
  actor: string;
  action: string;
  /** PIDs joined by commas (8 characters each, so a LIKE '%PID%' match is always a whole PID). */
  pids: string;
  /** Flat JSON object. */
  detail: string;
  hash: string;
}

/** One row (id = 1): the last seq and hash, locked by every append. */
export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
}
