import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { loadConfig } from '../config.ts';
import { createHelloListener, DEFAULT_HELLO_BACKLOG } from './listener.ts';

/** The backlog the kernel holds for a listening socket: `ss -ltn` shows it as Send-Q. */
function kernelBacklog(port: number): number | undefined {
  const out = execFileSync('ss', ['-ltnH', `sport = :${port}`], { encoding: 'utf8' });
  const fields = out.trim().split(/\s+/);
  return fields.length >= 3 ? Number(fields[2]) : undefined;
}

function haveSs(): boolean {
  try {
    execFileSync('ss', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

const somaxconn = (): number => {
  try {
    return Number(execFileSync('cat', ['/proc/sys/net/core/somaxconn'], { encoding: 'utf8' }).trim());
  } catch {
    return Number.POSITIVE_INFINITY;
  }
};

describe('hello listener backlog', { skip: haveSs() ? false : 'ss (iproute2) is not installed' }, () => {
  it('listens with the configured backlog, not Node’s 511, so a stalled server queues hellos instead of dropping them', async () => {
    for (const backlog of [undefined, 1500]) {
      const listener = createHelloListener({
        host: '127.0.0.1',
        port: 0,
        maxConnections: 100,
        timeoutMs: 1000,
        ...(backlog === undefined ? {} : { backlog }),
        onHello: () => undefined,
      });
      const { port } = await listener.listen();
      try {
        const want = Math.min(backlog ?? DEFAULT_HELLO_BACKLOG, somaxconn());
        assert.equal(kernelBacklog(port), want);
      } finally {
        await listener.close();
      }
    }
  });

  it('defaults the helloBacklog setting to 4096 and takes --hello-backlog', () => {
    assert.equal(loadConfig({ env: {} }).helloBacklog, 4096);
    assert.equal(loadConfig({ env: {}, flags: { helloBacklog: 20_000 } }).helloBacklog, 20_000);
    assert.equal(loadConfig({ env: { SCS_HELLO_BACKLOG: '8192' } }).helloBacklog, 8192);
  });
});
