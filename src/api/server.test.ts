import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../config.ts';
import { createLogger } from '../log.ts';
import { createMetrics } from '../metrics.ts';
import type { Pid } from '../psk/pid.ts';
import type { Runner } from '../provisioning/runner.ts';
import type { JobRow } from '../store/provisioning/types.ts';
import { openStore } from '../store/open.ts';
import type { Store } from '../store/store.ts';
import { runnerEventSource, type ProvisioningEvent, type ProvisioningEventSource } from './events.ts';
import { startApi, type StartedApi } from './server.ts';
import { createToken } from './tokens.ts';

/** Every setting at its default; each test overrides what it is about. */
const DEFAULTS = loadConfig({ env: {} });

interface SseEvent {
  id?: string;
  event?: string;
  data?: string;
  comment?: string;
  retry?: string;
}

/** Reads a text/event-stream body frame by frame (WHATWG HTML §9.2.6, the subset the server writes). */
class SseReader {
  readonly #reader: ReadableStreamDefaultReader<Uint8Array>;
  readonly #decoder = new TextDecoder();
  #buffer = '';

  constructor(body: ReadableStream<Uint8Array>) {
    this.#reader = body.getReader();
  }

  /** The next frame, or undefined at the end of the stream. */
  async next(): Promise<SseEvent | undefined> {
    for (;;) {
      const end = this.#buffer.indexOf('\n\n');
      if (end >= 0) {
        const frame = this.#buffer.slice(0, end);
        this.#buffer = this.#buffer.slice(end + 2);
        const e: SseEvent = {};
        for (const line of frame.split('\n')) {
          if (line.startsWith(':')) e.comment = line.slice(1).trim();
          else {
            const at = line.indexOf(': ');
            const key = line.slice(0, at) as keyof SseEvent;
            e[key] = line.slice(at + 2);
          }
        }
        return e;
      }
      const { done, value } = await this.#reader.read();
      if (done) return undefined;
      this.#buffer += this.#decoder.decode(value, { stream: true });
    }
  }

  /** Skips frames until one of this event type arrives. */
  async until(
    type: string,
    match: (data: Record<string, unknown>) => boolean = () => true,
  ): Promise<SseEvent & { json: Record<string, unknown> }> {
    for (;;) {
      const e = await this.next();
      if (e === undefined) throw new Error(`stream ended before a ${type} event`);
      if (e.event === type && e.data !== undefined) {
        const json = JSON.parse(e.data) as Record<string, unknown>;
        if (match(json)) return { ...e, json };
      }
    }
  }

  cancel(): Promise<void> {
    return this.#reader.cancel();
  }
}

