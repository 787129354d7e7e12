import { useState } from 'preact/hooks';
import { messageOf } from '../api.ts';
import { Problem } from '../parts/problem.tsx';

/**
 * Sign-in with an API token (docs/api.md, "Access control"). The first start prints an admin
 * token and writes it to <dataDir>/admin.token; `amt-scs token create` makes personal ones.
 */
export function SignIn({
  onSignIn,
  notice,
}: {
  readonly onSignIn: (token: string) => Promise<void>;
  readonly notice: string | undefined;
}) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await onSignIn(token.trim());
    } catch (err) {
      setError(messageOf(err));
      setBusy(false);
    }
  };
  return (
    <main class="sign-in">
      <form class="card" onSubmit={(e) => void submit(e)} aria-labelledby="sign-in-title">
        <div class="brand big" aria-hidden="true">
          <span class="logo">◆</span> amt-scs
        </div>
        <h1 id="sign-in-title">Sign in to the console</h1>
        <p class="muted">
          Paste an API token (<code>scs_…</code>). The first start of the server printed one and wrote it to{' '}
          <code>data/admin.token</code>; <code>amt-scs token create</code> makes more.
        </p>
        {notice === undefined ? null : <p class="notice">{notice}</p>}
        <label for="token">API token</label>
        <input
          id="token"
          name="token"
          type="password"
          autoComplete="off"
          spellcheck={false}
          required
          autoFocus
          value={token}
          onInput={(e) => setToken(e.currentTarget.value)}
        />
        <Problem message={error} />
        <button type="submit" disabled={busy || token.trim() === ''}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
        <p class="muted small">The token stays in this tab only (sessionStorage) and is sent to this server only.</p>
      </form>
    </main>
  );
}
