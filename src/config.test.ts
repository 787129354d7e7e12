import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { loadConfig } from './config.ts';
import { isScsError } from './errors.ts';

describe('config', () => {
  it('defaults to SQLite and a master key under ./data', () => {
    const c = loadConfig({ env: {} });
    assert.equal(c.dataDir, path.resolve('data'));
    assert.equal(c.db, `sqlite:${path.resolve('data', 'scs.db')}`);
    assert.equal(c.masterKeyFile, path.resolve('data', 'master.key'));
    assert.equal(c.helloPort, 9971);
    assert.equal(c.apiPort, 8080);
    assert.ok(Object.isFrozen(c));
  });

  it('takes flags over env over file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'scs-cfg-'));
    const file = path.join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ helloPort: 1001, apiPort: 1002, dataDir: '/f' }));
    const c = loadConfig({ flags: { helloPort: '3001' }, env: { SCS_API_PORT: '2002' }, file });
    assert.equal(c.helloPort, 3001);
    assert.equal(c.apiPort, 2002);
    assert.equal(c.dataDir, '/f');
    assert.equal(c.db, 'sqlite:/f/scs.db');
  });

  it('rejects a bad value naming the flag, the variable and where it came from', () => {
    assert.throws(
      () => loadConfig({ env: { SCS_HELLO_PORT: '70000' } }),
      (e) => isScsError(e, 'SCS_CONFIG_INVALID') && /--hello-port \/ SCS_HELLO_PORT \(from env/.test(e.message),
    );
    assert.throws(() => loadConfig({ env: { SCS_TLS_MIN_VERSION: 'TLSv1.3' } }), /expected one of/);
    assert.throws(() => loadConfig({ env: { SCS_TLS_MIN_VERSION: 'TLSv1.2', SCS_TLS_MAX_VERSION: 'TLSv1' } }), /above/);
  });

  it('rejects unknown keys in the config file', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'scs-cfg-'));
    const file = path.join(dir, 'c.json');
    writeFileSync(file, JSON.stringify({ helloPrt: 1 }));
    assert.throws(() => loadConfig({ env: {}, file }), /unknown setting "helloPrt"/);
  });
});
