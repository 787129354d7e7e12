import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Fleet } from '../../simulator/fleet/fleet.ts';
import { runnerEventSource } from '../../src/api/events.ts';
import { startApi, type StartedApi } from '../../src/api/server.ts';
import { createToken } from '../../src/api/tokens.ts';
import { createLogger } from '../../src/log.ts';
import type { PskPair } from '../../src/psk/formats/pair.ts';
import { generatePid, generatePps } from '../../src/psk/generate.ts';
import { formatPid, type Pid } from '../../src/psk/pid.ts';
import { formatPps, type Pps } from '../../src/psk/pps.ts';
import { Secret } from '../../src/secret.ts';
import { fleetFor, randomPort, startTestScs, type TestScs } from '../e2e/harness.ts';

/**
 * Secret hygiene end to end (docs/security.md, "Secret hygiene"): a server with canary secrets
 * (the PPS of every PSK, the current and new MEBx passwords, the admin password, a bundle
 * passphrase, the master key) generates, imports, exports and provisions a simulated device
 * through the REST API, and is sent invalid input that contains canaries. Then every place a
 * secret must not reach is scanned: every API response (bodies and headers) except the ones
 * whose job is to hand a secret out, every log line (server and API, at debug level), the
 * SQLite database, WAL and SHM bytes, the other files of the data directory, and the exports
 * that are not secret by design (the encrypted bundle; the scrambled setup.bin holds no secret
 * in clear either).
 */

const CANARY_MEBX = 'CanaryMebx#7f3a';
const CANARY_NEW_MEBX = 'CanaryNew!Pw51b';
const CANARY_ADMIN = 'CanaryAdm1n!x7Q';
const CANARY_PASSPHRASE = 'canary-passphrase-0d5e9';
const CANARY_WRONG_PASSPHRASE = 'canary-wrongpass-88c1';

interface Exchange {
  readonly what: string;
  readonly status: number;
  readonly headers: string;
  readonly body: Buffer;
}

/** Every spelling of a text secret that a careless writer could produce. */
function spellings(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  return [
    secret,
    bytes.toString('hex'),
    bytes.toString('base64'),
    bytes.toString('base64url'),
    JSON.stringify(secret).slice(1, -1),
  ];
}

/** A PPS whole, and every 12-character piece of it (14 in the dashed form): a half-echoed PPS is a leak too. */
function ppsSpellings(pps: string): string[] {
  const dashed = formatPps(pps as Pps);
  const out = [pps, dashed];
  for (let i = 0; i + 12 <= pps.length; i++) out.push(pps.slice(i, i + 12));
  for (let i = 0; i + 14 <= dashed.length; i++) out.push(dashed.slice(i, i + 14));
  return [...out, ...out.map((s) => s.toLowerCase())];
}

/** Names of the canaries found in `haystack` (latin1 view of bytes, so binary files scan too). */
function found(haystack: Buffer | string, canaries: ReadonlyMap<string, readonly string[]>): string[] {
  const text = typeof haystack === 'string' ? haystack : haystack.toString('latin1');
  const utf16 = typeof haystack === 'string' ? '' : haystack.toString('utf16le');
  const hits: string[] = [];
  for (const [name, forms] of canaries) {
    if (forms.some((f) => f.length >= 8 && (text.includes(f) || utf16.includes(f)))) hits.push(name);
  }
  return hits;
}

function filesUnder(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => path.join(dir, f))
    .filter((f) => statSync(f).isFile());
}

