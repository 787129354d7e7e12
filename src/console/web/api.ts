/**
 * The console's REST client: every call sends the token as `Authorization: Bearer` (never in a
 * URL, where it would reach logs and history) and turns RFC 9457 problems into ApiError, so
 * pages can show the server's own words and each field's complaint.
 */

export const API = '/api/v1';

export interface FieldError {
  readonly field: string;
  readonly message: string;
}

export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  readonly errors: readonly FieldError[];

  constructor(status: number, code: string, detail: string, errors: readonly FieldError[] = []) {
    super(detail);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.errors = errors;
  }

  /** The complaint about one field (`body/settings/domainName` or the profile rule's `domainName`). */
  fieldMessage(field: string): string | undefined {
    return this.errors.find((e) => e.field === field || e.field.endsWith(`/${field}`))?.message;
  }
}

export interface Download {
  readonly blob: Blob;
  readonly fileName: string;
}

type Json = Record<string, unknown> | readonly unknown[];

export interface RequestOptions {
  readonly body?: Json | Blob | ArrayBuffer;
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

export class Client {
  readonly token: string;
  readonly #onUnauthenticated: () => void;

  constructor(token: string, onUnauthenticated: () => void) {
    this.token = token;
    this.#onUnauthenticated = onUnauthenticated;
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.json<T>('GET', path, signal === undefined ? {} : { signal });
  }

  async json<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const res = await this.send(method, path, options);
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }

  /** A response with its ETag (profiles use If-Match with it). */
  async withEtag<T>(method: string, path: string, options: RequestOptions = {}): Promise<{ value: T; etag: string }> {
    const res = await this.send(method, path, options);
    return { value: (await res.json()) as T, etag: res.headers.get('etag') ?? '' };
  }

  /** A file the server sends as an attachment, with the name from Content-Disposition. */
  async download(path: string, body: Json, signal?: AbortSignal): Promise<Download> {
    const res = await this.send('POST', path, signal === undefined ? { body } : { body, signal });
    const disposition = res.headers.get('content-disposition') ?? '';
    const name = /filename="([^"]+)"/.exec(disposition)?.[1] ?? 'download';
    return { blob: await res.blob(), fileName: name };
  }

  async send(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.token}`, ...options.headers };
    let body: BodyInit | undefined;
    const b = options.body;
    if (b instanceof Blob || b instanceof ArrayBuffer) {
      body = b;
      headers['content-type'] ??= 'application/octet-stream';
    } else if (b !== undefined) {
      body = JSON.stringify(b);
      headers['content-type'] = 'application/json';
    }
    let res: Response;
    try {
      res = await fetch(`${API}${path}`, {
        method,
        headers,
        ...(body === undefined ? {} : { body }),
        ...(options.signal === undefined ? {} : { signal: options.signal }),
        cache: 'no-store',
      });
    } catch (e) {
      if (e instanceof DOMException && e.name === 'AbortError') throw e;
      throw new ApiError(0, 'NETWORK', 'the server cannot be reached; is amt-scs still running?');
    }
    if (res.ok) return res;
    const problem = await readProblem(res);
    if (res.status === 401) this.#onUnauthenticated();
    throw problem;
  }
}

async function readProblem(res: Response): Promise<ApiError> {
  try {
    const p = (await res.json()) as { code?: unknown; detail?: unknown; errors?: unknown };
    const errors = Array.isArray(p.errors)
      ? (p.errors as unknown[]).filter(
          (e): e is FieldError =>
            typeof e === 'object' &&
            e !== null &&
            typeof (e as FieldError).field === 'string' &&
            typeof (e as FieldError).message === 'string',
        )
      : [];
    return new ApiError(
      res.status,
      typeof p.code === 'string' ? p.code : `HTTP_${res.status}`,
      typeof p.detail === 'string' ? p.detail : res.statusText,
      errors,
    );
  } catch {
    return new ApiError(res.status, `HTTP_${res.status}`, res.statusText || `HTTP ${res.status}`);
  }
}

/** A message for anything a call threw. */
export function messageOf(e: unknown): string {
  if (e instanceof ApiError) return e.code.startsWith('SCS_') ? `${e.message} (${e.code})` : e.message;
  return e instanceof Error ? e.message : String(e);
}

/** Query string from the defined values (arrays repeat the key). */
export function query(params: Readonly<Record<string, string | number | readonly string[] | undefined>>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === '') continue;
    if (Array.isArray(v)) for (const x of v as readonly string[]) q.append(k, x);
    else q.set(k, String(v));
  }
  const s = q.toString();
  return s === '' ? '' : `?${s}`;
}
