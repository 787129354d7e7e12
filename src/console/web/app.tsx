import { useEffect, useMemo, useState } from 'preact/hooks';
import { Client, messageOf } from './api.ts';
import { EventStream } from './events.ts';
import { Layout } from './layout.tsx';
import { SignIn } from './pages/sign-in.tsx';
import type { Me, Permission } from './resources.ts';
import { SessionContext, type Session } from './session-context.ts';
import { forgetToken, savedToken, saveToken } from './session.ts';

interface Signed {
  readonly token: string;
  readonly me: Me;
}

/** Signs in (or resumes the tab's session), then shows the console for that token's role. */
export function App() {
  const [signed, setSigned] = useState<Signed | null>(null);
  const [checking, setChecking] = useState(savedToken() !== null);
  const [notice, setNotice] = useState<string | undefined>(undefined);

  const signOut = (why?: string): void => {
    forgetToken();
    setSigned(null);
    setNotice(why);
  };

  const signIn = async (token: string): Promise<void> => {
    const probe = new Client(token, () => undefined);
    const me = await probe.get<Me>('/me');
    saveToken(token);
    setNotice(undefined);
    setSigned({ token, me });
  };

  useEffect(() => {
    const token = savedToken();
    if (token === null) return;
    signIn(token)
      .catch((e: unknown) => signOut(`Please sign in again: ${messageOf(e)}`))
      .finally(() => setChecking(false));
    // Once, on load: resume the tab's session.
  }, []);

  const session = useMemo<Session | null>(() => {
    if (signed === null) return null;
    const client = new Client(signed.token, () => signOut('The token is no longer valid (revoked?). Sign in again.'));
    const permissions = new Set<Permission>(signed.me.permissions);
    return { client, me: signed.me, stream: new EventStream(client), can: (p) => permissions.has(p) };
  }, [signed]);

  useEffect(() => () => session?.stream.close(), [session]);

  if (checking) return <p class="loading-page">Loading…</p>;
  if (session === null) return <SignIn onSignIn={signIn} notice={notice} />;
  return (
    <SessionContext.Provider value={session}>
      <Layout onSignOut={() => signOut()} />
    </SessionContext.Provider>
  );
}
