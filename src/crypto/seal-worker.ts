import { parentPort, workerData } from 'node:worker_threads';
import { SecretBox } from './envelope.ts';
import type { SealRequest, SealResponse, SealWorkerData } from './seal-pool.ts';

/**
 * Worker side of SecretBox.sealMany: seals packed batches under the data key it was started
 * with and transfers the blobs back. The plaintext buffer is zeroed once sealed. Error
 * messages never include plaintext (the box's errors name owners and key ids only).
 */
const data = workerData as SealWorkerData;
const box = new SecretBox([[data.keyId, Buffer.from(data.key)]], data.keyId);
data.key.fill(0);

parentPort?.on('message', (m: SealRequest) => {
  let reply: SealResponse;
  const plains = Buffer.from(m.data);
  try {
    const sealed = box.sealPacked(plains, m.plainLengths, m.aadLengths);
    reply = { id: m.id, blobs: sealed.buffer as ArrayBuffer };
    parentPort?.postMessage(reply, [reply.blobs]);
  } catch (e) {
    reply = { id: m.id, error: e instanceof Error ? e.message : 'seal failed' };
    parentPort?.postMessage(reply);
  } finally {
    plains.fill(0);
  }
});
