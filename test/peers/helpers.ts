import { spawn, spawnSync } from 'node:child_process';
import { generatePid, generatePps } from '../../src/psk/generate.ts';
import { SimDevice, type DeviceSetup } from '../../simulator/device/device.ts';
import { deviceDigestRealm, deviceUuid } from '../../simulator/fleet/identity.ts';

/**
 * Support for the peer interop tests: one simulated device on loopback, and a way to run the
 * other side's binaries (openssl, gnutls-cli, curl, wsl) with a timeout.
 */
export const MEBX_PASSWORD = 'P@ssw0rd';

export interface PeerDevice {
  device: SimDevice;
  host: string;
  tlsPort: number;
  httpPort: number;
  pid: string;
  pps: string;
  /** The PPS as the hex of its 32 ASCII bytes: what `-psk` / `--pskkey` take (protocol.md §2). */
  ppsHex: string;
  stop(): Promise<void>;
}

/** Starts one device in setup mode (In) on `host` (its own 127.x address), ports chosen by the system. */
export async function startPeerDevice(host: string, extra: Partial<DeviceSetup> = {}): Promise<PeerDevice> {
  const pid = generatePid();
  const pps = generatePps();
  const device = new SimDevice({
    uuid: deviceUuid('peers', 0),
    pid,
    pps,
    mebxPassword: MEBX_PASSWORD,
    digestRealm: deviceDigestRealm('peers', 0),
    hostName: 'peer-device',
    ...extra,
  });
  const ports = await device.start({ host, tlsPort: 0, httpPort: 0 });
  return {
    device,
    host,
    ...ports,
    pid,
    pps,
    ppsHex: Buffer.from(pps, 'ascii').toString('hex'),
    stop: () => device.stop(),
  };
}

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/** Runs a peer binary; kills it after `timeoutMs`. Never rejects: the result says what happened. */
export function run(
  command: string,
  args: readonly string[],
  opts: { input?: string; env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {},
): Promise<RunResult> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      env: opts.env ?? process.env,
      ...(opts.cwd === undefined ? {} : { cwd: opts.cwd }),
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, opts.timeoutMs ?? 20_000);
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.stdin.on('error', () => undefined);
    child.on('error', (e) => err.push(Buffer.from(String(e))));
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        timedOut,
      });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/**
 * Why a peer cannot run here, or undefined when it can. CI installs every peer
 * (.ci/run): a skip is only for a machine that truly lacks the binary.
 */
export function missing(binary: string): string | undefined {
  const r = spawnSync('sh', ['-c', `command -v ${binary}`], { encoding: 'utf8' });
  return r.status === 0
    ? undefined
    : `${binary} is not installed (apt-get install ${binary === 'gnutls-cli' ? 'gnutls-bin' : binary})`;
}

/** A WS-Management envelope written by hand (not by any library), for curl and raw tests. */
export function envelope(action: string, resourceUri: string, body = '', headerExtra = ''): string {
  return (
    '<?xml version="1.0" encoding="UTF-8"?>' +
    '<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" ' +
    'xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing" ' +
    'xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">' +
    '<s:Header>' +
    `<a:Action s:mustUnderstand="true">${action}</a:Action>` +
    '<a:To s:mustUnderstand="true">/wsman</a:To>' +
    `<w:ResourceURI s:mustUnderstand="true">${resourceUri}</w:ResourceURI>` +
    `<a:MessageID s:mustUnderstand="true">uuid:${crypto.randomUUID()}</a:MessageID>` +
    '<a:ReplyTo><a:Address>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:Address></a:ReplyTo>' +
    '<w:OperationTimeout>PT60S</w:OperationTimeout>' +
    headerExtra +
    '</s:Header>' +
    `<s:Body>${body}</s:Body>` +
    '</s:Envelope>'
  );
}

export const URI = {
  amt: (cls: string) => `http://intel.com/wbem/wscim/1/amt-schema/1/${cls}`,
  cim: (cls: string) => `http://schemas.dmtf.org/wbem/wscim/1/cim-schema/2/${cls}`,
  ips: (cls: string) => `http://intel.com/wbem/wscim/1/ips-schema/1/${cls}`,
} as const;

export const ACTION = {
  get: 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Get',
  put: 'http://schemas.xmlsoap.org/ws/2004/09/transfer/Put',
  enumerate: 'http://schemas.xmlsoap.org/ws/2004/09/enumeration/Enumerate',
  pull: 'http://schemas.xmlsoap.org/ws/2004/09/enumeration/Pull',
} as const;
