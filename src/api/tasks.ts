import { randomUUID } from 'node:crypto';
import { isScsError, ScsError, type ErrorCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import type { EventHub } from './events.ts';

/**
 * Background tasks: work too long for one request (generating a million PSKs). A task runs in
 * this process, reports progress to the event hub (`task` events) and is kept in memory for
 * `GET /api/v1/tasks/{id}`; what it wrote to the database is committed chunk by chunk and
 * survives a restart, the task record does not (docs/api.md, "Tasks").
 */
export const TASK_STATES = ['running', 'succeeded', 'failed', 'cancelled'] as const;
export type TaskState = (typeof TASK_STATES)[number];

export interface TaskView {
  readonly id: string;
  readonly kind: string;
  readonly state: TaskState;
  readonly actor: string;
  readonly done: number;
  readonly total: number;
  readonly startedAt: string;
  readonly finishedAt: string | null;
  readonly result: Readonly<Record<string, string | number | boolean | null>> | null;
  readonly error: { readonly code: ErrorCode; readonly detail: string } | null;
}

export type TaskResult = Readonly<Record<string, string | number | boolean | null>>;

export interface TaskContext {
  readonly signal: AbortSignal;
  progress(done: number): void;
}

interface Task {
  view: TaskView;
  readonly abort: AbortController;
  finished: Promise<void>;
}

export class TaskRegistry {
  readonly #tasks = new Map<string, Task>();
  readonly #hub: EventHub;
  readonly #log: Logger;
  readonly #keep: number;
  /** Progress events at most this often per task (the last one always goes out). */
  readonly #progressEveryMs: number;

  constructor(hub: EventHub, log: Logger, options: { readonly keep?: number; readonly progressEveryMs?: number } = {}) {
    this.#hub = hub;
    this.#log = log;
    this.#keep = options.keep ?? 100;
    this.#progressEveryMs = options.progressEveryMs ?? 250;
  }

  start(kind: string, actor: string, total: number, run: (ctx: TaskContext) => Promise<TaskResult>): TaskView {
    const id = randomUUID();
    const abort = new AbortController();
    let lastEmit = 0;
    const task: Task = {
      view: {
        id,
        kind,
        state: 'running',
        actor,
        done: 0,
        total,
        startedAt: new Date().toISOString(),
        finishedAt: null,
        result: null,
        error: null,
      },
      abort,
      finished: Promise.resolve(),
    };
    const set = (patch: Partial<TaskView>, emit: boolean): void => {
      task.view = { ...task.view, ...patch };
      if (emit) this.#hub.publish('task', { ...task.view });
    };
    const ctx: TaskContext = {
      signal: abort.signal,
      progress: (done) => {
        const now = Date.now();
        const emit = now - lastEmit >= this.#progressEveryMs;
        if (emit) lastEmit = now;
        set({ done }, emit);
      },
    };
    this.#tasks.set(id, task);
    this.#prune();
    this.#hub.publish('task', { ...task.view });
    task.finished = (async () => {
      try {
        // Yield first so the caller gets the view (and its 202) before any work happens.
        await Promise.resolve();
        const result = await run(ctx);
        set({ state: 'succeeded', result, finishedAt: new Date().toISOString() }, true);
      } catch (e) {
        const cancelled = abort.signal.aborted;
        const error = isScsError(e)
          ? { code: e.code, detail: e.message }
          : cancelled
            ? { code: 'SCS_INTERNAL' as const, detail: 'the task was cancelled' }
            : { code: 'SCS_INTERNAL' as const, detail: `unexpected error in task ${id}` };
        if (!isScsError(e) && !cancelled) this.#log.error({ err: e, taskId: id, kind }, 'task failed');
        set({ state: cancelled ? 'cancelled' : 'failed', error, finishedAt: new Date().toISOString() }, true);
      }
    })();
    return task.view;
  }

  get(id: string): TaskView {
    const t = this.#tasks.get(id);
    if (t === undefined) throw new ScsError('SCS_TASK_NOT_FOUND', `no task ${id}`, { details: { id } });
    return t.view;
  }

  /** Newest first. */
  list(): TaskView[] {
    return [...this.#tasks.values()].map((t) => t.view).reverse();
  }

  /** Resolves when the task has ended (tests, shutdown). */
  async settled(id: string): Promise<TaskView> {
    const t = this.#tasks.get(id);
    if (t === undefined) throw new ScsError('SCS_TASK_NOT_FOUND', `no task ${id}`, { details: { id } });
    await t.finished;
    return t.view;
  }

  /** Cancels running tasks and waits for them: no write outlives the server. */
  async close(): Promise<void> {
    const running = [...this.#tasks.values()].filter((t) => t.view.state === 'running');
    for (const t of running) t.abort.abort();
    await Promise.all(running.map((t) => t.finished));
  }

  #prune(): void {
    if (this.#tasks.size <= this.#keep) return;
    for (const [id, t] of this.#tasks) {
      if (this.#tasks.size <= this.#keep) break;
      if (t.view.state !== 'running') this.#tasks.delete(id);
    }
  }
}
