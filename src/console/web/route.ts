import { useEffect, useState } from 'preact/hooks';

/**
 * Hash routes (`#/devices/<uuid>`): the server serves one page at `/`, so deep links work
 * without a fallback route on the server, and a reload keeps the page.
 */
export interface Route {
  readonly page: string;
  readonly arg: string | undefined;
}

export function parseRoute(hash: string): Route {
  const [page = '', arg] = hash.replace(/^#\/?/, '').split('/');
  return {
    page: page === '' ? 'dashboard' : page,
    arg: arg === undefined || arg === '' ? undefined : decodeURIComponent(arg),
  };
}

export function href(page: string, arg?: string): string {
  return arg === undefined ? `#/${page}` : `#/${page}/${encodeURIComponent(arg)}`;
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const on = (): void => setRoute(parseRoute(location.hash));
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return route;
}
