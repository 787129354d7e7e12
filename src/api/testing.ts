import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig } from '../config.ts';
import { createLogger, type Logger } from '../log.ts';
import { openStore } from '../store/open.ts';
import { Secret } from '../secret.ts';
import type { Pid } from '../psk/pid.ts';
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
  let api: Api;
  try {
    api = await createApi(
      { config: { ...loadConfig({ env: {} }), dataDir: dir, apiMetricsAuth: 'token' }, store, log, ...options.deps },
      { countsIntervalMs: 10, ...options.api },
    );
    await api.ready();
  } catch (e) {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
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

export interface SeededDevice {
  readonly uuid: string;
  readonly jobId: number;
  readonly password: string;
}

/**
 * A provisioned device as the runner leaves one (job finished, admin password escrowed, device
 * marked provisioned), written through the store's own API.
 */
export async function seedDevice(
  store: Store,
  options: { readonly uuid: string; readonly pid: Pid; readonly password: string; readonly fail?: boolean },
): Promise<SeededDevice> {
  const actor = 'test:runner';
  const job = await store.jobs.create(
    { deviceUuid: options.uuid, pid: options.pid, address: '127.0.0.9', profile: 'default' },
    { actor },
  );
  if (job === undefined) throw new Error(`device ${options.uuid} already has a job`);
  await store.devices.noteJob(options.uuid, { address: '127.0.0.9', profile: 'default', jobId: job.id }, { actor });
  await store.jobs.update(job.id, { state: 'running', step: 'facts', attempts: 1 }, { action: 'job.step' }, { actor });
  if (options.fail === true) {
    await store.jobs.finish(
      job.id,
      { state: 'failed', code: 'SCS_TLS_BAD_KEY', message: 'the PPS differs' },
      { actor },
    );
    await store.devices.markState(options.uuid, 'failed', { jobId: job.id, code: 'SCS_TLS_BAD_KEY' }, { actor });
    return { uuid: options.uuid, jobId: job.id, password: options.password };
  }
  const escrowId = await store.escrow.put(
    {
      deviceUuid: options.uuid,
      purpose: 'admin',
      username: 'admin',
      secret: new Secret(options.password),
      jobId: job.id,
    },
    { actor },
  );
  await store.escrow.setStatus([escrowId], 'active');
  await store.devices.markProvisioned(
    options.uuid,
    {
      address: '127.0.0.9',
      amtVersion: '6.2.0',
      hostName: `amt-${options.uuid.slice(0, 8)}`,
      domainName: 'example.test',
      profile: 'default',
      adminUser: 'admin',
      adminEscrowId: escrowId,
      mebxEscrowId: null,
      certPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n',
      certFingerprint: 'ab'.repeat(32),
      certNotAfter: new Date('2030-01-01T00:00:00Z'),
      pid: options.pid,
      jobId: job.id,
    },
    { actor },
  );
  await store.jobs.finish(job.id, { state: 'succeeded' }, { actor });
  return { uuid: options.uuid, jobId: job.id, password: options.password };
}
