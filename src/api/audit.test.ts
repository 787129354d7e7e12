import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { generatePsks } from '../psk/service.ts';
import { startHarness, type ApiHarness } from './testing.ts';

interface Entry {
  seq: number;
  actor: string;
  action: string;
  pids: string[];
}
interface Page {
  items: Entry[];
  next: number | null;
}

describe('audit routes', () => {
  let h: ApiHarness;
  const get = (url: string) => h.api.inject({ method: 'GET', url, headers: h.auth('auditor') });

  before(async () => {
    h = await startHarness();
    await generatePsks(h.store, { count: 30, batch: 'a', actor: 'test' });
    const [one] = await h.store.psks.list({ limit: 1 });
    for (let i = 0; i < 3 && one !== undefined; i++)
      await h.store.psks.reveal(one.pid, { actor: `t${i}`, purpose: 'x' });
  });
  after(async () => {
    await h.close();
  });

  it('pages newest first with before, and oldest first with after, covering every entry once', async () => {
    const total = (await h.store.audit.list({ limit: 10_000 })).length;
    const desc: number[] = [];
    let url = '/api/v1/audit?limit=3';
    for (;;) {
      const page = (await get(url)).json<Page>();
      desc.push(...page.items.map((e) => e.seq));
      if (page.next === null) break;
      url = `/api/v1/audit?limit=3&before=${page.next}`;
    }
    assert.equal(desc.length, total);
    assert.deepEqual(
      desc,
      [...desc].sort((a, b) => b - a),
    );
    const asc: number[] = [];
    url = '/api/v1/audit?order=asc&limit=4';
    for (;;) {
      const page = (await get(url)).json<Page>();
      asc.push(...page.items.map((e) => e.seq));
      if (page.next === null) break;
      url = `/api/v1/audit?order=asc&limit=4&after=${page.next}`;
    }
    assert.deepEqual(asc, [...desc].reverse());
  });

  it('filters by action and by PID (either form), showing PIDs in display form', async () => {
    const reveals = (await get('/api/v1/audit?action=psk.reveal')).json<Page>();
    assert.deepEqual(
      reveals.items.map((e) => e.actor),
      ['t2', 't1', 't0'],
    );
    const pid = reveals.items[0]?.pids[0] ?? '';
    assert.match(pid, /^[0-9A-Z]{4}-[0-9A-Z]{4}$/);
    const byPid = (await get(`/api/v1/audit?pid=${pid.replace('-', '').toLowerCase()}`)).json<Page>();
    assert.ok(byPid.items.length >= 4);
    assert.ok(byPid.items.every((e) => e.pids.includes(pid)));
    const bad = await get('/api/v1/audit?pid=nope');
    assert.equal(bad.statusCode, 400);
  });

  it('verifies the chain, and reports the first broken entry after someone edits the database', async () => {
    const ok = (await get('/api/v1/audit/verify')).json<{ ok: boolean; entries: number; headSeq: number }>();
    assert.equal(ok.ok, true);
    assert.ok(ok.entries >= 4);
    const side = new Database(path.join(h.dir, 'scs.db'));
    try {
      side.exec('drop trigger if exists audit_log_no_update');
      side.prepare("update audit_log set actor = 'mallory' where seq = 2").run();
    } finally {
      side.close();
    }
    const broken = await get('/api/v1/audit/verify');
    assert.equal(broken.statusCode, 200);
    const body = broken.json<{ ok: boolean; brokenSeq: number; reason: string }>();
    assert.equal(body.ok, false);
    assert.equal(body.brokenSeq, 2);
  });
});
