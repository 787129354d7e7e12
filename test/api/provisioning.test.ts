import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Fleet } from '../../simulator/fleet/fleet.ts';
import { runnerEventSource } from '../../src/api/events.ts';
import { startApi, type StartedApi } from '../../src/api/server.ts';
import { createToken } from '../../src/api/tokens.ts';
import { createLogger } from '../../src/log.ts';
import type { PskPair } from '../../src/psk/formats/pair.ts';
import { generatePid, generatePps } from '../../src/psk/generate.ts';
import { formatPid } from '../../src/psk/pid.ts';
import { formatPps } from '../../src/psk/pps.ts';
import { Secret } from '../../src/secret.ts';
import { fleetFor, leaks, randomPort, secretsOf, startTestScs, type TestScs } from '../e2e/harness.ts';

interface SseFrame {
  event?: string;
  data?: string;
}

/** Reads frames from a text/event-stream body. */
async function* frames(body: ReadableStream<Uint8Array>): AsyncGenerator<SseFrame> {
  const decoder = new TextDecoder();
  let buffer = '';
  for await (const chunk of body) {
    buffer += decoder.decode(chunk, { stream: true });
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const frame: SseFrame = {};
      for (const line of buffer.slice(0, end).split('\n')) {
        if (line.startsWith('event: ')) frame.event = line.slice(7);
        if (line.startsWith('data: ')) frame.data = line.slice(6);
      }
      buffer = buffer.slice(end + 2);
      yield frame;
    }
  }
}

/**
 * The API over a real provisioning: PSKs imported through the API, a simulated device says
 * hello, the runner configures it, and the API's live events, devices, jobs, PSKs and audit log
 * show it; the admin password is revealed through the API, audited with the token name.
 */
describe('REST API over a real provisioning run', () => {
  const port = randomPort();
  let scs: TestScs;
  let api: StartedApi;
  let fleet: Fleet | undefined;
  let token: string;
  const psks: PskPair[] = [{ pid: generatePid(), pps: new Secret(generatePps()) }];

  before(async () => {
    scs = await startTestScs({ amtTlsPort: port, profile: { tls: false } });
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
        log: createLogger('silent'),
        metrics: scs.server.metrics.registry,
        provisioningEvents: runnerEventSource(scs.server.runner),
      },
      { countsIntervalMs: 20 },
    );
    token = (
      await createToken(scs.store, { name: 'ops', role: 'operator', grants: ['reveal'], actor: 'test' })
    ).token.reveal();
  });
  after(async () => {
    await fleet?.stop();
    await api.close();
    await scs.stop();
  });

  const call = async (method: string, url: string, body?: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${api.url}/api/v1${url}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...headers },
      ...(body === undefined ? {} : { body }),
    });
    return {
      status: res.status,
      json: (await res.json()) as Record<string, unknown> & { items?: Record<string, unknown>[] },
    };
  };

  it('shows a device go from hello to provisioned in the event stream and every resource', async () => {
    // Two available PSKs for the renewal, the device's own as a technician's CSV.
    await scs.server.store.psks.insertMany(
      [0, 1].map(() => ({ pid: generatePid(), pps: new Secret(generatePps()), batch: 'spare' })),
      { actor: 'test', source: 'generate' },
    );
    const csv = `PID,PPS\r\n${psks.map((p) => `${formatPid(p.pid)},${formatPps(p.pps.reveal())}`).join('\r\n')}\r\n`;
    const imported = await call('POST', '/psks/import?batch=floor-1', csv, { 'content-type': 'text/csv' });
    assert.equal(imported.status, 200);
    assert.equal(imported.json.inserted, 1);

    const stream = await fetch(`${api.url}/api/v1/events`, { headers: { authorization: `Bearer ${token}` } });
    assert.ok(stream.body);
    const events = frames(stream.body);
    fleet = await fleetFor(scs, psks, port);
    const seen: SseFrame[] = [];
    let provisioned: Record<string, unknown> | undefined;
    for await (const f of events) {
      seen.push(f);
      if (f.event === 'device' && f.data !== undefined) {
        provisioned = JSON.parse(f.data) as Record<string, unknown>;
        break;
      }
    }
    assert.equal(provisioned?.state, 'provisioned', JSON.stringify(provisioned));
    const uuid = String(provisioned.deviceUuid);
    const steps = seen
      .filter((f) => f.event === 'job')
      .map((f) => (JSON.parse(f.data ?? '{}') as { step: string }).step);
    assert.ok(steps.includes('commit') && steps.includes('verify'), steps.join(' '));

    const device = await call('GET', `/devices/${uuid}`);
    assert.equal(device.json.state, 'provisioned');
    assert.ok(Array.isArray(device.json.history) && device.json.history.length > 0);
    const jobs = await call('GET', `/jobs?device=${uuid}`);
    assert.equal(jobs.json.items?.[0]?.state, 'succeeded');
    const old = await call('GET', `/psks/${formatPid(psks[0]?.pid ?? generatePid())}`);
    assert.equal(old.json.state, 'consumed');
    assert.equal(old.json.deviceUuid, uuid);

    const reveal = await call('POST', `/devices/${uuid}/reveal-password`);
    assert.equal(reveal.status, 200);
    assert.equal(typeof reveal.json.password, 'string');
    const audit = await scs.store.audit.list({ action: 'device.reveal_password', limit: 1 });
    assert.equal(audit[0]?.actor, 'api:ops');
    await events.return(undefined);
    assert.deepEqual(leaks(scs.logs, secretsOf(psks, [String(reveal.json.password)])), []);
  });
});
