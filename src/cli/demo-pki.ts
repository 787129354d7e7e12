import { createHash, randomInt } from 'node:crypto';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Command } from 'commander';
import { SimDevice } from '../../simulator/device/device.ts';
import { HelloSender } from '../../simulator/hello/sender.ts';
import { ScsError } from '../errors.ts';
import { createLogger } from '../log.ts';
import { startServer, type Server } from '../main.ts';
import { generateProvisioningChain } from '../pki/generate-chain.ts';
import type { PkiFinished } from '../pki/provisioner.ts';
import { storeChain } from '../pki/service.ts';
import { Secret } from '../secret.ts';
import { demoConfig } from './demo.ts';
import { summarize, type DemoSummary, type DeviceOutcome } from './demo-summary.ts';
import type { Io } from './io.ts';

const DEMO_DOMAIN = 'demo.example';
const DEMO_MEBX = 'P@ssw0rd';

interface PkiDemoDevice {
  readonly index: number;
  readonly device: SimDevice;
  readonly sender: HelloSender;
  readonly address: string;
}

/**
 * `amt-scs demo --mode pki`: certificate-based setup end to end (docs/pki.md). A provisioning
 * chain is generated on the fly (root, intermediate, leaf for provisioning.demo.example) and
 * imported; N simulated AMT 11 devices in PKI setup mode trust its root (a user-added hash next
 * to Intel's defaults), send version 3 hellos, and the server provisions each one into admin
 * control mode. Exit 0 only if every device is verified.
 */
export async function runPkiDemo(
  command: Command,
  io: Io,
  o: { devices: number; deadlineS: number; faults: string; keep: boolean },
): Promise<DemoSummary> {
  if (o.faults !== '') throw new ScsError('SCS_ARGUMENT_INVALID', '--faults is for --mode psk (the fleet simulator)');
  const dir = mkdtempSync(path.join(tmpdir(), 'amt-scs-demo-pki-'));
  const amtTlsPort = 20_000 + randomInt(40_000);
  const prefix = `127.${100 + randomInt(150)}.${randomInt(250)}`;
  const config = demoConfig(command, dir, amtTlsPort);
  const logFile = createWriteStream(path.join(dir, 'scs.log'));
  const log = createLogger(
    config.logLevel === 'debug' || config.logLevel === 'trace' ? config.logLevel : 'info',
    logFile,
  );
  let server: Server | undefined;
  const devices: PkiDemoDevice[] = [];
  const started = Date.now();
  let ticker: NodeJS.Timeout | undefined;
  try {
    io.err(`demo: data directory ${dir} (server log: scs.log)`);
    server = await startServer(config, { log, actor: 'scs:demo' });
    const store = server.store;
    await store.profiles.update(
      config.profile,
      { settings: { domainName: DEMO_DOMAIN }, secrets: { currentMebxPassword: new Secret(DEMO_MEBX) } },
      { actor: 'cli:demo' },
    );
    const chain = await generateProvisioningChain({ dnsSuffix: DEMO_DOMAIN });
    const row = await storeChain(store, chain, { dnsSuffix: DEMO_DOMAIN, actor: 'cli:demo' });
    io.err(`demo: provisioning certificate ${row.id} for ${row.leafCommonName}, root SHA-256 ${row.rootSha256}`);
    const rootHash = createHash('sha256').update(chain.rootDer).digest('hex');
    const finished = new Map<string, PkiFinished[]>();
    const refused = new Map<string, { code: string; message: string }>();
    let provisioned = 0;
    server.pki.on('finished', (f) => {
      finished.set(f.uuid, [...(finished.get(f.uuid) ?? []), f]);
      if (f.state === 'succeeded') provisioned++;
    });
    server.pki.on('refused', (r) => refused.set(r.uuid, r));
    const helloPort = server.helloAddress.port;
    for (let i = 0; i < o.devices; i++) {
      const address = `${prefix}.${i + 2}`;
      const uuid = `0c5e6d1a-7b2f-4e3c-9a8d-${(i + 1).toString(16).padStart(12, '0')}`;
      const device = new SimDevice({
        uuid,
        mebxPassword: DEMO_MEBX,
        domainName: DEMO_DOMAIN,
        provisioningState: 'In',
        amtVersion: '11.8.50',
        pki: { userHashes: [rootHash] },
      });
      await device.start({ host: address, tlsPort: amtTlsPort, httpPort: amtTlsPort + 1 });
      const sender = new HelloSender({
        scsHost: '127.0.0.1',
        scsPort: helloPort,
        localAddress: address,
        // Hellos repeat every 0.6 s instead of 12 s, so a device whose session failed comes back soon.
        timeFactor: 0.05,
        windowMs: 24 * 3_600_000,
        identity: () => device.helloIdentity(),
      });
      device.on('stateChanged', ({ to }) => {
        if (to !== 'In') sender.stop();
      });
      devices.push({ index: i, device, sender, address });
    }
    io.err(`demo: server listening for hellos on 127.0.0.1:${helloPort}; ${o.devices} devices in PKI setup mode`);
    for (const d of devices) d.sender.start();
    ticker = setInterval(
      () => io.err(`demo: ${provisioned}/${o.devices} provisioned, ${Math.round((Date.now() - started) / 1000)} s`),
      2000,
    );
    const deadline = Date.now() + o.deadlineS * 1000;
    while (provisioned < o.devices && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    const outcomes: DeviceOutcome[] = devices.map((d) => {
      const runs = finished.get(d.device.uuid) ?? [];
      const ok = runs.find((r) => r.state === 'succeeded');
      const last = runs.at(-1);
      const refusal = refused.get(d.device.uuid);
      return {
        index: d.index,
        uuid: d.device.uuid,
        address: d.address,
        state: ok !== undefined ? 'provisioned' : last !== undefined || refusal !== undefined ? 'failed' : 'pending',
        ms: ok === undefined ? null : Math.round(ok.ms),
        jobs: runs.length,
        code: ok === undefined ? (last?.code ?? refusal?.code ?? null) : null,
        message: ok === undefined ? (last?.message ?? refusal?.message ?? null) : null,
      };
    });
    return summarize(outcomes, Date.now() - started, o.keep ? dir : null);
  } finally {
    if (ticker !== undefined) clearInterval(ticker);
    for (const d of devices) d.sender.stop();
    await Promise.all(devices.map((d) => d.device.stop()));
    await server?.stop({ graceMs: 0 });
    await new Promise<void>((resolve) => logFile.end(() => resolve()));
    if (!o.keep) rmSync(dir, { recursive: true, force: true });
  }
}
