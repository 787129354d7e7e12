/**
 * Crash consistency rounds (docs/security.md, "Crash consistency"; `npm run crash`).
 *
 * One data directory lives through every round. Each round runs one real amt-scs process (the
 * CLI or the server, from source) and kills it with SIGKILL at a random moment:
 *
 * - generate:  `psk generate --count 30000`
 * - import:    `psk import <bundle>` of a fresh 3,000-PSK bundle written by another installation
 * - export:    `psk export --format csv` of a 3,000-PSK batch
 * - provision: `serve` while 4 simulated devices are being provisioned; then a second `serve`
 *              on the same directory runs until every device is provisioned (the restart)
 *
 * After each round the store is opened again (what any next command does; for exports
 * recoverPendingExports, what the next `psk export` runs first) and the invariants are checked:
 *
 * 1. the audit hash chain verifies;
 * 2. no half-imported bundle: each bundle's PIDs are all present or none;
 * 3. no PSK without its audit: per batch, PSKs = PIDs listed by its psk.generate / psk.import
 *    entries (a killed generate left whole chunks, each with its entry, or nothing);
 * 4. no PSK in two states: every CSV at its final name lists only PSKs the database holds as
 *    exported, every export the log calls complete has its file, every available/exported PSK
 *    is in no unfinished job, every in_use PSK is a device's renewal PSK or an unfinished job's;
 * 5. no PSK consumed twice: at most one psk.state entry per PID moves it to consumed;
 * 6. every job resumes or ends with a reason: after the restart no job is queued or running,
 *    each failed job has an error code, every device is provisioned exactly once per round.
 *
 * Rounds cycle generate, import, export, provision. The kill is timed from the moment the work
 * starts, not from the spawn: a CLI round runs at debug level and its work starts when it logs
 * "PSK database open" (node and tsx start-up, tens of seconds on a loaded machine, is not work);
 * a provisioning round's work starts when the fleet sends its first hellos. The first round of
 * each kind runs without a kill and times its work (database open -> exit; first hello -> every
 * device provisioned); later rounds are killed at a uniform random moment inside that duration,
 * so nearly every kill lands mid-work (a round whose process finished first is recorded as such).
 * The machine's load changes between rounds (other work shares the cores), so the duration is
 * scaled by this round's start-up time over the calibration round's (node and tsx start-up is
 * CPU-bound work too, measured in the same process just before), within 0.5x..4x; and a round
 * that finished before its kill re-times its kind (its measured duration becomes the calibration).
 * Prints a JSON summary; exit 1 if any invariant failed.
 *
 * Run: node --import tsx scripts/crash-rounds.ts [--rounds 50] [--kill-window-ms 8000] [--out file.json]
 * (--kill-window-ms: no calibration runs; each kill at a uniform moment in 0..N ms after the
 * work started, see CrashRunOptions.killWindow)
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { startFleet, type Fleet } from '../simulator/fleet/fleet.ts';
import { generatePid, generatePps } from '../src/psk/generate.ts';
import type { Pid } from '../src/psk/pid.ts';
import { exportPsksToFile, recoverPendingExports } from '../src/psk/transfer/export.ts';
import { Secret } from '../src/secret.ts';
import { openStore } from '../src/store/open.ts';
import type { Store } from '../src/store/store.ts';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const CLI = path.join(ROOT, 'src/cli/main.ts');
const PASSPHRASE = 'crash-rounds passphrase 1';
const MEBX = 'P@ssw0rd';
const KINDS = ['generate', 'import', 'export', 'provision'] as const;
type Kind = (typeof KINDS)[number];

export interface RoundResult {
  readonly round: number;
  readonly kind: Kind;
  /** ms after the work started (see the header) the process was killed; null: the calibration run (no kill). */
  readonly killAtMs: number | null;
  /** ms from the spawn to the start of the work (CLI: "PSK database open"; provision: first hellos). */
  readonly workStartMs: number | null;
  /** The process had exited by itself (provision: every device was provisioned) before the kill. */
  readonly finishedBeforeKill: boolean;
  /** Killed after its work started and before it finished (provision: some device not yet provisioned). */
  readonly killedMidWork: boolean;
  /** What the round changed, as seen after the restart (e.g. PSKs inserted, file present). */
  readonly effect: string;
  /** Invariant violations; empty = all held. */
  readonly violations: string[];
  /** The process failed by itself (not killed) with this exit code and output tail; null = none. */
  readonly error: string | null;
  readonly ms: number;
}

