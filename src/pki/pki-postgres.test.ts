import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { isScsError } from '../errors.ts';
import { freshSchema, pgTestServer } from '../store/postgres/test-server.ts';
import { openStore } from '../store/open.ts';
import { generateProvisioningChain } from './generate-chain.ts';
import { storeChain } from './service.ts';

const server = await pgTestServer();

/** The provisioning certificate table on PostgreSQL (schema version 5 through the migration translator). */
describe('provisioning certificates on PostgreSQL', { skip: server.skip }, () => {
  it('stores, lists, opens and removes a provisioning certificate, the key sealed in the bytea column', async () => {
    const fresh = await freshSchema(server.url as string);
    const dir = mkdtempSync(path.join(tmpdir(), 'scs-pki-pg-'));
    const { store } = await openStore({ db: fresh.url, masterKeyFile: path.join(dir, 'master.key') });
    try {
      const chain = await generateProvisioningChain({ dnsSuffix: 'example.com' });
      const row = await storeChain(store, chain, { dnsSuffix: 'example.com', actor: 'test' });
      assert.equal((await store.pki.list()).length, 1);
      assert.deepEqual(
        (await store.pki.openKey(row.id, { actor: 'test', purpose: 'check' })).reveal(),
        chain.keyPkcs8.reveal(),
      );
      const raw = await fresh.query('select hex(key) as k from pki_certs');
      const keyHex = chain.keyPkcs8.reveal().subarray(40, 72).toString('hex').toUpperCase();
      assert.ok(!String(raw[0]?.k).includes(keyHex), 'the key is in the database in clear');
      await assert.rejects(storeChain(store, chain, { dnsSuffix: 'example.com', actor: 'test' }), (e) =>
        isScsError(e, 'SCS_PKI_CONFLICT'),
      );
      await store.pki.remove(row.id, { actor: 'test' });
      assert.equal((await store.pki.list()).length, 0);
    } finally {
      await store.close();
      await fresh.drop();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
