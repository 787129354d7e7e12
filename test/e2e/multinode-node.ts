/**
 * One amt-scs node for the multi-node test (multinode.test.ts), run as a child process so it can
 * be killed with SIGKILL. It is `serve` with the runner's lease timing shortened (3 s leases) so
 * a dead node's jobs move within seconds. Arguments: one JSON object (NodeArgs).
 */
import { loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { startServer } from '../../src/main.ts';

export interface NodeArgs {
  readonly db: string;
  readonly dataDir: string;
  readonly masterKeyFile: string;
  readonly amtTlsPort: number;
  readonly nodeId: string;
  readonly maxJobs: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as NodeArgs;
const config = loadConfig({
  flags: {
    db: args.db,
    dataDir: args.dataDir,
    masterKeyFile: args.masterKeyFile,
    helloHost: '127.0.0.1',
    helloPort: 0,
    amtTlsPort: args.amtTlsPort,
    maxJobs: args.maxJobs,
    connectTimeoutMs: 5000,
    callTimeoutMs: 10_000,
    logLevel: 'info',
  },
  env: {},
});
const log = createLogger(config.logLevel, { write: (line: string) => void process.stdout.write(line) });
const server = await startServer(config, {
  log,
  actor: `scs:${args.nodeId}`,
  runner: {
    nodeId: args.nodeId,
    backoff: { baseMs: 20, maxMs: 200 },
    verifyRetries: 6,
    lease: { ttlMs: 3000, heartbeatMs: 1000, pollMs: 500 },
  },
});
process.stdout.write(`multinode: ${args.nodeId} listening ${server.helloAddress.port} resumed ${server.resumed}\n`);
process.on('SIGTERM', () => {
  void server.stop({ graceMs: 2000 }).then(() => process.exit(0));
});