class FakeProvisioning implements ProvisioningEventSource {
  readonly #listeners = new Set<(e: ProvisioningEvent) => void>();
  subscribe(listener: (e: ProvisioningEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  emit(e: ProvisioningEvent): void {
    for (const l of this.#listeners) l(e);
  }
  get listeners(): number {
    return this.#listeners.size;
  }
}

describe('REST API over a real socket', () => {
  let dir: string;
  let store: Store;
  let started: StartedApi;
  let token: string;
  const provisioning = new FakeProvisioning();
  const metrics = createMetrics();

  before(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'scs-api-socket-'));
    ({ store } = await openStore({
      db: `sqlite:${path.join(dir, 'scs.db')}`,
      masterKeyFile: path.join(dir, 'master.key'),
    }));
    token = (await createToken(store, { name: 'ops', role: 'operator', actor: 'test' })).token.reveal();
    started = await startApi(
      {
        config: {
          ...DEFAULTS,
          dataDir: dir,
          apiMetricsAuth: 'token',
          apiHost: '127.0.0.1',
          apiPort: 0,
          apiTlsCert: '',
          apiTlsKey: '',
        },
        store,
        log: createLogger('silent'),
        metrics: metrics.registry,
        provisioningEvents: provisioning,
      },
      { limits: { heartbeatMs: 50 }, countsIntervalMs: 10 },
    );
  });
  after(async () => {
    await started.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const auth = (): Record<string, string> => ({ authorization: `Bearer ${token}` });

  it('listens on the port it was given (0: any) and answers health, API and metrics', async () => {
    assert.match(started.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    const health = await fetch(`${started.url}/healthz`);
    assert.deepEqual(await health.json(), { status: 'ok', db: 'ok' });
    const me = await fetch(`${started.url}/api/v1/me`, { headers: auth() });
    assert.equal(((await me.json()) as { name: string }).name, 'ops');
    const text = await (await fetch(`${started.url}/metrics`, { headers: auth() })).text();
    assert.match(text, /^scs_api_requests_total\{method="GET",route="\/api\/v1\/me",status="200"\} 1$/m);
    // The server's own provisioning metrics share the registry.
    assert.match(text, /^# TYPE scs_hellos_received_total counter$/m);
    assert.equal((await fetch(`${started.url}/metrics`)).status, 401);
  });

  it('streams live events: counts snapshot, counts after a change, provisioning progress, heartbeats', async () => {
    const res = await fetch(`${started.url}/api/v1/events`, { headers: auth() });
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/event-stream; charset=utf-8');
    assert.equal(res.headers.get('cache-control'), 'no-store');
    assert.ok(res.body);
    const sse = new SseReader(res.body);
    assert.deepEqual(await sse.next(), { retry: '3000' });
    const snapshot = await sse.until('psk.counts');
    assert.equal(snapshot.id, undefined);
    assert.equal(snapshot.json.total, 0);

    const gen = await fetch(`${started.url}/api/v1/psks/generate`, {
      method: 'POST',
      headers: { ...auth(), 'content-type': 'application/json' },
      body: JSON.stringify({ count: 3, batch: 'sse' }),
    });
    assert.equal(gen.status, 201);
    const counts = await sse.until('psk.counts', (d) => d.total === 3);
    assert.deepEqual((counts.json.counts as Record<string, number>).available, 3);
    assert.match(counts.id ?? '', /^\d+$/);

    provisioning.emit({
      kind: 'job',
      jobId: 7,
      deviceUuid: '4c4c4544-0035-5910-8051-b8c04f4e5a31',
      state: 'running',
      step: 'tls',
      attempts: 2,
      errorCode: null,
      errorMessage: null,
    });
    const job = await sse.until('job');
    assert.deepEqual(job.json, {
      jobId: 7,
      deviceUuid: '4c4c4544-0035-5910-8051-b8c04f4e5a31',
      state: 'running',
      step: 'tls',
      attempts: 2,
      errorCode: null,
      errorMessage: null,
    });
    provisioning.emit({
      kind: 'device',
      deviceUuid: '4c4c4544-0035-5910-8051-b8c04f4e5a31',
      state: 'provisioned',
      errorCode: null,
      errorMessage: null,
    });
    const device = await sse.until('device');
    assert.equal(device.json.state, 'provisioned');
    let beat: SseEvent | undefined;
    while ((beat = await sse.next()) !== undefined && beat.comment === undefined);
    assert.equal(beat?.comment, 'keep-alive');
    await sse.cancel();

    // Reconnecting with Last-Event-ID replays what came after it.
    const again = await fetch(`${started.url}/api/v1/events`, {
      headers: { ...auth(), 'last-event-id': job.id ?? '' },
    });
    assert.ok(again.body);
    const replay = new SseReader(again.body);
    const replayed = await replay.until('device');
    assert.equal(replayed.id, device.id);
    await replay.cancel();
  });

  it('refuses the stream without a token, as a problem', async () => {
    const res = await fetch(`${started.url}/api/v1/events`);
    assert.equal(res.status, 401);
    assert.equal(res.headers.get('content-type'), 'application/problem+json');
  });

  it('closes open event streams when it stops, without waiting for the clients', async () => {
    const extraDir = mkdtempSync(path.join(tmpdir(), 'scs-api-close-'));
    const opened = await openStore({
      db: `sqlite:${path.join(extraDir, 'scs.db')}`,
      masterKeyFile: path.join(extraDir, 'master.key'),
    });
    const t = (await createToken(opened.store, { name: 'v', role: 'viewer', actor: 'test' })).token.reveal();
    const source = new FakeProvisioning();
    const api = await startApi({
      config: {
        ...DEFAULTS,
        dataDir: extraDir,
        apiMetricsAuth: 'none',
        apiHost: '127.0.0.1',
        apiPort: 0,
        apiTlsCert: '',
        apiTlsKey: '',
      },
      store: opened.store,
      log: createLogger('silent'),
      provisioningEvents: source,
    });
    try {
      assert.equal((await fetch(`${api.url}/metrics`)).status, 200, 'apiMetricsAuth none: no token needed');
      const res = await fetch(`${api.url}/api/v1/events`, { headers: { authorization: `Bearer ${t}` } });
      assert.ok(res.body);
      const sse = new SseReader(res.body);
      await sse.until('psk.counts');
      assert.equal(source.listeners, 1);
      await api.close();
      let frame: SseEvent | undefined;
      while ((frame = await sse.next()) !== undefined) void frame;
      assert.equal(source.listeners, 0, 'unsubscribed from the provisioning events');
    } finally {
      await api.close();
      await opened.store.close();
      rmSync(extraDir, { recursive: true, force: true });
    }
  });
});

describe('REST API over HTTPS', () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'scs-api-tls-'));
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-keyout',
        path.join(dir, 'key.pem'),
        '-out',
        path.join(dir, 'cert.pem'),
        '-subj',
        '/CN=localhost',
        '-days',
        '1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
  });
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves HTTPS with the configured certificate and key', async () => {
    const { store } = await openStore({
      db: `sqlite:${path.join(dir, 'scs.db')}`,
      masterKeyFile: path.join(dir, 'master.key'),
    });
    const api = await startApi({
      config: {
        ...DEFAULTS,
        dataDir: dir,
        apiMetricsAuth: 'token',
        apiHost: '127.0.0.1',
        apiPort: 0,
        apiTlsCert: path.join(dir, 'cert.pem'),
        apiTlsKey: path.join(dir, 'key.pem'),
      },
      store,
      log: createLogger('silent'),
    });
    try {
      assert.match(api.url, /^https:\/\/127\.0\.0\.1:\d+$/);
      const body = await new Promise<string>((resolve, reject) => {
        https
          .get(`${api.url}/healthz`, { ca: readFileSync(path.join(dir, 'cert.pem')) }, (res) => {
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (text += c));
            res.on('end', () => resolve(text));
          })
          .on('error', reject);
      });
      assert.deepEqual(JSON.parse(body), { status: 'ok', db: 'ok' });
    } finally {
      await api.close();
      await store.close();
    }
  });

  it('fails clearly when the certificate file cannot be read', async () => {
    const { store } = await openStore({
      db: `sqlite:${path.join(dir, 'scs.db')}`,
      masterKeyFile: path.join(dir, 'master.key'),
    });
    try {
      await assert.rejects(
        startApi({
          config: {
            ...DEFAULTS,
            dataDir: dir,
            apiMetricsAuth: 'token',
            apiHost: '127.0.0.1',
            apiPort: 0,
            apiTlsCert: path.join(dir, 'missing.pem'),
            apiTlsKey: path.join(dir, 'key.pem'),
          },
          store,
          log: createLogger('silent'),
        }),
        /SCS_FILE_IO|cannot read the API TLS certificate/,
      );
    } finally {
      await store.close();
    }
  });
});

