import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ERROR_CODES, ScsError, type ErrorCode } from '../errors.ts';
import { can, describePermission, permissionsOf, PERMISSIONS } from './access.ts';
import { problemFor, statusFor } from './problem.ts';

describe('problem details', () => {
  it('gives every error code a client or server status, and the stable code a type URI', () => {
    for (const code of Object.keys(ERROR_CODES) as ErrorCode[]) {
      const status = statusFor(code);
      assert.ok(status >= 400 && status <= 504, `${code}: ${status}`);
    }
    assert.deepEqual(
      (
        [
          'SCS_UNAUTHENTICATED',
          'SCS_FORBIDDEN',
          'SCS_PSK_NOT_FOUND',
          'SCS_PSK_STATE_INVALID',
          'SCS_PRECONDITION_FAILED',
          'SCS_PRECONDITION_REQUIRED',
          'SCS_STORE_FAILED',
        ] as const
      ).map(statusFor),
      [401, 403, 404, 409, 412, 428, 500],
    );
  });

  it('builds an RFC 9457 body from an ScsError: type, title, status, detail, code, details', () => {
    const p = problemFor(
      new ScsError('SCS_PSK_NOT_FOUND', 'no PSK with PID ABCD-EFG1', { details: { pid: 'ABCDEFG1' } }),
      {
        requestId: 'r1',
      },
    );
    assert.deepEqual(p, {
      type: 'urn:amt-scs:error:SCS_PSK_NOT_FOUND',
      title: ERROR_CODES.SCS_PSK_NOT_FOUND,
      status: 404,
      detail: 'no PSK with PID ABCD-EFG1',
      code: 'SCS_PSK_NOT_FOUND',
      details: { pid: 'ABCDEFG1' },
      requestId: 'r1',
    });
  });

  it('names the field of a domain validation error like a schema error', () => {
    const p = problemFor(
      new ScsError('SCS_PROFILE_INVALID', 'profile field domainName: bad', { details: { field: 'domainName' } }),
    );
    assert.deepEqual(p.errors, [{ field: 'domainName', message: 'profile field domainName: bad' }]);
  });
});

describe('roles and grants', () => {
  it('gives admin everything, and the reveal grant only what its role may have', () => {
    assert.deepEqual([...permissionsOf({ role: 'admin', grants: [] })].sort(), [...PERMISSIONS].sort());
    assert.equal(can({ role: 'operator', grants: [] }, 'secret.reveal'), false);
    assert.equal(can({ role: 'operator', grants: ['reveal'] }, 'secret.reveal'), true);
    assert.equal(can({ role: 'operator', grants: ['reveal'] }, 'psk.export'), true);
    assert.equal(can({ role: 'auditor', grants: ['reveal'] }, 'secret.reveal'), true);
    assert.equal(can({ role: 'auditor', grants: ['reveal'] }, 'psk.export'), false, 'an export changes states');
    assert.equal(can({ role: 'viewer', grants: ['reveal'] }, 'secret.reveal'), false, 'a viewer never sees a secret');
    assert.equal(can({ role: 'viewer', grants: [] }, 'audit.read'), false);
    assert.equal(can({ role: 'auditor', grants: [] }, 'psk.write'), false);
  });

  it('describes who holds a permission for the OpenAPI document', () => {
    assert.equal(
      describePermission('secret.reveal'),
      'admin, operator with the reveal grant, auditor with the reveal grant',
    );
    assert.equal(describePermission('read'), 'admin, operator, auditor, viewer');
  });
});
