/**
 * The decoders under fuzz, one target each, with valid samples to mutate, a dictionary, and the
 * invariants beyond "refuses with a catalogue error" that each must keep (docs/security.md,
 * "Fuzzing the decoders"). Used by test/security/decoders.fuzz.test.ts (a few hundred inputs per
 * target in `npm test`) and scripts/fuzz.ts (a million or more per target).
 */
import { createCipheriv, createHash, createHmac, randomBytes as cryptoBytes } from 'node:crypto';
import { isDeepStrictEqual } from 'node:util';
import { NonceStore, parseDigestAuthorization, verifyDigest } from '../../../simulator/http/digest.ts';
import { encodePkiHello, encodePskHello } from '../../../simulator/hello/encode.ts';
import { harness } from '../../../simulator/wsman/test-harness.ts';
import { digestAuthorization, digestHa1, parseDigestChallenge } from '../../../src/amt/http/digest.ts';
import { HttpResponseParser, type HttpResponse } from '../../../src/amt/http/response.ts';
import { buildEnvelope, type WsmanRequest } from '../../../src/amt/wsman/envelope.ts';
import { enumerateCall, pullCall } from '../../../src/amt/wsman/enumerate.ts';
import { faultError, readFault } from '../../../src/amt/wsman/fault.ts';
import { getCall, type SingleOperation } from '../../../src/amt/wsman/operation.ts';
import { setAdminAclEntryEx } from '../../../src/amt/wsman/ops/authorization.ts';
import { getGeneralSettings } from '../../../src/amt/wsman/ops/general-settings.ts';
import { identify } from '../../../src/amt/wsman/ops/identify.ts';
import {
  addCertificate,
  generateKeyPair,
  generatePkcs10RequestEx,
  getPublicPrivateKeyPair,
} from '../../../src/amt/wsman/ops/public-key.ts';
import {
  commitChanges,
  getSetupAndConfigurationService,
  getUuid,
  setMEBxPassword,
  setTlsPsk,
} from '../../../src/amt/wsman/ops/setup-and-configuration.ts';
import { enumerateSoftwareIdentity } from '../../../src/amt/wsman/ops/software-identity.ts';
import { getLowAccuracyTimeSynch } from '../../../src/amt/wsman/ops/time-synchronization.ts';
import { getTlsSettingData } from '../../../src/amt/wsman/ops/tls.ts';
import { parseWsman, type WsmanReply } from '../../../src/amt/wsman/parse.ts';
import { ERROR_CODES, ScsError } from '../../../src/errors.ts';
import { decodeHello, HelloDecoder, malformedReason, type Hello } from '../../../src/hello/decode.ts';
import {
  BUNDLE_FORMAT_VERSION,
  BUNDLE_MAGIC,
  BundleDecoder,
  BundleEncoder,
  type BundleKdf,
  type BundleRecord,
} from '../../../src/psk/formats/bundle.ts';
import { CsvDecoder, encodeCsvHeader, encodeCsvRows, type CsvRow } from '../../../src/psk/formats/csv.ts';
import { detectFormat } from '../../../src/psk/formats/detect.ts';
import type { PskPair } from '../../../src/psk/formats/pair.ts';
import { decodeSetupBin, encodeSetupBin, SETUPBIN_GUIDS } from '../../../src/psk/formats/setupbin.ts';
import { generatePid, generatePps } from '../../../src/psk/generate.ts';
import { formatPid } from '../../../src/psk/pid.ts';
import { formatPps } from '../../../src/psk/pps.ts';
import { Secret } from '../../../src/secret.ts';
import { split, type Corpus, type Rng } from './mutate.ts';

/** Canary secrets placed in the samples: no error message may carry them. */
export const CANARY_MEBX = 'CanaryMebx#7f3a';
export const CANARY_NEW_MEBX = 'CanaryNew!Pw51b';
export const CANARY_PASSPHRASE = 'canary-passphrase-0d5e9';

/** An invariant of the decoder was broken (not just "the input was refused"). */
export class FuzzViolation extends Error {
  override readonly name = 'FuzzViolation';
}