describe('runner events', () => {
  it('turns runner step and finished events into job and device events', () => {
    // The real Runner is an EventEmitter with these two events; its provisioning needs devices.
    const runner = new EventEmitter() as unknown as Runner;
    const seen: ProvisioningEvent[] = [];
    const unsubscribe = runnerEventSource(runner).subscribe((e) => seen.push(e));
    const job: JobRow = {
      id: 3,
      deviceUuid: 'u',
      pid: 'AAAAAAA0' as Pid,
      address: '127.0.0.2',
      profile: 'default',
      state: 'failed',
      step: 'commit',
      attempts: 4,
      errorCode: 'SCS_AMT_TIMEOUT',
      errorMessage: 'no answer',
      leaseOwner: null,
      leaseUntil: null,
      data: {},
      createdAt: new Date(),
      updatedAt: new Date(),
      finishedAt: new Date(),
    };
    runner.emit('step', { job: { ...job, state: 'running', errorCode: null, errorMessage: null }, step: 'commit' });
    runner.emit('finished', { job, state: 'failed', code: 'SCS_AMT_TIMEOUT', ms: 10 });
    unsubscribe();
    runner.emit('step', { job, step: 'tls' });
    assert.deepEqual(
      seen.map((e) => [e.kind, e.state, e.errorCode]),
      [
        ['job', 'running', null],
        ['job', 'failed', 'SCS_AMT_TIMEOUT'],
        ['device', 'failed', 'SCS_AMT_TIMEOUT'],
      ],
    );
  });
});
