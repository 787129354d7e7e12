import { randomInt } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { startFleet, type Fleet } from '../../simulator/fleet/fleet.ts';
import { DEFAULT_FLEET_MEBX_PASSWORD } from '../../simulator/fleet/plan.ts';
import { loadConfig, SETTINGS, type Config } from '../config.ts';
import { ScsError } from '../errors.ts';
import { createLogger } from '../log.ts';
import { startServer, type Server } from '../main.ts';
import { generatePid, generatePps } from '../psk/generate.ts';
import type { JobFinished } from '../provisioning/runner.ts';
import { Secret } from '../secret.ts';
import { runPkiDemo } from './demo-pki.ts';
import { summarize, summaryTable, type DemoSummary, type DeviceOutcome } from './demo-summary.ts';
import type { Io } from './io.ts';

interface DemoFlags {
  devices: string;
  faults?: string;
  deadline?: string;
  keep?: boolean;
  json?: boolean;
  mode: string;
}

function count(text: string, flag: string, min: number, max: number): number {
  const n = /^\s*\d+\s*$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ScsError('SCS_ARGUMENT_INVALID', `${flag} must be a whole number ${min}..${max}, got "${text}"`);
  }
  return n;
}

/** The settings the demo forces: its own data directory, loopback, free ports; the rest from flags/env. */
export function demoConfig(command: Command, dir: string, amtTlsPort: number): Config {
  const opts = command.optsWithGlobals<Record<string, string | undefined>>();
  const flags: Partial<Record<keyof Config, string | number>> = {};
  for (const s of SETTINGS) {
    const v = opts[s.key];
    if (v !== undefined) flags[s.key] = v;
  }
  return loadConfig({
    flags: {
      ...flags,
      dataDir: dir,
      db: `sqlite:${path.join(dir, 'scs.db')}`,
      masterKeyFile: path.join(dir, 'master.key'),
      helloHost: '127.0.0.1',
      helloPort: 0,
      amtTlsPort,
    },
    file: opts.config,
  });
}

/**
 * `amt-scs demo [--devices N]`: the whole mission on one machine. A server on a temporary data
 * directory (free ports, loopback), N PSKs generated (and N more for renewal), a simulated
 * fleet holding them saying hello to it; a progress bar while they provision, then a table.
 * Exit 0 only if every device was provisioned and verified.
 */
export function registerDemoCommands(program: Command, io: Io): void {
  program
    .command('demo')
    .description('provision a simulated fleet end to end on a temporary data directory')
    .option('--devices <n>', 'simulated devices (1..2000)', '25')
    .option('--faults <spec>', 'simulator fault injection (docs/simulator-fleet.md), e.g. "drop@5:20%;latency=50"')
    .option('--deadline <s>', 'seconds to wait for every device (default 60 + N/10)')
    .option('--keep', 'keep the temporary data directory (database, master key, server log)')
    .option('--json', 'the summary as JSON on stdout')
    .option(
      '--mode <mode>',
      'psk (PID/PPS hellos) or pki (certificate-based setup, version 3 hellos; docs/pki.md)',
      'psk',
    )
    .action(async (flags: DemoFlags, command: Command) => {
      if (flags.mode !== 'psk' && flags.mode !== 'pki') {
        throw new ScsError('SCS_ARGUMENT_INVALID', `--mode must be psk or pki, got "${flags.mode}"`);
      }
      const devices = count(flags.devices, '--devices', 1, flags.mode === 'pki' ? 500 : 2000);
      const deadlineS =
        flags.deadline === undefined ? 60 + Math.ceil(devices / 10) : count(flags.deadline, '--deadline', 1, 86_400);
      const run = flags.mode === 'pki' ? runPkiDemo : runDemo;
      const summary = await run(command, io, {
        devices,
        deadlineS,
        faults: flags.faults ?? '',
        keep: flags.keep === true,
      });
      if (flags.json) io.out(JSON.stringify(summary, null, 2));
      else for (const line of summaryTable(summary)) io.out(line);
      io.setExitCode(summary.provisioned === summary.devices ? 0 : 1);
    });
}

