import { useEffect, useState } from 'preact/hooks';
import { messageOf } from '../api.ts';
import { n } from '../format.ts';
import { Problem } from '../parts/problem.tsx';
import { Progress } from '../parts/progress.tsx';
import type { Task } from '../resources.ts';
import { useLiveEvent, useSession } from '../session-context.ts';

/**
 * Generate PSKs as a background task (`async: true`) whatever the count, so every generate shows
 * progress: from `task` events, and by polling the task should the live stream be down.
 */
export function PskGenerate({ onDone }: { readonly onDone: () => void }) {
  const { client } = useSession();
  const [count, setCount] = useState('100');
  const [batch, setBatch] = useState('');
  const [task, setTask] = useState<Task | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const running = task?.state === 'running';

  useLiveEvent('task', (d) => {
    const t = d as Task;
    if (task !== undefined && t.id === task.id) setTask(t);
  });
  useEffect(() => {
    if (!running || task === undefined) return;
    const timer = setInterval(() => {
      client.get<Task>(`/tasks/${encodeURIComponent(task.id)}`).then(setTask, () => undefined);
    }, 1500);
    return () => clearInterval(timer);
  }, [running, task?.id]);
  useEffect(() => {
    if (task !== undefined && task.state !== 'running') onDone();
  }, [task?.state]);

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setError(undefined);
    try {
      const r = await client.json<{ task: Task }>('POST', '/psks/generate', {
        body: { count: Number(count), ...(batch.trim() === '' ? {} : { batch: batch.trim() }), async: true },
      });
      setTask(r.task);
    } catch (err) {
      setError(messageOf(err));
    }
  };
  const result = task?.result;
  return (
    <section class="card" aria-labelledby="gen-title">
      <h2 id="gen-title">Generate</h2>
      <form onSubmit={(e) => void submit(e)} class="stacked">
        <div class="field">
          <label for="gen-count">How many</label>
          <input
            id="gen-count"
            type="number"
            min={1}
            max={10000000}
            required
            value={count}
            onInput={(e) => setCount(e.currentTarget.value)}
          />
        </div>
        <div class="field">
          <label for="gen-batch">Batch</label>
          <input
            id="gen-batch"
            placeholder="new batch, named by date if empty"
            pattern="[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}"
            title="letters, digits and . _ : - (up to 64)"
            value={batch}
            onInput={(e) => setBatch(e.currentTarget.value)}
          />
        </div>
        <button type="submit" disabled={running}>
          {running ? 'Generating…' : 'Generate PSKs'}
        </button>
      </form>
      <Problem message={error} />
      {task === undefined ? null : (
        <div class="task" data-testid="generate-task" data-state={task.state} aria-live="polite">
          <Progress done={task.done} total={task.total} label="PSKs generated" />
          {task.state === 'succeeded' && result != null ? (
            <p class="ok">
              {n(Number(result.generated ?? 0))} PSKs generated into batch <strong>{String(result.batch ?? '')}</strong>
            </p>
          ) : null}
          {task.error === null ? null : <Problem message={`${task.error.detail} (${task.error.code})`} />}
        </div>
      )}
    </section>
  );
}
