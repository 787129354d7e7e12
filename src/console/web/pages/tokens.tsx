import { useState } from 'preact/hooks';
import { messageOf, query } from '../api.ts';
import { when } from '../format.ts';
import { Problem } from '../parts/problem.tsx';
import { useSession } from '../session-context.ts';
import { useLoad } from '../use-load.ts';

interface Token {
  readonly name: string;
  readonly role: string;
  readonly grants: readonly string[];
  readonly createdAt: string;
  readonly createdBy: string;
  readonly lastUsedAt: string | null;
  readonly revokedAt: string | null;
}

const ROLES = ['viewer', 'auditor', 'operator', 'admin'] as const;

/**
 * API tokens (admins): create one (shown once, here, and never again: the server keeps only its
 * hash), list them, revoke one. Personal tokens replace the first start's admin token.
 */
export function TokensPage() {
  const { client, me } = useSession();
  const [all, setAll] = useState(false);
  const [changed, setChanged] = useState(0);
  const list = useLoad(
    (s) => client.get<{ items: Token[] }>(`/tokens${query({ includeRevoked: all ? 'true' : undefined })}`, s),
    [all, changed],
  );
  const [name, setName] = useState('');
  const [role, setRole] = useState<(typeof ROLES)[number]>('viewer');
  const [reveal, setReveal] = useState(false);
  const [created, setCreated] = useState<{ name: string; token: string } | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);

  const create = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    setCreated(undefined);
    try {
      const t = await client.json<Token & { token: string }>('POST', '/tokens', {
        body: { name: name.trim(), role, ...(reveal && role !== 'viewer' ? { grants: ['reveal'] } : {}) },
      });
      setCreated({ name: t.name, token: t.token });
      setName('');
      setChanged((c) => c + 1);
    } catch (err) {
      setError(messageOf(err));
    }
  };
  const revoke = async (t: Token): Promise<void> => {
    if (!confirm(`Revoke token "${t.name}"? It stops working at once.`)) return;
    setError(undefined);
    try {
      await client.json('DELETE', `/tokens/${encodeURIComponent(t.name)}`);
      setChanged((c) => c + 1);
    } catch (err) {
      setError(messageOf(err));
    }
  };
  return (
    <div class="page">
      <h1>API tokens</h1>
      <div class="split">
        <section class="card" aria-labelledby="tok-new">
          <h2 id="tok-new">New token</h2>
          <form onSubmit={(e) => void create(e)} class="stacked">
            <div class="field">
              <label for="tok-name">Name</label>
              <input
                id="tok-name"
                required
                placeholder="e.g. alice"
                value={name}
                onInput={(e) => setName(e.currentTarget.value)}
              />
            </div>
            <div class="field">
              <label for="tok-role">Role</label>
              <select
                id="tok-role"
                value={role}
                onChange={(e) => setRole(e.currentTarget.value as (typeof ROLES)[number])}
              >
                {ROLES.map((r) => (
                  <option key={r} value={r}>
                    {r}
                  </option>
                ))}
              </select>
            </div>
            {role === 'operator' || role === 'auditor' ? (
              <label class="check">
                <input type="checkbox" checked={reveal} onChange={(e) => setReveal(e.currentTarget.checked)} /> reveal
                grant (secrets{role === 'operator' ? ', exports' : ''})
              </label>
            ) : null}
            <button type="submit">Create token</button>
          </form>
          <Problem message={error} />
          {created === undefined ? null : (
            <div class="result" role="status">
              <p class="ok">Token “{created.name}” created. Copy it now: it is never shown again.</p>
              <label for="tok-value">Token</label>
              <input
                id="tok-value"
                class="mono"
                readOnly
                value={created.token}
                data-testid="new-token"
                onFocus={(e) => e.currentTarget.select()}
              />
            </div>
          )}
        </section>
        <section class="card" aria-labelledby="tok-list">
          <h2 id="tok-list">Tokens</h2>
          <label class="check">
            <input type="checkbox" checked={all} onChange={(e) => setAll(e.currentTarget.checked)} /> show revoked
          </label>
          <Problem message={list.error} />
          <div class="table-wrap">
            <table data-testid="token-list">
              <thead>
                <tr>
                  <th scope="col">Name</th>
                  <th scope="col">Role</th>
                  <th scope="col">Created</th>
                  <th scope="col">Last used</th>
                  <th scope="col">
                    <span class="sr-only">Action</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {list.value?.items.map((t) => (
                  <tr key={`${t.name}:${t.createdAt}`}>
                    <td>
                      <strong>{t.name}</strong>
                      {t.name === me.name ? <span class="muted"> (you)</span> : null}
                    </td>
                    <td>
                      {t.role}
                      {t.grants.length > 0 ? <span class="muted"> + {t.grants.join(', ')}</span> : null}
                    </td>
                    <td class="muted">
                      {when(t.createdAt)} by {t.createdBy}
                    </td>
                    <td class="muted">{when(t.lastUsedAt)}</td>
                    <td>
                      {t.revokedAt !== null ? (
                        <span class="badge state-revoked">revoked</span>
                      ) : (
                        <button type="button" class="danger small" onClick={() => void revoke(t)}>
                          Revoke<span class="sr-only"> {t.name}</span>
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </section>
      </div>
    </div>
  );
}
