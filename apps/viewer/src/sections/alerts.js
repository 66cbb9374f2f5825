// Alerts first: safeguarding, then DNACPR and other advance directives, then other active
// flags, each with who raised it and when.

import { h, section, p } from '../dom.js';
import { codes, date, ref, text } from '../format.js';

const SAFEGUARDING = new Set([
  'https://invicta.example.org/fhir/CodeSystem/flag-category|safeguarding',
  'http://snomed.info/sct|766561000000109',
  'http://snomed.info/sct|1092891000000108',
  'https://invicta.example.org/fhir/CodeSystem/flag-code|child-protection-plan',
]);
const DIRECTIVE = new Set([
  'http://terminology.hl7.org/CodeSystem/flag-category|advance-directive',
  'http://snomed.info/sct|304253006',
]);

/** The alerts section, or nothing when the role may see neither flags nor consents. */
export function alerts(record) {
  if (!record.allowed.has('flags') && !record.allowed.has('consents')) return null;
  const flags = (record.found.flags ?? []).map((f) => {
    const all = codes(f.category ?? [], f.code);
    const kind = all.some((c) => SAFEGUARDING.has(c)) ? 0 : all.some((c) => DIRECTIVE.has(c)) ? 1 : 2;
    return { kind, title: ['Safeguarding', 'Advance directive', text(f.category?.[0]) || 'Alert'][kind], what: text(f.code), by: ref(f.author), when: f.period?.start };
  });
  const directives = (record.found.consents ?? []).filter((c) => c.scope?.coding?.some((x) => x.code === 'adr')).map((c) => ({
    kind: 1,
    title: 'Advance directive',
    what: [text(c.category?.[0]), c.sourceAttachment?.title].filter(Boolean).join(': '),
    by: (c.performer ?? []).map(ref).join(', '),
    when: c.dateTime,
  }));
  const items = [...flags, ...directives].sort((a, b) => a.kind - b.kind || String(b.when).localeCompare(String(a.when)));
  return section('alerts', 'Alerts',
    items.length ? items.map((a) => h('div', { class: `nhsuk-card nhsuk-card--warning viewer-alert`, 'data-kind': ['safeguarding', 'directive', 'other'][a.kind] },
      h('div', { class: 'nhsuk-card__content' },
        h('h3', { class: 'nhsuk-card__heading' }, a.title),
        h('p', { class: 'nhsuk-card__description' }, a.what),
        h('p', { class: 'nhsuk-body-s nhsuk-u-margin-bottom-0' }, `Raised ${a.by ? `by ${a.by} ` : ''}${a.when ? `on ${date(a.when)}` : ''}`.trim()))))
      : p('No active alerts.'));
}
