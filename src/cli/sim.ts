import type { Command } from 'commander';
import { isScsError, ScsError } from '../errors.ts';
import {
  DEFAULT_MAX_DEVICES_PER_WORKER,
  DEFAULT_SEED,
  startFleet,
  type Fleet,
  type FleetCounts,
  type FleetOptions,
  type FleetSummary,
} from '../../simulator/fleet/fleet.ts';
import { DEFAULT_ADDRESS_BASE } from '../../simulator/fleet/identity.ts';
import { DEFAULT_KEY_POOL_SIZE } from '../../simulator/fleet/key-pool.ts';
import { DEFAULT_FLEET_MEBX_PASSWORD } from '../../simulator/fleet/plan.ts';
import type { Io } from './io.ts';

interface SimFlags {
  devices: string;
  scs: string;
  pskFile?: string;
  seed: string;
  latency?: string;
  faults?: string;
  mebxPassword: string;
  timeFactor: string;
  windowHours: string;
  stateFile?: string;
  deadline?: string;
  amtVersion?: string;
  tlsPort: string;
  httpPort: string;
  domain?: string;
  addressBase: string;
  perWorker: string;
  keyPool: string;
  progressEvery: string;
  json?: boolean;
}

function num(flag: string, text: string, min: number, max: number, integer = true): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || (integer && !Number.isInteger(n)) || n < min || n > max) {
    throw new ScsError(
      'SCS_SIM_CONFIG_INVALID',
      `${flag} must be ${integer ? 'a whole number' : 'a number'} ${min}..${max}, got "${text}"`,
    );
  }
  return n;
}

export function formatCounts(c: FleetCounts, elapsedMs: number): string {
  return (
    `sim: ${c.devices} devices | Post ${c.post} | In ${c.in} (sending ${c.sending}, window closed ${c.windowClosed})` +
    ` | Pre ${c.pre} | with error ${c.withError} | hellos ${c.hellos} | ${(elapsedMs / 1000).toFixed(1)} s`
  );
}

function summaryLines(s: FleetSummary): string[] {
  const lines = [
    `${s.allProvisioned ? 'all' : `${s.provisioned} of`} ${s.devices} devices provisioned in ${(s.elapsedMs / 1000).toFixed(1)} s` +
      (s.workers > 0 ? ` (${s.workers} worker processes)` : ''),
    formatCounts(s.counts, s.elapsedMs),
  ];
  if (s.provisionMs !== null) {
    const p = s.provisionMs;
    lines.push(`time to Post: min ${p.min} ms, median ${p.median} ms, p95 ${p.p95} ms, max ${p.max} ms`);
  }
  for (const d of s.notProvisioned.slice(0, 20)) {
    lines.push(
      `not provisioned: #${d.index} ${d.address} ${d.uuid} PID ${d.pid ?? '-'} ${d.state}, hello ${d.hello} (${d.hellos} sent` +
        `${d.lastHelloError === null ? '' : `, last ${d.lastHelloError}`})` +
        `${d.lastError === null ? '' : `, ${d.lastError}`}${d.faults.length > 0 ? `, faults ${d.faults.join(' ')}` : ''}`,
    );
  }
  if (s.notProvisioned.length > 20) lines.push(`... and more: see ${s.stateFile ?? 'the state file (--state-file)'}`);
  return lines;
}

/**
 * Live counts on stderr: one line rewritten in place on a terminal, a plain line every
 * `everyMs` otherwise (logs stay readable).
 */
function startProgress(io: Io, fleet: Fleet, everyMs: number): () => void {
  const started = Date.now();
  let printed = false;
  const draw = (): void => {
    const line = formatCounts(fleet.counts(), Date.now() - started);
    // Move up over the previous line and clear it: Io is line-based.
    io.err(io.isTty && printed ? `\x1b[1A\x1b[2K${line}` : line);
    printed = true;
  };
  draw();
  const timer = setInterval(draw, io.isTty ? 250 : everyMs);
  return () => {
    clearInterval(timer);
    draw();
  };
}

