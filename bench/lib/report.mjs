// Results as JSON and Markdown, and an SVG chart of latency against offered rate.
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** True when this run updates the recorded results in git (`RECORD=1`); otherwise runs write to an untracked folder. */
export const RECORDING = process.env.RECORD === '1';
/** The tracked results (`bench/results/`), written only with `RECORD=1`. */
export const RECORDED_DIR = fileURLToPath(new URL('../results/', import.meta.url));
/**
 * Where results go: `RESULTS_DIR` if set, else `bench/results/` with
 * `RECORD=1`, else `bench/results/local/` (in .gitignore), so a plain run does
 * not overwrite the recorded results.
 */
export const RESULTS_DIR = withSlash(process.env.RESULTS_DIR || (RECORDING ? RECORDED_DIR : fileURLToPath(new URL('../results/local/', import.meta.url))));

function withSlash(dir) {
  return dir.endsWith('/') ? dir : `${dir}/`;
}

/** Where a recorded artefact outside bench/results goes (e.g. the chart in docs/): there with `RECORD=1`, else in RESULTS_DIR. */
export function recordedPath(trackedPath, name) {
  return RECORDING ? trackedPath : `${RESULTS_DIR}${name}`;
}

export function table(headers, rows) {
  const line = (cells) => `| ${cells.join(' | ')} |`;
  return [line(headers), line(headers.map(() => '---')), ...rows.map(line)].join('\n');
}

export function save(name, result, markdown) {
  mkdirSync(RESULTS_DIR, { recursive: true });
  writeFileSync(`${RESULTS_DIR}${name}.json`, JSON.stringify(result, null, 2) + '\n');
  writeFileSync(`${RESULTS_DIR}${name}.md`, markdown + '\n');
  console.log(`\n${markdown}\n\nresults: ${RESULTS_DIR}${name}.json${RECORDING || process.env.RESULTS_DIR ? '' : ' (not tracked; RECORD=1 updates bench/results/)'}`);
}

/** series: [{ name, points: [[rate, ms], ...] }] */
export function latencyChart(series, { title, yLabel = 'latency (ms, log scale)' }) {
  const W = 720, H = 420, L = 70, R = 170, T = 40, B = 50;
  const xs = series.flatMap((s) => s.points.map((p) => p[0]));
  const ys = series.flatMap((s) => s.points.map((p) => Math.max(p[1], 0.05)));
  const xMax = Math.max(...xs) * 1.05;
  const yMin = 0.05, yMax = Math.max(...ys) * 2;
  const x = (v) => L + (v / xMax) * (W - L - R);
  const y = (v) => T + (1 - (Math.log10(Math.max(v, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) * (H - T - B);
  const colors = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b'];
  const parts = [`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`, `<rect width="${W}" height="${H}" fill="white"/>`, `<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${title}</text>`];
  for (const t of [0.1, 1, 10, 100, 1000].filter((t) => t >= yMin && t <= yMax)) {
    parts.push(`<line x1="${L}" x2="${W - R}" y1="${y(t)}" y2="${y(t)}" stroke="#ddd"/><text x="${L - 6}" y="${y(t) + 4}" text-anchor="end">${t}</text>`);
  }
  const step = xMax > 20_000 ? 5_000 : xMax > 8_000 ? 2_000 : 1_000;
  for (let t = 0; t <= xMax; t += step) parts.push(`<line x1="${x(t)}" x2="${x(t)}" y1="${T}" y2="${H - B}" stroke="#eee"/><text x="${x(t)}" y="${H - B + 16}" text-anchor="middle">${t / 1000}k</text>`);
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 12}" text-anchor="middle">offered heartbeats per second</text>`);
  parts.push(`<text transform="translate(16 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${yLabel}</text>`);
  series.forEach((s, i) => {
    const c = colors[i % colors.length];
    const d = s.points.map((p, j) => `${j ? 'L' : 'M'}${x(p[0]).toFixed(1)},${y(p[1]).toFixed(1)}`).join(' ');
    parts.push(`<path d="${d}" fill="none" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 4"' : ''}/>`);
    for (const p of s.points) parts.push(`<circle cx="${x(p[0]).toFixed(1)}" cy="${y(p[1]).toFixed(1)}" r="3" fill="${c}"/>`);
    parts.push(`<line x1="${W - R + 10}" x2="${W - R + 30}" y1="${T + 10 + i * 18}" y2="${T + 10 + i * 18}" stroke="${c}" stroke-width="2"${s.dashed ? ' stroke-dasharray="5 4"' : ''}/><text x="${W - R + 36}" y="${T + 14 + i * 18}">${s.name}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n');
}
