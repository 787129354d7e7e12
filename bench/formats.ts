/**
 * PSK file codec benchmark: setup.bin encode + decode of 20,000 records (target < 1 s), and a
 * 1,000,000-pair transfer bundle encoded and decoded in streaming fashion (target < 10 s each
 * including scrypt, peak RSS < 300 MB). Each phase runs in its own process so its peak RSS is its
 * own. JSON on stdout, one readable line per phase on stderr.
 *
 *   node --import tsx bench/formats.ts
 */
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Secret } from '../src/secret.ts';
import { generatePid, generatePps } from '../src/psk/generate.ts';
import { BundleDecoder, BundleEncoder, type BundleRecord, DEFAULT_SCRYPT_PARAMS } from '../src/psk/formats/bundle.ts';
import { decodeSetupBin, encodeSetupBin, type SetupBinRecordInput } from '../src/psk/formats/setupbin.ts';

const SETUPBIN_RECORDS = 20_000;
const BUNDLE_RECORDS = 1_000_000;
const POOL = 10_000;
const BATCH = 10_000;
const READ_BYTES = 64 * 1024;
const PASSPHRASE = new Secret('bench passphrase: not a secret');

function peakRssMb(): number {
  return Math.round(process.resourceUsage().maxRSS / 1024); // maxRSS is in KiB
}

function setupbinPhase(): Record<string, number> {
  const records: SetupBinRecordInput[] = Array.from({ length: SETUPBIN_RECORDS }, () => ({
    pid: generatePid(),
    pps: new Secret(generatePps()),
  }));
  const options = {
    currentMebxPassword: new Secret('admin'),
    newMebxPassword: new Secret('P@ssw0rd!'),
    domainName: 'corp.example',
    provisioningServerAddress: '10.0.0.5',
    provisioningServerPort: 9971,
  };
  const t0 = performance.now();
  const file = encodeSetupBin(records, options);
  const t1 = performance.now();
  const decoded = decodeSetupBin(file);
  const t2 = performance.now();
  if (decoded.records.length !== SETUPBIN_RECORDS) throw new Error('setup.bin record count mismatch');
  return {
    records: SETUPBIN_RECORDS,
    bytes: file.length,
    encodeMs: Math.round(t1 - t0),
    decodeMs: Math.round(t2 - t1),
    totalMs: Math.round(t2 - t0),
    peakRssMb: peakRssMb(),
  };
}

/** A pool of real pairs, cycled: generating a million pairs is not what is being measured. */
function pool(): BundleRecord[] {
  return Array.from({ length: POOL }, (_, i) => ({
    pid: generatePid(),
    pps: new Secret(generatePps()),
    batch: `bench-batch-${i % 7}`,
    state: i % 5 === 0 ? 'exported' : 'available',
    createdAt: new Date(1_700_000_000_000 + i),
  }));
}

function bundleEncodePhase(path: string): Record<string, number> {
  const records = pool();
  const fd = openSync(path, 'w');
  const t0 = performance.now();
  const encoder = new BundleEncoder({ passphrase: PASSPHRASE, recordCount: BUNDLE_RECORDS, sourceName: 'bench' });
  writeSync(fd, encoder.start());
  const t1 = performance.now();
  for (let done = 0; done < BUNDLE_RECORDS; done += BATCH) {
    const start = done % POOL;
    for (const chunk of encoder.add(records.slice(start, start + BATCH))) writeSync(fd, chunk);
  }
  writeSync(fd, encoder.finish());
  closeSync(fd);
  const t2 = performance.now();
  return {
    records: BUNDLE_RECORDS,
    bytes: statSync(path).size,
    kdfMs: Math.round(t1 - t0),
    totalMs: Math.round(t2 - t0),
    peakRssMb: peakRssMb(),
  };
}

function bundleDecodePhase(path: string): Record<string, number> {
  const fd = openSync(path, 'r');
  const buf = Buffer.alloc(READ_BYTES);
  const t0 = performance.now();
  const decoder = new BundleDecoder({ passphrase: PASSPHRASE });
  let count = 0;
  let kdfMs = 0;
  for (;;) {
    const n = readSync(fd, buf, 0, READ_BYTES, null);
    if (n === 0) break;
    const hadHeader = decoder.header !== undefined;
    count += decoder.push(buf.subarray(0, n)).length;
    if (!hadHeader && decoder.header !== undefined) kdfMs = performance.now() - t0;
  }
  count += decoder.finish().length;
  closeSync(fd);
  const t1 = performance.now();
  if (count !== BUNDLE_RECORDS) throw new Error(`bundle decoded ${count} records`);
  return { records: count, kdfMs: Math.round(kdfMs), totalMs: Math.round(t1 - t0), peakRssMb: peakRssMb() };
}

function runPhase(phase: string, path: string): Record<string, number> {
  const self = fileURLToPath(import.meta.url);
  const child = spawnSync(process.execPath, [...process.execArgv, self, '--phase', phase, path], {
    encoding: 'utf8',
    maxBuffer: 1024 * 1024,
  });
  if (child.status !== 0) throw new Error(`phase ${phase} failed: ${child.stderr}`);
  return JSON.parse(child.stdout) as Record<string, number>;
}

function main(): void {
  const at = process.argv.indexOf('--phase');
  if (at !== -1) {
    const phase = process.argv[at + 1];
    const path = process.argv[at + 2] ?? '';
    const result =
      phase === 'setupbin'
        ? setupbinPhase()
        : phase === 'bundle-encode'
          ? bundleEncodePhase(path)
          : bundleDecodePhase(path);
    process.stdout.write(JSON.stringify(result));
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'amt-scs-bench-formats-'));
  try {
    const path = join(dir, 'bench.bundle');
    const setupbin = runPhase('setupbin', path);
    const bundleEncode = runPhase('bundle-encode', path);
    const bundleDecode = runPhase('bundle-decode', path);
    const result = {
      node: process.version,
      scrypt: DEFAULT_SCRYPT_PARAMS,
      setupbin: { ...setupbin, targetMs: 1000 },
      bundleEncode: { ...bundleEncode, targetMs: 10_000, targetPeakRssMb: 300 },
      bundleDecode: { ...bundleDecode, targetMs: 10_000, targetPeakRssMb: 300 },
    };
    process.stderr.write(
      `setup.bin ${setupbin.records} records: encode ${setupbin.encodeMs} ms + decode ${setupbin.decodeMs} ms = ${setupbin.totalMs} ms (${setupbin.bytes} bytes)\n` +
        `bundle encode ${bundleEncode.records} records: ${bundleEncode.totalMs} ms (scrypt ${bundleEncode.kdfMs} ms), peak RSS ${bundleEncode.peakRssMb} MB, ${bundleEncode.bytes} bytes\n` +
        `bundle decode ${bundleDecode.records} records: ${bundleDecode.totalMs} ms (scrypt ${bundleDecode.kdfMs} ms), peak RSS ${bundleDecode.peakRssMb} MB\n`,
    );
    process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

main();
