/**
 * The chart of a bench/scale.ts run: devices provisioned over time, against the ideal curve
 * (each device's own time alone after the nominal ramp), with sessions in flight and the hello
 * port's accept queue on the right axis. bench/scale.ts calls it; it also re-renders the SVG
 * from a run's JSON:
 *
 *   node --import tsx bench/chart-scale.ts bench/out/scale-10000-<stamp>.json
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { renderLineChart } from './chart.ts';

/** The parts of bench/scale.ts's JSON the chart reads. */
export interface ScaleRunForChart {
  readonly cpus: number;
  readonly settings: { readonly devices: number; readonly latencyMs: number; readonly helloSpreadMs: number };
  readonly loadAverage: { readonly beforeScale: readonly number[]; readonly afterScale: readonly number[] };
  readonly baseline: { readonly helloToVerifiedMs: { readonly max: number } };
  readonly scale: {
    readonly succeeded: number;
    readonly failed: number;
    readonly wallMs: number;
    readonly peakInFlight: number;
    readonly peakAcceptQueue?: number;
  };
  readonly timeline: readonly {
    readonly t: number;
    readonly accepted: number;
    readonly verified: number;
    readonly running: number;
    readonly acceptQueue?: number;
  }[];
}

export function scaleChart(run: ScaleRunForChart): string {
  const n = run.settings.devices;
  const alone = run.baseline.helloToVerifiedMs.max / 1000;
  const spread = run.settings.helloSpreadMs / 1000;
  const expected = alone + spread;
  const wall = run.scale.wallMs / 1000;
  // At most ~600 points per line (a 250 ms timeline of a long run has thousands), the last kept.
  const every = Math.max(1, Math.ceil(run.timeline.length / 600));
  const timeline = run.timeline.filter((_, i) => i % every === 0 || i === run.timeline.length - 1);
  return renderLineChart({
    title: `${n.toLocaleString('en-US')} simulated devices, ${run.settings.latencyMs} ms per call, first hellos ramped over ${spread} s`,
    subtitle:
      `verified ${run.scale.succeeded.toLocaleString('en-US')}, failed attempts ${run.scale.failed}, in ${wall.toFixed(1)} s; ` +
      `ideal ${expected.toFixed(1)} s (ratio ${(wall / expected).toFixed(2)}); ` +
      `load average ${run.loadAverage.beforeScale[0]?.toFixed(1)}–${run.loadAverage.afterScale[0]?.toFixed(1)} on ${run.cpus} cores`,
    xLabel: 'seconds since the first hello',
    yLabel: 'devices',
    yRightLabel: 'sessions in flight / connections queued',
    series: [
      { name: 'hellos accepted (jobs)', color: '#1f77b4', points: timeline.map((p) => [p.t, p.accepted] as const) },
      {
        name: 'provisioned and verified',
        color: '#2ca02c',
        points: timeline.map((p) => [p.t, p.verified] as const),
      },
      {
        name: 'ideal: nominal ramp + one device alone',
        color: '#7f7f7f',
        dashed: true,
        points: [
          [alone, 0],
          [expected, n],
        ],
      },
      {
        name: 'sessions in flight',
        color: '#d62728',
        axis: 'right',
        points: timeline.map((p) => [p.t, p.running] as const),
      },
      {
        name: 'hello accept queue',
        color: '#9467bd',
        axis: 'right',
        points: timeline.map((p) => [p.t, p.acceptQueue ?? 0] as const),
      },
    ],
    markers: [
      { x: spread, label: 'ramp ends', color: '#1f77b4' },
      { x: expected, label: 'ideal end', color: '#7f7f7f' },
      { x: wall, label: 'last verified', color: '#2ca02c' },
    ],
  });
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const file = process.argv[2];
  if (file === undefined) throw new Error('usage: bench/chart-scale.ts <scale run .json>');
  const out = file.replace(/\.json$/, '.svg');
  writeFileSync(out, scaleChart(JSON.parse(readFileSync(file, 'utf8')) as ScaleRunForChart));
  process.stdout.write(`written: ${out}\n`);
}