export interface FuzzTarget extends Corpus {
  readonly name: string;
  /** Secrets present in the samples that no error message may contain. */
  readonly secrets: readonly string[];
  /** Decodes one input; throws whatever the decoder throws, or FuzzViolation. */
  run(input: Buffer, rng: Rng): void | Promise<void>;
}

export type Outcome =
  | { readonly kind: 'accepted' }
  | { readonly kind: 'refused'; readonly code: string }
  | { readonly kind: 'failure'; readonly why: string };

function describe(e: unknown): string {
  if (e instanceof Error) return `${e.name}: ${e.message}\n${e.stack ?? ''}`;
  return String(e);
}

/** Refused with a catalogue ScsError whose message carries no secret: fine. Anything else: failure. */
function classify(target: FuzzTarget, e: unknown): Outcome {
  if (e instanceof FuzzViolation) return { kind: 'failure', why: `invariant: ${e.message}` };
  if (!(e instanceof ScsError) || !Object.hasOwn(ERROR_CODES, e.code)) {
    return { kind: 'failure', why: `untyped error: ${describe(e)}` };
  }
  const leaked = target.secrets.find((s) => e.message.includes(s) || JSON.stringify(e.details).includes(s));
  if (leaked !== undefined) return { kind: 'failure', why: `${e.code} message carries a secret: ${e.message}` };
  return { kind: 'refused', code: e.code };
}

/** Runs one input through a target and says what happened. Never throws. */
export async function check(target: FuzzTarget, input: Buffer, rng: Rng): Promise<Outcome> {
  try {
    const r = target.run(input, rng);
    if (r !== undefined) await r;
    return { kind: 'accepted' };
  } catch (e) {
    return classify(target, e);
  }
}

/** The synchronous form, for targets whose run never returns a promise (the fuzz loop's fast path). */
export function checkSync(target: FuzzTarget, input: Buffer, rng: Rng): Outcome | Promise<Outcome> {
  let r: void | Promise<void>;
  try {
    r = target.run(input, rng);
  } catch (e) {
    return classify(target, e);
  }
  if (r === undefined) return { kind: 'accepted' };
  return r.then(
    (): Outcome => ({ kind: 'accepted' }),
    (e: unknown) => classify(target, e),
  );
}

function text(...parts: string[]): Buffer[] {
  return parts.map((p) => Buffer.from(p, 'latin1'));
}

function pairs(n: number): PskPair[] {
  return Array.from({ length: n }, () => ({ pid: generatePid(), pps: new Secret(generatePps()) }));
}

/** The PPS in every spelling a file could hold it in. */
function ppsSecrets(psks: readonly PskPair[]): string[] {
  return psks.flatMap((p) => [p.pps.reveal(), formatPps(p.pps.reveal())]);
}

/** Both results the same, or both refusals with the same code. */
function sameOutcome<T>(what: string, a: () => T, b: () => T, compare: (x: T, y: T) => boolean): void {
  let ra: { ok: true; v: T } | { ok: false; e: unknown };
  let rb: { ok: true; v: T } | { ok: false; e: unknown };
  try {
    ra = { ok: true, v: a() };
  } catch (e) {
    ra = { ok: false, e };
  }
  try {
    rb = { ok: true, v: b() };
  } catch (e) {
    rb = { ok: false, e };
  }
  if (!ra.ok) {
    if (rb.ok) throw new FuzzViolation(`${what}: one path refused (${describe(ra.e)}), the other accepted`);
    const ca = ra.e instanceof ScsError ? ra.e.code : undefined;
    const cb = rb.e instanceof ScsError ? rb.e.code : undefined;
    if (ca !== cb) throw new FuzzViolation(`${what}: refusals differ: ${describe(ra.e)} / ${describe(rb.e)}`);
    throw ra.e;
  }
  if (!rb.ok) throw new FuzzViolation(`${what}: one path accepted, the other refused (${describe(rb.e)})`);
  if (!compare(ra.v, rb.v)) throw new FuzzViolation(`${what}: the two paths decoded different values`);
}

// ---------------------------------------------------------------------------------------- hello

