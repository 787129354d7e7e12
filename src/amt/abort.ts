/**
 * What an aborted call rejects with: the signal's reason when it is an Error (as Node's own
 * APIs do), else a DOMException named AbortError. Callers tell an abort from a failure by
 * `signal.aborted`, not by parsing the error.
 */
export function abortError(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  if (reason instanceof Error) return reason;
  const text = typeof reason === 'string' ? reason : 'The operation was aborted';
  return new DOMException(text, 'AbortError');
}
