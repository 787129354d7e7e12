import { ScsError } from '../errors.ts';

/**
 * Optimistic concurrency (RFC 9110 §8.8.3, §13.1.1): a versioned resource's ETag is its
 * version as a strong entity tag, `"7"`. A change must send `If-Match` with the ETag it read:
 * missing -> 428 (RFC 6585 §3), stale -> 412. `If-Match: *` matches any current version.
 * Weak tags (`W/"7"`) never match: If-Match uses the strong comparison.
 */
export function etagOf(version: number): string {
  return `"${version}"`;
}

/** Whether an If-None-Match header matches the current version (GET: 304 Not Modified). */
export function noneMatch(header: string | undefined, version: number): boolean {
  if (header === undefined) return false;
  if (header.trim() === '*') return true;
  // If-None-Match uses the weak comparison: W/"7" matches "7".
  return parseTags(header).some((t) => t.replace(/^W\//, '') === etagOf(version));
}

/**
 * Checks If-Match against the current version and returns the version the change may assume.
 * SCS_PRECONDITION_REQUIRED when absent, SCS_PRECONDITION_FAILED when no tag matches.
 */
export function checkIfMatch(header: string | undefined, current: number, what: string): number {
  if (header === undefined || header.trim() === '') {
    throw new ScsError(
      'SCS_PRECONDITION_REQUIRED',
      `changing ${what} needs If-Match with its current ETag (GET it first; it is ${etagOf(current)} now)`,
      { details: { etag: etagOf(current) } },
    );
  }
  if (header.trim() === '*') return current;
  if (!parseTags(header).includes(etagOf(current))) {
    throw new ScsError(
      'SCS_PRECONDITION_FAILED',
      `${what} changed since it was read: its ETag is ${etagOf(current)}, not ${header.trim()}`,
      { details: { etag: etagOf(current) } },
    );
  }
  return current;
}

function parseTags(header: string): string[] {
  return [...header.matchAll(/(?:W\/)?"[^"]*"/g)].map((m) => m[0]);
}