export interface CrashRunOptions {
  readonly rounds: number;
  /**
   * Skip the calibration runs (quick variant for npm test): kill at a uniform moment in
   * [fromMs, toMs] after the process started working (the CLI logged "PSK database open", or the
   * fleet sent its first hellos).
   */
  readonly killWindow?: { readonly fromMs: number; readonly toMs: number };
  readonly log?: (line: string) => void;
}

export interface CrashRunSummary {
  readonly rounds: number;
  readonly byKind: Record<
    Kind,
    {
      rounds: number;
      /** Rounds run without a kill to time the work. */
      calibration: number;
      /** The calibrated work duration (ms) the kills were drawn in; null with --kill-window-ms. */
      workMs: number | null;
      killedMidWork: number;
      finishedBeforeKill: number;
      violations: number;
      errors: number;
    }
  >;
  readonly violations: number;
  /** Rounds whose process failed by itself (see RoundResult.error). */
  readonly errors: number;
  readonly results: RoundResult[];
  readonly totals: { psks: number; auditEntries: number; jobs: number; devicesProvisioned: number };
}

interface Ctx {
  readonly dir: string;
  readonly srcDir: string;
  readonly db: string;
  readonly key: string;
  /** Bundles imported (or tried) so far, with their PIDs. */
  readonly bundles: { file: string; batch: string; pids: Pid[] }[];
  /** CSV exports tried so far. */
  readonly csvs: string[];
  /** Devices (UUIDs) of provisioning rounds so far. */
  readonly devices: string[];
  /** Per kind, the last measured work duration (ms from the work's start) and that round's start-up time. */
  readonly calibrated: Partial<Record<Kind, { readonly workMs: number; readonly startupMs: number }>>;
  readonly log: (line: string) => void;
  /** The kill window, when killWindow was given. */
  readonly window?: { readonly fromMs: number; readonly toMs: number };
}

async function withStore<T>(ctx: Pick<Ctx, 'db' | 'key'>, fn: (store: Store) => Promise<T>): Promise<T> {
  const { store } = await openStore({ db: `sqlite:${ctx.db}`, masterKeyFile: ctx.key });
  try {
    return await fn(store);
  } finally {
    await store.close();
  }
}

function newPairs(n: number): { pid: Pid; pps: Secret<string> }[] {
  return Array.from({ length: n }, () => ({ pid: generatePid(), pps: new Secret<string>(generatePps()) }));
}

async function insert(store: Store, batch: string, n: number, state: 'available' | 'exported'): Promise<Pid[]> {
  const pairs = newPairs(n);
  await store.psks.insertMany(
    pairs.map((p) => ({ pid: p.pid, pps: p.pps as Secret<never>, batch, state })),
    { actor: 'crash-rounds', source: 'generate' },
  );
  return pairs.map((p) => p.pid);
}

/** Logged (debug) by the store once it is open: where a CLI round's work starts. */
const WORK_STARTED = 'PSK database open';

function cli(ctx: Ctx, args: readonly string[], logLevel: 'debug' | 'warn' = 'warn'): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', CLI, '--data-dir', ctx.dir, '--log-level', logLevel, ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', SCS_BUNDLE_PASSPHRASE: PASSPHRASE },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

interface CliRun {
  /** ms after the work started the kill was set for; null: no kill (or the work never started). */
  readonly killAtMs: number | null;
  /** The process exited by itself (never killed). */
  readonly finishedBeforeKill: boolean;
  /** Killed after its work started (the marker) and before it exited. */
  readonly killedMidWork: boolean;
  /** ms from the spawn to the work-start marker; null if it never came. */
  readonly workStartMs: number | null;
  /** ms from the work-start marker to the exit (what a calibration round measures); null without the marker. */
  readonly workMs: number | null;
  readonly output: string;
  readonly exitCode: number | null;
}

/** When to kill, in ms after the work started, given this round's start-up time (ms); null: no kill. */
type KillPlan = ((startupMs: number) => number) | null;