export function helloTarget(): FuzzTarget {
  const uuid = '4c4c4544-0035-5910-8051-b8c04f4e5a31';
  const samples = [
    ...Array.from({ length: 4 }, (_, i) =>
      encodePskHello({ adminCredentialsSet: i % 2 === 1, retryCount: i * 1000, uuid, pid: generatePid() }),
    ),
    encodePkiHello({ adminCredentialsSet: false, retryCount: 0, uuid }, []),
    encodePkiHello({ adminCredentialsSet: true, retryCount: 7, uuid }, [
      { algorithm: 1, hash: cryptoBytes(20) },
      { algorithm: 2, hash: cryptoBytes(32) },
      { algorithm: 3, hash: cryptoBytes(48) },
    ]),
  ];
  return {
    name: 'hello',
    samples,
    dictionary: [
      Buffer.from([2, 0]),
      Buffer.from([3, 0]),
      Buffer.from([1, 20]),
      Buffer.from([3, 48]),
      Buffer.from([255]),
    ],
    maxBytes: 13_000,
    secrets: [],
    run(input, rng) {
      // The listener's incremental decoder, fed as TCP might cut it, must agree with the one-shot one.
      sameOutcome<Hello>(
        'hello one-shot vs incremental',
        () => decodeHello(input),
        () => {
          const d = new HelloDecoder();
          for (const piece of split(rng, input)) d.push(piece);
          return d.end();
        },
        isDeepStrictEqual,
      );
    },
  };
}

/** Both hello paths give the same malformed reason, except that "too long" may win over a later fault. */
export function helloReasonsAgree(input: Buffer, pieces: readonly Buffer[]): boolean {
  let a: string | undefined;
  let b: string | undefined;
  try {
    decodeHello(input);
  } catch (e) {
    a = malformedReason(e);
  }
  try {
    const d = new HelloDecoder();
    for (const p of pieces) d.push(p);
    d.end();
  } catch (e) {
    b = malformedReason(e);
  }
  return a === b || a === 'too-long' || b === 'too-long';
}

// ------------------------------------------------------------------------------------ setup.bin

export function setupBinTarget(): FuzzTarget {
  const psks = pairs(6);
  const [p0, p1, p2, p3, p4, p5] = psks as [PskPair, PskPair, PskPair, PskPair, PskPair, PskPair];
  const current = new Secret(CANARY_MEBX);
  const next = new Secret(CANARY_NEW_MEBX);
  const samples = [
    encodeSetupBin([{ ...p0 }], { currentMebxPassword: current, newMebxPassword: next }),
    encodeSetupBin([{ ...p1 }, { ...p2 }], {
      currentMebxPassword: current,
      scramble: false,
      hostName: 'host-1',
      domainName: 'example.com',
      provisioningServerAddress: '10.1.2.3',
      provisioningServerPort: 9971,
      enableAmt: true,
    }),
    encodeSetupBin([{ ...p3 }], { currentMebxPassword: current, version: 1 }),
    encodeSetupBin([{ ...p4 }], { currentMebxPassword: current, version: 3, doNotConsume: true, scramble: false }),
    encodeSetupBin([{ ...p5 }], { currentMebxPassword: current, version: 4 }),
  ];
  const u16 = (v: number): Buffer => Buffer.from([v & 0xff, v >> 8]);
  return {
    name: 'setup.bin',
    samples,
    dictionary: [...Object.values(SETUPBIN_GUIDS), u16(1), u16(2), u16(11), u16(17), u16(18), u16(512), u16(10)],
    maxBytes: 8 * 512,
    secrets: [...ppsSecrets(psks), CANARY_MEBX, CANARY_NEW_MEBX],
    run(input) {
      fileFormat(input);
      decodeSetupBin(input);
    },
  };
}

/** detectFormat may only answer or refuse with SCS_FORMAT_UNKNOWN. */
function fileFormat(input: Buffer): void {
  try {
    detectFormat(input.subarray(0, 4096));
  } catch (e) {
    if (!(e instanceof ScsError) || e.code !== 'SCS_FORMAT_UNKNOWN') throw e;
  }
}

// -------------------------------------------------------------------------------------- bundle

