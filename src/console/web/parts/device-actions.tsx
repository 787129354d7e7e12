import { useState } from 'preact/hooks';
import { messageOf } from '../api.ts';
import { when } from '../format.ts';
import { Problem } from './problem.tsx';

type Action = 'sync-time' | 'rotate-password' | 'renew-certificate' | 'unprovision-partial' | 'unprovision';

interface Outcome {
  readonly action: Action;
  readonly message: string;
}

const LABEL: Record<Action, string> = {
  'sync-time': 'Re-sync time',
  'rotate-password': 'Rotate admin password',
  'renew-certificate': 'Renew TLS certificate',
  'unprovision-partial': 'Partial unprovision…',
  unprovision: 'Unprovision…',
};

/** What the confirmation says before a destructive action; the device is changed, not just read. */
const WARNING: Partial<Record<Action, string>> = {
  'unprovision-partial':
    'The device goes back to setup mode with its renewed PSK and keeps its admin account and names; its next hello provisions it again with that PSK.',
  unprovision:
    'The device returns to its factory state: its admin account, names, certificate and PSK are gone from it, and the PSK it held is marked consumed here. It is provisioned again only from a new hello with a PSK this server knows (a PKI device: from its certificate setup mode).',
};

export interface DeviceActionsProps {
  readonly uuid: string;
  readonly provisioned: boolean;
  readonly hasCertificate: boolean;
  readonly holdsPsk: boolean;
  readonly post: (path: string, body: Readonly<Record<string, unknown>>) => Promise<unknown>;
  /** Called after every action, whether it worked or not: the page reloads the device, its jobs and history. */
  readonly onDone: () => void;
}

/**
 * Device actions after provisioning (docs/pki.md, "After provisioning"; tokens with
 * device.write): one at a time, every button disabled while one runs, unprovision only after
 * a confirmation, the server's answer or its problem shown until the next action.
 */
export function DeviceActions(props: DeviceActionsProps) {
  const { uuid, provisioned, hasCertificate, holdsPsk, post, onDone } = props;
  const [running, setRunning] = useState<Action | undefined>(undefined);
  const [confirming, setConfirming] = useState<Action | undefined>(undefined);
  const [withinDays, setWithinDays] = useState('');
  const [outcome, setOutcome] = useState<Outcome | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const base = `/devices/${encodeURIComponent(uuid)}`;

  const run = async (action: Action): Promise<void> => {
    setConfirming(undefined);
    setRunning(action);
    setOutcome(undefined);
    setError(undefined);
    try {
      setOutcome({ action, message: await perform(action) });
    } catch (e) {
      setError(`${LABEL[action].replace('…', '')} failed: ${messageOf(e)}`);
    } finally {
      setRunning(undefined);
      onDone();
    }
  };

  const perform = async (action: Action): Promise<string> => {
    switch (action) {
      case 'sync-time': {
        const r = (await post(`${base}/sync-time`, {})) as { offsetSeconds: number };
        return `Clock set from the server; it was ${offset(r.offsetSeconds)}.`;
      }
      case 'rotate-password': {
        const r = (await post(`${base}/rotate-password`, {})) as { escrowId: number };
        return `New admin password set, checked with a login and escrowed (escrow #${r.escrowId}); the old one no longer works.`;
      }
      case 'renew-certificate': {
        const days = withinDays.trim();
        const r = (await post(`${base}/renew-certificate`, days === '' ? {} : { withinDays: Number(days) })) as {
          renewed: boolean;
          notAfter: string | null;
        };
        return r.renewed
          ? `New certificate issued for a new device key and in use; valid until ${when(r.notAfter)}.`
          : `Not renewed: the certificate is valid until ${when(r.notAfter)}, beyond ${days} days.`;
      }
      case 'unprovision-partial':
        await post(`${base}/unprovision`, { partial: true });
        return 'Partially unprovisioned: the device is back in setup mode and provisions again from its next hello.';
      case 'unprovision':
        await post(`${base}/unprovision`, {});
        return 'Unprovisioned: the device is back in its factory state.';
    }
  };

  const busy = running !== undefined;
  const daysValid = withinDays.trim() === '' || /^\d{1,4}$/.test(withinDays.trim());
  const button = (action: Action, kind: 'secondary' | 'danger', disabled = false) => (
    <button
      type="button"
      class={kind}
      disabled={busy || !provisioned || disabled}
      aria-busy={running === action}
      onClick={() => (WARNING[action] === undefined ? void run(action) : setConfirming(action))}
    >
      {running === action ? `${LABEL[action].replace('…', '')}: running…` : LABEL[action]}
    </button>
  );

  return (
    <section class="card" aria-labelledby="dev-actions" data-testid="device-actions">
      <h2 id="dev-actions">Actions</h2>
      {provisioned ? (
        <p class="muted small">Each action connects to the device now, as its escrowed admin, and is audited.</p>
      ) : (
        <p class="muted small">These actions need a provisioned device.</p>
      )}
      <div class="actions">
        {button('sync-time', 'secondary')}
        {button('rotate-password', 'secondary')}
      </div>
      <div class="actions">
        <div class="field">
          <label for="renew-days">Only if it expires within (days; empty: now)</label>
          <input
            id="renew-days"
            inputMode="numeric"
            value={withinDays}
            aria-invalid={!daysValid}
            disabled={busy || !hasCertificate}
            onInput={(e) => setWithinDays(e.currentTarget.value)}
          />
        </div>
        {button('renew-certificate', 'secondary', !hasCertificate || !daysValid)}
      </div>
      {!hasCertificate && provisioned ? (
        <p class="muted small">No certificate from this server to renew (the profile does not turn TLS on).</p>
      ) : null}
      <div class="actions">
        {button('unprovision-partial', 'danger', !holdsPsk)}
        {button('unprovision', 'danger')}
      </div>
      {confirming === undefined ? null : (
        <div class="notice confirm" role="alertdialog" aria-labelledby="confirm-title" aria-describedby="confirm-text">
          <p id="confirm-title">
            <strong>{LABEL[confirming].replace('…', '')} this device?</strong>
          </p>
          <p id="confirm-text">{WARNING[confirming]}</p>
          <div class="actions">
            <button type="button" class="danger" onClick={() => void run(confirming)}>
              Yes, {LABEL[confirming].replace('…', '').toLowerCase()}
            </button>
            <button type="button" class="secondary" onClick={() => setConfirming(undefined)}>
              Cancel
            </button>
          </div>
        </div>
      )}
      {busy ? <progress aria-label={`${LABEL[running]} running`} /> : null}
      {outcome === undefined ? null : (
        <p class="ok" role="status" data-testid="device-action-result" data-action={outcome.action}>
          {outcome.message}
        </p>
      )}
      <Problem message={error} />
    </section>
  );
}

function offset(seconds: number): string {
  if (seconds === 0) return 'on time';
  const abs = Math.abs(seconds);
  // offsetSeconds is the device's clock minus the server's (src/maintenance/device-ops.ts).
  return `${abs} s ${seconds > 0 ? 'ahead' : 'behind'}`;
}
