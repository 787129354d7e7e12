import { isScsError } from '../../src/errors.ts';
import { DeviceHost } from './host.ts';
import type { FromWorker, ToWorker } from './worker-protocol.ts';

/**
 * Entry point of a fleet worker process (child_process.fork from simulator/fleet/shard.ts).
 * File descriptors are per process, so a large fleet runs its devices in several of these; each
 * runs a DeviceHost and reports device changes to the parent, which aggregates them. A worker
 * whose parent goes away stops its devices and exits: no orphaned listeners.
 */
let host: DeviceHost | undefined;
let stopping = false;

function send(msg: FromWorker): void {
  if (process.connected) process.send?.(msg);
}

async function shutdown(): Promise<void> {
  if (stopping) return;
  stopping = true;
  await host?.stop();
  send({ type: 'stopped' });
  if (process.connected) process.disconnect();
}

function fail(e: unknown): void {
  const code = isScsError(e) ? e.code : 'SCS_SIM_WORKER_FAILED';
  const message = e instanceof Error ? e.message : String(e);
  send({ type: 'failed', code, message });
  void shutdown().finally(() => {
    process.exitCode = 1;
  });
}

process.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'start': {
      if (host !== undefined) return;
      try {
        host = new DeviceHost(msg.plans, { ...msg.env, keyPool: msg.keyPool, flushIntervalMs: 100 });
      } catch (e) {
        fail(e);
        return;
      }
      const h = host;
      h.on('changes', (records) => send({ type: 'changes', records }));
      h.start().then((records) => send({ type: 'started', records }), fail);
      break;
    }
    case 'reboot':
      host?.member(msg.index)?.device.reboot();
      break;
    case 'stop':
      void shutdown();
      break;
  }
});

process.on('disconnect', () => void shutdown());