/**
 * scrypt (0.1-0.6 s per bundle) would allow a few inputs per second; the fuzz targets the parsing
 * around it, so a fast deterministic KDF of the same shape (64 bytes from passphrase and salt)
 * stands in. The real scrypt parameters are still read and bounded from the header.
 */
export const fastKdf: BundleKdf = (passphrase, salt) =>
  createHash('sha512').update(passphrase.reveal(), 'utf8').update(salt).digest();

function bundleRecords(n: number): BundleRecord[] {
  return pairs(n).map((p, i) => ({
    ...p,
    batch: i % 2 === 0 ? `batch-${i}` : 'ünïcode-✓',
    state: i % 3 === 0 ? 'exported' : 'available',
    createdAt: new Date(1_700_000_000_000 + i),
  }));
}

function encodeBundle(records: readonly BundleRecord[], chunkSize: number, sourceName: string): Buffer {
  const enc = new BundleEncoder({
    passphrase: new Secret(CANARY_PASSPHRASE),
    recordCount: records.length,
    sourceName,
    chunkSize,
    kdf: fastKdf,
  });
  return Buffer.concat([enc.start(), ...enc.add(records), enc.finish()]);
}

function decodeBundle(input: Buffer, rng: Rng): BundleRecord[] {
  const dec = new BundleDecoder({ passphrase: new Secret(CANARY_PASSPHRASE), kdf: fastKdf });
  const out: BundleRecord[] = [];
  for (const piece of split(rng, input)) out.push(...dec.push(piece));
  out.push(...dec.finish());
  if (dec.header !== undefined && out.length !== dec.header.recordCount) {
    throw new FuzzViolation(`bundle: ${out.length} records decoded, the header declares ${dec.header.recordCount}`);
  }
  return out;
}

export function bundleTarget(): FuzzTarget {
  const sets = [bundleRecords(0), bundleRecords(1), bundleRecords(5), bundleRecords(12)];
  const samples = [
    encodeBundle(sets[0] ?? [], 256, 'scs-a'),
    encodeBundle(sets[1] ?? [], 256, 'scs-b'),
    encodeBundle(sets[2] ?? [], 1024, 'scs-ç'),
    encodeBundle(sets[3] ?? [], 256, ''),
  ];
  return {
    name: 'bundle',
    samples,
    dictionary: [
      BUNDLE_MAGIC,
      Buffer.from([0, BUNDLE_FORMAT_VERSION]),
      Buffer.from([1, 15, 8, 1]),
      Buffer.from([0, 0, 1, 0]),
    ],
    maxBytes: 16 * 1024,
    secrets: [CANARY_PASSPHRASE, ...ppsSecrets(sets.flat())],
    run(input, rng) {
      fileFormat(input);
      decodeBundle(input, rng);
    },
  };
}

/**
 * Bundle records behind valid authentication: a tampered bundle never gets past AES-GCM, so the
 * record reader is fuzzed by sealing mutated plaintext properly. Input: record count (1 byte),
 * then the plaintext record stream. Sealed as BundleEncoder does (bundle.ts, docs/formats.md).
 */
export function sealPlaintext(count: number, plain: Buffer, chunkSize: number): Buffer {
  const name = Buffer.from('fuzz', 'utf8');
  const headerBytes = 70 + name.length + 32;
  const header = Buffer.alloc(headerBytes);
  BUNDLE_MAGIC.copy(header, 0);
  header.writeUInt16BE(BUNDLE_FORMAT_VERSION, 8);
  header.writeUInt16BE(headerBytes, 10);
  header[12] = 1;
  header[13] = 17;
  header[14] = 8;
  header[15] = 1;
  const salt = Buffer.alloc(16, 7);
  salt.copy(header, 16);
  header.writeUInt32BE(0, 52);
  header.writeUInt32BE(count, 60);
  header.writeUInt32BE(chunkSize, 64);
  header.writeUInt16BE(name.length, 68);
  name.copy(header, 70);
  const keys = fastKdf(new Secret(CANARY_PASSPHRASE), salt, { log2N: 17, r: 8, p: 1 });
  const mac = createHmac('sha256', keys.subarray(32))
    .update(header.subarray(0, 70 + name.length))
    .digest();
  mac.copy(header, 70 + name.length);
  const chunks = Math.max(1, Math.ceil(plain.length / chunkSize));
  const out = [header];
  for (let i = 0; i < chunks; i++) {
    const body = Buffer.alloc(chunkSize);
    plain.copy(body, 0, i * chunkSize, (i + 1) * chunkSize);
    const nonce = Buffer.alloc(12);
    nonce.writeUInt32BE(i, 8);
    const cipher = createCipheriv('aes-256-gcm', keys.subarray(0, 32), nonce, { authTagLength: 16 });
    cipher.setAAD(Buffer.concat([mac, Buffer.from([i === chunks - 1 ? 1 : 0])]));
    out.push(cipher.update(body), cipher.final(), cipher.getAuthTag());
  }
  return Buffer.concat(out);
}

