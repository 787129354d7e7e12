import { API, type Client } from './api.ts';

/**
 * The live event stream (GET /api/v1/events, Server-Sent Events). EventSource cannot send an
 * Authorization header, so the stream is read with fetch() and a body reader, and parsed here
 * (https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation).
 * On a drop it reconnects after the server's `retry:` with Last-Event-ID, so the server replays
 * what was missed.
 */

export interface LiveEvent {
  readonly type: string;
  readonly id: string | undefined;
  readonly data: unknown;
}

export type StreamState = 'connecting' | 'live' | 'retrying' | 'closed';

type Listener = (event: LiveEvent) => void;

export class EventStream {
  readonly #client: Client;
  readonly #listeners = new Set<Listener>();
  readonly #stateListeners = new Set<(s: StreamState) => void>();
  readonly #abort = new AbortController();
  #lastId: string | undefined;
  #retryMs = 3000;
  #state: StreamState = 'connecting';

  constructor(client: Client) {
    this.#client = client;
    void this.#run();
  }

  get state(): StreamState {
    return this.#state;
  }

  subscribe(listener: Listener): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  onState(listener: (s: StreamState) => void): () => void {
    this.#stateListeners.add(listener);
    return () => this.#stateListeners.delete(listener);
  }

  close(): void {
    this.#abort.abort();
    this.#setState('closed');
  }

  #setState(s: StreamState): void {
    if (this.#state === s) return;
    this.#state = s;
    for (const l of this.#stateListeners) l(s);
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      try {
        const res = await this.#client.send('GET', '/events', {
          signal,
          headers: {
            accept: 'text/event-stream',
            ...(this.#lastId === undefined ? {} : { 'last-event-id': this.#lastId }),
          },
        });
        if (res.body === null) throw new Error('no body');
        this.#setState('live');
        await this.#read(res.body);
      } catch {
        // A 401 signs the session out (Client); anything else is retried below.
      }
      if (signal.aborted) return;
      this.#setState('retrying');
      await new Promise((r) => setTimeout(r, this.#retryMs));
    }
  }

  async #read(body: ReadableStream<Uint8Array>): Promise<void> {
    const reader = body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    let type = '';
    let data: string[] = [];
    let id: string | undefined;
    for (;;) {
      const { value, done } = await reader.read();
      if (done) return;
      buffer += decoder.decode(value, { stream: true });
      let nl: number;
      while ((nl = buffer.search(/\r\n|\r|\n/)) >= 0) {
        const line = buffer.slice(0, nl);
        buffer = buffer.slice(nl + (buffer.startsWith('\r\n', nl) ? 2 : 1));
        if (line === '') {
          if (data.length > 0) this.#dispatch(type === '' ? 'message' : type, id, data.join('\n'));
          type = '';
          data = [];
          continue;
        }
        if (line.startsWith(':')) continue;
        const colon = line.indexOf(':');
        const field = colon < 0 ? line : line.slice(0, colon);
        const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
        if (field === 'event') type = value;
        else if (field === 'data') data.push(value);
        else if (field === 'id') {
          id = value;
          this.#lastId = value;
        } else if (field === 'retry' && /^\d+$/.test(value)) this.#retryMs = Number(value);
      }
    }
  }

  #dispatch(type: string, id: string | undefined, raw: string): void {
    let data: unknown;
    try {
      data = JSON.parse(raw);
    } catch {
      return;
    }
    for (const l of this.#listeners) l({ type, id, data });
  }
}

export const EVENTS_PATH = `${API}/events`;
