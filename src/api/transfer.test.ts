import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { formatPps } from '../psk/pps.ts';
import { generatePsks } from '../psk/service.ts';
import type { Store } from '../store/store.ts';
import { startHarness, type ApiHarness } from './testing.ts';

const PASSPHRASE = 'CANARY correct horse battery staple';

async function ppsOf(store: Store, batch: string): Promise<string[]> {
  const out: string[] = [];
  for await (const r of store.psks.iterateWithPps({ batch }, { actor: 'test', purpose: 'check' })) {
    out.push(formatPps(r.pps.reveal()));
  }
  return out;
}

async function snapshot(store: Store): Promise<{ psks: number; audit: number }> {
  const counts = await store.psks.countByState();
  return {
    psks: Object.values(counts).reduce((a, n) => a + n, 0),
    audit: (await store.audit.list({ limit: 10_000 })).length,
  };
}

describe('PSK export and import over the API', () => {
  let a: ApiHarness;
  let b: ApiHarness;
  before(async () => {
    a = await startHarness();
    b = await startHarness({ api: { limits: { importMaxBytes: 256 * 1024 } } });
    await generatePsks(a.store, { count: 20, batch: 'lab', actor: 'test' });
  });
  after(async () => {
    await a.close();
    await b.close();
  });

  const exportReq = (body: Record<string, unknown>, who: 'operatorReveal' | 'admin' | 'operator' = 'operatorReveal') =>
    a.api.inject({ method: 'POST', url: '/api/v1/psks/export', headers: a.auth(who), payload: body });
  const importReq = (
    h: ApiHarness,
    bytes: Buffer | string,
    query = '',
    headers: Record<string, string> = { 'content-type': 'application/octet-stream' },
  ) =>
    h.api.inject({
      method: 'POST',
      url: `/api/v1/psks/import${query}`,
      headers: { ...h.auth('operator'), ...headers },
      payload: bytes,
    });

  it('downloads a CSV of PID,PPS, marks those PSKs exported and audits it with the token name', async () => {
    const res = await exportReq({ format: 'csv', batch: 'lab', count: 5 });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['content-type'], 'text/csv; charset=utf-8');
    assert.match(String(res.headers['content-disposition']), /^attachment; filename="psks-lab-[0-9-]+\.csv"$/);
    assert.equal(res.headers['cache-control'], 'no-store');
    const lines = res.body.trim().split(/\r?\n/);
    assert.equal(lines[0], 'PID,PPS');
    assert.equal(lines.length, 6);
    const all = await ppsOf(a.store, 'lab');
    for (const line of lines.slice(1)) assert.ok(all.includes(line.split(',')[1] ?? '-'));
    const exported = await a.store.psks.list({ state: 'exported' });
    assert.equal(exported.length, 5);
    const entries = await a.store.audit.list({ limit: 10 });
    assert.ok(entries.some((e) => e.actor === 'api:operatorReveal' && e.action.startsWith('psk.')));
  });

  it('answers problems before the first byte: nothing to export, weak passphrase, missing settings', async () => {
    const empty = await exportReq({ format: 'csv', batch: 'lab', state: 'exported', count: 1000 });
    assert.equal(empty.statusCode, 200, 'the five exported ones');
    const none = await exportReq({ format: 'csv', batch: 'lab', count: 1, state: 'available', bundle: undefined });
    assert.equal(none.statusCode, 200);
    const nothing = await exportReq({ format: 'csv', batch: 'nope' });
    assert.equal(nothing.headers['content-type'], 'application/problem+json');
    assert.ok([404, 409].includes(nothing.statusCode), nothing.body);
    const weak = await exportReq({ format: 'bundle', bundle: { passphrase: 'CANARY-1' } });
    assert.equal(weak.statusCode, 400, weak.body);
    assert.equal(weak.json<{ code: string }>().code, 'SCS_PASSPHRASE_WEAK');
    assert.ok(!weak.body.includes('CANARY'));
    const noSettings = await exportReq({ format: 'setup-bin', batch: 'lab', count: 1 });
    assert.equal(noSettings.statusCode, 400);
    const forbidden = await exportReq({ format: 'csv' }, 'operator');
    assert.equal(forbidden.statusCode, 403);
  });

  it('downloads a setup.bin in 512-byte chunks without echoing its passwords anywhere', async () => {
    const res = await exportReq({
      format: 'setup-bin',
      batch: 'lab',
      count: 2,
      setupBin: { currentMebxPassword: 'admin', newMebxPassword: 'N3w!CANARYpw' },
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.equal(res.headers['content-disposition'], 'attachment; filename="setup.bin"');
    assert.equal(res.rawPayload.length % 512, 0);
    assert.equal(res.rawPayload.length, 512 * 3);
    assert.ok(!a.logs().includes('CANARY'));
    const audit = await a.api.inject({ method: 'GET', url: '/api/v1/audit?limit=1000', headers: a.auth('admin') });
    assert.ok(!audit.body.includes('CANARY'));
  });

  it('moves PSKs to another server in a bundle: transferred here, imported there once, all or nothing', async () => {
    const before = await ppsOf(a.store, 'lab');
    const available = (await a.store.psks.countByState({ batch: 'lab' })).available;
    const res = await exportReq(
      { format: 'bundle', batch: 'lab', state: 'available', bundle: { passphrase: PASSPHRASE, move: true } },
      'admin',
    );
    assert.equal(res.statusCode, 200, res.body);
    assert.match(String(res.headers['content-disposition']), /\.scsbundle"$/);
    const bundle = res.rawPayload;
    assert.ok(!bundle.includes(Buffer.from('CANARY')));
    const moved = (await a.store.psks.countByState({ batch: 'lab' })).transferred;
    assert.equal(moved, available);

    const untouched = await snapshot(b.store);
    const wrong = await importReq(b, bundle, '', {
      'content-type': 'application/octet-stream',
      'x-scs-bundle-passphrase': 'not the passphrase',
    });
    assert.equal(wrong.statusCode, 422, wrong.body);
    assert.equal(wrong.json<{ code: string }>().code, 'SCS_BUNDLE_AUTH_FAILED');
    assert.deepEqual(await snapshot(b.store), untouched);
    const missing = await importReq(b, bundle);
    assert.equal(missing.statusCode, 400);
    assert.equal(missing.json<{ code: string }>().code, 'SCS_PASSPHRASE_MISSING');
    const flipped = Buffer.from(bundle);
    flipped[flipped.length - 40] = (flipped[flipped.length - 40] ?? 0) ^ 1;
    const tampered = await importReq(b, flipped, '', {
      'content-type': 'application/octet-stream',
      'x-scs-bundle-passphrase': PASSPHRASE,
    });
    assert.ok([400, 422].includes(tampered.statusCode), tampered.body);
    assert.deepEqual(await snapshot(b.store), untouched);

    const ok = await importReq(b, bundle, '', {
      'content-type': 'application/octet-stream',
      'x-scs-bundle-passphrase': PASSPHRASE,
    });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(
      [
        ok.json<{ format: string }>().format,
        ok.json<{ outcome: string }>().outcome,
        ok.json<{ inserted: number }>().inserted,
      ],
      ['bundle', 'imported', available],
    );
    const arrived = await ppsOf(b.store, 'lab');
    assert.equal(arrived.length, available);
    for (const p of arrived) assert.ok(before.includes(p));
    const again = await importReq(b, bundle, '', {
      'content-type': 'application/octet-stream',
      'x-scs-bundle-passphrase': PASSPHRASE,
    });
    assert.equal(again.json<{ outcome: string }>().outcome, 'already-imported');
    const [entry] = await b.store.audit.list({ limit: 1 });
    assert.ok(entry);
  });

  it('imports an uploaded CSV into a batch, refuses a bad one whole, and bounds the upload size', async () => {
    const csv = (await exportReq({ format: 'csv', batch: 'lab', state: 'exported', count: 3 })).body;
    const res = await importReq(b, csv, '?batch=from-csv&state=available&fileName=handout.csv', {
      'content-type': 'text/csv',
    });
    assert.equal(res.statusCode, 200, res.body);
    assert.deepEqual(res.json(), { format: 'csv', outcome: 'imported', records: 3, inserted: 3, duplicates: 0 });
    assert.equal((await b.store.psks.countByState({ batch: 'from-csv' })).available, 3);
    const same = await importReq(b, csv, '?batch=from-csv', { 'content-type': 'text/csv' });
    assert.equal(same.json<{ outcome: string }>().outcome, 'nothing-new');

    const untouched = await snapshot(b.store);
    const lines = csv.trim().split(/\r?\n/);
    const last = lines.at(-1) ?? '';
    const broken = [...lines.slice(0, -1), `${last.slice(0, -1)}${last.endsWith('A') ? 'B' : 'A'}`].join('\r\n');
    const bad = await importReq(b, broken, '?batch=broken', { 'content-type': 'text/csv' });
    assert.equal(bad.statusCode, 400, bad.body);
    assert.deepEqual(await snapshot(b.store), untouched);

    const tooBig = await importReq(b, Buffer.alloc(257 * 1024, 0x41));
    assert.equal(tooBig.statusCode, 413);
    assert.equal(tooBig.json<{ code: string }>().code, 'SCS_REQUEST_TOO_LARGE');
    const png = await importReq(b, Buffer.from('x'), '', { 'content-type': 'image/png' });
    assert.equal(png.statusCode, 415);
    const empty = await importReq(b, Buffer.alloc(0));
    assert.equal(empty.statusCode, 400);
    const unknown = await importReq(b, Buffer.from('\x00\x01 not a known format at all, not csv either \x02'));
    assert.equal(unknown.statusCode, 400);
    assert.deepEqual(await snapshot(b.store), untouched);
  });

  it('rolls a streamed export back when the client goes away in the middle', async () => {
    // Enough rows that the export is still running when the client hangs up.
    const rows = 30_000;
    await generatePsks(a.store, { count: rows, batch: 'huge', actor: 'test' });
    await a.api.listen({ host: '127.0.0.1', port: 0 });
    const port = (a.api.server.address() as AddressInfo).port;
    const body = JSON.stringify({ format: 'csv', batch: 'huge' });
    const socket = net.connect(port, '127.0.0.1');
    socket.write(
      `POST /api/v1/psks/export HTTP/1.1\r\nhost: x\r\nauthorization: ${a.auth('admin').authorization}\r\n` +
        `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
    );
    const head = await new Promise<string>((resolve) =>
      socket.once('data', (d: Buffer) => resolve(d.toString('latin1'))),
    );
    assert.match(head, /^HTTP\/1\.1 200 /);
    socket.destroy();
    let counts = await a.store.psks.countByState({ batch: 'huge' });
    for (let i = 0; i < 200 && counts.available !== rows; i++) {
      await new Promise((r) => setTimeout(r, 50));
      counts = await a.store.psks.countByState({ batch: 'huge' });
    }
    assert.equal(counts.available, rows, 'nothing was marked exported');
    assert.equal(counts.exported, 0);
    assert.match(a.logs(), /export failed while streaming; rolled back/);
  });
});
