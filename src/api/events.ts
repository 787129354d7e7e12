import type { JobFinished, Runner } from '../provisioning/runner.ts';
import type { JobRow } from '../store/provisioning/types.ts';

/**
 * Live events for the console (docs/api.md, "Live events"): an in-process hub that routes
 * publish to, and that `GET /api/v1/events` streams as Server-Sent Events. Events carry a
 * rising id; the hub keeps the last few hundred so a client reconnecting with Last-Event-ID
 * misses nothing in between.
 */

export const EVENT_TYPES = ['psk.counts', 'task', 'job', 'device'] as const;
export type EventType = (typeof EVENT_TYPES)[number];

export interface ApiEvent {
  readonly id: number;
  readonly type: EventType;
  readonly at: string;
  readonly data: Readonly<Record<string, unknown>>;
}

export type EventListener = (event: ApiEvent) => void;

export class EventHub {
  readonly #keep: number;
  readonly #ring: ApiEvent[] = [];
  readonly #listeners = new Set<EventListener>();
  #seq = 0;

  constructor(options: { readonly keep?: number } = {}) {
    this.#keep = options.keep ?? 500;
  }

  publish(type: EventType, data: Readonly<Record<string, unknown>>): ApiEvent {
    const event: ApiEvent = { id: ++this.#seq, type, at: new Date().toISOString(), data };
    this.#ring.push(event);
    if (this.#ring.length > this.#keep) this.#ring.shift();
    for (const l of this.#listeners) {
      try {
        l(event);
      } catch {
        // One broken subscriber must not stop the others.
      }
    }
    return event;
  }

  /** Calls `listener` for every new event, after first replaying kept events with id > `afterId`. */
  subscribe(listener: EventListener, afterId?: number): () => void {
    if (afterId !== undefined) for (const e of this.#ring) if (e.id > afterId) listener(e);
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  get lastId(): number {
    return this.#seq;
  }

  get subscribers(): number {
    return this.#listeners.size;
  }
}

/**
 * What the provisioning runner reports. The API subscribes through this small interface so it
 * does not depend on the runner's internals; src/main.ts adapts the runner to it.
 */
export type ProvisioningEvent =
  | {
      readonly kind: 'job';
      readonly jobId: number;
      readonly deviceUuid: string;
      readonly state: string;
      readonly step: string | null;
      readonly attempts: number;
      readonly errorCode: string | null;
      readonly errorMessage: string | null;
    }
  | {
      readonly kind: 'device';
      readonly deviceUuid: string;
      /** `provisioned` or `failed` (then with the error code and message, never a secret). */
      readonly state: string;
      readonly errorCode: string | null;
      readonly errorMessage: string | null;
    };

export interface ProvisioningEventSource {
  /** Subscribes; returns the function that unsubscribes. */
  subscribe(listener: (event: ProvisioningEvent) => void): () => void;
}

/** Forwards provisioning events to the hub; `onChange` is told so PSK counts can be refreshed. */
export function bridgeProvisioningEvents(
  source: ProvisioningEventSource,
  hub: EventHub,
  onChange: () => void,
): () => void {
  return source.subscribe((e) => {
    const { kind, ...data } = e;
    hub.publish(kind, data);
    onChange();
  });
}

/**
 * The runner as a ProvisioningEventSource: its `step` events become `job` events, its
 * `finished` events a final `job` event and a `device` event (provisioned or failed).
 */
export function runnerEventSource(runner: Runner): ProvisioningEventSource {
  return {
    subscribe(listener) {
      const onStep = ({ job, step }: { readonly job: JobRow; readonly step: string }): void => {
        listener(jobEvent(job, step));
      };
      const onFinished = (f: JobFinished): void => {
        listener(jobEvent(f.job, f.job.step));
        listener({
          kind: 'device',
          deviceUuid: f.job.deviceUuid,
          state: f.state === 'succeeded' ? 'provisioned' : 'failed',
          errorCode: f.code,
          errorMessage: f.state === 'succeeded' ? null : f.job.errorMessage,
        });
      };
      runner.on('step', onStep);
      runner.on('finished', onFinished);
      return () => {
        runner.off('step', onStep);
        runner.off('finished', onFinished);
      };
    },
  };
}

function jobEvent(job: JobRow, step: string | null): ProvisioningEvent {
  return {
    kind: 'job',
    jobId: job.id,
    deviceUuid: job.deviceUuid,
    state: job.state,
    step,
    attempts: job.attempts,
    errorCode: job.errorCode,
    errorMessage: job.errorMessage,
  };
}