async function runDemo(
  command: Command,
  io: Io,
  o: { devices: number; deadlineS: number; faults: string; keep: boolean },
): Promise<DemoSummary> {
  const dir = mkdtempSync(path.join(tmpdir(), 'amt-scs-demo-'));
  // Devices listen on loopback addresses of their own (127.<x>.<y>.z), so any port will do.
  const amtTlsPort = 20_000 + randomInt(40_000);
  const addressBase = `127.${100 + randomInt(150)}.${randomInt(250)}.1`;
  const config = demoConfig(command, dir, amtTlsPort);
  const logFile = createWriteStream(path.join(dir, 'scs.log'));
  const log = createLogger(
    config.logLevel === 'debug' || config.logLevel === 'trace' ? config.logLevel : 'info',
    logFile,
  );
  let server: Server | undefined;
  let fleet: Fleet | undefined;
  let bar: cliProgress.SingleBar | undefined;
  let ticker: NodeJS.Timeout | undefined;
  const started = Date.now();
  try {
    io.err(`demo: data directory ${dir} (server log: scs.log)`);
    server = await startServer(config, { log, actor: 'scs:demo' });
    const store = server.store;
    await store.profiles.update(
      config.profile,
      {
        settings: { domainName: 'demo.example' },
        secrets: { currentMebxPassword: new Secret(DEFAULT_FLEET_MEBX_PASSWORD) },
      },
      { actor: 'cli:demo' },
    );
    // N for the devices (exported: handed out), N available for the renewal each device gets.
    const pairs = Array.from({ length: o.devices * 2 }, () => ({ pid: generatePid(), pps: new Secret(generatePps()) }));
    await store.psks.insertMany(
      pairs.map((p, i) => ({
        ...p,
        batch: 'demo',
        state: i < o.devices ? ('exported' as const) : ('available' as const),
      })),
      { actor: 'cli:demo', source: 'generate' },
    );
    const finishedByUuid = new Map<string, JobFinished[]>();
    let provisioned = 0;
    server.runner.on('finished', (f) => {
      const list = finishedByUuid.get(f.job.deviceUuid) ?? [];
      list.push(f);
      finishedByUuid.set(f.job.deviceUuid, list);
      if (f.state === 'succeeded') provisioned++;
      bar?.update(provisioned);
    });
    io.err(
      `demo: server listening for hellos on 127.0.0.1:${server.helloAddress.port}; starting ${o.devices} simulated devices`,
    );
    fleet = await startFleet({
      devices: o.devices,
      psks: pairs.slice(0, o.devices),
      scs: `127.0.0.1:${server.helloAddress.port}`,
      tlsPort: amtTlsPort,
      httpPort: amtTlsPort + 1,
      addressBase,
      faults: o.faults,
      mebxPassword: DEFAULT_FLEET_MEBX_PASSWORD,
      // Hellos repeat every 0.6 s instead of 12 s, so a device whose job failed comes back soon.
      timeFactor: 0.05,
    });
    if (io.isTty) {
      bar = new cliProgress.SingleBar(
        { stream: process.stderr, format: 'demo [{bar}] {value}/{total} provisioned | {duration}s' },
        cliProgress.Presets.shades_classic,
      );
      bar.start(o.devices, provisioned);
    } else {
      ticker = setInterval(
        () => io.err(`demo: ${provisioned}/${o.devices} provisioned, ${Math.round((Date.now() - started) / 1000)} s`),
        2000,
      );
    }
    const f = fleet;
    const allDone = (): boolean =>
      provisioned >= o.devices || (f.devices.every((d) => d.state === 'Post') && server?.runner.stats().running === 0);
    const deadline = Date.now() + o.deadlineS * 1000;
    while (!allDone() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    bar?.update(provisioned);
    bar?.stop();
    bar = undefined;
    const outcomes: DeviceOutcome[] = f.devices.map((d) => {
      const jobs = finishedByUuid.get(d.uuid) ?? [];
      const ok = jobs.find((j) => j.state === 'succeeded');
      const last = jobs.at(-1);
      return {
        index: d.index,
        uuid: d.uuid,
        address: d.address,
        state: ok !== undefined ? 'provisioned' : last !== undefined ? 'failed' : 'pending',
        ms: ok === undefined ? null : Math.round(ok.ms),
        jobs: jobs.length,
        code: ok === undefined ? (last?.code ?? null) : null,
        message: ok === undefined ? (last?.job.errorMessage ?? null) : null,
      };
    });
    return summarize(outcomes, Date.now() - started, o.keep ? dir : null);
  } finally {
    bar?.stop();
    if (ticker !== undefined) clearInterval(ticker);
    await fleet?.stop();
    await server?.stop({ graceMs: 0 });
    await new Promise<void>((resolve) => logFile.end(() => resolve()));
    if (!o.keep) rmSync(dir, { recursive: true, force: true });
  }
}
