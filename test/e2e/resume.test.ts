import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import type { PskPair } from '../../src/psk/formats/pair.ts';
import { addPsks, fleetFor, randomPort, startTestScs } from './harness.ts';

/**
 * A server stopped in the middle of a job (grace 0: the job is abandoned where it is) and
 * started again on the same data directory resumes the job (docs/provisioning.md, "Resume"):
 * before "commit sent" it starts over, after it verifies.
 */
describe('resuming unfinished jobs after a stop', () => {
  for (const when of ['before commit', 'after commit sent'] as const) {
    it(`a job interrupted ${when} is resumed at the next start and ends with the device provisioned once`, async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'scs-resume-'));
      const port = randomPort();
      const first = await startTestScs({ amtTlsPort: port, dir });
      const psks = await addPsks(first.store, 1, 'lab');
      await addPsks(first.store, 2, 'lab', 'available');
      // 300 ms per reply keeps CommitChanges in flight long enough to stop the server under it.
      const fleet = await fleetFor(first, psks, port, { latencyMs: 300 });
      try {
        const trigger = when === 'before commit' ? 'host-domain' : 'renew-psk';
        await new Promise<void>((resolve) =>
          first.server.runner.on('step', ({ step }) => {
            if (step === trigger) resolve();
          }),
        );
        if (when === 'after commit sent') await sleep(150);
        await first.stop();
        assert.equal(first.finished.length, 0);

        const second = await startTestScs({ amtTlsPort: port, dir });
        try {
          assert.equal(second.server.resumed, 1);
          const [f] = await second.waitFinished(1, 60_000);
          assert.equal(f?.state, 'succeeded', `${f?.code ?? ''} ${f?.job.errorMessage ?? ''}`);
          assert.equal(f.job.attempts, 2);
          const [started] = await second.store.audit.list({ action: 'job.started', limit: 1 });
          assert.equal(started?.detail.resumed, true);
          assert.equal(started.detail.commitSent, when === 'after commit sent');
          await fleet.waitFor('all-provisioned', { timeoutMs: 10_000 });
          const counts = await second.store.psks.countByState();
          assert.deepEqual([counts.consumed, counts.in_use, counts.exported], [1, 1, 0]);
          assert.equal((await second.store.psks.get((psks[0] as PskPair).pid))?.state, 'consumed');
          const jobs = await second.store.jobs.list();
          assert.equal(jobs.length, 1);
          const provisioned = (await second.store.audit.list({ action: 'device.provisioned' })).length;
          assert.equal(provisioned, 1);
          assert.equal((await second.store.audit.verify()).ok, true);
        } finally {
          await second.stop();
        }
      } finally {
        await fleet.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
