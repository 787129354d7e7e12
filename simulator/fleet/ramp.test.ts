import assert from 'node:assert/strict';
import { once } from 'node:events';
import net from 'node:net';
import { randomInt } from 'node:crypto';
import { describe, it } from 'node:test';
import { isScsError } from '../../src/errors.ts';
import { generatePid, generatePps } from '../../src/psk/generate.ts';
import { Secret } from '../../src/secret.ts';
import { startFleet } from './fleet.ts';
import { helloRampDelayMs } from './member.ts';

describe('hello ramp (helloSpreadMs)', () => {
  it('spreads first hellos evenly by device index, and not at all without a spread', () => {
    assert.deepEqual(
      [0, 1, 2, 3].map((i) => helloRampDelayMs(i, 4, 60_000)),
      [0, 15_000, 30_000, 45_000],
    );
    assert.equal(helloRampDelayMs(9_999, 10_000, 60_000), 59_994);
    assert.equal(helloRampDelayMs(5, 10, 0), 0);
    assert.equal(helloRampDelayMs(0, 1, 60_000), 0);
  });

  it('rejects a negative or fractional spread', async () => {
    for (const helloSpreadMs of [-1, 1.5]) {
      await assert.rejects(
        startFleet({ devices: 1, psks: [], helloSpreadMs }),
        (e: unknown) => isScsError(e) && e.code === 'SCS_SIM_CONFIG_INVALID' && /helloSpreadMs/.test(e.message),
      );
    }
  });

  it('sends the first hellos in device order, a ramp step apart', async () => {
    // 3 devices over 6 s: hellos at about 0, 2 and 4 s. Without the ramp all three come at once.
    const arrivals: string[] = [];
    const at: number[] = [];
    const scs = net.createServer((s) => {
      arrivals.push(s.remoteAddress ?? '');
      at.push(performance.now());
      s.resume();
      s.on('error', () => undefined);
      s.on('end', () => s.destroy());
    });
    scs.listen(0, '127.0.0.1');
    await once(scs, 'listening');
    const { port } = scs.address() as net.AddressInfo;
    const base = `127.${100 + randomInt(150)}.${randomInt(250)}`;
    const fleet = await startFleet({
      devices: 3,
      psks: Array.from({ length: 3 }, () => ({ pid: generatePid(), pps: new Secret(generatePps()) })),
      scs: `127.0.0.1:${port}`,
      addressBase: `${base}.1`,
      tlsPort: 0,
      httpPort: 0,
      keyPoolSize: 1,
      helloSpreadMs: 6000,
    });
    try {
      for (let i = 0; i < 2000 && arrivals.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
      assert.deepEqual(arrivals.slice(0, 3), [`${base}.1`, `${base}.2`, `${base}.3`]);
      // Nominally 4 s; half of it leaves room for a slow machine firing the first timer late.
      assert.ok(
        (at[2] as number) - (at[0] as number) >= 2000,
        `third hello ${(at[2] as number) - (at[0] as number)} ms after the first`,
      );
    } finally {
      await fleet.stop();
      scs.close();
    }
  });
});