export function bundleRecordsTarget(): FuzzTarget {
  const sets = [bundleRecords(1), bundleRecords(3), bundleRecords(6)];
  const plainOf = (records: readonly BundleRecord[]): Buffer => {
    // The plaintext the encoder seals: encode with a 1 MiB chunk and open the single chunk.
    const whole = encodeBundle(records, 4096, 'fuzz');
    const dec = new BundleDecoder({ passphrase: new Secret(CANARY_PASSPHRASE), kdf: fastKdf });
    const back = [...dec.push(whole), ...dec.finish()];
    if (back.length !== records.length) throw new Error('bundle sample did not round-trip');
    const parts = records.map((r) => {
      const batch = Buffer.from(r.batch, 'utf8');
      const rec = Buffer.alloc(50 + batch.length);
      rec.write(r.pid, 0, 'latin1');
      rec.write(r.pps.reveal(), 8, 'latin1');
      rec[40] = r.state === 'available' ? 0 : 1;
      rec.writeUInt32BE(Math.floor(r.createdAt.getTime() / 0x100000000), 41);
      rec.writeUInt32BE(r.createdAt.getTime() >>> 0, 45);
      rec[49] = batch.length;
      batch.copy(rec, 50);
      return rec;
    });
    return Buffer.concat([Buffer.from([records.length]), ...parts]);
  };
  const samples = sets.map(plainOf);
  // The hand-sealed sample must decode like the encoder's: proves sealPlaintext is the format.
  for (const [i, s] of samples.entries()) {
    const sealed = sealPlaintext(s[0] as number, s.subarray(1), 256);
    const dec = new BundleDecoder({ passphrase: new Secret(CANARY_PASSPHRASE), kdf: fastKdf });
    const got = [...dec.push(sealed), ...dec.finish()];
    const want = sets[i] ?? [];
    if (got.length !== want.length || got.some((r, k) => r.pps.reveal() !== want[k]?.pps.reveal())) {
      throw new Error('sealPlaintext does not write the bundle format');
    }
  }
  return {
    name: 'bundle-records',
    samples,
    dictionary: [Buffer.from([0]), Buffer.from([1]), Buffer.from([255]), Buffer.from('ÿ', 'latin1')],
    maxBytes: 4096,
    secrets: [CANARY_PASSPHRASE, ...ppsSecrets(sets.flat())],
    run(input, rng) {
      if (input.length === 0) return;
      const chunkSize = [256, 300, 1024][rng.below(3)] as number;
      decodeBundle(sealPlaintext(input[0] as number, input.subarray(1), chunkSize), rng);
    },
  };
}

// ----------------------------------------------------------------------------------------- CSV

function csvRows(pieces: readonly Buffer[]): CsvRow[] {
  const d = new CsvDecoder();
  const rows: CsvRow[] = [];
  for (const p of pieces) rows.push(...d.push(p));
  rows.push(...d.end());
  return rows;
}

const sameRows = (a: readonly CsvRow[], b: readonly CsvRow[]): boolean =>
  a.length === b.length &&
  a.every((r, i) => {
    const s = b[i];
    return (
      s !== undefined &&
      r.pid === s.pid &&
      r.pps.reveal() === s.pps.reveal() &&
      r.line === s.line &&
      r.batch === s.batch
    );
  });

