import { createContext } from 'preact';
import { useContext, useEffect, useRef } from 'preact/hooks';
import type { Client } from './api.ts';
import type { EventStream, LiveEvent } from './events.ts';
import type { Me, Permission } from './resources.ts';

/** What every page needs: the client, who is signed in and what they may do, the live stream. */
export interface Session {
  readonly client: Client;
  readonly me: Me;
  readonly stream: EventStream;
  readonly can: (permission: Permission) => boolean;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (s === null) throw new Error('useSession outside a signed-in session');
  return s;
}

/** Calls `handler` for each live event of `type`; the latest handler is used without resubscribing. */
export function useLiveEvent(type: string, handler: (data: unknown, event: LiveEvent) => void): void {
  const { stream } = useSession();
  const latest = useRef(handler);
  latest.current = handler;
  useEffect(
    () =>
      stream.subscribe((e) => {
        if (e.type === type) latest.current(e.data, e);
      }),
    [stream, type],
  );
}
