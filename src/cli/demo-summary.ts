/** What `demo` reports, for both the PSK and the certificate-based path. */

export interface DeviceOutcome {
  readonly index: number;
  readonly uuid: string;
  readonly address: string;
  readonly state: 'provisioned' | 'failed' | 'pending';
  /** Hello to verified Post, for a provisioned device. */
  readonly ms: number | null;
  readonly jobs: number;
  readonly code: string | null;
  readonly message: string | null;
}

export interface DemoSummary {
  readonly devices: number;
  readonly provisioned: number;
  readonly failed: number;
  readonly pending: number;
  readonly elapsedMs: number;
  readonly msPerDevice: {
    readonly min: number;
    readonly p50: number;
    readonly p99: number;
    readonly max: number;
  } | null;
  readonly outcomes: readonly DeviceOutcome[];
  readonly dataDir: string | null;
}

export function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}

/** Counts and hello-to-verified percentiles of a run's outcomes. */
export function summarize(outcomes: readonly DeviceOutcome[], elapsedMs: number, dataDir: string | null): DemoSummary {
  const times = outcomes
    .map((x) => x.ms)
    .filter((x): x is number => x !== null)
    .sort((a, b) => a - b);
  return {
    devices: outcomes.length,
    provisioned: outcomes.filter((x) => x.state === 'provisioned').length,
    failed: outcomes.filter((x) => x.state === 'failed').length,
    pending: outcomes.filter((x) => x.state === 'pending').length,
    elapsedMs,
    msPerDevice:
      times.length === 0
        ? null
        : { min: times[0] ?? 0, p50: percentile(times, 50), p99: percentile(times, 99), max: times.at(-1) ?? 0 },
    outcomes,
    dataDir,
  };
}

export function summaryTable(s: DemoSummary): string[] {
  const lines: string[] = [];
  const all = s.provisioned === s.devices;
  lines.push(
    `${all ? 'all ' : ''}${s.provisioned} of ${s.devices} devices provisioned and verified in ${(s.elapsedMs / 1000).toFixed(1)} s` +
      (s.failed > 0 ? `, ${s.failed} failed` : '') +
      (s.pending > 0 ? `, ${s.pending} never reached` : ''),
  );
  if (s.msPerDevice !== null) {
    const t = s.msPerDevice;
    lines.push(`hello -> verified per device: min ${t.min} ms, median ${t.p50} ms, p99 ${t.p99} ms, max ${t.max} ms`);
  }
  const shown = s.devices <= 50 ? s.outcomes : s.outcomes.filter((x) => x.state !== 'provisioned');
  if (shown.length > 0) {
    lines.push('');
    lines.push(
      `${'#'.padStart(4)}  ${'device UUID'.padEnd(36)}  ${'address'.padEnd(15)}  ${'result'.padEnd(11)}  ${'time'.padStart(8)}  jobs  reason`,
    );
    for (const x of shown) {
      lines.push(
        `${String(x.index).padStart(4)}  ${x.uuid}  ${x.address.padEnd(15)}  ${x.state.padEnd(11)}  ` +
          `${x.ms === null ? '-'.padStart(8) : `${x.ms} ms`.padStart(8)}  ${String(x.jobs).padStart(4)}  ` +
          `${x.code === null ? '' : `${x.code}: ${x.message ?? ''}`}`,
      );
    }
  }
  if (s.dataDir !== null) lines.push('', `data directory kept: ${s.dataDir}`);
  return lines;
}