export function csvTarget(): FuzzTarget {
  const psks = pairs(6);
  const rows = (ps: readonly PskPair[]): string =>
    ps.map((p) => `${formatPid(p.pid)},${formatPps(p.pps.reveal())}`).join('\r\n');
  const [a, b, c] = [psks.slice(0, 2), psks.slice(2, 4), psks.slice(4)];
  const samples = [
    Buffer.concat([encodeCsvHeader(), encodeCsvRows(a)]),
    Buffer.from(`\ufeffpid,PPS,batch\n${rows(b).replaceAll('\r\n', ',floor-1\n')},floor-1\n`, 'utf8'),
    Buffer.from(
      `"PID" , "PPS"\r\n${c.map((p) => ` "${p.pid}" ,"${p.pps.reveal().toLowerCase()}"`).join('\r\n')}`,
      'utf8',
    ),
    Buffer.from(`PID,PPS\n${rows(a)}\n\nPID,PPS\n${rows(b)}\n`, 'utf8'),
  ];
  return {
    name: 'csv',
    samples,
    dictionary: text(',', '"', '""', '\r\n', '\n', 'PID', 'PPS', 'batch', '-', '\ufeff', ' ', '\t', '\u00e9'),
    maxBytes: 8 * 1024,
    secrets: ppsSecrets(psks),
    run(input, rng) {
      fileFormat(input);
      const pieces = split(rng, input);
      sameOutcome(
        'csv whole vs split',
        () => csvRows([input]),
        () => csvRows(pieces),
        sameRows,
      );
    },
  };
}

// ------------------------------------------------------------------------------------- WS-Man

/** Every single-reply parser of the AMT client, run on each reply. */
function replyParsers(): SingleOperation<unknown>[] {
  const pid = generatePid();
  return [
    identify(),
    getGeneralSettings(),
    getSetupAndConfigurationService(),
    getUuid(),
    getLowAccuracyTimeSynch(),
    getTlsSettingData(),
    generateKeyPair(),
    getPublicPrivateKeyPair('Intel(r) AMT Key: Handle: 0'),
    generatePkcs10RequestEx({ keyPairInstanceId: 'Intel(r) AMT Key: Handle: 0', nullSignedCertificateRequest: 'MIIB' }),
    addCertificate('MIIB'),
    setMEBxPassword(new Secret(CANARY_NEW_MEBX)),
    setTlsPsk(pid, new Secret(generatePps())),
    setAdminAclEntryEx({ username: 'admin', realm: 'Digest:R', password: new Secret(CANARY_NEW_MEBX) }),
    commitChanges(),
  ];
}

/** Replies the simulated device gives to the client's own requests (and a fault). */
export async function wsmanTarget(): Promise<FuzzTarget> {
  const h = harness({}, () => 1_700_000_000_000);
  const requests: WsmanRequest[] = [
    identify().request,
    getGeneralSettings().request,
    getSetupAndConfigurationService().request,
    getUuid().request,
    getLowAccuracyTimeSynch().request,
    getTlsSettingData().request,
    generateKeyPair().request,
    setMEBxPassword(new Secret(CANARY_NEW_MEBX)).request,
    enumerateCall('CIM_SoftwareIdentity'),
    getCall('AMT_NoSuchClass'),
  ];
  const samples: Buffer[] = [];
  for (const [i, r] of requests.entries())
    samples.push(Buffer.from((await h.call(buildEnvelope(r, `uuid:${i}`))).xml, 'utf8'));
  const context = /EnumerationContext>([^<]+)</.exec(samples[8]?.toString('utf8') ?? '')?.[1] ?? 'x';
  samples.push(
    Buffer.from((await h.call(buildEnvelope(pullCall('CIM_SoftwareIdentity', context), 'uuid:p'))).xml, 'utf8'),
  );
  const parsers = replyParsers();
  return {
    name: 'wsman-reply',
    samples,
    dictionary: text(
      '<',
      '>',
      '</',
      '/>',
      '<a:Body>',
      '</a:Body>',
      '<!--',
      '-->',
      '<![CDATA[',
      ']]>',
      '<!DOCTYPE x [<!ENTITY a "b">]>',
      '&amp;',
      '&#x110000;',
      '&#99999999999;',
      '&#0;',
      '<?xml version="1.0"?>',
      'xmlns:a="u"',
      '__proto__',
      'constructor',
      '<ReturnValue>1</ReturnValue>',
      '<g:EndOfSequence/>',
      '"',
      "'",
      '=',
      '<Fault><Code><Value>x</Value><Subcode><Value>y</Value></Subcode></Code></Fault>',
    ),
    maxBytes: 64 * 1024,
    secrets: [CANARY_NEW_MEBX],
    async run(input) {
      const reply = parseWsman(input);
      const fault = readFault(reply);
      if (fault !== undefined) faultError(fault, { action: 'fuzz', httpStatus: 400 });
      for (const p of parsers) {
        try {
          p.parse(reply);
        } catch (e) {
          if (!(e instanceof ScsError)) throw e;
        }
      }
      await enumerateOnce(reply);
    },
  };
}