/**
 * Runs a CLI `child` (spawned at debug level) and kills it with SIGKILL `plan(startup)` ms after
 * it logged that its work started (null: let it finish). The kill timer starts at the marker, so
 * the start-up time of node and tsx, which varies with the machine's load, does not move the kill.
 */
async function runKilled(child: ChildProcess, plan: KillPlan): Promise<CliRun> {
  let output = '';
  const started = performance.now();
  let markerAt: number | undefined;
  let killAtMs: number | null = null;
  let killed = false;
  let timer: NodeJS.Timeout | undefined;
  const onData = (b: Buffer): void => {
    output += b.toString();
    if (markerAt !== undefined || !output.includes(WORK_STARTED)) return;
    markerAt = performance.now();
    if (plan === null) return;
    const at = plan(markerAt - started);
    killAtMs = at;
    timer = setTimeout(() => (killed = child.kill('SIGKILL')), at);
  };
  child.stdout?.on('data', onData);
  child.stderr?.on('data', onData);
  const exited = once(child, 'exit');
  const [exitCode] = (await exited) as [number | null];
  const ended = performance.now();
  clearTimeout(timer);
  return {
    killAtMs,
    finishedBeforeKill: !killed,
    killedMidWork: killed && markerAt !== undefined,
    workStartMs: markerAt === undefined ? null : Math.round(markerAt - started),
    workMs: markerAt === undefined ? null : Math.round(ended - markerAt),
    output,
    exitCode,
  };
}

/** When to kill; null: the calibration round of this kind (no kill). */
function killPlan(ctx: Ctx, kind: Kind): KillPlan {
  const w = ctx.window;
  if (w !== undefined) {
    const at = Math.round(w.fromMs + randomInt(Math.max(1, w.toMs - w.fromMs) + 1));
    return () => at;
  }
  const cal = ctx.calibrated[kind];
  if (cal === undefined) return null;
  const u = randomInt(1_000_001) / 1_000_000;
  // Uniform inside the measured work, scaled by how much slower (or faster) this process started.
  return (startupMs) => {
    const load = Math.min(4, Math.max(0.5, startupMs / Math.max(1, cal.startupMs)));
    return Math.round(u * cal.workMs * load);
  };
}

// ---------------------------------------------------------------- rounds

interface RoundRun {
  readonly killAtMs: number | null;
  readonly finishedBeforeKill: boolean;
  readonly killedMidWork: boolean;
  readonly workStartMs: number | null;
  /** The start-up time the kill was scaled by (CLI: spawn to marker; provision: serve's spawn to listening). */
  readonly startupMs: number | null;
  /** The work's duration when it ran to its end (calibration, or finished before the kill); else null. */
  readonly workMs: number | null;
  readonly effect: string;
  /** The process's own exit code; null when a signal ended it. */
  readonly exitCode: number | null;
  readonly output: string;
}

async function roundGenerate(ctx: Ctx, round: number, plan: KillPlan): Promise<RoundRun> {
  const batch = `gen-r${round}`;
  const r = await runKilled(cli(ctx, ['psk', 'generate', '--count', '30000', '--batch', batch], 'debug'), plan);
  // Killed before its first chunk committed, the batch does not exist at all.
  const n = await withStore(ctx, async (s) =>
    (await s.batches.get(batch)) === undefined
      ? 0
      : Object.values(await s.psks.countByState({ batch })).reduce((a, b) => a + b, 0),
  );
  return { ...r, startupMs: r.workStartMs, effect: `${n} of 30000 PSKs in ${batch}` };
}

async function roundImport(ctx: Ctx, round: number, plan: KillPlan): Promise<RoundRun> {
  // A fresh bundle from the other installation.
  const file = path.join(ctx.srcDir, `r${round}.bundle`);
  const pids = await withStore(
    { db: path.join(ctx.srcDir, 'scs.db'), key: path.join(ctx.srcDir, 'master.key') },
    async (s) => {
      const batch = `bundle-r${round}`;
      const inserted = await insert(s, batch, 3000, 'available');
      await exportPsksToFile(
        s,
        { format: 'bundle', actor: 'crash-rounds', batch, bundle: { passphrase: new Secret(PASSPHRASE), move: true } },
        file,
      );
      return inserted;
    },
  );
  ctx.bundles.push({ file, batch: `bundle-r${round}`, pids });
  const r = await runKilled(cli(ctx, ['psk', 'import', file], 'debug'), plan);
  const present = await withStore(ctx, async (s) => {
    let n = 0;
    for (const pid of pids) if ((await s.psks.get(pid)) !== undefined) n++;
    return n;
  });
  return { ...r, startupMs: r.workStartMs, effect: `${present} of ${pids.length} bundle PSKs present` };
}

