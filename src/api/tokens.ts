import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../config.ts';
import { ScsError } from '../errors.ts';
import { Secret } from '../secret.ts';
import type { Store } from '../store/store.ts';
import {
  API_GRANTS,
  API_ROLES,
  isApiGrant,
  isApiRole,
  type ApiGrant,
  type ApiRole,
  type ApiTokenRow,
} from '../store/tokens/tokens.ts';
import { GRANTABLE } from './access.ts';

/**
 * API tokens (docs/api.md, "Access control"): `scs_` + 43 base64url characters of 32 random
 * bytes (256 bits). The prefix makes a leaked token easy to recognise (secret scanners, logs).
 * Only the SHA-256 digest is stored: with 256 bits of entropy a fast hash is enough (nothing to
 * brute-force), and a stolen database yields no usable token.
 */
export const TOKEN_PREFIX = 'scs_';
const TOKEN_BYTES = 32;
const TOKEN_TEXT = /^scs_[A-Za-z0-9_-]{43}$/;
const TOKEN_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
/** File the first admin token is written to, in the data directory. */
export const BOOTSTRAP_TOKEN_FILE = 'admin.token';
export const BOOTSTRAP_TOKEN_NAME = 'admin';

export function newTokenText(): Secret<string> {
  return new Secret(TOKEN_PREFIX + randomBytes(TOKEN_BYTES).toString('base64url'));
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function checkTokenName(name: string): string {
  if (!TOKEN_NAME.test(name)) {
    throw new ScsError(
      'SCS_ARGUMENT_INVALID',
      `token name "${name}" is invalid: 1-64 characters of A-Z a-z 0-9 . _ -, starting with a letter or digit`,
    );
  }
  return name;
}

export function parseRole(text: string): ApiRole {
  const role = text.trim().toLowerCase();
  if (!isApiRole(role)) {
    throw new ScsError('SCS_ARGUMENT_INVALID', `role must be one of ${API_ROLES.join(', ')}, got "${text}"`);
  }
  return role;
}

export function parseGrants(texts: readonly string[], role: ApiRole): ApiGrant[] {
  const out = new Set<ApiGrant>();
  for (const t of texts) {
    const g = t.trim().toLowerCase();
    if (!isApiGrant(g)) {
      throw new ScsError('SCS_ARGUMENT_INVALID', `grant must be one of ${API_GRANTS.join(', ')}, got "${t}"`);
    }
    if (!GRANTABLE[g].includes(role)) {
      throw new ScsError(
        'SCS_ARGUMENT_INVALID',
        `a ${role} token cannot hold the ${g} grant (a ${role} sees no secrets)`,
      );
    }
    out.add(g);
  }
  return [...out].sort();
}

/** The audit actor for everything done with a token. */
export function tokenActor(name: string): string {
  return `api:${name}`;
}

export interface CreateTokenOptions {
  readonly name: string;
  readonly role: ApiRole;
  readonly grants?: readonly ApiGrant[];
  readonly actor: string;
  readonly reason?: string;
}

export interface CreatedToken {
  /** The token itself: shown once to whoever created it, never stored. */
  readonly token: Secret<string>;
  readonly row: ApiTokenRow;
}

export async function createToken(store: Store, options: CreateTokenOptions): Promise<CreatedToken> {
  const name = checkTokenName(options.name);
  const grants = parseGrants(options.grants ?? [], options.role);
  const token = newTokenText();
  const row = await store.tokens.create(
    { name, role: options.role, grants, hash: hashToken(token.reveal()) },
    { actor: options.actor, ...(options.reason === undefined ? {} : { reason: options.reason }) },
  );
  return { token, row };
}

/** Who is calling: the token's identity, never the token. */
export interface Principal {
  readonly tokenId: number;
  readonly name: string;
  readonly role: ApiRole;
  readonly grants: readonly ApiGrant[];
  /** Audit actor, `api:<name>`. */
  readonly actor: string;
}

export interface TokenAuthenticatorOptions {
  /** Least time between two `last_used_at` writes for one token (default 60 s). */
  readonly touchIntervalMs?: number;
  readonly now?: () => number;
}

/**
 * Turns an `Authorization: Bearer <token>` header into a Principal or SCS_UNAUTHENTICATED.
 * The lookup is by the SHA-256 of the presented token (an index seek: its timing depends on a
 * hash the caller cannot steer, so it reveals nothing about stored tokens), then the digests are
 * compared in constant time. Every failure gives the same message: no oracle for which part
 * was wrong.
 */
export class TokenAuthenticator {
  readonly #store: Store;
  readonly #touchIntervalMs: number;
  readonly #now: () => number;
  readonly #touched = new Map<number, number>();

  constructor(store: Store, options: TokenAuthenticatorOptions = {}) {
    this.#store = store;
    this.#touchIntervalMs = options.touchIntervalMs ?? 60_000;
    this.#now = options.now ?? Date.now;
  }

  async authenticate(header: string | undefined): Promise<Principal> {
    const match = header === undefined ? null : /^Bearer[ ]+(\S+)\s*$/i.exec(header);
    const presented = match?.[1];
    if (presented === undefined || !TOKEN_TEXT.test(presented)) throw unauthenticated(header === undefined);
    const digest = hashToken(presented);
    const row = await this.#store.tokens.findActiveByHash(digest);
    if (row === undefined || !timingSafeEqual(Buffer.from(row.hash, 'hex'), Buffer.from(digest, 'hex'))) {
      throw unauthenticated(false);
    }
    const now = this.#now();
    const last = this.#touched.get(row.id);
    if (last === undefined || now - last >= this.#touchIntervalMs) {
      this.#touched.set(row.id, now);
      // Last use is a convenience: a failure to record it must not refuse a valid token.
      await this.#store.tokens.markUsed(row.id, new Date(now)).catch(() => undefined);
    }
    return { tokenId: row.id, name: row.name, role: row.role, grants: row.grants, actor: tokenActor(row.name) };
  }
}

function unauthenticated(missing: boolean): ScsError {
  return new ScsError(
    'SCS_UNAUTHENTICATED',
    missing
      ? 'this route needs an API token: send "Authorization: Bearer <token>"'
      : 'the API token is malformed, unknown or revoked',
  );
}

export interface BootstrapResult {
  readonly created: boolean;
  /** Where the token was written (only when created). */
  readonly file?: string;
}

export interface BootstrapIo {
  out(line: string): void;
  err(line: string): void;
}

/**
 * On a start with no active API token, creates one admin token, writes it to
 * `<dataDir>/admin.token` (mode 0600, written atomically) and prints it once. The check and
 * the insert are one transaction, so two servers starting together create one token. The file
 * is written before the transaction commits: if writing fails nothing is stored, and if the
 * commit fails the next start writes a fresh token over the useless one.
 */
export async function ensureBootstrapToken(
  store: Store,
  config: Pick<Config, 'dataDir'>,
  io: BootstrapIo,
): Promise<BootstrapResult> {
  const file = path.join(config.dataDir, BOOTSTRAP_TOKEN_FILE);
  const token = await store.transaction(async (tx) => {
    if ((await tx.tokens.countActive()) > 0) return undefined;
    const created = await createToken(tx, {
      name: BOOTSTRAP_TOKEN_NAME,
      role: 'admin',
      actor: 'bootstrap',
      reason: 'first start: no active API token',
    });
    await writeSecretFile(file, `${created.token.reveal()}\n`);
    return created.token;
  });
  if (token === undefined) return { created: false };
  io.out(`created the first admin API token (shown once, keep it safe): ${token.reveal()}`);
  io.out(`  also written to ${file} (mode 0600); create more with "amt-scs token create", then delete that file`);
  return { created: true, file };
}

async function writeSecretFile(file: string, text: string): Promise<void> {
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(tmp, text, { mode: 0o600, flag: 'wx' });
    // The mode passed to open is masked by the umask, which can only remove bits; chmod makes it exact.
    await chmod(tmp, 0o600);
    await rename(tmp, file);
  } catch (cause) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw new ScsError('SCS_FILE_IO', `cannot write the admin token file ${file}`, { cause, details: { file } });
  }
}