/** The enumeration loop over this reply as both Enumerate and Pull answer (a few rounds, then stop). */
async function enumerateOnce(reply: WsmanReply): Promise<void> {
  let calls = 0;
  try {
    await enumerateSoftwareIdentity().run(() => {
      calls++;
      if (calls > 3) throw new ScsError('SCS_AMT_TIMEOUT', 'fuzz: enough pulls');
      return Promise.resolve(reply);
    });
  } catch (e) {
    if (!(e instanceof ScsError)) throw e;
  }
}

// -------------------------------------------------------------------------------------- Digest

export function digestChallengeTarget(): FuzzTarget {
  const samples = text(
    'Digest realm="Digest:A3829B3827DE4D33D4449B366831FD01", nonce="3LcBgQ0EAAAAAAAAKsKKH8cT0Zs0vgHw",stale="false",qop="auth"',
    'Negotiate, Digest realm="r", nonce="n", qop="auth,auth-int", algorithm=MD5-sess, opaque="o\\"p"',
    'Digest realm=r,nonce=n,algorithm=SHA-256',
    'Basic realm="x", Digest nonce="a b", realm="\\\\", stale=TRUE',
  );
  return {
    name: 'digest-challenge',
    samples,
    dictionary: text(
      'Digest ',
      'realm=',
      'nonce=',
      'qop=',
      '"auth"',
      'algorithm=',
      'MD5',
      'SHA-256-sess',
      ',',
      '"',
      '\\',
      '=',
      ' ',
      'stale=true',
      'Negotiate',
    ),
    maxBytes: 4096,
    secrets: [CANARY_MEBX],
    run(input) {
      const value = input.toString('latin1');
      const challenge = parseDigestChallenge(rngFreeSplit(value));
      const header = digestAuthorization({
        challenge,
        username: 'admin',
        password: new Secret(CANARY_MEBX),
        method: 'POST',
        uri: '/wsman',
        nc: 1,
        cnonce: '0123456789abcdef',
      });
      // The device's parser (the simulator's, written separately) must read back what was sent.
      const back = parseDigestAuthorization(header);
      if (back === undefined) throw new FuzzViolation(`the Authorization header does not parse: ${header}`);
      if (back.get('realm') !== challenge.realm || back.get('nonce') !== challenge.nonce) {
        throw new FuzzViolation(`realm or nonce changed on the way: ${header}`);
      }
    },
  };
}

/** Several WWW-Authenticate lines arrive as an array: a "\n" in the input stands for a line break. */
function rngFreeSplit(value: string): string | string[] {
  return value.includes('\n') ? value.split('\n') : value;
}

