import { useState } from 'preact/hooks';
import { messageOf, query } from '../api.ts';
import { n } from '../format.ts';
import { Problem } from '../parts/problem.tsx';
import type { ImportResult } from '../resources.ts';
import { useSession } from '../session-context.ts';

const OUTCOME: Readonly<Record<string, string>> = {
  imported: 'Imported',
  'nothing-new': 'Nothing new: every PSK in the file is already here',
  'already-imported': 'This bundle was imported before; nothing changed',
  reconciled: 'setup.bin reconciled with the PSKs exported from here',
};

/** Upload a CSV, setup.bin or bundle; the server detects the format and imports all or nothing. */
export function PskImport({ onDone }: { readonly onDone: () => void }) {
  const { client } = useSession();
  const [file, setFile] = useState<File | undefined>(undefined);
  const [batch, setBatch] = useState('');
  const [state, setState] = useState<'exported' | 'available'>('exported');
  const [passphrase, setPassphrase] = useState('');
  const [busy, setBusy] = useState(false);
  const [result, setResult] = useState<ImportResult | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const isBundle = file !== undefined && /\.scsbundle$/i.test(file.name);

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    if (file === undefined) return;
    setBusy(true);
    setError(undefined);
    setResult(undefined);
    try {
      const r = await client.json<ImportResult>(
        'POST',
        `/psks/import${query({ batch: batch.trim(), state, fileName: file.name.slice(0, 200) })}`,
        {
          body: file,
          headers: {
            'content-type': 'application/octet-stream',
            ...(passphrase === '' ? {} : { 'x-scs-bundle-passphrase': passphrase }),
          },
        },
      );
      setResult(r);
      onDone();
    } catch (err) {
      setError(messageOf(err));
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="card" aria-labelledby="imp-title">
      <h2 id="imp-title">Import</h2>
      <form onSubmit={(e) => void submit(e)} class="stacked">
        <div class="field">
          <label for="imp-file">File (CSV, setup.bin or .scsbundle)</label>
          <input id="imp-file" type="file" required onChange={(e) => setFile(e.currentTarget.files?.[0])} />
        </div>
        <div class="field">
          <label for="imp-batch">Into batch</label>
          <input
            id="imp-batch"
            placeholder="from the file, or a new one"
            value={batch}
            onInput={(e) => setBatch(e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for="imp-state">PSKs from a CSV are</label>
          <select
            id="imp-state"
            value={state}
            onChange={(e) => setState(e.currentTarget.value as 'exported' | 'available')}
          >
            <option value="exported">exported (already on devices or USB keys)</option>
            <option value="available">available (not handed out yet)</option>
          </select>
        </div>
        {isBundle || passphrase !== '' ? (
          <div class="field">
            <label for="imp-pass">Bundle passphrase</label>
            <input
              id="imp-pass"
              type="password"
              autoComplete="off"
              value={passphrase}
              onInput={(e) => setPassphrase(e.currentTarget.value)}
            />
          </div>
        ) : null}
        <button type="submit" disabled={busy || file === undefined}>
          {busy ? 'Importing…' : 'Import file'}
        </button>
      </form>
      <Problem message={error} />
      {result === undefined ? null : (
        <div class="result" role="status" data-testid="import-result">
          <p class="ok">{OUTCOME[result.outcome] ?? result.outcome}</p>
          <dl class="facts">
            <dt>format</dt>
            <dd>{result.format}</dd>
            <dt>records in the file</dt>
            <dd>{n(result.records)}</dd>
            <dt>new PSKs</dt>
            <dd>{n(result.inserted)}</dd>
            <dt>already here</dt>
            <dd>{n(result.duplicates)}</dd>
            {result.sourceName === undefined ? null : (
              <>
                <dt>from</dt>
                <dd>{result.sourceName}</dd>
              </>
            )}
          </dl>
        </div>
      )}
    </section>
  );
}
