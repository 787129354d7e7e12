import { n } from '../format.ts';

export interface Bucket {
  /** Start of the bucket, ms since the epoch. */
  readonly at: number;
  readonly provisioned: number;
  readonly failed: number;
}

/**
 * Devices finished per time bucket as an inline SVG bar chart (no chart library: nothing to
 * load, and it scales with the card). Provisioned bars up, failed bars in red on top.
 */
export function ThroughputChart({
  buckets,
  bucketSeconds,
}: {
  readonly buckets: readonly Bucket[];
  readonly bucketSeconds: number;
}) {
  const width = 600;
  const height = 160;
  const pad = { left: 34, right: 8, top: 10, bottom: 22 };
  // An even top, so the middle grid line falls on a whole number.
  const peak = Math.max(0, ...buckets.map((b) => b.provisioned + b.failed));
  const max = Math.max(2, Math.ceil(peak / 2) * 2);
  const innerW = width - pad.left - pad.right;
  const innerH = height - pad.top - pad.bottom;
  const barW = buckets.length === 0 ? 0 : innerW / buckets.length;
  const y = (v: number): number => pad.top + innerH - (v / max) * innerH;
  const total = buckets.reduce((s, b) => s + b.provisioned, 0);
  const failed = buckets.reduce((s, b) => s + b.failed, 0);
  const fmt = (t: number): string => new Date(t).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
  const summary = `${n(total)} provisioned and ${n(failed)} failed in the last ${Math.round((buckets.length * bucketSeconds) / 60)} minutes`;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${width} ${height}`} role="img" aria-label={summary}>
        {[0, 0.5, 1].map((f) => (
          <g key={f}>
            <line class="grid" x1={pad.left} x2={width - pad.right} y1={y(max * f)} y2={y(max * f)} />
            <text class="axis" x={pad.left - 6} y={y(max * f) + 4} text-anchor="end">
              {max * f}
            </text>
          </g>
        ))}
        {buckets.map((b, i) => {
          const x = pad.left + i * barW + barW * 0.15;
          const w = Math.max(1, barW * 0.7);
          return (
            <g key={b.at}>
              <title>{`${fmt(b.at)}: ${b.provisioned} provisioned, ${b.failed} failed`}</title>
              {b.provisioned > 0 ? (
                <rect
                  class="bar-ok"
                  x={x}
                  width={w}
                  y={y(b.provisioned)}
                  height={innerH + pad.top - y(b.provisioned)}
                />
              ) : null}
              {b.failed > 0 ? (
                <rect
                  class="bar-failed"
                  x={x}
                  width={w}
                  y={y(b.provisioned + b.failed)}
                  height={y(b.provisioned) - y(b.provisioned + b.failed)}
                />
              ) : null}
            </g>
          );
        })}
        {buckets.length > 0 ? (
          <>
            <text class="axis" x={pad.left} y={height - 6}>
              {fmt(buckets[0]?.at ?? 0)}
            </text>
            <text class="axis" x={width - pad.right} y={height - 6} text-anchor="end">
              now
            </text>
          </>
        ) : null}
      </svg>
      <figcaption class="muted">
        {summary} (per {bucketSeconds} s)
      </figcaption>
    </figure>
  );
}
