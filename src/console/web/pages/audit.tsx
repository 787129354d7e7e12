import { useState } from 'preact/hooks';
import { query } from '../api.ts';
import { n, when } from '../format.ts';
import { AuditDetail } from '../parts/audit-detail.tsx';
import { Pager } from '../parts/pager.tsx';
import { Problem } from '../parts/problem.tsx';
import type { AuditEntry, AuditVerify, Page } from '../resources.ts';
import { useSession } from '../session-context.ts';
import { useLoad } from '../use-load.ts';
import { usePages } from '../use-pages.ts';

const PAGE = 50;

/** The hash-chained audit log, newest first, and whether the whole chain verifies. */
export function AuditPage() {
  const { client } = useSession();
  const [action, setAction] = useState('');
  const [applied, setApplied] = useState('');
  const pages = usePages<number>();
  const list = useLoad(
    (s) =>
      client.get<Page<AuditEntry, number>>(`/audit${query({ action: applied, before: pages.cursor, limit: PAGE })}`, s),
    [applied, pages.cursor],
  );
  const verify = useLoad((s) => client.get<AuditVerify>('/audit/verify', s), []);
  const v = verify.value;
  return (
    <div class="page">
      <h1>Audit log</h1>
      <section class="card" aria-labelledby="chain-title" aria-live="polite">
        <h2 id="chain-title">Chain verification</h2>
        <Problem message={verify.error} />
        {v === undefined ? (
          <p class="muted">{verify.loading ? 'Verifying every entry…' : ''}</p>
        ) : v.ok ? (
          <p class="verify ok" data-testid="audit-verify" data-ok="true">
            <span aria-hidden="true">✔</span> Intact: {n(v.entries)} entries, each hash chained to the one before, up to
            #{v.headSeq} <span class="mono small">{v.headHash.slice(0, 16)}…</span>
          </p>
        ) : (
          <p class="verify broken" data-testid="audit-verify" data-ok="false" role="alert">
            <span aria-hidden="true">✘</span> Broken at entry #{v.brokenSeq}: {v.reason} ({n(v.entries)} entries
            checked)
          </p>
        )}
        <button type="button" class="secondary" onClick={verify.reload} disabled={verify.loading}>
          Verify again
        </button>
      </section>
      <section class="card" aria-labelledby="audit-title">
        <h2 id="audit-title">Entries</h2>
        <form
          class="filters"
          onSubmit={(e) => {
            e.preventDefault();
            setApplied(action.trim());
            pages.reset();
          }}
          aria-label="Filter the audit log"
        >
          <div class="field">
            <label for="a-action">Action</label>
            <input
              id="a-action"
              list="a-actions"
              placeholder="e.g. psk.reveal"
              value={action}
              onInput={(e) => setAction(e.currentTarget.value)}
            />
            <datalist id="a-actions">
              {[
                'psk.generate',
                'psk.export',
                'psk.import',
                'psk.reveal',
                'psk.revoke',
                'device.reveal_password',
                'profile.update',
                'token.create',
              ].map((a) => (
                <option key={a} value={a} />
              ))}
            </datalist>
          </div>
          <button type="submit" class="secondary">
            Filter
          </button>
        </form>
        <Problem message={list.error} />
        <div class="table-wrap">
          <table data-testid="audit-list">
            <thead>
              <tr>
                <th scope="col" class="num">
                  #
                </th>
                <th scope="col">When</th>
                <th scope="col">Actor</th>
                <th scope="col">Action</th>
                <th scope="col">Detail</th>
              </tr>
            </thead>
            <tbody>
              {list.value?.items.map((a) => (
                <tr key={a.seq}>
                  <td class="num muted">{a.seq}</td>
                  <td class="nowrap">{when(a.at)}</td>
                  <td>{a.actor}</td>
                  <td>
                    <strong>{a.action}</strong>
                  </td>
                  <td>
                    {a.pids.length > 0 ? (
                      <span class="mono small">
                        {a.pids.slice(0, 3).join(' ')}
                        {a.pids.length > 3 ? ` +${a.pids.length - 3}` : ''}{' '}
                      </span>
                    ) : null}
                    <AuditDetail detail={a.detail} />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
        <Pager
          label="Audit"
          page={pages.page}
          hasNext={list.value?.next != null}
          onPrev={pages.prev}
          onNext={() => list.value?.next != null && pages.next(list.value.next)}
        />
      </section>
    </div>
  );
}
