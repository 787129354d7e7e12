import type { SqlContext } from '../sql/sql-store.ts';
import type { Store } from '../store.ts';
import { SqlCa } from './sql-ca.ts';
import { SqlDevices } from './sql-devices.ts';
import { SqlEscrow } from './sql-escrow.ts';
import { SqlJobs } from './sql-jobs.ts';
import { SqlProfiles } from './sql-profiles.ts';
import { SqlPskBindings } from './sql-psk-bindings.ts';
import type { ProvisioningRepositories } from './types.ts';

/**
 * The provisioning repositories over the shared SQL core, bound to `ctx` (the store or one of
 * its transactions). `txStore` builds the Store of a transaction context, for the PSK moves a
 * renewal makes in the same transaction.
 */
export function sqlProvisioning(ctx: SqlContext, txStore: (ctx: SqlContext) => Store): ProvisioningRepositories {
  return {
    profiles: new SqlProfiles(ctx),
    devices: new SqlDevices(ctx),
    jobs: new SqlJobs(ctx),
    escrow: new SqlEscrow(ctx),
    ca: new SqlCa(ctx),
    pskBindings: new SqlPskBindings(ctx, txStore),
  };
}
