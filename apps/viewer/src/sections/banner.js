// The patient banner: who this is, at a glance, on every screen.

import { h, summaryList } from '../dom.js';
import { address, age, date, name, nhsNumber, nhsNumberOf, ref } from '../format.js';

const GENDER = { male: 'Male', female: 'Female', other: 'Other', unknown: 'Not known' };
const STAY = { IMP: 'Inpatient', ACUTE: 'Inpatient', NONAC: 'Non-acute stay', EMER: 'Emergency department', OBSENC: 'Observation' };

/** The banner of `record.patient`, with the current stay when the record shows one. */
export function banner(record) {
  const p = record.patient;
  const years = age(p.birthDate);
  const practice = (p.generalPractitioner ?? []).find((g) => g.reference?.startsWith('Organization/')) ?? p.generalPractitioner?.[0];
  const home = p.address?.find((a) => a.use === 'home') ?? p.address?.[0];
  const stay = currentStay(record);
  return h('section', { id: 'banner', class: 'viewer-banner', 'aria-labelledby': 'patient-name' },
    h('h1', { id: 'patient-name', class: 'nhsuk-heading-l', tabindex: '-1' }, name(p.name)),
    summaryList([
      ['NHS number', nhsNumber(nhsNumberOf(p))],
      ['Date of birth', p.birthDate ? `${date(p.birthDate)}${years != null ? ` (${years} years)` : ''}` : ''],
      ['Gender', GENDER[p.gender] ?? ''],
      ['GP practice', practice ? ref(practice) : 'Not registered'],
      ['Address', address(home)],
      ['Current location', stay],
    ], { id: 'banner-details' }));
}

function currentStay(record) {
  const stays = record.found.stays ?? [];
  const locations = new Map(record.included.filter((r) => r.resourceType === 'Location').map((l) => [`Location/${l.id}`, l]));
  for (const e of stays) {
    const here = (e.location ?? []).find((l) => l.status !== 'completed') ?? e.location?.[0];
    if (!here) continue;
    const loc = locations.get(here.location?.reference);
    const where = loc?.name ?? ref(here.location);
    const kind = STAY[e.class?.code] ?? e.class?.display ?? 'Current stay';
    return `${kind}: ${where}${e.period?.start ? `, since ${date(e.period.start)}` : ''}`;
  }
  return '';
}
