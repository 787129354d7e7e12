import { ScsError } from '../../errors.ts';
import type { Secret } from '../../secret.ts';

/**
 * **(choice)** A new bundle passphrase has at least 12 characters (Unicode code points, after
 * NFC as the codec hashes it). scrypt at N = 2^17 makes each guess cost ~0.7 s of one core, but
 * the bundle travels and can be attacked offline for as long as anyone likes: 12 characters is
 * the floor NIST SP 800-63B sets for passwords chosen without other checks. Importing does not
 * apply the rule (the passphrase was chosen where the bundle was made).
 */
export const MIN_PASSPHRASE_LENGTH = 12;

export function checkNewPassphrase(passphrase: Secret<string>): void {
  const text = passphrase.reveal().normalize('NFC');
  if (text.length === 0) throw new ScsError('SCS_PASSPHRASE_MISSING', 'the bundle passphrase is empty');
  const length = [...text].length;
  if (length < MIN_PASSPHRASE_LENGTH) {
    // The length is not a secret worth keeping; the passphrase itself never appears.
    throw new ScsError(
      'SCS_PASSPHRASE_WEAK',
      `the bundle passphrase has ${length} characters; use at least ${MIN_PASSPHRASE_LENGTH}`,
      { details: { minimum: MIN_PASSPHRASE_LENGTH } },
    );
  }
}
