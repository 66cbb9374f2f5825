// Recent pathology results with reference ranges and out-of-range marks, and a small trend chart
// for the tests followed over time.

import { h, s, section, p, table, tag } from '../dom.js';
import { date, quantity, ref, text } from '../format.js';

/** Tests drawn as trends: LOINC codes → the name shown. */
const TRENDS = [
  [['62238-1', '33914-3', '69405-9'], 'eGFR'],
  [['4548-4', '59261-8', '17856-6'], 'HbA1c'],
  [['718-7', '30350-3'], 'Haemoglobin'],
];
const ABNORMAL = new Set(['H', 'HH', 'L', 'LL', 'A', 'AA', 'HU', 'LU']);

/** The results section, or nothing when the role may not see results. */
export function results(record) {
  if (!record.allowed.has('results')) return null;
  const all = (record.found.results ?? []).filter((o) => o.status !== 'entered-in-error');
  if (!all.length) return section('results', 'Pathology results', p('No pathology results recorded.'));
  const recent = latestPerTest(all);
  const trends = TRENDS.map(([loinc, label]) => [label, all.filter((o) => o.code?.coding?.some((c) => c.system === 'http://loinc.org' && loinc.includes(c.code)) && o.valueQuantity?.value != null)])
    .filter(([, points]) => points.length);
  return section('results', 'Pathology results',
    table('Most recent result of each test', ['Test', 'Result', 'Reference range', 'Date', 'Laboratory'], recent.map((o) => {
      const flag = o.interpretation?.flatMap((i) => i.coding ?? []).find((c) => ABNORMAL.has(c.code));
      return [
        text(o.code),
        h('span', { class: flag ? 'viewer-out-of-range' : null }, quantity(o.valueQuantity) || text(o.valueCodeableConcept) || o.valueString || '',
          flag ? [' ', tag(flag.display ?? (flag.code.startsWith('H') ? 'High' : 'Low'), 'red')] : null),
        range(o.referenceRange?.[0]),
        date(o.effectiveDateTime ?? o.issued),
        (o.performer ?? []).map(ref).join(', '),
      ];
    })),
    trends.map(([label, points]) => chart(label, points)));
}

function latestPerTest(all) {
  const latest = new Map();
  for (const o of all) {
    const key = text(o.code);
    const when = o.effectiveDateTime ?? o.issued ?? '';
    if (!latest.has(key) || String(latest.get(key).effectiveDateTime ?? '') < when) latest.set(key, o);
  }
  return [...latest.values()];
}

function range(r) {
  if (!r) return '';
  if (r.text) return r.text;
  if (r.low && r.high) return `${r.low.value}–${quantity(r.high)}`;
  if (r.low) return `≥ ${quantity(r.low)}`;
  if (r.high) return `≤ ${quantity(r.high)}`;
  return '';
}

/** A line chart of one test's values over time, with its reference range shaded; a table of the same values follows for screen readers. */
function chart(label, points) {
  const sorted = [...points].sort((a, b) => String(a.effectiveDateTime).localeCompare(String(b.effectiveDateTime)));
  const xs = sorted.map((o) => new Date(o.effectiveDateTime ?? o.issued).getTime());
  const ys = sorted.map((o) => Number(o.valueQuantity.value));
  const ref0 = sorted.at(-1).referenceRange?.[0];
  const bounds = [...ys, ref0?.low?.value, ref0?.high?.value].filter((v) => v != null).map(Number);
  const [lo, hi] = [Math.min(...bounds), Math.max(...bounds)];
  const pad = (hi - lo || Math.abs(hi) || 1) * 0.15;
  const [y0, y1] = [lo - pad, hi + pad];
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const W = 480;
  const H = 160;
  const M = { l: 48, r: 16, t: 12, b: 28 };
  const X = (x) => M.l + (x1 === x0 ? (W - M.l - M.r) / 2 : ((x - x0) / (x1 - x0)) * (W - M.l - M.r));
  const Y = (y) => M.t + (1 - (y - y0) / (y1 - y0)) * (H - M.t - M.b);
  const unit = sorted.at(-1).valueQuantity.unit ?? '';
  const id = `trend-${label.toLowerCase()}`;
  const band = ref0 && (ref0.low || ref0.high)
    ? s('rect', { x: M.l, width: W - M.l - M.r, y: Y(Math.min(ref0.high?.value ?? y1, y1)), height: Math.max(0, Y(Math.max(ref0.low?.value ?? y0, y0)) - Y(Math.min(ref0.high?.value ?? y1, y1))), fill: '#e8f1f8' })
    : null;
  return h('figure', { class: 'viewer-chart', id },
    h('figcaption', { class: 'nhsuk-body-s nhsuk-u-margin-bottom-1' }, h('strong', null, `${label} trend`), ` (${unit}; shaded: reference range)`),
    s('svg', { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': `${label}: ${sorted.map((o, i) => `${ys[i]} on ${date(o.effectiveDateTime)}`).join(', ')}` },
      band,
      s('line', { x1: M.l, x2: M.l, y1: M.t, y2: H - M.b, stroke: '#4c6272' }),
      s('line', { x1: M.l, x2: W - M.r, y1: H - M.b, y2: H - M.b, stroke: '#4c6272' }),
      s('text', { x: M.l - 6, y: Y(hi) + 4, 'text-anchor': 'end', 'font-size': 12, fill: '#212b32' }, String(hi)),
      s('text', { x: M.l - 6, y: Y(lo) + 4, 'text-anchor': 'end', 'font-size': 12, fill: '#212b32' }, String(lo)),
      s('polyline', { points: xs.map((x, i) => `${X(x)},${Y(ys[i])}`).join(' '), fill: 'none', stroke: '#005eb8', 'stroke-width': 2 }),
      xs.map((x, i) => s('circle', { cx: X(x), cy: Y(ys[i]), r: 4, fill: '#005eb8' })),
      s('text', { x: X(x0), y: H - 8, 'text-anchor': x1 === x0 ? 'middle' : 'start', 'font-size': 12, fill: '#212b32' }, date(sorted[0].effectiveDateTime)),
      x1 !== x0 ? s('text', { x: X(x1), y: H - 8, 'text-anchor': 'end', 'font-size': 12, fill: '#212b32' }, date(sorted.at(-1).effectiveDateTime)) : null));
}
