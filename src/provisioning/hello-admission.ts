import type { Config } from '../config.ts';
import type { Hello } from '../hello/decode.ts';
import type { ConnectionRefusal, MalformedHello } from '../hello/listener.ts';
import { createHelloGate, type Admission, type HelloGate } from '../hello/rate-limit.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';
import type { Pid } from '../psk/pid.ts';
import type { Store } from '../store/store.ts';
import { normalizeAddress } from './runner.ts';

/**
 * What stands between the hello listener and the runner (docs/security.md, "Hello abuse"):
 *
 * 0. the listener's cap on open connections per source address: a connection over it is closed
 *    on accept (`onRefused`), counted (`scs_hellos_rate_limited_total{by="open_per_address"}`)
 *    and audited once per episode like a rate-limited hello;
 * 1. the gate (src/hello/rate-limit.ts): per-address and per-PID token buckets and a cap on
 *    hellos in flight; a hello over a limit is dropped before any lookup, counted
 *    (`scs_hellos_rate_limited_total{by}`), and audited once per episode (`hello.rate_limited`).
 *    Episodes are audited in batches too: many addresses over their limit at once (a flood
 *    from many sources) must not become an audit write, and an fsync, each;
 * 2. an unknown PID is answered by one indexed read, without a write: the runner would open a
 *    write transaction (and an fsync) per hello to audit it, which a flood of made-up PIDs
 *    from many addresses turns into a disk-bound queue that starves real devices. Unknown PIDs
 *    are audited together instead: one `hello.unknown_pid` entry per flush (every 500 ms)
 *    listing up to 1000 PIDs, with the first one's address and UUID and the count;
 * 3. everything else goes to `runner.accept`, which claims the PSK and audits as before.
 *
 * Malformed hellos are audited in batches the same way (`hello.malformed`, first address and
 * reason, count), for the same reason.
 */

export interface HelloAdmissionDeps {
  readonly config: Pick<
    Config,
    | 'helloRateAddressBurst'
    | 'helloRateAddressPerMinute'
    | 'helloRatePidBurst'
    | 'helloRatePidPerMinute'
    | 'helloRateMaxTracked'
    | 'helloMaxPending'
  >;
  readonly store: Store;
  readonly metrics: Metrics;
  readonly log: Logger;
  readonly actor: string;
  /** The runner's accept. */
  readonly accept: (hello: Hello, remoteAddress: string) => Promise<unknown>;
}

export interface HelloAdmission {
  /** The listener's onHello. */
  onHello(hello: Hello, remoteAddress: string): Promise<void> | undefined;
  /** The listener's onMalformed: counted, audited in batches like unknown PIDs. */
  onMalformed(malformed: MalformedHello, remoteAddress: string): void;
  /** The listener's onRefused (open connections per address): counted, audited once per episode. */
  onRefused(refusal: ConnectionRefusal): void;
  readonly gate: HelloGate;
  /** Writes the unknown-PID entries still buffered. */
  close(): Promise<void>;
}

/** PIDs (and addresses) listed per audit entry (the audit log's own bulk size). */
const PIDS_PER_ENTRY = 1000;
const FLUSH_MS = 500;

type Facts = Readonly<Record<string, string | number>>;
type Ticket = Extract<Admission, { ok: true }>;

interface Batch {
  readonly action: string;
  readonly pids: Set<Pid>;
  /** Distinct source addresses, for the batches that list them (rate limits). */
  readonly addresses: Set<string> | undefined;
  count: number;
  /** The first hello's facts (address, uuid, reason, ...). */
  readonly first: Facts;
}

/**
 * Turns many refused hellos into few audit rows: one entry per batch key per flush, listing up
 * to PIDS_PER_ENTRY PIDs (and, if asked, addresses), the first hello's facts and the count.
 * Memory: per key, one Set of at most PIDS_PER_ENTRY PIDs and one of as many addresses.
 */
class AuditBatcher {
  readonly #batches = new Map<string, Batch>();
  readonly #store: Store;
  readonly #log: Logger;
  readonly #actor: string;
  #timer: NodeJS.Timeout | undefined;
  #writing: Promise<void> = Promise.resolve();

  constructor(store: Store, log: Logger, actor: string) {
    this.#store = store;
    this.#log = log;
    this.#actor = actor;
  }

  /**
   * `key` groups entries (the action, or the action and a limit); `address` is listed in
   * `detail.addresses` when given. `facts` is called for a batch's first entry only.
   */
  add(key: string, action: string, pid: Pid | undefined, address: string | undefined, facts: () => Facts): void {
    let batch = this.#batches.get(key);
    if (batch === undefined) {
      batch = {
        action,
        pids: new Set(),
        addresses: address === undefined ? undefined : new Set(),
        count: 0,
        first: facts(),
      };
      this.#batches.set(key, batch);
    }
    batch.count++;
    if (pid !== undefined) batch.pids.add(pid);
    if (address !== undefined && batch.addresses !== undefined && batch.addresses.size < PIDS_PER_ENTRY) {
      batch.addresses.add(address);
    }
    if (batch.pids.size >= PIDS_PER_ENTRY) void this.flush();
    else this.#timer ??= setTimeout(() => void this.flush(), FLUSH_MS);
  }

