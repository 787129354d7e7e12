import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isScsError } from '../../src/errors.ts';
import { generatePid, generatePps } from '../../src/psk/generate.ts';
import { decodeDigestPassword, isStrongPassword } from './model.ts';
import { resolveSetup } from './setup.ts';

const UUID = '4C4C4544-0035-5910-8051-B8C04F4E5A31';

function refused(input: unknown, code = 'SCS_SIM_CONFIG_INVALID'): string {
  try {
    resolveSetup(input);
  } catch (e) {
    assert.ok(isScsError(e), String(e));
    assert.equal(e.code, code);
    return e.message;
  }
  assert.fail('expected the setup to be refused');
}

describe('device setup', () => {
  it('defaults to AMT 6.2.0, In with a PSK (Pre without), the factory MEBx password and a random realm', () => {
    const s = resolveSetup({ uuid: UUID, pid: generatePid(), pps: generatePps() });
    assert.equal(s.uuid, UUID.toLowerCase());
    assert.equal(s.amtVersion, '6.2.0');
    assert.equal(s.provisioningState, 1);
    assert.equal(s.provisioningMode, 1);
    assert.equal(s.mebxPassword.reveal(), 'admin');
    assert.equal(resolveSetup({ uuid: UUID }).provisioningState, 0);
  });

  it('verifies PID and PPS check characters on load, as firmware does', () => {
    const pid = generatePid();
    const pps = generatePps();
    const badPid = pid.slice(0, 7) + (pid[7] === 'A' ? 'B' : 'A');
    refused({ uuid: UUID, pid: badPid, pps }, 'SCS_PID_INVALID');
    const badPps = `${pps.slice(0, 3)}${pps[3] === 'A' ? 'B' : 'A'}${pps.slice(4)}`;
    const msg = refused({ uuid: UUID, pid, pps: badPps }, 'SCS_PPS_INVALID');
    assert.ok(!msg.includes(badPps));
    // Display forms are accepted and canonicalised.
    const dashed = resolveSetup({ uuid: UUID, pid: `${pid.slice(0, 4)}-${pid.slice(4)}`.toLowerCase(), pps });
    assert.equal(dashed.psk?.pid, pid);
  });

  it('names the field it refuses and never echoes a secret', () => {
    assert.match(refused({ uuid: 'nope' }), /UUID/);
    assert.match(refused({ uuid: UUID, digestRealm: 'Digest:abc' }), /digestRealm/);
    assert.match(refused({ uuid: UUID, provisioningState: 'In' }), /In needs a pid and pps/);
    assert.match(refused({ uuid: UUID, pid: generatePid() }), /pid\/pps/);
    assert.match(refused({ uuid: UUID, amtVersion: '6' }), /amtVersion/);
    assert.match(refused({ uuid: UUID, hostName: 'a_b' }), /hostName/);
    assert.match(refused({ uuid: UUID, colour: 'blue' }), /colour is not a known setting/);
    const pw = 'secret-pw-that-is-way-too-long-for-mebx';
    assert.ok(!refused({ uuid: UUID, mebxPassword: pw }).includes(pw));
    assert.match(refused({ uuid: UUID, admin: { username: 'admin', digestHa1: 'xyz' } }), /digestHa1/);
  });

  it('offers certificate-based setup only from AMT 7 on, as firmware does', () => {
    assert.equal(resolveSetup({ uuid: UUID, provisioningState: 'In', pki: {} }).amtVersion, '11.8.50');
    assert.match(
      refused({ uuid: UUID, provisioningState: 'In', amtVersion: '6.2.0', pki: {} }),
      /certificate-based setup \(pki\) needs AMT 7 or later/,
    );
  });

  it('accepts the state by name or number', () => {
    const pid = generatePid();
    const pps = generatePps();
    assert.equal(resolveSetup({ uuid: UUID, pid, pps, provisioningState: 2 }).provisioningState, 2);
    assert.equal(resolveSetup({ uuid: UUID, pid, pps, provisioningState: 'Post' }).provisioningState, 2);
  });
});

describe('AMT password and digest rules', () => {
  it('applies the strong-password rule: 8-32, upper, lower, digit, a special other than _ and space', () => {
    for (const ok of ['P@ssw0rd', 'Abcdef1!', `Aa1!${'x'.repeat(28)}`]) assert.equal(isStrongPassword(ok), true, ok);
    for (const bad of [
      'Pa1!',
      'password1!',
      'PASSWORD1!',
      'Password!!',
      'Password12',
      'Pass_word12',
      'Pass word12',
      'Pass:w0rd',
      'Pa,ss1word',
      `Aa1!${'x'.repeat(29)}`,
      'Pässw0rd!',
    ]) {
      assert.equal(isStrongPassword(bad), false, bad);
    }
  });

  it('decodes DigestPassword from base64 of 16 bytes or 32 hex digits, nothing else', () => {
    const bytes = Buffer.from('00112233445566778899aabbccddeeff', 'hex');
    assert.deepEqual(decodeDigestPassword(bytes.toString('base64')), bytes);
    assert.deepEqual(decodeDigestPassword(bytes.toString('hex').toUpperCase()), bytes);
    assert.equal(decodeDigestPassword(Buffer.alloc(15).toString('base64')), undefined);
    assert.equal(decodeDigestPassword('not a digest'), undefined);
  });
});
