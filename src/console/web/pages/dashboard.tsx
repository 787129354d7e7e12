import { useEffect, useRef, useState } from 'preact/hooks';
import { query } from '../api.ts';
import { ago, shortUuid } from '../format.ts';
import { applyDeviceEvent, applyJobEvent, fromJob, ordered, type LiveJob } from '../live-jobs.ts';
import { CountBars } from '../parts/count-bars.tsx';
import { Problem } from '../parts/problem.tsx';
import { StateBadge } from '../parts/state-badge.tsx';
import { StepTrack } from '../parts/step-track.tsx';
import { ThroughputChart, type Bucket } from '../parts/throughput-chart.tsx';
import {
  DEVICE_STATES,
  PSK_STATES,
  type CountsEvent,
  type DeviceEvent,
  type DeviceState,
  type Job,
  type JobEvent,
  type Page,
} from '../resources.ts';
import { href } from '../route.ts';
import { useLiveEvent, useSession } from '../session-context.ts';
import { useLoad } from '../use-load.ts';

const BUCKET_S = 60;
const BUCKETS = 30;

interface Finish {
  readonly at: number;
  readonly ok: boolean;
}

/**
 * The fleet at a glance: PSKs and devices by state, provisioning as it happens (live, from the
 * event stream), recent failures with their reasons, and devices finished per minute.
 */