export function digestAuthorizationTarget(): FuzzTarget {
  const ha1 = digestHa1('admin', 'Digest:R', new Secret(CANARY_MEBX));
  const nonces = new NonceStore(() => 0, 300_000, 64);
  const nonce = nonces.issue();
  const challenge = parseDigestChallenge(`Digest realm="Digest:R", nonce="${nonce}", qop="auth"`);
  const signed = (nc: number, uri: string): string =>
    digestAuthorization({
      challenge,
      username: 'admin',
      password: new Secret(CANARY_MEBX),
      method: 'POST',
      uri,
      nc,
      cnonce: 'c0ffee',
    });
  const samples = text(signed(1, '/wsman'), signed(2, 'http://10.0.0.1:16992/wsman'), signed(3, '/wsman?x=1'));
  return {
    name: 'digest-authorization',
    samples,
    dictionary: text('Digest ', 'username=', 'response=', 'nc=', 'cnonce=', 'qop=auth', 'uri=', '"', '\\', ',', '='),
    maxBytes: 4096,
    secrets: [CANARY_MEBX],
    run(input) {
      const value = input.toString('latin1');
      parseDigestAuthorization(value);
      verifyDigest(value, { realm: 'Digest:R', method: 'POST', url: '/wsman', lookupHa1: () => ha1, nonces });
    },
  };
}

// ---------------------------------------------------------------------------------- HTTP framing

const xml = '<a:Envelope><a:Body/></a:Envelope>';
function chunked(body: string, size: number): string {
  let out = '';
  for (let i = 0; i < body.length; i += size)
    out += `${Math.min(size, body.length - i).toString(16)}\r\n${body.slice(i, i + size)}\r\n`;
  return `${out}0\r\n\r\n`;
}

function parseAll(pieces: readonly Buffer[]): HttpResponse {
  const p = new HttpResponseParser({ maxHeaderBytes: 8 * 1024, maxBodyBytes: 64 * 1024 });
  for (const piece of pieces) {
    const r = p.push(piece);
    if (r !== undefined) return r;
  }
  return p.end();
}

const sameResponse = (a: HttpResponse, b: HttpResponse): boolean =>
  a.status === b.status &&
  a.keepAlive === b.keepAlive &&
  a.body.equals(b.body) &&
  isDeepStrictEqual(a.headers, b.headers);

export function httpResponseTarget(): FuzzTarget {
  const samples = text(
    `HTTP/1.1 200 OK\r\nDate: Thu, 1 Jan 1970 00:00:00 GMT\r\nServer: Intel(R) Active Management Technology 6.2.61\r\nX-Frame-Options: DENY\r\nContent-Type: application/soap+xml; charset=UTF-8\r\nTransfer-Encoding: chunked\r\n\r\n${chunked(xml, 7)}`,
    `HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Digest realm="Digest:R", nonce="n",stale="false",qop="auth"\r\nContent-Type: text/html\r\nServer: AMT\r\nContent-Length: 12\r\nConnection: close\r\n\r\n<html></html>`,
    `HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: ${xml.length}\r\n\r\n${xml}`,
    `HTTP/1.0 200 OK\r\nContent-Type: text/xml\r\n\r\n${xml}`,
    'HTTP/1.1 204 No Content\r\nConnection: keep-alive\r\n\r\n',
    `HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nTrailer: X\r\n\r\n5;ext=1\r\nhello\r\n0\r\nX: y\r\n\r\n`,
  );
  return {
    name: 'http-response',
    samples,
    dictionary: text(
      '\r\n',
      '\r\n\r\n',
      'HTTP/1.1 ',
      'Content-Length: ',
      'Transfer-Encoding: chunked',
      'Connection: close',
      'ffffffff',
      '0\r\n',
      ';',
      ':',
      ' ',
      '100 ',
      '204',
    ),
    maxBytes: 16 * 1024,
    secrets: [],
    run(input, rng) {
      // Whatever the socket's cuts, the same response (or the same refusal).
      const pieces = split(rng, input);
      sameOutcome(
        'http whole vs split',
        () => parseAll([input]),
        () => parseAll(pieces),
        sameResponse,
      );
    },
  };
}

/** Every target by name, in the order the fuzzer runs them. */
export const TARGETS: Readonly<Record<string, () => FuzzTarget | Promise<FuzzTarget>>> = {
  hello: helloTarget,
  'setup.bin': setupBinTarget,
  bundle: bundleTarget,
  'bundle-records': bundleRecordsTarget,
  csv: csvTarget,
  'wsman-reply': wsmanTarget,
  'digest-challenge': digestChallengeTarget,
  'digest-authorization': digestAuthorizationTarget,
  'http-response': httpResponseTarget,
};