export function registerSimCommands(program: Command, io: Io): void {
  program
    .command('sim')
    .description('run a fleet of simulated AMT devices that say hello to an SCS and wait to be configured')
    .requiredOption('--devices <n>', 'number of devices')
    .option('--scs <host:port>', 'SCS hello listener the devices send hellos to', '127.0.0.1:9971')
    .option('--psk-file <file>', 'PID,PPS CSV (as `psk export` writes it); device i gets line i')
    .option('--seed <s>', 'makes UUIDs, digest realms and fault choices repeatable', DEFAULT_SEED)
    .option('--latency <ms>', 'delay before every HTTP reply of every device')
    .option('--faults <spec>', 'fault injection, e.g. "drop@3:5%;wrong-psk:1%" (docs/simulator-fleet.md)')
    .option(
      '--mebx-password <p>',
      'MEBx password of every device (the admin Digest password in setup mode)',
      DEFAULT_FLEET_MEBX_PASSWORD,
    )
    .option('--time-factor <f>', 'multiplies hello delays and the setup window (0.01 = 100x faster)', '1')
    .option('--window-hours <h>', 'setup window during which devices send hellos (before --time-factor)', '6')
    .option('--state-file <file>', 'JSON file kept up to date with every device (address, ports, UUID, PID, state)')
    .option('--deadline <s>', 'give up after this many seconds: exit 1 unless every device is configured')
    .option('--amt-version <v>', 'AMT version the devices report (default 6.2.0)')
    .option('--tls-port <p>', 'TLS(-PSK) port of every device', '16993')
    .option('--http-port <p>', 'plain HTTP port of every device', '16992')
    .option('--domain <name>', 'domain name the devices start with (default none)')
    .option(
      '--address-base <ip>',
      'address of the first device; the others count up in 127.0.0.0/8',
      DEFAULT_ADDRESS_BASE,
    )
    .option('--per-worker <n>', 'devices per worker process for large fleets', String(DEFAULT_MAX_DEVICES_PER_WORKER))
    .option(
      '--key-pool <n>',
      'RSA-2048 key pairs made up front and shared by the devices (0: each makes its own)',
      String(DEFAULT_KEY_POOL_SIZE),
    )
    .option('--progress-every <s>', 'seconds between progress lines when stderr is not a terminal', '10')
    .option('--json', 'print the final summary as JSON')
    .action(async (flags: SimFlags) => {
      const options: FleetOptions = {
        devices: num('--devices', flags.devices, 1, 1_000_000),
        scs: flags.scs,
        seed: flags.seed,
        mebxPassword: flags.mebxPassword,
        timeFactor: num('--time-factor', flags.timeFactor, 0, 1000, false),
        windowMs: num('--window-hours', flags.windowHours, 0, 24 * 365, false) * 3_600_000,
        tlsPort: num('--tls-port', flags.tlsPort, 0, 65535),
        httpPort: num('--http-port', flags.httpPort, 0, 65535),
        addressBase: flags.addressBase,
        maxDevicesPerWorker: num('--per-worker', flags.perWorker, 1, 100_000),
        keyPoolSize: num('--key-pool', flags.keyPool, 0, 4096),
        ...(flags.pskFile === undefined ? {} : { pskFile: flags.pskFile }),
        ...(flags.latency === undefined ? {} : { latencyMs: num('--latency', flags.latency, 0, 600_000) }),
        ...(flags.faults === undefined ? {} : { faults: flags.faults }),
        ...(flags.stateFile === undefined ? {} : { stateFile: flags.stateFile }),
        ...(flags.amtVersion === undefined ? {} : { amtVersion: flags.amtVersion }),
        ...(flags.domain === undefined ? {} : { domainName: flags.domain }),
      };
      if (flags.pskFile === undefined) {
        throw new ScsError(
          'SCS_SIM_CONFIG_INVALID',
          '--psk-file is required: the devices need the PID/PPS pairs the SCS holds',
        );
      }
      const deadlineMs =
        flags.deadline === undefined ? undefined : num('--deadline', flags.deadline, 0, 31_536_000, false) * 1000;
      const progressMs = num('--progress-every', flags.progressEvery, 0.1, 86_400, false) * 1000;

      const fleet = await startFleet(options);
      io.err(
        `sim: ${fleet.devices.length} devices listening from ${fleet.devices[0]?.address ?? '-'} to ` +
          `${fleet.devices.at(-1)?.address ?? '-'}` +
          (fleet.workers > 0 ? ` in ${fleet.workers} worker processes` : '') +
          `, hellos to ${flags.scs}`,
      );
      const stopProgress = startProgress(io, fleet, progressMs);
      const abort = new AbortController();
      const onSignal = (): void => abort.abort(new Error('interrupted'));
      process.once('SIGINT', onSignal);
      process.once('SIGTERM', onSignal);
      let exitCode = 0;
      try {
        await fleet.waitFor('all-provisioned', {
          signal: abort.signal,
          ...(deadlineMs === undefined ? {} : { timeoutMs: deadlineMs }),
        });
      } catch (e) {
        if (isScsError(e, 'SCS_SIM_DEADLINE')) {
          exitCode = 1;
          io.err(`sim: deadline of ${flags.deadline ?? ''} s passed: ${e.message}`);
        } else if (abort.signal.aborted) {
          exitCode = 130;
          io.err('sim: interrupted');
        } else if (isScsError(e)) {
          exitCode = 1;
          io.err(`error ${e.code}: ${e.message}`);
        } else {
          throw e;
        }
      } finally {
        process.off('SIGINT', onSignal);
        process.off('SIGTERM', onSignal);
        stopProgress();
        await fleet.stop();
      }
      const summary = fleet.summary();
      if (flags.json === true) io.out(JSON.stringify(summary, null, 2));
      else for (const line of summaryLines(summary)) io.out(line);
      io.setExitCode(exitCode);
    });
}
