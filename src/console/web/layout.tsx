import { useEffect, useRef, useState } from 'preact/hooks';
import type { StreamState } from './events.ts';
import { AuditPage } from './pages/audit.tsx';
import { Dashboard } from './pages/dashboard.tsx';
import { DeviceDetailPage } from './pages/device-detail.tsx';
import { DevicesPage } from './pages/devices.tsx';
import { ProfilesPage } from './pages/profiles.tsx';
import { PsksPage } from './pages/psks.tsx';
import { TokensPage } from './pages/tokens.tsx';
import type { Permission } from './resources.ts';
import { href, useRoute } from './route.ts';
import { useSession } from './session-context.ts';

interface NavItem {
  readonly page: string;
  readonly title: string;
  readonly needs: Permission;
}

const NAV: readonly NavItem[] = [
  { page: 'dashboard', title: 'Dashboard', needs: 'read' },
  { page: 'psks', title: 'PSKs', needs: 'read' },
  { page: 'profiles', title: 'Profiles', needs: 'read' },
  { page: 'devices', title: 'Devices', needs: 'read' },
  { page: 'audit', title: 'Audit log', needs: 'audit.read' },
  { page: 'tokens', title: 'Tokens', needs: 'token.manage' },
];

/** Header with the pages this role may see, who is signed in, the live stream's state; then the page. */
export function Layout({ onSignOut }: { readonly onSignOut: () => void }) {
  const { me, can, stream } = useSession();
  const route = useRoute();
  const [live, setLive] = useState<StreamState>(stream.state);
  useEffect(() => {
    const off = stream.onState(setLive);
    // It may have gone live between the first render and this effect.
    setLive(stream.state);
    return off;
  }, [stream]);
  const items = NAV.filter((i) => can(i.needs));
  const current = items.find((i) => i.page === route.page) ?? items[0];
  const first = useRef(true);
  useEffect(() => {
    document.title = `${current?.title ?? 'Console'} · amt-scs`;
    // After navigating, keyboard and screen-reader users start at the new page's content.
    if (first.current) first.current = false;
    else document.getElementById('main')?.focus();
  }, [current, route.arg]);
  return (
    <>
      <a class="skip" href="#main">
        Skip to content
      </a>
      <header class="top">
        <a class="brand" href={href('dashboard')}>
          <span class="logo" aria-hidden="true">
            ◆
          </span>{' '}
          amt-scs
        </a>
        <nav aria-label="Pages">
          <ul>
            {items.map((i) => (
              <li key={i.page}>
                <a href={href(i.page)} aria-current={i === current ? 'page' : undefined}>
                  {i.title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <div class="who">
          <span class={`live live-${live}`} title={`live events: ${live}`} data-testid="live-state">
            <span class="sr-only">live events: </span>
            {live === 'live' ? 'live' : live === 'connecting' ? 'connecting' : 'reconnecting'}
          </span>
          <span class="token-name" data-testid="who">
            {me.name}{' '}
            <span class="role">
              {me.role}
              {me.grants.length > 0 ? ` + ${me.grants.join(', ')}` : ''}
            </span>
          </span>
          <button type="button" class="secondary small" onClick={onSignOut}>
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <Page page={current?.page ?? 'dashboard'} arg={route.arg} />
      </main>
    </>
  );
}

function Page({ page, arg }: { readonly page: string; readonly arg: string | undefined }) {
  switch (page) {
    case 'psks':
      return <PsksPage />;
    case 'profiles':
      return <ProfilesPage selected={arg} />;
    case 'devices':
      return arg === undefined ? <DevicesPage /> : <DeviceDetailPage uuid={arg} />;
    case 'audit':
      return <AuditPage />;
    case 'tokens':
      return <TokensPage />;
    default:
      return <Dashboard />;
  }
}
