import { useState } from 'preact/hooks';
import { messageOf } from '../api.ts';
import { saveDownload } from '../download.ts';
import { n } from '../format.ts';
import { Problem } from '../parts/problem.tsx';
import { useSession } from '../session-context.ts';

type Format = 'csv' | 'setup-bin' | 'bundle';

const HINT: Readonly<Record<Format, string>> = {
  csv: 'PID,PPS for technicians. The PSKs become exported.',
  'setup-bin': 'A USB setup.bin for MEBx. The PSKs become exported.',
  bundle: 'An encrypted bundle for another amt-scs server: a copy, or moved (transferred) from here.',
};

/** Export PSKs as a file download: CSV, setup.bin or an encrypted bundle (docs/transfer.md). */
export function PskExport({ batches, onDone }: { readonly batches: readonly string[]; readonly onDone: () => void }) {
  const { client } = useSession();
  const [format, setFormat] = useState<Format>('csv');
  const [batch, setBatch] = useState('');
  const [count, setCount] = useState('');
  const [state, setState] = useState<'available' | 'exported'>('available');
  const [passphrase, setPassphrase] = useState('');
  const [move, setMove] = useState(false);
  const [mebx, setMebx] = useState('');
  const [newMebx, setNewMebx] = useState('');
  const [busy, setBusy] = useState(false);
  const [saved, setSaved] = useState<string | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    setSaved(undefined);
    try {
      const body = {
        format,
        ...(batch === '' ? {} : { batch }),
        ...(count === '' ? {} : { count: Number(count) }),
        ...(format === 'bundle' ? {} : { state }),
        ...(format === 'bundle' ? { bundle: { passphrase, move } } : {}),
        ...(format === 'setup-bin'
          ? { setupBin: { currentMebxPassword: mebx, ...(newMebx === '' ? {} : { newMebxPassword: newMebx }) } }
          : {}),
      };
      const file = await client.download('/psks/export', body);
      saveDownload(file);
      setSaved(`${file.fileName} (${n(file.blob.size)} bytes)`);
      onDone();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="card" aria-labelledby="exp-title">
      <h2 id="exp-title">Export</h2>
      <form onSubmit={(e) => void submit(e)} class="stacked">
        <div class="field">
          <label for="exp-format">Format</label>
          <select
            id="exp-format"
            value={format}
            onChange={(e) => setFormat(e.currentTarget.value as Format)}
            aria-describedby="exp-hint"
          >
            <option value="csv">CSV</option>
            <option value="setup-bin">setup.bin (USB)</option>
            <option value="bundle">Bundle (encrypted)</option>
          </select>
          <p id="exp-hint" class="muted small">
            {HINT[format]}
          </p>
        </div>
        <div class="row">
          <div class="field">
            <label for="exp-batch">Batch</label>
            <select id="exp-batch" value={batch} onChange={(e) => setBatch(e.currentTarget.value)}>
              <option value="">all batches</option>
              {batches.map((b) => (
                <option key={b} value={b}>
                  {b}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="exp-count">At most</label>
            <input
              id="exp-count"
              type="number"
              min={1}
              placeholder="all"
              value={count}
              onInput={(e) => setCount(e.currentTarget.value)}
            />
          </div>
        </div>
        {format === 'bundle' ? (
          <>
            <div class="field">
              <label for="exp-pass">Passphrase (12+ characters)</label>
              <input
                id="exp-pass"
                type="password"
                autoComplete="new-password"
                minLength={12}
                required
                value={passphrase}
                onInput={(e) => setPassphrase(e.currentTarget.value)}
              />
            </div>
            <label class="check">
              <input type="checkbox" checked={move} onChange={(e) => setMove(e.currentTarget.checked)} /> Move: mark
              them transferred here
            </label>
          </>
        ) : (
          <div class="field">
            <label for="exp-state">PSKs that are</label>
            <select
              id="exp-state"
              value={state}
              onChange={(e) => setState(e.currentTarget.value as 'available' | 'exported')}
            >
              <option value="available">available</option>
              <option value="exported">exported (again)</option>
            </select>
          </div>
        )}
        {format === 'setup-bin' ? (
          <div class="row">
            <div class="field">
              <label for="exp-mebx">Current MEBx password</label>
              <input
                id="exp-mebx"
                type="password"
                autoComplete="off"
                required
                value={mebx}
                onInput={(e) => setMebx(e.currentTarget.value)}
              />
            </div>
            <div class="field">
              <label for="exp-newmebx">New MEBx password</label>
              <input
                id="exp-newmebx"
                type="password"
                autoComplete="new-password"
                value={newMebx}
                onInput={(e) => setNewMebx(e.currentTarget.value)}
              />
            </div>
          </div>
        ) : null}
        <button type="submit" disabled={busy}>
          {busy ? 'Exporting…' : 'Export and download'}
        </button>
      </form>
      <Problem message={error} />
      {saved === undefined ? null : (
        <p class="ok" role="status" data-testid="export-result">
          Downloaded {saved}
        </p>
      )}
    </section>
  );
}
