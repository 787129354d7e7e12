import { parentPort, workerData } from 'node:worker_threads';
import { SecretBox } from './envelope.ts';
import type { SealRequest, SealResponse, SealWorkerData } from './seal-pool.ts';

/**
 * Worker side of SecretBox.sealMany / openMany: seals or opens packed batches under the data
 * keys it was started with and transfers the result back. A plaintext input buffer is zeroed
 * once sealed. Error messages never include plaintext (the box's errors name owners and key ids
 * only).
 */
const data = workerData as SealWorkerData;
const copies = data.keys.map((k) => [k.id, Buffer.from(k.key)] as const);
const box = new SecretBox(copies, data.currentKeyId);
for (const k of data.keys) k.key.fill(0);
for (const [, key] of copies) key.fill(0);

parentPort?.on('message', (m: SealRequest) => {
  let reply: SealResponse;
  const input = Buffer.from(m.data);
  try {
    const out =
      m.op === 'open' ? box.openPacked(input, m.lengths, m.aadLengths) : box.sealPacked(input, m.lengths, m.aadLengths);
    reply = { id: m.id, out: out.buffer as ArrayBuffer };
    parentPort?.postMessage(reply, [reply.out]);
  } catch (e) {
    reply = { id: m.id, error: e instanceof Error ? e.message : `${m.op} failed` };
    parentPort?.postMessage(reply);
  } finally {
    if (m.op === 'seal') input.fill(0);
  }
});
