import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { ERROR_CODES, isScsError, ScsError, type ErrorCode } from '../errors.ts';
import type { Logger } from '../log.ts';

/**
 * RFC 9457 problem details. The only place that knows which HTTP status an error code gets;
 * every error response of the API is built here (docs/api.md, "Errors").
 */
export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface FieldError {
  /** Where: `body/count`, `querystring/limit`, `params/pid`, `headers/if-match`. */
  readonly field: string;
  readonly message: string;
}

export interface Problem {
  /** `urn:amt-scs:error:<CODE>`: one problem type per stable error code (docs/errors.md). */
  readonly type: string;
  /** The code's one-line meaning from docs/errors.md: the same for every occurrence. */
  readonly title: string;
  readonly status: number;
  /** What went wrong this time. Never a stack trace, never a secret. */
  readonly detail: string;
  readonly code: ErrorCode;
  /** Facts from ScsError.details (never secrets by that type's contract). */
  readonly details?: Readonly<Record<string, string | number | boolean | null>>;
  readonly errors?: readonly FieldError[];
  readonly requestId?: string;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  SCS_ARGUMENT_INVALID: 400,
  SCS_PID_INVALID: 400,
  SCS_PPS_INVALID: 400,
  SCS_PROFILE_INVALID: 400,
  SCS_FORMAT_UNKNOWN: 400,
  SCS_CSV_MALFORMED: 400,
  SCS_SETUPBIN_MALFORMED: 400,
  SCS_BUNDLE_MALFORMED: 400,
  SCS_PASSPHRASE_MISSING: 400,
  SCS_PASSPHRASE_WEAK: 400,
  SCS_FORMAT_INPUT_INVALID: 400,
  SCS_HELLO_MALFORMED: 400,
  SCS_CERT_REQUEST_INVALID: 400,
  SCS_UNAUTHENTICATED: 401,
  SCS_FORBIDDEN: 403,
  SCS_PSK_NOT_FOUND: 404,
  SCS_BATCH_NOT_FOUND: 404,
  SCS_DEVICE_NOT_FOUND: 404,
  SCS_PROFILE_NOT_FOUND: 404,
  SCS_JOB_NOT_FOUND: 404,
  SCS_TOKEN_NOT_FOUND: 404,
  SCS_ROUTE_NOT_FOUND: 404,
  SCS_TASK_NOT_FOUND: 404,
  SCS_PSK_STATE_INVALID: 409,
  SCS_PSK_CONFLICT: 409,
  // A profile name that exists. (A stale version is answered 412 by the profile routes.)
  SCS_PROFILE_CONFLICT: 409,
  SCS_TOKEN_NAME_TAKEN: 409,
  SCS_DEVICE_STATE_INVALID: 409,
  SCS_EXPORT_EMPTY: 409,
  SCS_NO_RENEWAL_PSK: 409,
  // The key's records contradict this server's export log: the file and the database disagree.
  SCS_SETUPBIN_UNMATCHED: 409,
  SCS_PRECONDITION_FAILED: 412,
  SCS_REQUEST_TOO_LARGE: 413,
  SCS_MEDIA_TYPE_INVALID: 415,
  // The bundle is well-formed but the passphrase does not open it.
  SCS_BUNDLE_AUTH_FAILED: 422,
  SCS_PRECONDITION_REQUIRED: 428,
  // Failures on the device side, should one ever surface through a request: a bad gateway.
  SCS_TLS_UNKNOWN_IDENTITY: 502,
  SCS_TLS_BAD_KEY: 502,
  SCS_TLS_NO_COMMON_SUITE: 502,
  SCS_TLS_REFUSED: 502,
  SCS_TLS_TIMEOUT: 504,
  SCS_TLS_FAILED: 502,
  SCS_TLS_CERT_REJECTED: 502,
  SCS_AMT_AUTH_FAILED: 502,
  SCS_AMT_HTTP: 502,
  SCS_AMT_CONNECTION_LOST: 502,
  SCS_AMT_TIMEOUT: 504,
  SCS_WSMAN_FAULT: 502,
  SCS_WSMAN_RETURN_VALUE: 502,
  SCS_WSMAN_MALFORMED_REPLY: 502,
  SCS_VERIFY_FAILED: 502,
};

/**
 * The HTTP status of an error code. Codes added later by other modules fall back by their
 * name (`*_NOT_FOUND` 404, `*_INVALID` 400, `*_CONFLICT` 409) and otherwise 500, so a new code
 * is never a crash here; give it an explicit entry above when that guess is wrong.
 */
export function statusFor(code: ErrorCode): number {
  const explicit = STATUS[code];
  if (explicit !== undefined) return explicit;
  if (code.endsWith('_NOT_FOUND')) return 404;
  if (code.endsWith('_INVALID')) return 400;
  if (code.endsWith('_CONFLICT')) return 409;
  return 500;
}

