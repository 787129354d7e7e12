import { n } from '../format.ts';

/** A labelled progress bar (the native element: screen readers announce it). */
export function Progress({
  done,
  total,
  label,
}: {
  readonly done: number;
  readonly total: number;
  readonly label: string;
}) {
  return (
    <div class="progress">
      <progress max={Math.max(1, total)} value={done} aria-label={label} />
      <span class="muted small">
        {n(done)} / {n(total)}
      </span>
    </div>
  );
}
