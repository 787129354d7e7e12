import { label, n } from '../format.ts';

export interface CountBarsProps {
  readonly title: string;
  readonly counts: Readonly<Record<string, number>>;
  readonly order: readonly string[];
  readonly testId: string;
}

/** Counts by state as a stacked bar plus a legend with numbers (the numbers carry the meaning). */
export function CountBars({ title, counts, order, testId }: CountBarsProps) {
  const total = order.reduce((s, k) => s + (counts[k] ?? 0), 0);
  return (
    <section class="card" aria-labelledby={`${testId}-title`} data-testid={testId}>
      <h2 id={`${testId}-title`}>
        {title} <span class="muted">{n(total)}</span>
      </h2>
      <div class="stack" aria-hidden="true">
        {order.map((k) =>
          (counts[k] ?? 0) > 0 ? (
            <span
              key={k}
              class={`seg state-${k}`}
              style={{ flexGrow: counts[k] ?? 0 }}
              title={`${label(k)}: ${counts[k] ?? 0}`}
            />
          ) : null,
        )}
        {total === 0 ? <span class="seg empty" style={{ flexGrow: 1 }} /> : null}
      </div>
      <dl class="legend">
        {order.map((k) => (
          <div key={k} data-state={k}>
            <dt>
              <span class={`dot state-${k}`} aria-hidden="true" />
              {label(k)}
            </dt>
            <dd data-testid={`${testId}-${k}`}>{n(counts[k] ?? 0)}</dd>
          </div>
        ))}
      </dl>
    </section>
  );
}