async function roundExport(ctx: Ctx, round: number, plan: KillPlan): Promise<RoundRun> {
  const batch = `exp-r${round}`;
  await withStore(ctx, (s) => insert(s, batch, 3000, 'available'));
  const file = path.join(ctx.dir, `r${round}.csv`);
  ctx.csvs.push(file);
  const r = await runKilled(
    cli(ctx, ['psk', 'export', '--format', 'csv', '--batch', batch, '--out', file], 'debug'),
    plan,
  );
  // What the next `psk export` does first.
  const recovered = await withStore(ctx, (s) => recoverPendingExports(s));
  const exported = await withStore(ctx, async (s) => (await s.psks.countByState({ batch })).exported);
  return {
    ...r,
    startupMs: r.workStartMs,
    effect: `file ${existsSync(file) ? 'present' : 'absent'}, ${exported} exported, ${recovered.length} recovered`,
  };
}

function serve(ctx: Ctx, helloPort: number, amtTlsPort: number): ChildProcess {
  return cli(ctx, [
    '--hello-host',
    '127.0.0.1',
    '--hello-port',
    String(helloPort),
    '--amt-tls-port',
    String(amtTlsPort),
    '--api-port',
    '0',
    '--connect-timeout-ms',
    '5000',
    'serve',
    '--grace-ms',
    '0',
  ]);
}

