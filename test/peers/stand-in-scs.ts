import { once } from 'node:events';
import net from 'node:net';
import { AMT } from '@device-management-toolkit/wsman-messages';
import { replyBody, TestWsmanClient } from './wsman-client.ts';

/**
 * The least an SCS must do, for fleet tests that should not depend on the real server: hear a
 * hello (protocol.md §1a: PID at offset 24), connect back to the hello's source address over
 * TLS-PSK with that PID's PPS, authenticate as admin with the MEBx password and send
 * CommitChanges. It keeps counts so tests can assert on them.
 */
export interface StandInScsOptions {
  /** PID -> PPS of the PSKs this SCS holds. */
  psks: ReadonlyMap<string, string>;
  /** The device's TLS port for a hello from `address` (fleets on port 0 give each device its own). */
  tlsPortOf: (address: string) => number | undefined;
  password: string;
  /** Devices configured at once; a hello beyond this is ignored (the device says hello again on schedule). Default 64. */
  maxConcurrent?: number;
}

export interface StandInScs {
  port: number;
  hellos: number;
  /** Hellos per source address. */
  from: Map<string, number>;
  /** PIDs configured (CommitChanges answered ReturnValue 0). */
  committed: Set<string>;
  /** PID -> last failure text. */
  failures: Map<string, string>;
  close(): Promise<void>;
}

export async function startStandInScs(opts: StandInScsOptions): Promise<StandInScs> {
  const busy = new Set<string>();
  const sockets = new Set<net.Socket>();
  const clients = new Set<TestWsmanClient>();
  const amt = new AMT.Messages();
  const state: Omit<StandInScs, 'port' | 'close'> = {
    hellos: 0,
    from: new Map(),
    committed: new Set(),
    failures: new Map(),
  };

  const configure = async (pid: string, address: string): Promise<void> => {
    const pps = opts.psks.get(pid);
    const port = opts.tlsPortOf(address);
    if (pps === undefined || port === undefined || busy.has(pid) || state.committed.has(pid)) return;
    if (busy.size >= (opts.maxConcurrent ?? 64)) return;
    busy.add(pid);
    const client = new TestWsmanClient({
      host: address,
      port,
      user: 'admin',
      password: opts.password,
      psk: { pid, pps },
    });
    clients.add(client);
    try {
      const reply = await client.post(amt.SetupAndConfigurationService.CommitChanges());
      const out = replyBody(reply.body).CommitChanges_OUTPUT as { ReturnValue?: string } | undefined;
      if (reply.status === 200 && out?.ReturnValue === '0') state.committed.add(pid);
      else state.failures.set(pid, `HTTP ${reply.status} ReturnValue ${out?.ReturnValue ?? '-'}`);
    } catch (e) {
      state.failures.set(pid, e instanceof Error ? e.message : String(e));
    } finally {
      busy.delete(pid);
      client.close();
      clients.delete(client);
    }
  };

  const server = net.createServer((socket) => {
    sockets.add(socket);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', () => undefined);
    socket.on('close', () => sockets.delete(socket));
    socket.on('end', () => {
      socket.end();
      const hello = Buffer.concat(chunks);
      const address = socket.remoteAddress ?? '';
      state.hellos++;
      state.from.set(address, (state.from.get(address) ?? 0) + 1);
      if (hello.length !== 32 || hello.readUInt16LE(2) !== 2) return;
      void configure(hello.subarray(24, 32).toString('latin1'), address);
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as net.AddressInfo).port;
  const result = state as StandInScs;
  result.port = port;
  result.close = async () => {
    for (const s of sockets) s.destroy();
    for (const c of clients) c.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return result;
}
