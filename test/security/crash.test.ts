import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { runCrashRounds } from '../../scripts/crash-rounds.ts';

/**
 * The quick variant of `npm run crash` (scripts/crash-rounds.ts, docs/security.md "Crash
 * consistency"): one round of each kind (generate, import, export, provisioning), each real
 * amt-scs process killed with SIGKILL at a random moment while it works, the invariants checked
 * after each restart.
 */
describe('crash consistency (SIGKILL at a random moment)', { timeout: 900_000 }, () => {
  it('after a kill during generate, import, export and provisioning: no half import, no PSK in two states or consumed twice, the audit chain verifies, every job ends with a reason', async () => {
    const lines: string[] = [];
    const summary = await runCrashRounds({
      rounds: 4,
      killWindow: { fromMs: 0, toMs: 2500 },
      log: (line) => lines.push(line),
    });
    assert.equal(summary.rounds, 4, lines.join('\n'));
    assert.equal(summary.errors, 0, lines.join('\n'));
    assert.equal(summary.violations, 0, lines.join('\n'));
    assert.ok(summary.results.every((r) => r.killAtMs !== null));
  });
});
