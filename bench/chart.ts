/**
 * A small hand-written SVG line chart for benchmark output (no dependency): a left axis, an
 * optional right axis, labelled ticks, a legend, optional vertical markers. Text is escaped;
 * the output is a standalone SVG document a browser or an image viewer shows as is.
 */

export interface Series {
  readonly name: string;
  readonly color: string;
  /** [x, y] in data units, x ascending. */
  readonly points: readonly (readonly [number, number])[];
  readonly dashed?: boolean;
  /** Which y axis the series is drawn against; default left. */
  readonly axis?: 'left' | 'right';
  /** Draw as steps (a count that jumps) rather than straight segments. */
  readonly step?: boolean;
}

export interface Marker {
  readonly x: number;
  readonly label: string;
  readonly color: string;
}

export interface LineChart {
  readonly title: string;
  readonly subtitle?: string;
  readonly xLabel: string;
  readonly yLabel: string;
  readonly yRightLabel?: string;
  readonly series: readonly Series[];
  readonly markers?: readonly Marker[];
  readonly width?: number;
  readonly height?: number;
}

function escapeXml(s: string): string {
  return s.replace(/[<>&"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** A step of 1, 2 or 5 × 10^k giving about `count` ticks up to `max`. */
export function niceStep(max: number, count = 5): number {
  if (!(max > 0)) return 1;
  const raw = max / count;
  const pow = 10 ** Math.floor(Math.log10(raw));
  const f = raw / pow;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * pow;
}

function ticks(max: number): { step: number; top: number; values: number[] } {
  const step = niceStep(max);
  const top = Math.max(step, Math.ceil(max / step) * step);
  const values: number[] = [];
  for (let v = 0; v <= top + step / 2; v += step) values.push(Number(v.toPrecision(12)));
  return { step, top, values };
}

const fmt = (v: number): string => (Math.abs(v) >= 1000 ? v.toLocaleString('en-US') : String(v));

export function renderLineChart(c: LineChart): string {
  const W = c.width ?? 960;
  const H = c.height ?? 540;
  const hasRight = c.series.some((s) => s.axis === 'right');
  const m = { left: 80, right: hasRight ? 80 : 30, top: c.subtitle === undefined ? 60 : 90, bottom: 130 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const all = c.series.flatMap((s) => s.points);
  const xMax = Math.max(1e-9, ...all.map((p) => p[0]), ...(c.markers ?? []).map((k) => k.x));
  const yLeftMax = Math.max(1, ...c.series.filter((s) => s.axis !== 'right').flatMap((s) => s.points.map((p) => p[1])));
  const yRightMax = Math.max(
    1,
    ...c.series.filter((s) => s.axis === 'right').flatMap((s) => s.points.map((p) => p[1])),
  );
  const xt = ticks(xMax);
  const yl = ticks(yLeftMax);
  const yr = ticks(yRightMax);
  const X = (x: number): number => m.left + (x / xt.top) * pw;
  const YL = (y: number): number => m.top + ph - (y / yl.top) * ph;
  const YR = (y: number): number => m.top + ph - (y / yr.top) * ph;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" font-size="13">`,
    `<rect width="${W}" height="${H}" fill="#ffffff"/>`,
    `<text x="${W / 2}" y="28" text-anchor="middle" font-size="18" font-weight="bold">${escapeXml(c.title)}</text>`,
  );
  if (c.subtitle !== undefined) {
    out.push(`<text x="${W / 2}" y="52" text-anchor="middle" fill="#444">${escapeXml(c.subtitle)}</text>`);
  }
  // Grid and ticks.
  for (const v of yl.values) {
    const y = YL(v).toFixed(1);
    out.push(
      `<line x1="${m.left}" x2="${m.left + pw}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`,
      `<text x="${m.left - 8}" y="${y}" text-anchor="end" dominant-baseline="middle">${fmt(v)}</text>`,
    );
  }
  if (hasRight) {
    for (const v of yr.values) {
      out.push(
        `<text x="${m.left + pw + 8}" y="${YR(v).toFixed(1)}" dominant-baseline="middle" fill="#555">${fmt(v)}</text>`,
      );
    }
  }
  for (const v of xt.values) {
    const x = X(v).toFixed(1);
    out.push(
      `<line x1="${x}" x2="${x}" y1="${m.top}" y2="${m.top + ph}" stroke="#f0f0f0"/>`,
      `<line x1="${x}" x2="${x}" y1="${m.top + ph}" y2="${m.top + ph + 5}" stroke="#000"/>`,
      `<text x="${x}" y="${m.top + ph + 20}" text-anchor="middle">${fmt(v)}</text>`,
    );
  }
  // Axes.
  out.push(
    `<line x1="${m.left}" x2="${m.left}" y1="${m.top}" y2="${m.top + ph}" stroke="#000"/>`,
    `<line x1="${m.left}" x2="${m.left + pw}" y1="${m.top + ph}" y2="${m.top + ph}" stroke="#000"/>`,
    `<text x="${m.left + pw / 2}" y="${m.top + ph + 44}" text-anchor="middle">${escapeXml(c.xLabel)}</text>`,
    `<text transform="translate(22 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(c.yLabel)}</text>`,
  );
  if (hasRight) {
    out.push(
      `<line x1="${m.left + pw}" x2="${m.left + pw}" y1="${m.top}" y2="${m.top + ph}" stroke="#000"/>`,
      `<text transform="translate(${W - 18} ${m.top + ph / 2}) rotate(90)" text-anchor="middle">${escapeXml(c.yRightLabel ?? '')}</text>`,
    );
  }
  // Markers; labels alternate between two rows so that close markers stay readable.
  (c.markers ?? []).forEach((k, i) => {
    const x = X(k.x).toFixed(1);
    out.push(
      `<line x1="${x}" x2="${x}" y1="${m.top}" y2="${m.top + ph}" stroke="${k.color}" stroke-dasharray="2 4"/>`,
      `<text x="${x}" y="${m.top - 6 - (i % 2) * 13}" text-anchor="middle" fill="${k.color}" font-size="11">${escapeXml(k.label)}</text>`,
    );
  });
  // Series.
  for (const s of c.series) {
    const Y = s.axis === 'right' ? YR : YL;
    const pts: string[] = [];
    let prev: readonly [number, number] | undefined;
    for (const p of s.points) {
      if (s.step === true && prev !== undefined) pts.push(`${X(p[0]).toFixed(1)},${Y(prev[1]).toFixed(1)}`);
      pts.push(`${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`);
      prev = p;
    }
    if (pts.length === 0) continue;
    out.push(
      `<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dashed === true ? ' stroke-dasharray="7 5"' : ''} points="${pts.join(' ')}"/>`,
    );
  }
  // Legend under the x label, wrapped into rows that fit the width.
  let lx = m.left;
  let ly = m.top + ph + 66;
  for (const s of c.series) {
    const label = s.name + (s.axis === 'right' ? ' (right axis)' : '');
    const width = 46 + label.length * 7;
    if (lx + width > W - 10 && lx > m.left) {
      lx = m.left;
      ly += 20;
    }
    out.push(
      `<line x1="${lx}" x2="${lx + 28}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="3"${s.dashed === true ? ' stroke-dasharray="7 5"' : ''}/>`,
      `<text x="${lx + 34}" y="${ly}" dominant-baseline="middle">${escapeXml(label)}</text>`,
    );
    lx += width;
  }
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