describe('secret hygiene end to end', () => {
  const port = randomPort();
  let scs: TestScs;
  let api: StartedApi;
  let fleet: Fleet | undefined;
  let token: string;
  const apiLogs: string[] = [];
  const exchanges: Exchange[] = [];
  /** Responses whose purpose is to hand out a secret: kept out of the scan, each checked on its own. */
  const allowed: Exchange[] = [];
  const device: PskPair = { pid: generatePid(), pps: new Secret(generatePps()) };
  let generated: Pid[] = [];

  const call = async (
    what: string,
    method: string,
    url: string,
    body?: string | Buffer,
    headers: Record<string, string> = {},
    secretByDesign = false,
  ): Promise<Exchange> => {
    const res = await fetch(`${api.url}${url}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...headers },
      ...(body === undefined ? {} : { body }),
    });
    const ex: Exchange = {
      what: `${what}: ${method} ${url}`,
      status: res.status,
      headers: [...res.headers].map(([k, v]) => `${k}: ${v}`).join('\n'),
      body: Buffer.from(await res.arrayBuffer()),
    };
    (secretByDesign ? allowed : exchanges).push(ex);
    return ex;
  };
  const json = (ex: Exchange): Record<string, unknown> =>
    JSON.parse(ex.body.toString('utf8')) as Record<string, unknown>;

  before(async () => {
    scs = await startTestScs({ amtTlsPort: port, mebx: CANARY_MEBX });
    // Fixed passwords, so the canaries are known: the SCS sets the new MEBx and admin passwords.
    await scs.store.profiles.update(
      'default',
      {
        settings: { tls: false, adminPassword: 'fixed', mebxPassword: 'fixed' },
        secrets: { adminPassword: new Secret(CANARY_ADMIN), newMebxPassword: new Secret(CANARY_NEW_MEBX) },
      },
      { actor: 'test' },
    );
    api = await startApi(
      {
        config: {
          ...scs.server.config,
          dataDir: scs.dir,
          apiMetricsAuth: 'token',
          apiHost: '127.0.0.1',
          apiPort: 0,
          apiTlsCert: '',
          apiTlsKey: '',
        },
        store: scs.store,
        log: createLogger('debug', { write: (line: string) => void apiLogs.push(line) }),
        metrics: scs.server.metrics.registry,
        provisioningEvents: runnerEventSource(scs.server.runner),
      },
      { countsIntervalMs: 20 },
    );
    token = (await createToken(scs.store, { name: 'hygiene', role: 'admin', actor: 'test' })).token.reveal();
  });
  after(async () => {
    await fleet?.stop();
    await api.close();
    await scs.stop();
  });

  it('generates, imports, exports, provisions and refuses bad input through the API', async () => {
    // Generate: the PPS values live only in the store; read them back to use as canaries.
    const gen = await call('generate', 'POST', '/api/v1/psks/generate', JSON.stringify({ count: 6, batch: 'canary' }), {
      'content-type': 'application/json',
    });
    assert.equal(gen.status, 201, gen.body.toString());
    const page = json(await call('list', 'GET', '/api/v1/psks?batch=canary&limit=100')) as { items: { pid: string }[] };
    generated = page.items.map((i) => i.pid.replace('-', '') as Pid);
    assert.equal(generated.length, 6);

    // Import the device's PSK as a technician's CSV (the PPS is in the request, never in the answer).
    const csv = `PID,PPS\r\n${formatPid(device.pid)},${formatPps(device.pps.reveal())}\r\n`;
    const imported = await call('import csv', 'POST', '/api/v1/psks/import?batch=floor-1', csv, {
      'content-type': 'text/csv',
    });
    assert.equal(imported.status, 200, imported.body.toString());

    // Exports. CSV is secret by design (its body is not scanned); bundle and scrambled setup.bin are.
    const exportCsv = await call(
      'export csv',
      'POST',
      '/api/v1/psks/export',
      JSON.stringify({ format: 'csv', batch: 'canary', count: 2 }),
      { 'content-type': 'application/json' },
      true,
    );
    assert.equal(exportCsv.status, 200, exportCsv.body.toString());
    exchanges.push({ ...exportCsv, what: `${exportCsv.what} (headers only)`, body: Buffer.alloc(0) });
    const bundle = await call(
      'export bundle',
      'POST',
      '/api/v1/psks/export',
      JSON.stringify({
        format: 'bundle',
        batch: 'canary',
        bundle: { passphrase: CANARY_PASSPHRASE, sourceName: 'scs-a' },
      }),
      { 'content-type': 'application/json' },
    );
    assert.equal(bundle.status, 200, bundle.body.toString());
    const setupBin = await call(
      'export setup.bin',
      'POST',
      '/api/v1/psks/export',
      JSON.stringify({
        format: 'setup-bin',
        batch: 'canary',
        count: 2,
        setupBin: { currentMebxPassword: CANARY_MEBX, newMebxPassword: CANARY_NEW_MEBX },
      }),
      { 'content-type': 'application/json' },
    );
    assert.equal(setupBin.status, 200, setupBin.body.toString());

    // The bundle back in with the wrong passphrase (refused), then the right one.
    const wrong = await call('import bundle, wrong passphrase', 'POST', '/api/v1/psks/import?batch=back', bundle.body, {
      'content-type': 'application/octet-stream',
      'x-scs-bundle-passphrase': CANARY_WRONG_PASSPHRASE,
    });
    assert.equal(wrong.status, 422, wrong.body.toString());
    const right = await call('import bundle', 'POST', '/api/v1/psks/import?batch=back', bundle.body, {
      'content-type': 'application/octet-stream',
      'x-scs-bundle-passphrase': CANARY_PASSPHRASE,
    });
    assert.equal(right.status, 200, right.body.toString());

    // Provision the device: the SCS logs in with the current MEBx password, sets the new one and the admin password.
    fleet = await fleetFor(scs, [device], port, { mebxPassword: CANARY_MEBX });
    const [done] = await scs.waitFinished(1, 120_000);
    assert.equal(done?.state, 'succeeded', JSON.stringify(done));
    const uuid = done.job.deviceUuid;
    const revealed = await call(
      'reveal admin password',
      'POST',
      `/api/v1/devices/${uuid}/reveal-password`,
      '{}',
      {
        'content-type': 'application/json',
      },
      true,
    );
    assert.equal(json(revealed).password, CANARY_ADMIN);
    const pps = await call(
      'reveal PPS',
      'POST',
      `/api/v1/psks/${formatPid(generated[0] as Pid)}/reveal`,
      '{}',
      {
        'content-type': 'application/json',
      },
      true,
    );
    assert.equal(pps.status, 200);

    // Invalid input carrying canaries: the refusals must not echo them.
    const devicePps = device.pps.reveal();
    const badCheck = devicePps.slice(0, 31) + (devicePps[31] === 'A' ? 'B' : 'A');
    const refusals: [string, string, string, string | Buffer, Record<string, string>][] = [
      [
        'CSV, PPS with a wrong check character',
        'POST',
        '/api/v1/psks/import?batch=bad',
        `PID,PPS\r\n${formatPid(generatePid())},${formatPps(badCheck as Pps)}\r\n`,
        { 'content-type': 'text/csv' },
      ],
      [
        'CSV, PPS in the PID column',
        'POST',
        '/api/v1/psks/import?batch=bad',
        `PID,PPS\r\n${formatPps(devicePps)},${generatePid()}\r\n`,
        { 'content-type': 'text/csv' },
      ],
      [
        'CSV, PPS cut by a stray comma',
        'POST',
        '/api/v1/psks/import?batch=bad',
        `${devicePps.slice(0, 8)},${devicePps.slice(8)}\r\n`,
        { 'content-type': 'text/csv' },
      ],
      [
        'PPS given as a PID',
        'POST',
        `/api/v1/psks/${formatPps(devicePps).slice(0, 20)}/reveal`,
        '{}',
        { 'content-type': 'application/json' },
      ],
      [
        'weak admin password in a profile',
        'POST',
        '/api/v1/profiles',
        JSON.stringify({
          name: 'weak',
          settings: { adminPassword: 'fixed' },
          secrets: { adminPassword: 'canaryweakpass' },
        }),
        { 'content-type': 'application/json' },
      ],
      [
        'over-long MEBx password in a profile',
        'POST',
        '/api/v1/profiles',
        JSON.stringify({ name: 'long', secrets: { currentMebxPassword: `${CANARY_MEBX}${'x'.repeat(40)}` } }),
        { 'content-type': 'application/json' },
      ],
      [
        'short bundle passphrase',
        'POST',
        '/api/v1/psks/export',
        JSON.stringify({ format: 'bundle', batch: 'canary', bundle: { passphrase: 'CanShort9' } }),
        { 'content-type': 'application/json' },
      ],
      [
        'weak new MEBx password for setup.bin',
        'POST',
        '/api/v1/psks/export',
        JSON.stringify({
          format: 'setup-bin',
          batch: 'canary',
          setupBin: { currentMebxPassword: CANARY_MEBX, newMebxPassword: 'canaryweak' },
        }),
        { 'content-type': 'application/json' },
      ],
      ['a PPS as a bearer token', 'GET', '/api/v1/psks', '', { authorization: `Bearer ${devicePps}` }],
    ];
    for (const [what, method, url, body, headers] of refusals) {
      const ex = await call(what, method, url, method === 'GET' ? undefined : body, headers);
      assert.ok(ex.status >= 400, `${what}: ${ex.status} ${ex.body.toString()}`);
    }
    // Every read route the API has, after all of that.
    for (const url of [
      '/api/v1/me',
      '/api/v1/psks?limit=1000',
      '/api/v1/psks/stats',
      `/api/v1/psks/${formatPid(device.pid)}`,
      '/api/v1/batches',
      '/api/v1/batches/canary',
      '/api/v1/profiles',
      '/api/v1/profiles/default',
      '/api/v1/devices',
      '/api/v1/devices/stats',
      `/api/v1/devices/${uuid}?historyLimit=1000`,
      '/api/v1/jobs',
      '/api/v1/jobs/stats',
      `/api/v1/jobs/${done.job.id}`,
      '/api/v1/tasks',
      '/api/v1/audit?limit=1000',
      '/api/v1/audit/verify',
      '/api/v1/tokens',
      '/metrics',
      '/healthz',
      '/openapi.json',
    ]) {
      await call('read', 'GET', url);
    }
  });

  it('no canary reaches an API response, a log line, the database, its WAL, the data directory or the encrypted exports', async () => {
    const canaries = new Map<string, string[]>([
      ['MEBx password', spellings(CANARY_MEBX)],
      ['new MEBx password', spellings(CANARY_NEW_MEBX)],
      ['admin password', spellings(CANARY_ADMIN)],
      ['bundle passphrase', spellings(CANARY_PASSPHRASE)],
      ['wrong bundle passphrase', spellings(CANARY_WRONG_PASSPHRASE)],
      ['device PPS', ppsSpellings(device.pps.reveal())],
    ]);
    for (const pid of generated) {
      const pps = (await scs.store.psks.reveal(pid, { actor: 'test', purpose: 'secret hygiene canary' })).reveal();
      assert.ok(pps !== undefined, `PPS of ${pid}`);
      canaries.set(`PPS of ${pid}`, ppsSpellings(pps));
    }
    const masterKey = readFileSync(scs.server.masterKey.file);
    const keyBytes = /^[0-9a-fA-F\s]+$/.test(masterKey.toString('latin1'))
      ? Buffer.from(masterKey.toString('latin1').trim(), 'hex')
      : /^[A-Za-z0-9+/=\s]+$/.test(masterKey.toString('latin1')) && masterKey.length > 32
        ? Buffer.from(masterKey.toString('latin1').trim(), 'base64')
        : masterKey;
    assert.equal(keyBytes.length, 32, 'the master key file holds 32 bytes in some spelling');
    canaries.set('master key', [keyBytes.toString('latin1'), keyBytes.toString('hex'), keyBytes.toString('base64')]);

    const leaks: string[] = [];
    for (const ex of exchanges) {
      for (const hit of found(`${ex.headers}\n${ex.body.toString('latin1')}`, canaries))
        leaks.push(`${hit} in ${ex.what}`);
    }
    for (const [i, line] of [...scs.logs, ...apiLogs].entries()) {
      for (const hit of found(line, canaries)) leaks.push(`${hit} in log line ${i}: ${line.slice(0, 300)}`);
    }
    // The data directory while the server runs (database, WAL, SHM, tokens, CA), except the key file itself.
    const files = filesUnder(scs.dir).filter((f) => f !== scs.server.masterKey.file);
    assert.ok(
      files.some((f) => f.endsWith('-wal')),
      `a WAL file is among ${files.join(', ')}`,
    );
    for (const file of files) {
      for (const hit of found(readFileSync(file), canaries)) leaks.push(`${hit} in ${path.relative(scs.dir, file)}`);
    }
    assert.deepEqual(leaks, []);

    // Each response that hands out a secret gives only the one it was asked for.
    for (const ex of allowed) {
      const hits = found(ex.body, canaries).filter((h) => h !== 'admin password' && !h.startsWith('PPS of'));
      assert.deepEqual(hits, [], ex.what);
    }
    // The scan finds what it looks for: the answers that hand out secrets hold them.
    assert.ok(allowed.some((ex) => found(ex.body, canaries).includes('admin password')));
    assert.ok(allowed.some((ex) => found(ex.body, canaries).some((h) => h.startsWith('PPS of'))));
    // The refusals were really made with canaries in them (the scan above is not vacuous).
    assert.ok(exchanges.filter((e) => e.status >= 400).length >= 10);
  });
});
