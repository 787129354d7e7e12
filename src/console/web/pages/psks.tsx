import { useState } from 'preact/hooks';
import { query } from '../api.ts';
import { label, n, when } from '../format.ts';
import { Pager } from '../parts/pager.tsx';
import { Problem } from '../parts/problem.tsx';
import { StateBadge } from '../parts/state-badge.tsx';
import { PSK_STATES, type Batch, type Page, type Psk, type PskState } from '../resources.ts';
import { href } from '../route.ts';
import { useSession } from '../session-context.ts';
import { useLoad } from '../use-load.ts';
import { usePages } from '../use-pages.ts';
import { PskExport } from './psk-export.tsx';
import { PskGenerate } from './psk-generate.tsx';
import { PskImport } from './psk-import.tsx';
import { PskRevoke, REVOCABLE } from './psk-revoke.tsx';

const PAGE = 50;

/** The PSK inventory: batches, a filtered list (never a PPS), and generate / import / export / revoke by role. */
export function PsksPage() {
  const { client, can } = useSession();
  const [batch, setBatch] = useState('');
  const [state, setState] = useState<PskState | ''>('');
  const pages = usePages<number>();
  const [changed, setChanged] = useState(0);
  const batches = useLoad((s) => client.get<{ items: Batch[] }>('/batches', s), [changed]);
  const list = useLoad(
    (s) =>
      client.get<Page<Psk, number>>(
        `/psks${query({ batch, state: state === '' ? undefined : [state], after: pages.cursor, limit: PAGE })}`,
        s,
      ),
    [batch, state, pages.cursor, changed],
  );
  const refresh = (): void => setChanged((c) => c + 1);
  const [revoking, setRevoking] = useState<Psk | undefined>(undefined);
  const [revoked, setRevoked] = useState<string | undefined>(undefined);
  const canRevoke = can('psk.write');
  const batchNames = batches.value?.items.map((b) => b.name) ?? [];
  return (
    <div class="page">
      <h1>PSKs</h1>
      {can('psk.write') || can('psk.export') ? (
        <div class="grid three">
          {can('psk.write') ? <PskGenerate onDone={refresh} /> : null}
          {can('psk.write') ? <PskImport onDone={refresh} /> : null}
          {can('psk.export') ? <PskExport batches={batchNames} onDone={refresh} /> : null}
        </div>
      ) : null}
      <section class="card" aria-labelledby="batches-title">
        <h2 id="batches-title">Batches</h2>
        <Problem message={batches.error} />
        <div class="table-wrap">
          <table data-testid="batches">
            <thead>
              <tr>
                <th scope="col">Batch</th>
                <th scope="col">Profile</th>
                {PSK_STATES.map((s) => (
                  <th scope="col" class="num" key={s}>
                    {label(s)}
                  </th>
                ))}
                <th scope="col" class="num">
                  total
                </th>
              </tr>
            </thead>
            <tbody>
              {batches.value?.items.map((b) => (
                <tr key={b.name}>
                  <td>
                    <button type="button" class="link" onClick={() => (setBatch(b.name), pages.reset())}>
                      {b.name}
                    </button>
                  </td>
                  <td>
                    {b.profile === null ? (
                      <span class="muted">server default</span>
                    ) : (
                      <a href={href('profiles', b.profile)}>{b.profile}</a>
                    )}
                  </td>
                  {PSK_STATES.map((s) => (
                    <td class="num" key={s}>
                      {b.counts[s] === 0 ? <span class="muted">0</span> : n(b.counts[s])}
                    </td>
                  ))}
                  <td class="num">{n(b.total)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      <section class="card" aria-labelledby="list-title">
        <h2 id="list-title">Inventory</h2>
        <form class="filters" onSubmit={(e) => e.preventDefault()} aria-label="Filter PSKs">
          <div class="field">
            <label for="f-batch">Batch</label>
            <select id="f-batch" value={batch} onChange={(e) => (setBatch(e.currentTarget.value), pages.reset())}>
              <option value="">all batches</option>
              {batchNames.map((b) => (
                <option key={b} value={b}>
                  {b}
                </option>
              ))}
            </select>
          </div>
          <div class="field">
            <label for="f-state">State</label>
            <select
              id="f-state"
              value={state}
              onChange={(e) => (setState(e.currentTarget.value as PskState | ''), pages.reset())}
            >
              <option value="">any state</option>
              {PSK_STATES.map((s) => (
                <option key={s} value={s}>
                  {label(s)}
                </option>
              ))}
            </select>
          </div>
          <button type="button" class="secondary" onClick={refresh}>
            Refresh
          </button>
        </form>
        <Problem message={list.error} />
        {revoking === undefined ? null : (
          <PskRevoke
            key={revoking.pid}
            psk={revoking}
            onCancel={() => setRevoking(undefined)}
            onDone={(message) => (setRevoking(undefined), setRevoked(message), refresh())}
          />
        )}
        {revoked === undefined ? null : (
          <p class="ok" role="status" data-testid="psk-revoke-result">
            {revoked}
          </p>
        )}
        <div class="table-wrap">
          <table data-testid="psk-list" aria-busy={list.loading}>
            <thead>
              <tr>
                <th scope="col">PID</th>
                <th scope="col">Batch</th>
                <th scope="col">State</th>
                <th scope="col">Device</th>
                <th scope="col">Changed</th>
                {canRevoke ? (
                  <th scope="col">
                    <span class="sr-only">Action</span>
                  </th>
                ) : null}
              </tr>
            </thead>
            <tbody>
              {list.value?.items.map((p) => (
                <tr key={p.id}>
                  <td class="mono">{p.pid}</td>
                  <td>{p.batch}</td>
                  <td>
                    <StateBadge state={p.state} />
                  </td>
                  <td>
                    {p.deviceUuid === null ? (
                      <span class="muted">—</span>
                    ) : (
                      <a class="mono" href={href('devices', p.deviceUuid)}>
                        {p.deviceUuid}
                      </a>
                    )}
                  </td>
                  <td class="muted">{when(p.updatedAt)}</td>
                  {canRevoke ? (
                    <td>
                      {REVOCABLE.has(p.state) ? (
                        <button
                          type="button"
                          class="danger small"
                          onClick={() => (setRevoked(undefined), setRevoking(p))}
                        >
                          Revoke<span class="sr-only"> {p.pid}</span>
                        </button>
                      ) : null}
                    </td>
                  ) : null}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        {list.value?.items.length === 0 ? <p class="empty-note">No PSK matches.</p> : null}
        <Pager
          label="PSK"
          page={pages.page}
          hasNext={list.value?.next != null}
          onPrev={pages.prev}
          onNext={() => list.value?.next != null && pages.next(list.value.next)}
        />
      </section>
    </div>
  );
}
