/**
 * The store's share of a provisioned device, alone (docs/performance.md, "Provisioning hot
 * path"): per job, the writes and reads the runner makes for one device, in the runner's order,
 * through the runner's group commit, with `--concurrency` jobs at once, no network. What a job
 * does to the store (the bench mirrors src/provisioning/runner.ts, job-run.ts, the escrow,
 * renewal and commit steps and outcome.ts):
 *
 *   hello: PSK read, active-job check, PSK -> in_use, batch read, job created, device noted
 *   start: job running (audited) + PPS reveal + device read
 *   escrow: 2 step entries, escrow row, job progress;  renewal: 3 step entries, bound PSKs,
 *   renewal PSK taken and revealed, job progress;  commit: 2 step entries, job progress
 *   (audited commit_sent);  finish: finishSucceeded (outcome.ts)
 *
 * SQLite in a temp dir, synchronous = FULL as the server. Prints one JSON line: CPU ms per job
 * (process.cpuUsage of the whole run after the PSKs are in) and statements are not counted here.
 *
 *   node --import tsx bench/provision-store.ts [--jobs 2000] [--concurrency 256]
 */
import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { loadConfig } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { GroupCommit } from '../src/provisioning/group-commit.ts';
import { finishSucceeded } from '../src/provisioning/outcome.ts';
import { generatePid, generatePps } from '../src/psk/generate.ts';
import type { Pid } from '../src/psk/pid.ts';
import { Secret } from '../src/secret.ts';
import { openStore } from '../src/store/open.ts';
import type { JobRow } from '../src/store/provisioning/types.ts';
import type { Store } from '../src/store/store.ts';

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? (process.argv[i + 1] ?? fallback) : fallback;
}

const JOBS = Number(arg('jobs', '2000'));
const CONCURRENCY = Number(arg('concurrency', '256'));
const actor = 'bench';
const owner = 'bench-node';

const dir = mkdtempSync(path.join(tmpdir(), 'scs-store-bench-'));
const config = loadConfig({ flags: { dataDir: dir, logLevel: 'warn' }, env: {} });
const { store } = await openStore(config, createLogger('warn'));
const pids: Pid[] = Array.from({ length: JOBS }, () => generatePid());
await store.psks.insertMany(
  [
    ...pids.map((pid) => ({ pid, pps: new Secret(generatePps()), batch: 'bench', state: 'exported' as const })),
    ...Array.from({ length: JOBS }, () => ({ pid: generatePid(), pps: new Secret(generatePps()), batch: 'bench' })),
  ],
  { actor, source: 'generate' },
);
const group = new GroupCommit(store);
const lease = (): { owner: string; until: Date } => ({ owner, until: new Date(Date.now() + 30_000) });

async function steps(tx: Store, job: JobRow, names: readonly string[]): Promise<void> {
  for (const step of names) {
    await tx.audit.append({ actor, action: 'job.step', detail: { job: job.id, uuid: job.deviceUuid, step, ms: 5 } });
  }
}

async function oneJob(pid: Pid): Promise<void> {
  const uuid = randomUUID();
  const address = '127.0.0.1';
  const job = await group.run(async (tx) => {
    const psk = await tx.psks.get(pid);
    if (psk === undefined) throw new Error('no PSK');
    if ((await tx.jobs.activeFor(uuid)) !== undefined) throw new Error('duplicate');
    await tx.psks.transition({
      pids: [pid],
      from: [psk.state],
      to: 'in_use',
      actor,
      reason: 'hello',
      deviceUuid: uuid,
    });
    const batch = await tx.batches.get(psk.batch);
    const created = await tx.jobs.create(
      {
        deviceUuid: uuid,
        pid,
        address,
        profile: batch?.profile ?? 'default',
        lease: lease(),
        data: { pskWasInUse: false, adminCredentialsSet: true, batch: psk.batch, batchProfile: null },
      },
      { actor },
    );
    if (created === undefined) throw new Error('duplicate');
    await tx.devices.noteJob(uuid, { address, profile: created.profile, jobId: created.id }, { actor });
    return created;
  });
  let data = job.data;
  const start = await group.run(async (tx) => {
    const row = await tx.jobs.update(
      job.id,
      { state: 'running', attempts: 1, data, lease: lease() },
      { action: 'job.started', detail: { attempt: 1, resumed: false, commitSent: false } },
      { actor },
    );
    await tx.psks.reveal(pid, { actor, purpose: 'provision' });
    return { row, device: await tx.devices.get(uuid) };
  });
  const { row: started, device } = start;
  const escrowId = await group.run(async (tx) => {
    await steps(tx, started, ['facts', 'mebx-password']);
    const id = await tx.escrow.put(
      {
        deviceUuid: uuid,
        purpose: 'admin',
        secret: new Secret('P@ssw0rd-generated-1'),
        jobId: job.id,
        username: 'admin',
      },
      { actor },
    );
    data = { ...data, adminEscrowId: id };
    await tx.jobs.progress(job.id, { data, lease: lease(), step: 'mebx-password' }, undefined, { actor });
    return id;
  });
  await group.run(async (tx) => {
    await steps(tx, started, ['admin-credentials', 'host-domain', 'time-sync']);
    const spare = (await tx.pskBindings.boundTo(uuid)).find((p) => p !== pid);
    if (spare !== undefined) throw new Error('unexpected spare');
    const taken = await tx.pskBindings.takeRenewal(
      { deviceUuid: uuid, preferBatch: 'bench', profile: null },
      { actor },
    );
    if (taken === undefined) throw new Error('no renewal PSK');
    data = { ...data, newPid: taken.pid };
    await tx.jobs.progress(job.id, { data, lease: lease(), step: 'time-sync' }, undefined, { actor });
  });
  await group.run(async (tx) => {
    await steps(tx, started, ['tls', 'renew-psk']);
    data = { ...data, commitSent: true };
    await tx.jobs.progress(
      job.id,
      { data, lease: lease(), step: 'renew-psk' },
      { action: 'job.commit_sent' },
      { actor },
    );
  });
  const credentials = { username: 'admin', password: new Secret('x'), source: `escrow:${escrowId}`, escrowId };
  const progress = { steps: [{ step: 'commit' as const, ms: 5 }], lastStep: 'commit' as const };
  const finalData = { ...data, hostName: 'host', domainName: 'example.com', amtVersion: '16.1.25' };
  await group.run((tx) =>
    finishSucceeded(tx, started, finalData, { credentials }, actor, progress, device?.mebxEscrowId ?? null),
  );
}

const cpu0 = process.cpuUsage();
const t0 = performance.now();
let next = 0;
await Promise.all(
  Array.from({ length: Math.min(CONCURRENCY, JOBS) }, async () => {
    while (next < JOBS) await oneJob(pids[next++] as Pid);
  }),
);
const wallMs = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const verify = await store.audit.verify();
const counts = await store.jobs.countByState();
await store.close();
rmSync(dir, { recursive: true, force: true });
process.stdout.write(
  `${JSON.stringify({
    benchmark: 'provision-store',
    jobs: JOBS,
    concurrency: CONCURRENCY,
    cpuMsPerJob: Math.round(((cpu.user + cpu.system) / 1000 / JOBS) * 1000) / 1000,
    userMsPerJob: Math.round((cpu.user / 1000 / JOBS) * 1000) / 1000,
    systemMsPerJob: Math.round((cpu.system / 1000 / JOBS) * 1000) / 1000,
    wallMsPerJob: Math.round((wallMs / JOBS) * 1000) / 1000,
    succeeded: counts.succeeded,
    auditEntries: verify.entries,
    auditOk: verify.ok,
  })}\n`,
);
