import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../log.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/store.ts';
import type { ApiGrant, ApiRole } from '../store/tokens/tokens.ts';
import { createApi, type Api, type ApiDeps, type ApiOptions } from './app.ts';
import { createToken } from './tokens.ts';

/** Test fixture: a real SQLite store in a temp dir, one token per role, an API, captured logs. */
export interface ApiHarness {
  readonly api: Api;
  readonly store: Store;
  readonly dir: string;
  /** Bearer tokens by key: admin, operator, operatorReveal, auditor, auditorReveal, viewer. */
  readonly tokens: Readonly<Record<TokenKey, string>>;
  /** Every log line the API wrote, as text. */
  logs(): string;
  auth(key: TokenKey): { authorization: string };
  close(): Promise<void>;
}

export const TOKEN_KEYS = ['admin', 'operator', 'operatorReveal', 'auditor', 'auditorReveal', 'viewer'] as const;
export type TokenKey = (typeof TOKEN_KEYS)[number];

const TOKEN_SPECS: Readonly<Record<TokenKey, { role: ApiRole; grants: ApiGrant[] }>> = {
  admin: { role: 'admin', grants: [] },
  operator: { role: 'operator', grants: [] },
  operatorReveal: { role: 'operator', grants: ['reveal'] },
  auditor: { role: 'auditor', grants: [] },
  auditorReveal: { role: 'auditor', grants: ['reveal'] },
  viewer: { role: 'viewer', grants: [] },
};

export interface HarnessOptions {
  readonly api?: ApiOptions;
  readonly deps?: Partial<Omit<ApiDeps, 'store' | 'log'>>;
}

export async function startHarness(options: HarnessOptions = {}): Promise<ApiHarness> {
  const dir = mkdtempSync(path.join(tmpdir(), 'scs-api-'));
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  const log: Logger = createLogger('debug', sink);
  const { store } = await openStore(
    { db: `sqlite:${path.join(dir, 'scs.db')}`, masterKeyFile: path.join(dir, 'master.key') },
    log,
  );
  const tokens = {} as Record<TokenKey, string>;
  for (const key of TOKEN_KEYS) {
    const spec = TOKEN_SPECS[key];
    const created = await createToken(store, { name: key, role: spec.role, grants: spec.grants, actor: 'test' });
    tokens[key] = created.token.reveal();
  }
  const api = await createApi(
    { config: { dataDir: dir, apiMetricsAuth: 'token' }, store, log, ...options.deps },
    { countsIntervalMs: 10, ...options.api },
  );
  await api.ready();
  return {
    api,
    store,
    dir,
    tokens,
    logs: () => lines.join(''),
    auth: (key) => ({ authorization: `Bearer ${tokens[key]}` }),
    close: async () => {
      await api.close();
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
