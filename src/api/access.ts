import type { ApiGrant, ApiRole } from '../store/tokens/tokens.ts';

/**
 * What each role may do (docs/api.md, "Roles"). Routes name one permission each
 * (`config.permission`); `public` routes need no token. Default deny: a route under /api
 * without a permission cannot even be registered (src/api/app.ts).
 */
export const PERMISSIONS = [
  /** Read PSKs (no PPS), batches, profiles, devices (no passwords), jobs, tasks, events. */
  'read',
  /** Read a device's history (audit entries about that device). */
  'history.read',
  /** Read and verify the audit log. */
  'audit.read',
  /** Generate, revoke and import PSKs; start background tasks. */
  'psk.write',
  /** Export PSKs to a file: reveals every PPS in it and marks them exported. */
  'psk.export',
  /** Reveal one PPS or a device admin password (audited). */
  'secret.reveal',
  /** Create, change and delete profiles; bind batches to profiles. */
  'profile.write',
  /** Change devices (reserved for device actions such as forgetting a device). */
  'device.write',
  /** Create, list and revoke API tokens. */
  'token.manage',
  /** Prometheus metrics. */
  'metrics.read',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const ROLE_PERMISSIONS: Readonly<Record<ApiRole, readonly Permission[]>> = {
  admin: PERMISSIONS,
  operator: ['read', 'history.read', 'psk.write', 'profile.write', 'device.write', 'metrics.read'],
  auditor: ['read', 'history.read', 'audit.read', 'metrics.read'],
  viewer: ['read', 'metrics.read'],
};

/**
 * Rights a grant adds to a role. `reveal` lets an operator reveal secrets and export PSK files,
 * and an auditor reveal secrets (an auditor changes nothing, and an export marks PSKs
 * exported). A viewer never sees a secret: src/api/tokens.ts refuses to give one the grant.
 */
const GRANT_PERMISSIONS: Readonly<Record<ApiGrant, Partial<Record<ApiRole, readonly Permission[]>>>> = {
  reveal: { operator: ['secret.reveal', 'psk.export'], auditor: ['secret.reveal'] },
};

/** Roles that may hold each grant. */
export const GRANTABLE: Readonly<Record<ApiGrant, readonly ApiRole[]>> = {
  reveal: ['admin', 'operator', 'auditor'],
};

export interface Grantee {
  readonly role: ApiRole;
  readonly grants: readonly ApiGrant[];
}

export function permissionsOf(who: Grantee): ReadonlySet<Permission> {
  const out = new Set<Permission>(ROLE_PERMISSIONS[who.role]);
  for (const g of who.grants) for (const p of GRANT_PERMISSIONS[g][who.role] ?? []) out.add(p);
  return out;
}

export function can(who: Grantee, permission: Permission): boolean {
  return permissionsOf(who).has(permission);
}

/** For the OpenAPI document: who may call a route with this permission. */
export function describePermission(permission: Permission): string {
  const plain: string[] = [];
  const granted: string[] = [];
  for (const role of Object.keys(ROLE_PERMISSIONS) as ApiRole[]) {
    if (ROLE_PERMISSIONS[role].includes(permission)) plain.push(role);
    else if (GRANT_PERMISSIONS.reveal[role]?.includes(permission)) granted.push(`${role} with the reveal grant`);
  }
  return [...plain, ...granted].join(', ');
}
