import { useState } from 'preact/hooks';
import { messageOf } from '../api.ts';
import { label } from '../format.ts';
import { Problem } from '../parts/problem.tsx';
import type { Psk } from '../resources.ts';
import { useSession } from '../session-context.ts';

/** States a PSK can be revoked from (POST /psks/revoke; the others are refused with 409). */
export const REVOCABLE: ReadonlySet<Psk['state']> = new Set(['available', 'exported', 'in_use']);

const CONSEQUENCE: Partial<Record<Psk['state'], string>> = {
  available: 'It can no longer be exported or used by a device.',
  exported: 'It was exported: a device or file may hold it, and this server will refuse a hello with it from now on.',
  in_use: 'A device is being provisioned with it now: that provisioning fails, and no device can use it again.',
};

/**
 * The confirmation of one PSK's revocation (psk.write): what it means for its state, an
 * optional reason recorded in the audit entry, then the server's answer. A revoked PSK cannot be
 * brought back.
 */
export function PskRevoke({
  psk,
  onDone,
  onCancel,
}: {
  readonly psk: Psk;
  readonly onDone: (message: string) => void;
  readonly onCancel: () => void;
}) {
  const { client } = useSession();
  const [reason, setReason] = useState('');
  const [running, setRunning] = useState(false);
  const [error, setError] = useState<string | undefined>(undefined);
  const revoke = async (e: Event): Promise<void> => {
    e.preventDefault();
    setRunning(true);
    setError(undefined);
    try {
      const r = await client.json<{ revoked: number }>('POST', '/psks/revoke', {
        body: { pids: [psk.pid], ...(reason.trim() === '' ? {} : { reason: reason.trim() }) },
      });
      onDone(`PSK ${psk.pid} revoked (${r.revoked}).`);
    } catch (err) {
      setError(`Revoking ${psk.pid} failed: ${messageOf(err)}`);
    } finally {
      setRunning(false);
    }
  };
  return (
    <div
      class="notice confirm"
      role="alertdialog"
      aria-labelledby="revoke-title"
      aria-describedby="revoke-text"
      data-testid="psk-revoke"
    >
      <p id="revoke-title">
        <strong>
          Revoke PSK <span class="mono">{psk.pid}</span> ({label(psk.state)})?
        </strong>
      </p>
      <p id="revoke-text">{CONSEQUENCE[psk.state]} A revoked PSK cannot be restored.</p>
      <form class="actions" onSubmit={(e) => void revoke(e)}>
        <div class="field">
          <label for="revoke-reason">Reason (optional, in the audit log)</label>
          <input
            id="revoke-reason"
            maxLength={500}
            value={reason}
            disabled={running}
            onInput={(e) => setReason(e.currentTarget.value)}
          />
        </div>
        <button type="submit" class="danger" disabled={running} aria-busy={running}>
          {running ? 'Revoking…' : `Yes, revoke ${psk.pid}`}
        </button>
        <button type="button" class="secondary" disabled={running} onClick={onCancel}>
          Cancel
        </button>
      </form>
      <Problem message={error} />
    </div>
  );
}