export function Dashboard() {
  const { client } = useSession();
  const psks = useLoad((s) => client.get<CountsEvent>('/psks/stats', s), []);
  const devices = useLoad(
    (s) => client.get<{ counts: Record<DeviceState, number>; total: number }>('/devices/stats', s),
    [],
  );
  const failures = useLoad(
    (s) => client.get<Page<Job, number>>(`/jobs${query({ state: ['failed'], limit: 8 })}`, s),
    [],
  );
  const recent = useLoad((s) => client.get<Page<Job, number>>(`/jobs${query({ limit: 1000 })}`, s), []);

  const [pskCounts, setPskCounts] = useState<CountsEvent | undefined>(undefined);
  const [jobs, setJobs] = useState<ReadonlyMap<string, LiveJob>>(new Map());
  const [finishes, setFinishes] = useState<readonly Finish[]>([]);
  const [now, setNow] = useState(Date.now());

  useEffect(() => {
    if (psks.value !== undefined) setPskCounts(psks.value);
  }, [psks.value]);
  useEffect(() => {
    const items = recent.value?.items ?? [];
    const m = new Map<string, LiveJob>();
    // Newest first: the first job seen for a device is its latest.
    for (const j of items) if (!m.has(j.deviceUuid) && m.size < 50) m.set(j.deviceUuid, fromJob(j));
    setJobs((live) => new Map([...m, ...live]));
    setFinishes(
      items
        .filter((j) => j.finishedAt !== null && (j.state === 'succeeded' || j.state === 'failed'))
        .map((j) => ({ at: new Date(j.finishedAt ?? 0).getTime(), ok: j.state === 'succeeded' })),
    );
  }, [recent.value]);
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), 5000);
    return () => clearInterval(t);
  }, []);

  // Device counts and failures change when a job ends: reload them, at most once a second.
  const reloadSoon = useThrottled(() => {
    devices.reload();
    failures.reload();
  }, 1000);
  useLiveEvent('psk.counts', (d) => setPskCounts(d as CountsEvent));
  useLiveEvent('job', (d) => setJobs((m) => applyJobEvent(m, d as JobEvent, Date.now())));
  useLiveEvent('device', (d) => {
    const e = d as DeviceEvent;
    setJobs((m) => applyDeviceEvent(m, e, Date.now()));
    setFinishes((f) => [...f, { at: Date.now(), ok: e.state === 'provisioned' }]);
    reloadSoon();
  });

  const live = ordered(jobs, 30);
  const running = live.filter((j) => j.state === 'running' || j.state === 'queued').length;
  return (
    <div class="page">
      <h1>Dashboard</h1>
      <div class="grid two">
        {pskCounts === undefined ? (
          <section class="card">
            <h2>PSKs</h2>
            <Problem message={psks.error} />
          </section>
        ) : (
          <CountBars title="PSKs by state" counts={pskCounts.counts} order={PSK_STATES} testId="psk-counts" />
        )}
        {devices.value === undefined ? (
          <section class="card">
            <h2>Devices</h2>
            <Problem message={devices.error} />
          </section>
        ) : (
          <CountBars
            title="Devices by state"
            counts={devices.value.counts}
            order={DEVICE_STATES}
            testId="device-counts"
          />
        )}
      </div>
      <section class="card" aria-labelledby="live-title">
        <h2 id="live-title">
          Provisioning <span class="muted">{running} in progress</span>
        </h2>
        {live.length === 0 ? (
          <p class="empty-note">
            No device has said hello yet. Devices appear here the moment their provisioning starts.
          </p>
        ) : (
          <div class="table-wrap">
            <table class="live-table" data-testid="live-jobs">
              <thead>
                <tr>
                  <th scope="col">Device</th>
                  <th scope="col">State</th>
                  <th scope="col">Step</th>
                  <th scope="col">Progress</th>
                  <th scope="col">Last news</th>
                </tr>
              </thead>
              <tbody>
                {live.map((j) => (
                  <tr
                    key={j.deviceUuid}
                    data-device={j.deviceUuid}
                    data-state={j.state === 'succeeded' ? 'provisioned' : j.state}
                  >
                    <td>
                      <a href={href('devices', j.deviceUuid)} class="mono nowrap" title={j.deviceUuid}>
                        {shortUuid(j.deviceUuid)}
                      </a>
                    </td>
                    <td>
                      <StateBadge state={j.state === 'succeeded' ? 'provisioned' : j.state} />
                    </td>
                    <td>
                      {j.state === 'succeeded' ? 'done' : (j.step ?? '—')}
                      {j.attempts > 1 ? <span class="muted"> (try {j.attempts})</span> : null}
                      {j.errorCode === null ? null : <div class="reason">{j.errorCode}</div>}
                    </td>
                    <td>
                      <StepTrack step={j.step} state={j.state} />
                    </td>
                    <td class="muted">{ago(new Date(j.seen).toISOString(), now)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <div class="grid two">
        <section class="card" aria-labelledby="chart-title">
          <h2 id="chart-title">Throughput</h2>
          <ThroughputChart buckets={bucketize(finishes, Math.max(now, Date.now()))} bucketSeconds={BUCKET_S} />
        </section>
        <section class="card" aria-labelledby="fail-title">
          <h2 id="fail-title">Recent failures</h2>
          <Problem message={failures.error} />
          {failures.value?.items.length === 0 ? <p class="empty-note">No failed provisioning.</p> : null}
          <ul class="failures" data-testid="failures">
            {failures.value?.items.map((j) => (
              <li key={j.id}>
                <a href={href('devices', j.deviceUuid)} class="mono">
                  {shortUuid(j.deviceUuid)}
                </a>{' '}
                <span class="muted">at step {j.step ?? '—'}</span>
                <div class="reason">
                  <strong>{j.errorCode ?? 'failed'}</strong> {j.errorMessage ?? ''}
                </div>
              </li>
            ))}
          </ul>
        </section>
      </div>
    </div>
  );
}

function bucketize(finishes: readonly Finish[], now: number): Bucket[] {
  const size = BUCKET_S * 1000;
  const end = Math.floor(now / size) * size;
  const start = end - (BUCKETS - 1) * size;
  const buckets = Array.from({ length: BUCKETS }, (_, i) => ({ at: start + i * size, provisioned: 0, failed: 0 }));
  for (const f of finishes) {
    const i = Math.floor((f.at - start) / size);
    const b = buckets[i];
    if (b === undefined) continue;
    if (f.ok) b.provisioned++;
    else b.failed++;
  }
  return buckets;
}

/** `fn` at most once per `ms`, trailing. */
function useThrottled(fn: () => void, ms: number): () => void {
  const latest = useRef(fn);
  latest.current = fn;
  const timer = useRef<ReturnType<typeof setTimeout> | undefined>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);
  return () => {
    if (timer.current !== undefined) return;
    timer.current = setTimeout(() => {
      timer.current = undefined;
      latest.current();
    }, ms);
  };
}
