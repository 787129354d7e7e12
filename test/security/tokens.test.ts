import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createToken, hashToken, TokenAuthenticator } from '../../src/api/tokens.ts';
import { isScsError } from '../../src/errors.ts';
import type { Store } from '../../src/store/store.ts';
import { useTempStore } from '../helpers/temp-store.ts';

/**
 * Token comparison (docs/security.md, "Transport"): the store is asked by the SHA-256 of the
 * presented token, never by the token, and what the lookup returns is compared again, digest to
 * digest (timingSafeEqual), so a lookup that matched loosely (collation, truncation, a bug in an
 * adapter) cannot let a different token in. Timing itself is not measured here (no wall clock in
 * unit tests): the test pins the structure that makes the comparison constant-time.
 */
describe('API token comparison', () => {
  const temp = useTempStore('scs-sec-tokens-');

  /** The real store, with the token lookup observed and optionally bent. */
  function observed(store: Store, bend?: (hash: string) => string): { store: Store; asked: string[] } {
    const asked: string[] = [];
    const tokens = Object.create(store.tokens) as Store['tokens'];
    tokens.findActiveByHash = (hash: string) => {
      asked.push(hash);
      return store.tokens.findActiveByHash(bend === undefined ? hash : bend(hash));
    };
    return { store: Object.assign(Object.create(store) as Store, { tokens }), asked };
  }

  it('looks a token up by its SHA-256 digest only, never by the token text', async () => {
    const { token } = await createToken(temp.store, { name: 'ops', role: 'operator', actor: 'test' });
    const { store, asked } = observed(temp.store);
    const principal = await new TokenAuthenticator(store).authenticate(`Bearer ${token.reveal()}`);
    assert.equal(principal.name, 'ops');
    assert.deepEqual(asked, [hashToken(token.reveal())]);
    assert.ok(!asked.some((h) => h.includes(token.reveal().slice(4, 20))));
  });

  it('refuses a token whose lookup returned another token row (the digests are compared again)', async () => {
    const { token: real } = await createToken(temp.store, { name: 'admin2', role: 'admin', actor: 'test' });
    const realHash = hashToken(real.reveal());
    // A lookup that answers every query with the admin row: only the second comparison stands in the way.
    const { store, asked } = observed(temp.store, () => realHash);
    const guess = `scs_${'A'.repeat(43)}`;
    await assert.rejects(new TokenAuthenticator(store).authenticate(`Bearer ${guess}`), (e: unknown) =>
      isScsError(e, 'SCS_UNAUTHENTICATED'),
    );
    assert.deepEqual(asked, [hashToken(guess)]);
    // The same bent store still accepts the real token: the refusal above is the comparison.
    assert.equal((await new TokenAuthenticator(store).authenticate(`Bearer ${real.reveal()}`)).name, 'admin2');
  });
});
