// Allergies and intolerances.

import { h, section, p, table, tag } from '../dom.js';
import { date, text } from '../format.js';

/** The allergies section, or nothing when the role may not see allergies. */
export function allergies(record) {
  if (!record.allowed.has('allergies')) return null;
  const all = (record.found.allergies ?? []).filter((a) => a.clinicalStatus?.coding?.[0]?.code !== 'resolved');
  if (!all.length) return section('allergies', 'Allergies and intolerances', p('No allergies or intolerances recorded.'));
  return section('allergies', 'Allergies and intolerances',
    table('Allergies and intolerances', ['Substance', 'Reaction', 'Criticality', 'Recorded'], all.map((a) => [
      h('span', null, text(a.code), a.verificationStatus?.coding?.[0]?.code === 'unconfirmed' ? [' ', tag('Unconfirmed', 'grey')] : null),
      (a.reaction ?? []).flatMap((r) => (r.manifestation ?? []).map(text)).join(', '),
      a.criticality === 'high' ? tag('High', 'red') : (a.criticality ?? ''),
      date(a.recordedDate),
    ])));
}
