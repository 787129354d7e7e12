/**
 * The one error catalogue. Every error the server raises on purpose is an ScsError with a
 * stable code from this list; docs/errors.md documents each code (a test keeps the two in
 * step). Messages are for people and never contain a PPS, password or key.
 */
export const ERROR_CODES = {
  SCS_CONFIG_INVALID: 'A setting is missing, malformed or out of range.',
  SCS_ARGUMENT_INVALID: 'A command or API argument (count, limit, batch name, ...) is missing, malformed or out of range.',
  SCS_MASTER_KEY_INVALID: 'The master key file or variable does not hold a 32-byte key.',
  SCS_MASTER_KEY_MISMATCH: 'The master key does not open this database (wrong key or a different installation).',
  SCS_MASTER_KEY_ROTATED: 'The master key was replaced by a key rotation: install the new key file (from the node that rotated).',
  SCS_PID_INVALID: 'A Provisioning ID is not 8 characters of 0-9/A-Z with a valid check character.',
  SCS_PPS_INVALID: 'A Provisioning Passphrase is not 32 characters of 0-9/A-Z with valid check characters.',
  SCS_PSK_NOT_FOUND: 'No PSK with this PID is in the database.',
  SCS_PSK_STATE_INVALID: 'The PSK is not in a state that allows this change.',
  SCS_PSK_CONFLICT: 'A PID already exists here with a different PPS.',
  SCS_BATCH_NOT_FOUND: 'No PSK batch with this name exists.',
  SCS_STORE_UNSUPPORTED: 'The database URL names an engine this server does not support.',
  SCS_STORE_SCHEMA_NEWER: 'The database was written by a newer amt-scs; upgrade before using it.',
  SCS_STORE_FAILED: 'The database refused or failed an operation.',
  SCS_AUDIT_CHAIN_BROKEN: 'The audit log hash chain does not verify: an entry was changed, removed or inserted.',
  SCS_SECRET_UNREADABLE: 'A stored secret does not decrypt: unknown data key, damaged or tampered ciphertext, or moved to another owner.',
  SCS_FILE_IO: 'A file could not be read or written.',
  SCS_FORMAT_UNKNOWN: 'The file is not a CSV, setup.bin or bundle that this server understands.',
  SCS_CSV_MALFORMED: 'A CSV file has a line that is not PID,PPS.',
  SCS_SETUPBIN_MALFORMED: 'A setup.bin file does not follow the USB one-touch layout.',
  SCS_BUNDLE_MALFORMED: 'A transfer bundle is damaged, truncated or not a bundle.',
  SCS_BUNDLE_AUTH_FAILED: 'A transfer bundle does not authenticate: wrong passphrase or tampered content.',
  SCS_PASSPHRASE_MISSING: 'A bundle passphrase is needed and none was given.',
  SCS_EXPORT_EMPTY: 'No PSK matches what was asked to be exported.',
  SCS_PASSPHRASE_WEAK: 'A new bundle passphrase is too short (at least 12 characters).',
  SCS_SETUPBIN_UNMATCHED: 'A setup.bin coming back cannot be matched to one export of this server, or contradicts its export log.',
  SCS_FORMAT_INPUT_INVALID: 'A value cannot be written in the chosen file format: missing, too long or unsupported.',
  SCS_HELLO_MALFORMED: 'A hello message does not follow the version 2 or 3 layout.',
  SCS_HELLO_UNKNOWN_PID: 'A hello names a PID that is not in the database.',
  SCS_HELLO_PID_UNUSABLE: 'A hello names a PID that is consumed, revoked or transferred.',
  SCS_HELLO_PKI_UNSUPPORTED: 'A version 3 (certificate) hello arrived; certificate-based setup is not configured.',
  SCS_LISTEN_FAILED: 'A server socket could not be opened (address in use, not available or not permitted).',
  SCS_TLS_UNKNOWN_IDENTITY: 'The device rejected the PSK identity (TLS alert 115): it does not hold this PID.',
  SCS_TLS_BAD_KEY: 'The TLS-PSK handshake failed on the key (bad record MAC / decrypt error): the PPS differs.',
  SCS_TLS_NO_COMMON_SUITE: 'The device and server share no TLS version or cipher suite.',
  SCS_TLS_REFUSED: 'The device refused the TLS connection (nothing listens on its port).',
  SCS_TLS_TIMEOUT: 'The device did not complete the TLS handshake in time.',
  SCS_TLS_FAILED: 'The TLS connection failed for another reason.',
  SCS_TLS_CERT_REJECTED: 'The device TLS certificate does not chain to the trusted CA or does not name the device.',
  SCS_AMT_AUTH_FAILED: 'The device refused the HTTP Digest credentials.',
  SCS_AMT_HTTP: 'The device answered with an unexpected HTTP status or a broken HTTP message.',
  SCS_AMT_CONNECTION_LOST: 'The connection to the device closed before the reply arrived.',
  SCS_AMT_TIMEOUT: 'The device did not answer a call in time.',
  SCS_WSMAN_FAULT: 'The device answered a WS-Management call with a SOAP fault.',
  SCS_WSMAN_RETURN_VALUE: 'The device answered a WS-Management method with a non-zero ReturnValue (PT_STATUS).',
  SCS_WSMAN_MALFORMED_REPLY: 'The device answered with XML that is not the expected WS-Management reply.',
  SCS_DEVICE_STATE_INVALID: 'The device is not in the provisioning state this step needs.',
  SCS_DEVICE_NOT_FOUND: 'No device with this UUID is known.',
  SCS_PROFILE_INVALID: 'A provisioning profile field is missing or invalid.',
  SCS_PROFILE_NOT_FOUND: 'No provisioning profile with this name exists.',
  SCS_PROFILE_CONFLICT: 'A provisioning profile with this name exists already, or it changed since it was read (version mismatch).',
  SCS_NO_RENEWAL_PSK: 'No available PSK is left to give the device as its new PSK.',
  SCS_CERT_REQUEST_INVALID: 'A device certificate request (PKCS#10) does not parse or its signature does not verify.',
  SCS_VERIFY_FAILED: 'After commit, the device could not be confirmed Post-provisioned over TLS.',
  SCS_JOB_FAILED: 'A provisioning job ended without configuring the device.',
  SCS_SIM_CONFIG_INVALID: 'A simulator device or fleet setting is invalid.',
  SCS_SIM_DEADLINE: 'The simulated fleet did not reach the awaited state before its deadline.',
  SCS_SIM_WORKER_FAILED: 'A simulator fleet worker process failed or exited unexpectedly.',
  SCS_UNAUTHENTICATED: 'No valid API token: the Authorization header is missing or malformed, or the token is unknown or revoked.',
  SCS_FORBIDDEN: "The API token's role or grants do not allow this action.",
  SCS_TOKEN_NOT_FOUND: 'No active API token has this name.',
  SCS_TOKEN_NAME_TAKEN: 'An active API token already has this name.',
  SCS_PRECONDITION_REQUIRED: 'A change to this resource needs an If-Match header with its current ETag.',
  SCS_PRECONDITION_FAILED: 'The If-Match ETag is not the current one: the resource changed since it was read.',
  SCS_ROUTE_NOT_FOUND: 'No API route has this method and path.',
  SCS_TASK_NOT_FOUND: 'No background task with this id is known (tasks live in memory until the server restarts).',
  SCS_REQUEST_TOO_LARGE: 'The request body is larger than this route accepts.',
  SCS_MEDIA_TYPE_INVALID: 'The request body has a content type this route does not accept.',
  SCS_INTERNAL: 'An unexpected server error; the server log has the details.',
  SCS_JOB_NOT_FOUND: 'No provisioning job with this id exists.',
  SCS_PKI_FILE_INVALID: 'A provisioning certificate file is not a PKCS#12 (or PEM) file amt-scs can read, or holds no single private key.',
  SCS_PKI_PASSPHRASE_WRONG: 'The PKCS#12 passphrase does not open the provisioning certificate file.',
  SCS_PKI_CHAIN_INVALID: 'The provisioning certificate chain is unusable: no root, broken signatures, not a provisioning certificate, or not RSA.',
  SCS_PKI_CERT_EXPIRED: 'The provisioning certificate (or a certificate of its chain) has expired or is not valid yet: renew it and import the new file.',
  SCS_PKI_DNS_SUFFIX_MISMATCH: 'The provisioning certificate CN is not inside the DNS suffix given, or the device DNS suffix does not fit the certificate.',
  SCS_PKI_NO_MATCHING_ROOT: 'No stored provisioning certificate has a root whose hash the device trusts.',
  SCS_PKI_CERT_REFUSED: 'The device closed the mutual-TLS session after the handshake: it refused the provisioning certificate.',
  SCS_PKI_NOT_FOUND: 'No provisioning certificate with this id is stored.',
  SCS_PKI_CONFLICT: 'This provisioning certificate is already stored.',
} as const satisfies Record<string, string>;

export type ErrorCode = keyof typeof ERROR_CODES;

export interface ScsErrorOptions {
  cause?: unknown;
  /** Extra facts for logs and API problem bodies; never secrets. */
  details?: Readonly<Record<string, string | number | boolean | null>>;
}

export class ScsError extends Error {
  override readonly name = 'ScsError';
  readonly code: ErrorCode;
  readonly details: Readonly<Record<string, string | number | boolean | null>>;

  constructor(code: ErrorCode, message: string, options: ScsErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
  }
}

export function isScsError(value: unknown, code?: ErrorCode): value is ScsError {
  return value instanceof ScsError && (code === undefined || value.code === code);
}
