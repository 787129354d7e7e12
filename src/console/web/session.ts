/**
 * The signed-in token lives in sessionStorage: it survives a reload but not the tab, and is
 * never written to localStorage or a cookie (nothing sends it but the console's own calls).
 */
const KEY = 'amt-scs.token';

export function savedToken(): string | null {
  try {
    return sessionStorage.getItem(KEY);
  } catch {
    return null;
  }
}

export function saveToken(token: string): void {
  sessionStorage.setItem(KEY, token);
}

export function forgetToken(): void {
  sessionStorage.removeItem(KEY);
}