  /** Whether `key` has entries waiting for the next flush (its first one was logged). */
  has(key: string): boolean {
    return this.#batches.has(key);
  }

  flush(): Promise<void> {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const batches = [...this.#batches];
    this.#batches.clear();
    for (const [, batch] of batches) {
      const { action } = batch;
      const detail =
        batch.addresses === undefined
          ? { ...batch.first, count: batch.count }
          : { ...batch.first, count: batch.count, addresses: [...batch.addresses].join(' ') };
      if (action !== 'hello.rate_limited') {
        this.#log.info({ action, count: batch.count, pids: batch.pids.size, ...batch.first }, 'refused hellos audited');
      }
      this.#writing = this.#writing.then(() =>
        this.#store.audit.append({ actor: this.#actor, action, pids: [...batch.pids], detail }).then(
          () => undefined,
          (err: unknown) => this.#log.error({ err, action }, 'cannot audit refused hellos'),
        ),
      );
    }
    return this.#writing;
  }
}

export function createHelloAdmission(deps: HelloAdmissionDeps): HelloAdmission {
  const { config, store, metrics, log, actor } = deps;
  const gate = createHelloGate({
    address: { burst: config.helloRateAddressBurst, perMinute: config.helloRateAddressPerMinute },
    pid: { burst: config.helloRatePidBurst, perMinute: config.helloRatePidPerMinute },
    maxTracked: config.helloRateMaxTracked,
    maxPending: config.helloMaxPending,
  });
  const audit = new AuditBatcher(store, log, actor);
  // Labelled children looked up once: prom-client hashes the label object on every inc().
  const unknownPid = metrics.hellosRejected.labels({ reason: 'unknown_pid' });
  const openPerAddress = metrics.hellosRateLimited.labels({ by: 'open_per_address' });

  const noteUnknown = (hello: Hello & { version: 2 }, address: string): void => {
    metrics.hellosReceived.inc();
    unknownPid.inc();
    // Debug per hello; the batch is logged at info when it is audited (a flood must not become a log line each).
    log.debug({ uuid: hello.uuid, address, pid: hello.pid, outcome: 'unknown_pid' }, 'hello not connected back to');
    audit.add('hello.unknown_pid', 'hello.unknown_pid', hello.pid, undefined, () => ({
      address,
      uuid: hello.uuid,
      retryCount: hello.retryCount,
    }));
  };

  const admitted = async (hello: Hello, remoteAddress: string, address: string, ticket: Ticket): Promise<void> => {
    try {
      if (hello.version === 2) {
        // A read outside any transaction: cheap, and it never waits for an fsync of its own.
        const known = await store.psks.get(hello.pid).catch(() => 'unknown-error' as const);
        if (known === undefined) return noteUnknown(hello, address);
      }
      await deps.accept(hello, remoteAddress);
    } finally {
      ticket.release();
    }
  };

  return {
    gate,
    onHello(hello, remoteAddress) {
      const address = normalizeAddress(remoteAddress);
      const pid = hello.version === 2 ? hello.pid : undefined;
      const admission = gate.admit(pid, address);
      if (admission.ok) return admitted(hello, remoteAddress, address, admission);
      const { by } = admission;
      metrics.hellosRateLimited.inc({ by });
      if (admission.first) {
        // One audit entry per limit and flush lists every key that started an episode in it.
        const key = `hello.rate_limited:${by}`;
        if (!audit.has(key)) log.warn({ address, pid, uuid: hello.uuid, by }, 'hellos rate-limited');
        audit.add(key, 'hello.rate_limited', by === 'pid' ? pid : undefined, address, () => ({
          address,
          uuid: hello.uuid,
          by,
        }));
      }
      return undefined;
    },
    onMalformed(malformed, remoteAddress) {
      metrics.hellosMalformed.inc({ reason: malformed.reason });
      audit.add('hello.malformed', 'hello.malformed', undefined, undefined, () => ({
        address: normalizeAddress(remoteAddress),
        reason: malformed.reason,
      }));
    },
    onRefused(refusal) {
      openPerAddress.inc();
      if (!refusal.first) return;
      const address = normalizeAddress(refusal.remoteAddress);
      const key = 'hello.rate_limited:open_per_address';
      if (!audit.has(key))
        log.warn({ address, by: 'open_per_address', limit: refusal.limit }, 'hello connections refused');
      audit.add(key, 'hello.rate_limited', undefined, address, () => ({
        address,
        by: 'open_per_address',
        limit: refusal.limit,
      }));
    },
    close: () => audit.flush(),
  };
}
