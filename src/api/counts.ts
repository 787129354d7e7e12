import type { Logger } from '../log.ts';
import type { PskState } from '../store/lifecycle.ts';
import type { Store } from '../store/store.ts';
import type { EventHub } from './events.ts';

export interface PskCounts {
  readonly counts: Record<PskState, number>;
  readonly total: number;
}

export async function readPskCounts(store: Store): Promise<PskCounts> {
  const counts = await store.psks.countByState();
  return { counts, total: Object.values(counts).reduce((a, n) => a + n, 0) };
}

/**
 * Publishes `psk.counts` events after PSK changes, at most once per interval however many
 * changes arrive (a generate of a million PSKs pokes it a hundred times): a count is one
 * grouped query, cheap, but not free on a big table.
 */
export class PskCountsPublisher {
  readonly #store: Store;
  readonly #hub: EventHub;
  readonly #log: Logger;
  readonly #intervalMs: number;
  #timer: NodeJS.Timeout | undefined;
  #last = 0;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(store: Store, hub: EventHub, log: Logger, options: { readonly intervalMs?: number } = {}) {
    this.#store = store;
    this.#hub = hub;
    this.#log = log;
    this.#intervalMs = options.intervalMs ?? 500;
  }

  poke(): void {
    if (this.#closed || this.#timer !== undefined) return;
    const wait = Math.max(0, this.#last + this.#intervalMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#last = Date.now();
      this.#running = this.#publish();
    }, wait);
  }

  async #publish(): Promise<void> {
    try {
      const c = await readPskCounts(this.#store);
      if (!this.#closed) this.#hub.publish('psk.counts', { ...c });
    } catch (err) {
      this.#log.warn({ err }, 'cannot count PSKs for the live events');
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#running;
  }
}
