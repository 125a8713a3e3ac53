// A horizontal bar chart as inline SVG (no library): one group per row, one bar per
// series, negative values drawn left of the zero line.

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs = {}, text) {
  const el = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attrs)) el.setAttribute(name, String(value));
  if (text !== undefined) el.textContent = text;
  return el;
}

/**
 * rows: [{label, values: [number, ...]}]; series: [{name, className}]; format: number -> text.
 */
export function barChart({ rows, series, format, title, testid }) {
  const labelWidth = 150;
  const width = 640;
  const barHeight = 14;
  const gap = 4;
  const groupHeight = series.length * (barHeight + gap) + 10;
  const legendHeight = 24;
  const height = legendHeight + rows.length * groupHeight + 8;
  const values = rows.flatMap((r) => r.values);
  const max = Math.max(0, ...values);
  const min = Math.min(0, ...values);
  const span = max - min || 1;
  const plot = width - labelWidth - 70;
  const x = (v) => labelWidth + ((v - min) / span) * plot;
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title, class: "chart", "data-testid": testid });
  root.append(svg("title", {}, title));
  series.forEach((s, i) => {
    const lx = labelWidth + i * 140;
    root.append(svg("rect", { x: lx, y: 6, width: 12, height: 12, rx: 2, class: s.className }));
    root.append(svg("text", { x: lx + 18, y: 16, class: "chart-legend" }, s.name));
  });
  root.append(svg("line", { x1: x(0), x2: x(0), y1: legendHeight, y2: height - 4, class: "chart-axis" }));
  rows.forEach((row, r) => {
    const top = legendHeight + r * groupHeight;
    root.append(svg("text", { x: labelWidth - 8, y: top + groupHeight / 2, class: "chart-label", "text-anchor": "end", "dominant-baseline": "middle" }, truncate(row.label, 22)));
    row.values.forEach((value, i) => {
      const y = top + 4 + i * (barHeight + gap);
      const from = Math.min(x(0), x(value));
      const bar = svg("rect", { x: from, y, width: Math.max(1, Math.abs(x(value) - x(0))), height: barHeight, rx: 2, class: series[i].className });
      bar.append(svg("title", {}, `${row.label} · ${series[i].name}: ${format(value)}`));
      root.append(bar);
      root.append(svg("text", { x: Math.max(x(0), x(value)) + 4, y: y + barHeight - 3, class: "chart-value" }, format(value)));
    });
  });
  return root;
}

function truncate(text, length) {
  const value = String(text);
  return value.length > length ? `${value.slice(0, length - 1)}…` : value;
}
