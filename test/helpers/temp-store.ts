import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach } from 'node:test';
import { openStore } from '../../src/store/open.ts';
import type { Store } from '../../src/store/store.ts';

export interface TempStore {
  /** The temp directory holding scs.db and master.key; removed after each test. */
  readonly dir: string;
  readonly store: Store;
}

/**
 * Registers beforeEach/afterEach in the calling describe(): each test gets a fresh SQLite
 * store (real file, real master key) in its own temp directory, closed and removed after it.
 */
export function useTempStore(prefix: string): TempStore {
  let current: { dir: string; store: Store } | undefined;
  beforeEach(async () => {
    const dir = mkdtempSync(path.join(tmpdir(), prefix));
    const { store } = await openStore({
      db: `sqlite:${path.join(dir, 'scs.db')}`,
      masterKeyFile: path.join(dir, 'master.key'),
    });
    current = { dir, store };
  });
  afterEach(async () => {
    if (current === undefined) return;
    await current.store.close();
    rmSync(current.dir, { recursive: true, force: true });
    current = undefined;
  });
  const get = (): { dir: string; store: Store } => {
    if (current === undefined) throw new Error('useTempStore: used outside a test');
    return current;
  };
  return {
    get dir() {
      return get().dir;
    },
    get store() {
      return get().store;
    },
  };
}
