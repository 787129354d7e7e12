/**
 * Admission control for hellos (docs/security.md, "Hello abuse"), checked before a hello costs
 * a database read, an audit row or a connection back:
 *
 * - per source address: a token bucket (`burst`, refilled at `perMinute`), so one host cannot
 *   flood the server or make it connect back to addresses of its choosing again and again;
 * - per PID: a token bucket, so replaying a sniffed hello (PIDs travel in clear) cannot keep a
 *   PSK claimed, nor make the server hammer one PSK's handshake;
 * - in flight: at most `maxPending` hellos handed over and not yet answered by the runner; more
 *   are dropped, so a flood that outruns the database cannot grow the heap without bound.
 *
 * Each table holds at most `maxTracked` keys, in two generations of at most half each: a key
 * is looked up in the young one, then the old one (and moved to the young one); when the young
 * one is full it becomes the old one and the old one is forgotten. So a key seen among the last
 * maxTracked / 2 distinct keys is always remembered, the least recently used are forgotten
 * first (at worst forgetting their debt), and every step is O(1). Memory is O(maxTracked),
 * whatever the traffic. (A single Map evicting its first key was O(maxTracked) per new key:
 * V8's ordered maps leave deleted entries in place, and finding the first live one walked them,
 * ≈ 190 µs per hello with 65,536 keys under a flood of new addresses.)
 */

export interface BucketOptions {
  /** Tokens a fresh key starts with: hellos accepted back to back. */
  readonly burst: number;
  /** Tokens added per minute, up to `burst`. */
  readonly perMinute: number;
}

export interface HelloGateOptions {
  readonly address: BucketOptions;
  readonly pid: BucketOptions;
  /** Keys tracked per table at most. */
  readonly maxTracked: number;
  /** Hellos handed over and not yet settled, at most. */
  readonly maxPending: number;
  /** Clock in ms (tests); default performance.now. */
  readonly now?: () => number;
}

export type LimitedBy = 'address' | 'pid' | 'pending';

export type Admission =
  | {
      readonly ok: true;
      /** Call once the hello settled (a method: call it on the admission, do not pass it around). */
      release(): void;
    }
  | {
      readonly ok: false;
      readonly by: LimitedBy;
      /** First refusal since this key (or the pending queue) last let a hello through: audit this one. */
      readonly first: boolean;
      /** Refusals of this key in its current episode, this one included. */
      readonly dropped: number;
    };

interface Bucket {
  tokens: number;
  at: number;
  /** Refusals since the last hello it let through (0 = not limited). */
  dropped: number;
}

export class TokenBuckets {
  readonly #options: BucketOptions;
  /** Keys per generation at most. */
  readonly #generation: number;
  readonly #now: () => number;
  #young = new Map<string, Bucket>();
  #old = new Map<string, Bucket>();

  constructor(options: BucketOptions, maxTracked: number, now: () => number = () => performance.now()) {
    this.#options = options;
    this.#generation = Math.max(1, Math.floor(maxTracked / 2));
    this.#now = now;
  }

  get size(): number {
    return this.#young.size + this.#old.size;
  }

  /** Takes one token for `key`: true if there was one. Otherwise the key's refusal count grows. */
  take(key: string): { readonly ok: boolean; readonly dropped: number } {
    const now = this.#now();
    const { burst, perMinute } = this.#options;
    let b = this.#young.get(key);
    if (b === undefined) {
      b = this.#old.get(key);
      if (b === undefined) b = { tokens: burst, at: now, dropped: 0 };
      else this.#old.delete(key);
      if (this.#young.size >= this.#generation) {
        this.#old = this.#young;
        this.#young = new Map();
      }
      this.#young.set(key, b);
    }
    if (b.at !== now) {
      b.tokens = Math.min(burst, b.tokens + ((now - b.at) * perMinute) / 60_000);
      b.at = now;
    }
    if (b.tokens >= 1) {
      b.tokens -= 1;
      b.dropped = 0;
      return OK;
    }
    b.dropped++;
    return { ok: false, dropped: b.dropped };
  }
}

const OK = { ok: true, dropped: 0 } as const;

export interface HelloGate {
  /** Whether this hello may be handed to the runner; when ok, call `release` once it settled. */
  /** `pid` undefined: a version 3 hello, limited by its address only. */
  admit(pid: string | undefined, address: string): Admission;
  stats(): { readonly pending: number; readonly trackedAddresses: number; readonly trackedPids: number };
}

interface InFlight {
  pending: number;
  /** Refusals for maxPending since a hello was last let through. */
  pendingDropped: number;
}

/** An admitted hello's ticket: a class, so admitting makes no closure per hello. */
class Ticket {
  readonly ok = true;
  readonly #flight: InFlight;
  #released = false;

  constructor(flight: InFlight) {
    this.#flight = flight;
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#flight.pending--;
  }
}

export function createHelloGate(options: HelloGateOptions): HelloGate {
  const now = options.now ?? (() => performance.now());
  const byAddress = new TokenBuckets(options.address, options.maxTracked, now);
  const byPid = new TokenBuckets(options.pid, options.maxTracked, now);
  const flight: InFlight = { pending: 0, pendingDropped: 0 };
  return {
    admit(pid, address) {
      if (flight.pending >= options.maxPending) {
        const dropped = ++flight.pendingDropped;
        return { ok: false, by: 'pending', first: dropped === 1, dropped };
      }
      const a = byAddress.take(address);
      if (!a.ok) return { ok: false, by: 'address', first: a.dropped === 1, dropped: a.dropped };
      if (pid !== undefined) {
        const p = byPid.take(pid);
        if (!p.ok) return { ok: false, by: 'pid', first: p.dropped === 1, dropped: p.dropped };
      }
      flight.pending++;
      flight.pendingDropped = 0;
      return new Ticket(flight);
    },
    stats() {
      return { pending: flight.pending, trackedAddresses: byAddress.size, trackedPids: byPid.size };
    },
  };
}
