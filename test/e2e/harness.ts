import { randomInt } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { startFleet, type Fleet, type FleetOptions } from '../../simulator/fleet/fleet.ts';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startServer, type Server } from '../../src/main.ts';
import type { PskPair } from '../../src/psk/formats/pair.ts';
import { generatePid, generatePps } from '../../src/psk/generate.ts';
import type { JobFinished } from '../../src/provisioning/runner.ts';
import { Secret } from '../../src/secret.ts';
import type { Store } from '../../src/store/store.ts';

/**
 * The server (src/main.ts, real store in a temp dir, hello listener on a free port) and a
 * simulated fleet on loopback addresses of its own, for end-to-end tests over real sockets.
 * Log lines are captured, so tests can check that no secret reaches them.
 */

export const MEBX = 'P@ssw0rd';

export interface TestScs {
  readonly server: Server;
  readonly store: Store;
  readonly dir: string;
  readonly logs: string[];
  readonly helloPort: number;
  /** Jobs finished so far, in order. */
  readonly finished: JobFinished[];
  /** Resolves once `n` jobs have finished (in total). */
  waitFinished(n: number, timeoutMs?: number): Promise<JobFinished[]>;
  stop(): Promise<void>;
}

export interface TestScsOptions {
  /** The TLS port devices listen on (same for every device address). */
  readonly amtTlsPort: number;
  readonly config?: Partial<Record<keyof Config, string | number>>;
  /** Default-profile settings to apply (validated by the store). */
  readonly profile?: Readonly<Record<string, unknown>>;
  /** currentMebxPassword of the default profile; default the fleet's P@ssw0rd; null: none. */
  readonly mebx?: string | null;
  readonly dir?: string;
}

/** A loopback /24 of its own per fleet: 127.<100..249>.<0..249>.1, away from the simulator's default 127.10. */
export function randomAddressBase(): string {
  return `127.${100 + randomInt(150)}.${randomInt(250)}.1`;
}

/** A port in 20000..59999 for the devices' TLS or HTTP listener (each device has its own address). */
export function randomPort(): number {
  return 20_000 + randomInt(40_000);
}

export async function startTestScs(options: TestScsOptions): Promise<TestScs> {
  const dir = options.dir ?? mkdtempSync(path.join(tmpdir(), 'scs-e2e-'));
  const config = loadConfig({
    flags: {
      dataDir: dir,
      helloHost: '127.0.0.1',
      helloPort: 0,
      amtTlsPort: options.amtTlsPort,
      logLevel: 'debug',
      connectTimeoutMs: 5000,
      callTimeoutMs: 10_000,
      ...options.config,
    },
    env: {},
  });
  const logs: string[] = [];
  const log = createLogger(config.logLevel, { write: (line: string) => void logs.push(line) });
  const server = await startServer(config, {
    log,
    actor: 'scs:e2e',
    runner: { backoff: { baseMs: 20, maxMs: 200 }, verifyRetries: 6 },
  });
  const mebx = options.mebx === undefined ? MEBX : options.mebx;
  await server.store.profiles.update(
    'default',
    {
      ...(options.profile === undefined ? {} : { settings: options.profile }),
      ...(mebx === null ? {} : { secrets: { currentMebxPassword: new Secret(mebx) } }),
    },
    { actor: 'e2e' },
  );
  const finished: JobFinished[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  server.runner.on('finished', (f) => {
    finished.push(f);
    for (const w of waiters.filter((x) => finished.length >= x.n)) {
      waiters.splice(waiters.indexOf(w), 1);
      w.resolve();
    }
  });
  return {
    server,
    store: server.store,
    dir,
    logs,
    helloPort: server.helloAddress.port,
    finished,
    async waitFinished(n, timeoutMs = 60_000) {
      if (finished.length < n) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => waiters.push({ n, resolve })),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`only ${finished.length} of ${n} jobs finished within ${timeoutMs} ms`)),
              timeoutMs,
            );
          }),
        ]);
        clearTimeout(timer);
      }
      return finished.slice(0, n);
    },
    async stop() {
      await server.stop({ graceMs: 0 });
      if (options.dir === undefined) rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Inserts `n` fresh PSKs into `batch` (state exported: handed to devices) and returns them. */
export async function addPsks(
  store: Store,
  n: number,
  batch: string,
  state: 'exported' | 'available' = 'exported',
): Promise<PskPair[]> {
  const pairs = Array.from({ length: n }, () => ({ pid: generatePid(), pps: new Secret(generatePps()) }));
  await store.psks.insertMany(
    pairs.map((p) => ({ ...p, batch, state })),
    { actor: 'e2e', source: 'generate' },
  );
  return pairs;
}

/** A fleet of simulated devices saying hello to the test server. */
export function fleetFor(
  scs: TestScs,
  psks: readonly PskPair[],
  amtTlsPort: number,
  options: Partial<FleetOptions> = {},
): Promise<Fleet> {
  return startFleet({
    devices: psks.length,
    psks,
    scs: `127.0.0.1:${scs.helloPort}`,
    tlsPort: amtTlsPort,
    httpPort: amtTlsPort + 1,
    addressBase: randomAddressBase(),
    workers: 'inline',
    keyPoolSize: 4,
    mebxPassword: MEBX,
    // The first hello goes at once; later ones (12 s apart at factor 1) only if a test waits.
    timeFactor: 1,
    ...options,
  });
}

/** Every secret a test handed out or the store holds for these PSKs, to scan logs with. */
export function secretsOf(psks: readonly PskPair[], extra: readonly string[] = []): string[] {
  return [...psks.map((p) => p.pps.reveal()), ...extra];
}

/** Log lines that contain any of `secrets`. */
export function leaks(logs: readonly string[], secrets: readonly string[]): string[] {
  return logs.filter((line) => secrets.some((s) => s.length > 0 && line.includes(s)));
}
