/**
 * Hello decoding benchmark: decodeHello (incremental decoder, every field checked, PID check
 * character verified) against a bare Buffer read of the same fields into the same object (no
 * checks), on the same 32-byte version 2 hellos, alternating rounds. Prints one JSON object.
 * Run: node --import tsx bench/hello.ts [--seconds 2]
 */
import { decodeHello, HelloDecoder } from '../src/hello/decode.ts';
import { formatUuid } from '../src/hello/uuid.ts';
import { generatePid } from '../src/psk/generate.ts';

const seconds = Number(process.argv[process.argv.indexOf('--seconds') + 1]) || 2;

/** 256 distinct valid hellos (protocol.md §1a), so no branch predictor sees one message only. */
const hellos: Buffer[] = Array.from({ length: 256 }, (_, i) => {
  const b = Buffer.alloc(32);
  b.writeUInt16LE(i & 1, 0);
  b.writeUInt16LE(2, 2);
  b.writeUInt32LE(i % 15, 4);
  for (let k = 0; k < 16; k++) b[8 + k] = (i * 31 + k * 7) & 0xff;
  b.write(generatePid(), 24, 'latin1');
  return b;
});

function bare(b: Buffer): object {
  return {
    version: b.readUInt16LE(2),
    adminCredentialsSet: b.readUInt16LE(0) === 1,
    retryCount: b.readUInt32LE(4),
    uuid: formatUuid(b, 8),
    pid: b.toString('latin1', 24, 32),
  };
}

function run(decode: (b: Buffer) => object, ms: number): { ops: number; ms: number } {
  const start = performance.now();
  let ops = 0;
  let sink = 0;
  while (performance.now() - start < ms) {
    for (let i = 0; i < 1024; i++) {
      const h = decode(hellos[i & 255] as Buffer) as { retryCount: number };
      sink += h.retryCount;
    }
    ops += 1024;
  }
  if (sink < 0) console.error(sink);
  return { ops, ms: performance.now() - start };
}

const split = (b: Buffer): object => {
  // The same message delivered in two TCP reads.
  const d = new HelloDecoder();
  d.push(b.subarray(0, 13));
  d.push(b.subarray(13));
  return d.end();
};

const sides = { decodeHello, split, bare } as const;
type Side = keyof typeof sides;
for (const fn of Object.values(sides)) run(fn, 200);
const totals: Record<Side, { ops: number; ms: number }> = {
  decodeHello: { ops: 0, ms: 0 },
  split: { ops: 0, ms: 0 },
  bare: { ops: 0, ms: 0 },
};
const rounds = 6;
for (let r = 0; r < rounds; r++) {
  for (const side of Object.keys(sides) as Side[]) {
    const m = run(sides[side], (seconds * 1000) / (rounds * 3));
    totals[side].ops += m.ops;
    totals[side].ms += m.ms;
  }
}
const rate = (s: Side) => (totals[s].ops * 1000) / totals[s].ms;
const ratio = rate('decodeHello') / rate('bare');
process.stdout.write(
  `${JSON.stringify(
    {
      bench: 'hello',
      what: 'decode a 32-byte version 2 hello into {version, adminCredentialsSet, retryCount, uuid, pid}',
      node: process.version,
      decodeHelloPerSec: Math.round(rate('decodeHello')),
      decodeInTwoReadsPerSec: Math.round(rate('split')),
      bareBufferReadPerSec: Math.round(rate('bare')),
      ratio: Number(ratio.toFixed(2)),
      target: 0.5,
      meetsTarget: ratio >= 0.5,
    },
    null,
    2,
  )}\n`,
);
