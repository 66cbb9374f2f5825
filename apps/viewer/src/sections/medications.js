// Current medications, each with who prescribed it and for which organisation; stopped and
// completed ones folded away.

import { h, section, p, table } from '../dom.js';
import { date, ref, sourceOf, text } from '../format.js';

const CURRENT = new Set(['active', 'on-hold', 'intended', 'draft']);

/** The medications section, or nothing when the role may see neither prescriptions nor medication statements. */
export function medications(record, orgs) {
  if (!record.allowed.has('medicationRequests') && !record.allowed.has('medicationStatements')) return null;
  const orgName = (r) => {
    const code = sourceOf(r);
    return code ? (orgs.get(code) ?? code) : '';
  };
  const rows = [];
  const seen = new Set();
  for (const m of record.found.medicationRequests ?? []) {
    const what = text(m.medicationCodeableConcept) || ref(m.medicationReference);
    seen.add(`${what}|${CURRENT.has(m.status)}`);
    rows.push({ current: CURRENT.has(m.status), cells: [what, m.dosageInstruction?.[0]?.text ?? '', [ref(m.requester), orgName(m)].filter(Boolean).join(', '), date(m.authoredOn), m.status] });
  }
  for (const m of record.found.medicationStatements ?? []) {
    const what = text(m.medicationCodeableConcept) || ref(m.medicationReference);
    const current = CURRENT.has(m.status);
    if (seen.has(`${what}|${current}`)) continue;
    rows.push({ current, cells: [what, m.dosage?.[0]?.text ?? '', [ref(m.informationSource), orgName(m)].filter(Boolean).join(', '), date(m.effectivePeriod?.start ?? m.effectiveDateTime ?? m.dateAsserted), m.status] });
  }
  const head = ['Medicine', 'Dose', 'Prescriber and organisation', 'Since', 'Status'];
  const current = rows.filter((r) => r.current);
  const stopped = rows.filter((r) => !r.current);
  return section('medications', 'Medications',
    current.length ? table('Current medications', head, current.map((r) => r.cells)) : p('No current medications.'),
    stopped.length ? h('details', { class: 'nhsuk-details', id: 'stopped-medications' },
      h('summary', { class: 'nhsuk-details__summary' }, h('span', { class: 'nhsuk-details__summary-text' }, `Stopped or completed medications (${stopped.length})`)),
      h('div', { class: 'nhsuk-details__text' }, table('Stopped or completed medications', head, stopped.map((r) => r.cells)))) : null);
}
