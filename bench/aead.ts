/**
 * Sealing and opening PPS in bulk: the native batch AES-GCM (native/aead.c) against node:crypto
 * one call at a time (the baseline: the same SecretBox without the addon, inline), side by side
 * in alternating rounds on one thread. JSON on stdout: µs per secret for each, and the ratios.
 *
 *   node --import tsx bench/aead.ts [--count N] [--rounds R]
 */
import { loadavg } from 'node:os';
import { generateDataKey, SecretBox } from '../src/crypto/envelope.ts';
import { nativeAead, nativeAeadStatus } from '../src/crypto/native-aead.ts';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
}

const count = arg('--count', 200_000);
const rounds = arg('--rounds', 3);
if (nativeAead === null) throw new Error(`the native AES-GCM is not loaded: ${nativeAeadStatus}`);

const key = generateDataKey();
const native = new SecretBox([[1, Buffer.from(key)]], 1);
const js = new SecretBox([[1, Buffer.from(key)]], 1, { aead: null });
// PPS-sized secrets owned by PID-sized strings, packed as sealPacked / openPacked take them.
const plainLengths = new Uint32Array(count).fill(32);
const aadLengths = new Uint32Array(count).fill(8);
const pids = Buffer.alloc(count * 8);
for (let i = 0; i < count; i++) pids.write(String(i).padStart(8, '0'), i * 8, 'latin1');
const plains = Buffer.alloc(count * 32, 'A');
const sealInput = Buffer.concat([plains, pids]);

function timed(fn: () => void): number {
  const t = performance.now();
  fn();
  return ((performance.now() - t) * 1000) / count;
}

const us = { nativeSeal: [] as number[], jsSeal: [] as number[], nativeOpen: [] as number[], jsOpen: [] as number[] };
let check = 0;
for (let r = 0; r < rounds; r++) {
  let sealed: Buffer = Buffer.alloc(0);
  us.nativeSeal.push(timed(() => (sealed = native.sealPacked(sealInput, plainLengths, aadLengths))));
  us.jsSeal.push(timed(() => void js.sealPacked(sealInput, plainLengths, aadLengths)));
  // Both open the natively sealed blobs; the JS path with SecretBox's own inline loop.
  const openInput = Buffer.concat([sealed, pids]);
  const blobLengths = new Uint32Array(count).fill(sealed.length / count);
  let a: Buffer = Buffer.alloc(0);
  let b: Buffer = Buffer.alloc(0);
  us.nativeOpen.push(timed(() => (a = native.openPacked(openInput, blobLengths, aadLengths))));
  us.jsOpen.push(timed(() => (b = js.openPacked(openInput, blobLengths, aadLengths))));
  if (!a.equals(plains) || !b.equals(plains)) throw new Error('a round did not open to what was sealed');
  check += a.length;
}

const median = (xs: number[]): number => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] as number;
const m = {
  nativeSealUs: median(us.nativeSeal),
  nodeCryptoSealUs: median(us.jsSeal),
  nativeOpenUs: median(us.nativeOpen),
  nodeCryptoOpenUs: median(us.jsOpen),
};
const round = (x: number): number => Number(x.toFixed(3));
console.log(
  JSON.stringify({
    count,
    rounds,
    loadavg1: round(loadavg()[0] ?? 0),
    ...Object.fromEntries(Object.entries(m).map(([k, v]) => [k, round(v)])),
    sealSpeedup: round(m.nodeCryptoSealUs / m.nativeSealUs),
    openSpeedup: round(m.nodeCryptoOpenUs / m.nativeOpenUs),
    openedBytes: check,
  }),
);
