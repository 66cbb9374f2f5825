// Care plans (end of life, crisis, anticipatory), the care team and the carers, with how to
// reach them.

import { h, section, p, summaryList } from '../dom.js';
import { date, name, ref, telecom, text } from '../format.js';

/** The care section, or nothing when the role may see neither care plans nor care teams. */
export function care(record) {
  if (!record.allowed.has('carePlans') && !record.allowed.has('careTeams')) return null;
  const byRef = new Map(record.included.map((r) => [`${r.resourceType}/${r.id}`, r]));
  const plans = (record.found.carePlans ?? []).filter((c) => c.status !== 'revoked' && c.status !== 'entered-in-error');
  const team = (record.found.careTeams ?? []).flatMap((t) => t.participant ?? []);
  const carers = record.found.related ?? [];
  return section('care', 'Care plans, care team and carers',
    h('h3', null, 'Care plans'),
    plans.length ? plans.map((c) => h('div', { class: 'nhsuk-card viewer-plan' },
      h('div', { class: 'nhsuk-card__content' },
        h('h4', { class: 'nhsuk-card__heading' }, c.title ?? text(c.category?.[0]) ?? 'Care plan'),
        c.description ? h('p', { class: 'nhsuk-card__description' }, c.description) : null,
        h('p', { class: 'nhsuk-body-s nhsuk-u-margin-bottom-0' },
          [c.status === 'active' ? 'Active' : c.status, c.period?.start ? `since ${date(c.period.start)}` : '', c.author ? `, by ${ref(c.author)}` : ''].filter(Boolean).join(' '))))) : p('No care plans recorded.'),
    record.allowed.has('careTeams') ? [h('h3', null, 'Care team'),
      team.length ? summaryList(team.map((m) => {
        const who = byRef.get(m.member?.reference);
        const contact = telecom(who?.telecom);
        return [text(m.role?.[0]) || 'Member', [ref(m.member), m.onBehalfOf ? `, ${ref(m.onBehalfOf)}` : '', contact.length ? ` — ${contact.join(', ')}` : ''].join('')];
      }), { id: 'care-team' }) : p('No care team recorded.')] : null,
    record.allowed.has('related') ? [h('h3', null, 'Carers and next of kin'),
      carers.length ? summaryList(carers.map((c) => [
        (c.relationship ?? []).map(text).filter(Boolean).join(', ') || 'Related person',
        [name(c.name), ...telecom(c.telecom)].join(' — '),
      ]), { id: 'carers' }) : p('No carers or next of kin recorded.')] : null);
}