export function problemFor(
  error: ScsError,
  extra: { errors?: readonly FieldError[]; requestId?: string } = {},
): Problem {
  const status = statusFor(error.code);
  const details = Object.keys(error.details).length > 0 ? error.details : undefined;
  // Domain validation (profiles) names the field in details: surface it like schema errors.
  const field = error.details.field;
  const errors =
    extra.errors ?? (status === 400 && typeof field === 'string' ? [{ field, message: error.message }] : undefined);
  return {
    type: `urn:amt-scs:error:${error.code}`,
    title: ERROR_CODES[error.code],
    status,
    detail: error.message,
    code: error.code,
    ...(details === undefined ? {} : { details }),
    ...(errors === undefined ? {} : { errors }),
    ...(extra.requestId === undefined ? {} : { requestId: extra.requestId }),
  };
}

export function sendProblem(reply: FastifyReply, problem: Problem): FastifyReply {
  return reply
    .code(problem.status)
    .type(PROBLEM_CONTENT_TYPE)
    .header('cache-control', 'no-store')
    .serializer((p: unknown) => JSON.stringify(p))
    .send(problem);
}

interface ValidationIssue {
  readonly instancePath?: string;
  readonly message?: string;
  readonly keyword?: string;
  readonly params?: Record<string, unknown>;
}

function isFastifyError(e: unknown): e is FastifyError {
  return e instanceof Error && typeof (e as { code?: unknown }).code === 'string';
}

/** Fastify's own errors (body parser, limits, validation) become stable codes with fixed wording. */
function fromFastify(error: FastifyError): { scs: ScsError; errors?: FieldError[] } | undefined {
  const validation = (error as { validation?: readonly ValidationIssue[] }).validation;
  if (validation !== undefined) {
    const context = (error as { validationContext?: string }).validationContext ?? 'request';
    const errors: FieldError[] = validation.map((v) => {
      let at = (v.instancePath ?? '').replace(/^\//, '');
      // A missing or unexpected property names itself in params, not in the path.
      const prop = v.params?.missingProperty ?? v.params?.additionalProperty;
      if (typeof prop === 'string') at = at === '' ? prop : `${at}/${prop}`;
      const field = at === '' ? context : `${context}/${at}`;
      const message = v.keyword === 'additionalProperties' ? 'is not a known field' : (v.message ?? 'is invalid');
      return { field, message };
    });
    const first = errors[0];
    const detail = first === undefined ? 'the request is invalid' : `${first.field} ${first.message}`;
    return { scs: new ScsError('SCS_ARGUMENT_INVALID', detail), errors };
  }
  switch (error.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { scs: new ScsError('SCS_REQUEST_TOO_LARGE', 'the request body is too large for this route') };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { scs: new ScsError('SCS_MEDIA_TYPE_INVALID', 'this route does not accept that content type') };
    // Parser messages can quote the body (which may hold a passphrase): use fixed wording.
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return { scs: new ScsError('SCS_ARGUMENT_INVALID', 'the request body is not valid JSON') };
    case 'FST_ERR_CTP_EMPTY_TYPE':
      return { scs: new ScsError('SCS_MEDIA_TYPE_INVALID', 'the request has a body but no content type') };
    default:
      if (error.statusCode !== undefined && error.statusCode >= 400 && error.statusCode < 500) {
        // Other client errors fastify raises (bad URL encoding, ...): generic wording, right class.
        return { scs: new ScsError('SCS_ARGUMENT_INVALID', 'the request is malformed') };
      }
      return undefined;
  }
}

/**
 * The error handler: ScsErrors keep their code and message; fastify's client errors get a
 * code and fixed wording; anything else is a 500 whose detail says only that it happened
 * (the full error, stack included, goes to the log with the request id).
 */
export function errorHandler(log: Logger) {
  return (error: unknown, request: FastifyRequest, reply: FastifyReply): FastifyReply => {
    const requestId = request.id;
    if (isScsError(error)) {
      const problem = problemFor(error, { requestId });
      if (problem.status >= 500) log.error({ err: error, requestId }, 'request failed');
      return sendProblem(reply, problem);
    }
    if (isFastifyError(error)) {
      const known = fromFastify(error);
      if (known !== undefined) {
        return sendProblem(
          reply,
          problemFor(known.scs, known.errors === undefined ? { requestId } : { requestId, errors: known.errors }),
        );
      }
    }
    log.error({ err: error, requestId }, 'unexpected error in request');
    return sendProblem(
      reply,
      problemFor(new ScsError('SCS_INTERNAL', `unexpected server error (request ${requestId})`), { requestId }),
    );
  };
}

export function notFoundHandler(request: FastifyRequest, reply: FastifyReply): FastifyReply {
  const path = request.url.split('?')[0] ?? '';
  return sendProblem(
    reply,
    problemFor(new ScsError('SCS_ROUTE_NOT_FOUND', `no route ${request.method} ${path}`), { requestId: request.id }),
  );
}
