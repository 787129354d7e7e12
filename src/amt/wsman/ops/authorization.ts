import { ScsError } from '../../../errors.ts';
import type { Secret } from '../../../secret.ts';
import { digestHa1 } from '../../http/digest.ts';
import { voidMethod, type SingleOperation } from '../operation.ts';

/** AMT_AuthorizationService (protocol.md §6 step 2). */
export const AUTHORIZATION_SERVICE = 'AMT_AuthorizationService';

export interface AdminAclEntry {
  /** At most 16 7-bit ASCII characters. */
  readonly username: string;
  /** AMT_GeneralSettings.DigestRealm. */
  readonly realm: string;
  readonly password: Secret<string>;
}

/**
 * DigestPassword = base64 of the 16 raw bytes of MD5(user:realm:password) (§6 step 2, the
 * project's choice; one stack sends hex). The password itself never crosses the wire.
 */
export function digestPassword(entry: AdminAclEntry): string {
  return digestHa1(entry.username, entry.realm, entry.password).toString('base64');
}

/** SetAdminAclEntryEx(Username, DigestPassword). Escrow the new password before calling this. */
export function setAdminAclEntryEx(entry: AdminAclEntry): SingleOperation<number> {
  if (!/^[\x21-\x7e]{1,16}$/.test(entry.username)) {
    throw new ScsError('SCS_PROFILE_INVALID', 'the admin user name must be 1-16 printable 7-bit ASCII characters', {
      details: { length: entry.username.length },
    });
  }
  return voidMethod(AUTHORIZATION_SERVICE, 'SetAdminAclEntryEx', [
    ['Username', entry.username],
    ['DigestPassword', digestPassword(entry)],
  ]);
}