async function listening(child: ChildProcess, timeoutMs = 240_000): Promise<void> {
  let text = '';
  const deadline = Date.now() + timeoutMs;
  child.stderr?.on('data', (b: Buffer) => (text += b.toString()));
  while (!text.includes('listening for hellos')) {
    if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${text}`);
    if (Date.now() > deadline) throw new Error(`serve did not start: ${text}`);
    await sleep(50);
  }
}

/** Waits until the server (another process) has no job queued or running. */
async function jobsDone(ctx: Ctx, timeoutMs = 120_000): Promise<void> {
  for (const deadline = Date.now() + timeoutMs; ;) {
    const unfinished = await withStore(ctx, async (s) => (await s.jobs.unfinished()).length);
    if (unfinished === 0) return;
    if (Date.now() > deadline) throw new Error(`${unfinished} jobs still unfinished`);
    await sleep(250);
  }
}

async function roundProvision(ctx: Ctx, round: number, plan: KillPlan): Promise<RoundRun> {
  const batch = `prov-r${round}`;
  const devices = 4;
  const pids = await withStore(ctx, async (s) => {
    const hello = await insert(s, batch, devices, 'exported');
    await insert(s, batch, devices, 'available');
    return hello;
  });
  const amtTlsPort = 20_000 + randomInt(40_000);
  const helloPort = 20_000 + randomInt(40_000);
  const spawned = performance.now();
  const first = serve(ctx, helloPort, amtTlsPort);
  let fleet: Fleet | undefined;
  let second: ChildProcess | undefined;
  try {
    await listening(first);
    // serve's start-up: this round's load proxy (see killPlan).
    const startupMs = performance.now() - spawned;
    const pairs = await withStore(ctx, async (s) =>
      Promise.all(
        pids.map(async (pid) => ({
          pid,
          pps: await s.psks.reveal(pid, { actor: 'crash-rounds', purpose: 'simulator' }),
        })),
      ),
    );
    fleet = await startFleet({
      devices,
      psks: pairs,
      scs: `127.0.0.1:${helloPort}`,
      tlsPort: amtTlsPort,
      httpPort: amtTlsPort + 1,
      addressBase: `127.${100 + randomInt(150)}.${randomInt(250)}.1`,
      workers: 'inline',
      keyPoolSize: 4,
      mebxPassword: MEBX,
      timeFactor: 0.05,
      latencyMs: 20,
    });
    // The work starts with the devices' first hellos, sent as the fleet starts.
    const started = performance.now();
    ctx.devices.push(...fleet.devices.map((d) => d.uuid));
    const f = fleet;
    if (plan === null) {
      await f.waitFor('all-provisioned', { timeoutMs: 240_000 });
      // Calibration: from the first hellos until every device is provisioned.
      const workMs = Math.round(performance.now() - started);
      await jobsDone(ctx);
      first.kill('SIGTERM');
      const [code] = (await once(first, 'exit')) as [number | null];
      return {
        killAtMs: null,
        finishedBeforeKill: true,
        killedMidWork: false,
        workStartMs: Math.round(started - spawned),
        startupMs,
        workMs,
        effect: `${devices} provisioned (calibration)`,
        exitCode: code,
        output: '',
      };
    }
    const killAtMs = plan(startupMs);
    // Watch for the end of the work until the kill: a round that finishes first re-times its kind.
    let doneAt: number | undefined;
    while (performance.now() - started < killAtMs) {
      if (doneAt === undefined && f.counts().post === devices) doneAt = performance.now() - started;
      await sleep(Math.min(10, Math.max(0, killAtMs - (performance.now() - started))));
    }
    const post = f.counts().post;
    // Mid-work: at least one device was not provisioned yet (its job certainly unfinished).
    const finishedBeforeKill = post === devices;
    first.kill('SIGKILL');
    await once(first, 'exit');
    // The restart: a new server on the same directory and ports runs until every device is done.
    second = serve(ctx, helloPort, amtTlsPort);
    await listening(second);
    await f.waitFor('all-provisioned', { timeoutMs: 240_000 });
    await jobsDone(ctx);
    second.kill('SIGTERM');
    const [code] = (await once(second, 'exit')) as [number | null];
    return {
      killAtMs,
      finishedBeforeKill,
      killedMidWork: !finishedBeforeKill,
      workStartMs: Math.round(started - spawned),
      startupMs,
      workMs: finishedBeforeKill ? Math.round(doneAt ?? killAtMs) : null,
      effect: `${post} of ${devices} provisioned at the kill, all after the restart`,
      exitCode: code,
      output: '',
    };
  } finally {
    await fleet?.stop();
    for (const c of [first, second])
      if (c !== undefined && c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  }
}

// ---------------------------------------------------------------- invariants

async function checkInvariants(ctx: Ctx, store: Store): Promise<string[]> {
  const v: string[] = [];
  const verify = await store.audit.verify();
  if (!verify.ok) v.push(`audit chain broken at seq ${verify.brokenSeq}: ${verify.reason}`);

  for (const b of ctx.bundles) {
    let n = 0;
    // Counted by the bundle's batch too: a PID generated here may, rarely, equal one of the bundle's
    // (two installations draw PIDs independently); that is a collision, not a half import.
    for (const pid of b.pids) if ((await store.psks.get(pid))?.batch === b.batch) n++;
    if (n !== 0 && n !== b.pids.length)
      v.push(`bundle ${path.basename(b.file)} half-imported: ${n} of ${b.pids.length}`);
  }

  // Audit completeness per batch: every PSK entered with an audit entry listing it.
  const listed = new Map<string, number>();
  for (const action of ['psk.generate', 'psk.import']) {
    for (const e of await store.audit.list({ action, limit: 10_000 })) {
      const batch = String(e.detail.batch ?? '');
      listed.set(batch, (listed.get(batch) ?? 0) + e.pids.length);
    }
  }
  for (const batch of await store.batches.list()) {
    const count = Object.values(await store.psks.countByState({ batch: batch.name })).reduce((a, b) => a + b, 0);
    if (listed.has(batch.name) && listed.get(batch.name) !== count) {
      v.push(`batch ${batch.name}: ${count} PSKs but ${listed.get(batch.name) ?? 0} PIDs in its audit entries`);
    }
  }

  // No PSK in two states.
  for (const file of ctx.csvs.filter((f) => existsSync(f))) {
    const pids = readFileSync(file, 'utf8')
      .split('\n')
      .map((l) => l.split(',')[0]?.replace(/-/g, '').trim() ?? '')
      .filter((p) => /^[0-9A-Z]{8}$/.test(p));
    for (const pid of pids) {
      const row = await store.psks.get(pid as Pid);
      if (row?.state !== 'exported') {
        v.push(`${path.basename(file)} lists ${pid}, which is ${row?.state ?? 'absent'} in the database`);
        break;
      }
    }
  }
  // recoverPendingExports ran after every export round: nothing may be left pending (a pending
  // export with neither its file nor its temp file would be PSKs marked exported that no file holds).
  for (const e of await store.transfers.pendingExports()) v.push(`export ${e.id} still pending: ${e.file}`);
  const jobs = await store.jobs.list({ limit: 10_000 });
  const unfinished = jobs.filter((j) => j.state === 'queued' || j.state === 'running');
  const claimed = new Set<string>(
    unfinished.flatMap((j) => [j.pid, ...(j.data.newPid === undefined ? [] : [String(j.data.newPid)])]),
  );
  const devices = await store.devices.list({ limit: 10_000 });
  const renewal = new Set(devices.map((d) => d.pid).filter((p): p is Pid => p !== null));
  for (const row of await store.psks.list({ state: 'in_use', limit: 10_000 })) {
    if (!claimed.has(row.pid) && !renewal.has(row.pid)) {
      v.push(`PSK ${row.pid} is in_use but no unfinished job holds it and no device has it as its renewal PSK`);
    }
  }
  for (const pid of claimed) {
    const row = await store.psks.get(pid as Pid);
    if (row?.state === 'available' || row?.state === 'exported')
      v.push(`PSK ${pid} is ${row.state} and held by an unfinished job`);
  }

  // No PSK consumed twice.
  const consumed = new Map<string, number>();
  for (const e of await store.audit.list({ action: 'psk.state', limit: 10_000 })) {
    if (e.detail.to !== 'consumed') continue;
    for (const pid of e.pids) consumed.set(pid, (consumed.get(pid) ?? 0) + 1);
  }
  for (const [pid, n] of consumed) if (n > 1) v.push(`PSK ${pid} consumed ${n} times`);

  // Every job ended, with a reason; every device provisioned once.
  if (unfinished.length > 0)
    v.push(`${unfinished.length} jobs unfinished: ${unfinished.map((j) => `${j.id}:${j.state}`).join(' ')}`);
  for (const j of jobs)
    if (j.state === 'failed' && (j.errorCode ?? '') === '') v.push(`job ${j.id} failed without a code`);
  const provisioned = new Map<string, number>();
  for (const e of await store.audit.list({ action: 'device.provisioned', limit: 10_000 })) {
    provisioned.set(String(e.detail.uuid), (provisioned.get(String(e.detail.uuid)) ?? 0) + 1);
  }
  // The simulator derives UUIDs from the device index, so every provisioning round brings the
  // same four devices (factory-fresh) again: each must be provisioned exactly once per round.
  const expected = new Map<string, number>();
  for (const uuid of ctx.devices) expected.set(uuid, (expected.get(uuid) ?? 0) + 1);
  for (const [uuid, rounds] of expected) {
    const n = provisioned.get(uuid) ?? 0;
    if (n !== rounds) v.push(`device ${uuid} provisioned ${n} times in ${rounds} rounds`);
  }
  return v;
}

// ---------------------------------------------------------------- driver

export async function runCrashRounds(options: CrashRunOptions): Promise<CrashRunSummary> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const dir = mkdtempSync(path.join(tmpdir(), 'scs-crash-'));
  const srcDir = path.join(dir, 'other-installation');
  const ctx: Ctx = {
    ...(options.killWindow === undefined ? {} : { window: options.killWindow }),
    dir,
    srcDir,
    db: path.join(dir, 'scs.db'),
    key: path.join(dir, 'master.key'),
    bundles: [],
    csvs: [],
    devices: [],
    calibrated: {},
    log,
  };
  const results: RoundResult[] = [];
  try {
    await withStore(ctx, (s) =>
      s.profiles.update('default', { secrets: { currentMebxPassword: new Secret(MEBX) } }, { actor: 'crash-rounds' }),
    );
    await withStore({ db: path.join(srcDir, 'scs.db'), key: path.join(srcDir, 'master.key') }, () => Promise.resolve());
    for (let round = 1; round <= options.rounds; round++) {
      const kind = KINDS[(round - 1) % KINDS.length] as Kind;
      const plan = killPlan(ctx, kind);
      const started = performance.now();
      const run =
        kind === 'generate'
          ? roundGenerate
          : kind === 'import'
            ? roundImport
            : kind === 'export'
              ? roundExport
              : roundProvision;
      let r: RoundRun;
      try {
        r = await run(ctx, round, plan);
      } catch (e) {
        // The harness itself failed (a server that did not start in time, a device that never
        // finished): recorded as this round's error; the invariants are still checked.
        const message = e instanceof Error ? e.message : String(e);
        r = {
          killAtMs: null,
          startupMs: null,
          finishedBeforeKill: false,
          killedMidWork: false,
          workStartMs: null,
          workMs: null,
          effect: 'round aborted',
          exitCode: -1,
          output: message,
        };
      }
      const error =
        r.exitCode !== null && r.exitCode !== 0
          ? `exited ${r.exitCode}: ${r.output.trim().split('\n').slice(-3).join(' | ')}`
          : null;
      // The calibration round, or any round that ran to its end: its duration times the next kills.
      if (error === null && r.workMs !== null && r.startupMs !== null && (plan === null || r.finishedBeforeKill)) {
        ctx.calibrated[kind] = { workMs: r.workMs, startupMs: r.startupMs };
      }
      const killAtMs = plan === null ? null : r.killAtMs;
      const violations = await withStore(ctx, (s) => checkInvariants(ctx, s));
      const result: RoundResult = {
        round,
        kind,
        killAtMs,
        workStartMs: r.workStartMs,
        finishedBeforeKill: killAtMs !== null && r.finishedBeforeKill,
        killedMidWork: killAtMs !== null && r.killedMidWork,
        effect: r.effect,
        violations,
        error,
        ms: Math.round(performance.now() - started),
      };
      results.push(result);
      const at = killAtMs === null ? `calibration, work ${r.workMs ?? '?'} ms` : `kill at work+${killAtMs} ms`;
      const how = result.killedMidWork ? ' (mid-work)' : result.finishedBeforeKill ? ' (finished first)' : '';
      log(
        `round ${round} ${kind} start ${r.workStartMs ?? '?'} ms, ${at}${how}: ` +
          `${r.effect}; ${violations.length === 0 ? 'invariants hold' : `VIOLATIONS: ${violations.join('; ')}`}` +
          (error === null ? '' : `; ERROR ${error}`),
      );
    }
    const totals = await withStore(ctx, async (s) => ({
      psks: Object.values(await s.psks.countByState()).reduce((a, b) => a + b, 0),
      auditEntries: (await s.audit.verify()).entries,
      jobs: (await s.jobs.list({ limit: 10_000 })).length,
      devicesProvisioned: (await s.devices.list({ limit: 10_000 })).filter((d) => d.state === 'provisioned').length,
    }));
    const byKind = Object.fromEntries(
      KINDS.map((k) => {
        const rs = results.filter((r) => r.kind === k);
        return [
          k,
          {
            rounds: rs.length,
            calibration: rs.filter((r) => r.killAtMs === null).length,
            workMs: ctx.calibrated[k]?.workMs ?? null,
            killedMidWork: rs.filter((r) => r.killedMidWork).length,
            finishedBeforeKill: rs.filter((r) => r.finishedBeforeKill).length,
            violations: rs.reduce((n, r) => n + r.violations.length, 0),
            errors: rs.filter((r) => r.error !== null).length,
          },
        ];
      }),
    ) as CrashRunSummary['byKind'];
    return {
      rounds: results.length,
      byKind,
      violations: results.reduce((n, r) => n + r.violations.length, 0),
      errors: results.filter((r) => r.error !== null).length,
      results,
      totals,
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const arg = (name: string): string | undefined => {
    const i = process.argv.indexOf(`--${name}`);
    return i < 0 ? undefined : process.argv[i + 1];
  };
  const windowMs = arg('kill-window-ms');
  const summary = await runCrashRounds({
    rounds: Number(arg('rounds') ?? 50),
    ...(windowMs === undefined ? {} : { killWindow: { fromMs: 0, toMs: Number(windowMs) } }),
  });
  const text = JSON.stringify(summary, null, 2);
  const out = arg('out');
  if (out !== undefined) await writeFile(out, `${text}\n`);
  console.log(text);
  process.exitCode = summary.violations === 0 && summary.errors === 0 ? 0 : 1;
}
