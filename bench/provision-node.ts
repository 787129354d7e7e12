/**
 * One amt-scs node for bench/provision-nodes.ts, forked with IPC: `serve` as src/main.ts
 * composes it, plus two counters the parent asks for ({ type: 'report' }): this process's CPU
 * and the database round trips it made (every pg Client.query call is one; SQLite has none, it
 * runs in-process, so its count stays null). Argument: one JSON object (NodeArgs).
 */
import pg from 'pg';
import { loadConfig, type LogLevel } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { startServer } from '../src/main.ts';

export interface NodeArgs {
  readonly db: string;
  readonly dataDir: string;
  readonly masterKeyFile: string;
  readonly amtTlsPort: number;
  readonly nodeId: string;
  readonly maxJobs: number;
  readonly logLevel: LogLevel;
}

export interface NodeReport {
  readonly type: 'report';
  readonly cpuMs: number;
  readonly queries: number | null;
  readonly succeeded: number;
  readonly failed: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as NodeArgs;
let queries = 0;
// Every pg round trip is one Client.query call (kysely's driver included): counted here, in the bench only.
const proto = pg.Client.prototype as unknown as { query: (this: unknown, ...a: unknown[]) => unknown };
const original = proto.query;
proto.query = function (this: unknown, ...a: unknown[]): unknown {
  queries++;
  return original.apply(this, a);
};
const config = loadConfig({
  flags: {
    db: args.db,
    dataDir: args.dataDir,
    masterKeyFile: args.masterKeyFile,
    helloHost: '127.0.0.1',
    helloPort: 0,
    amtTlsPort: args.amtTlsPort,
    maxJobs: args.maxJobs,
    logLevel: args.logLevel,
  },
  env: {},
});
const server = await startServer(config, {
  log: createLogger(config.logLevel),
  actor: `bench:${args.nodeId}`,
  runner: { nodeId: args.nodeId },
});
let succeeded = 0;
let failed = 0;
server.runner.on('finished', (f) => {
  if (f.state === 'succeeded') succeeded++;
  else failed++;
});
process.on('message', (m: { type?: string }) => {
  if (m.type === 'report') {
    const cpu = process.cpuUsage();
    const report: NodeReport = {
      type: 'report',
      cpuMs: (cpu.user + cpu.system) / 1000,
      queries: args.db.startsWith('postgres') ? queries : null,
      succeeded,
      failed,
    };
    process.send?.(report);
  } else if (m.type === 'stop') {
    void server.stop({ graceMs: 0 }).then(() => process.exit(0));
  }
});
process.send?.({ type: 'listening', port: server.helloAddress.port });
