// The single timeline across providers (`Patient/$timeline`): every contact, result, referral,
// admission and plan in date order, each with the organisation whose system sent it,
// filterable by source, kind and date, a page at a time.

import { h, section, p, replace } from '../dom.js';
import { ODS, date, text, quantity, ref } from '../format.js';

const EVENT = 'https://invicta.example.org/fhir/StructureDefinition/timeline-event';
const PAGE = 20;

/** The kinds a person filters by, each a set of resource types. */
const KINDS = [
  ['contacts', 'Contacts and admissions', ['Encounter', 'EpisodeOfCare', 'Appointment']],
  ['results', 'Results', ['Observation', 'DiagnosticReport']],
  ['referrals', 'Referrals', ['ServiceRequest']],
  ['plans', 'Care plans, directives and alerts', ['CarePlan', 'Consent', 'Flag']],
  ['diagnoses', 'Diagnoses and procedures', ['Condition', 'Procedure']],
  ['medicines', 'Medicines and vaccinations', ['MedicationRequest', 'MedicationStatement', 'MedicationDispense', 'Immunization']],
  ['documents', 'Letters and documents', ['DocumentReference']],
];

const LABEL = {
  Encounter: 'Contact', EpisodeOfCare: 'Episode of care', Appointment: 'Appointment', Observation: 'Result',
  DiagnosticReport: 'Report', ServiceRequest: 'Referral', CarePlan: 'Care plan', Consent: 'Directive', Flag: 'Alert',
  Condition: 'Diagnosis', Procedure: 'Procedure', MedicationRequest: 'Prescription', MedicationStatement: 'Medication',
  MedicationDispense: 'Dispensed', Immunization: 'Vaccination', DocumentReference: 'Document', AllergyIntolerance: 'Allergy',
};

/** The timeline section (shown when the role may see contacts), loading its first page. */
export function timeline(api, perms, record, orgs) {
  if (!perms.may('Encounter')) return null;
  const kinds = KINDS.map(([key, label, types]) => [key, label, types.filter((t) => perms.may(t))]).filter(([, , t]) => t.length);
  const sources = [...orgs.entries()].sort((a, b) => a[1].localeCompare(b[1]));
  const list = h('div', { id: 'timeline-entries', 'aria-live': 'polite' }, p('Loading the timeline…'));
  const filters = {};
  const form = h('form', { class: 'viewer-filters', id: 'timeline-filters', novalidate: true },
    select('timeline-source', 'Source', [['', 'All sources'], ...sources.map(([code, name]) => [code, `${name} (${code})`])]),
    select('timeline-kind', 'Kind', [['', 'Everything'], ...kinds.map(([key, label]) => [key, label])]),
    dateInput('timeline-from', 'From'),
    dateInput('timeline-to', 'To'),
    h('button', { class: 'nhsuk-button nhsuk-button--secondary', type: 'submit' }, 'Apply filters'));
  form.addEventListener('submit', (ev) => {
    ev.preventDefault();
    filters.source = form.querySelector('#timeline-source').value;
    const kind = kinds.find(([key]) => key === form.querySelector('#timeline-kind').value);
    filters.types = kind ? kind[2] : null;
    filters.from = form.querySelector('#timeline-from').value;
    filters.to = form.querySelector('#timeline-to').value;
    show(firstPage(record.id, filters));
  });
  const show = async (url) => {
    list.setAttribute('aria-busy', 'true');
    try {
      const bundle = await api.request(url);
      render(bundle);
    } catch (e) {
      replace(list, h('p', { class: 'nhsuk-error-message' }, `The timeline could not be loaded: ${e.message}`));
    } finally {
      list.removeAttribute('aria-busy');
    }
  };
  const render = (bundle) => {
    const entries = (bundle.entry ?? []).filter((e) => e.search?.mode === 'match');
    const link = (rel) => bundle.link?.find((l) => l.relation === rel)?.url;
    const [prev, next] = [link('previous') ?? link('prev'), link('next')];
    replace(list,
      entries.length ? h('ol', { class: 'viewer-timeline', id: 'timeline-list' }, entries.map((e) => item(e, orgs))) : p('Nothing on the timeline matches.'),
      prev || next ? h('nav', { class: 'viewer-actions', 'aria-label': 'Timeline pages' },
        prev ? h('button', { class: 'nhsuk-button nhsuk-button--secondary', type: 'button', id: 'timeline-newer', onclick: () => show(prev) }, 'Newer entries') : null,
        next ? h('button', { class: 'nhsuk-button nhsuk-button--secondary', type: 'button', id: 'timeline-older', onclick: () => show(next) }, 'Older entries') : null) : null);
  };
  const el = section('timeline', 'Timeline', form, list);
  el.load = () => show(firstPage(record.id, filters));
  return el;
}

function firstPage(id, filters) {
  const q = new URLSearchParams({ _count: String(PAGE) });
  if (filters.types) q.set('_type', filters.types.join(','));
  if (filters.source) q.set('_tag', `${ODS}|${filters.source}`);
  if (filters.from) q.set('start', filters.from);
  if (filters.to) q.set('end', filters.to);
  return `Patient/${encodeURIComponent(id)}/$timeline?${q}`;
}

function item(entry, orgs) {
  const r = entry.resource;
  const label = entry.extension?.find((x) => x.url === EVENT)?.extension ?? [];
  const when = label.find((x) => x.url === 'date')?.valueDateTime;
  const source = label.find((x) => x.url === 'source')?.valueIdentifier?.value;
  return h('li', { 'data-type': r.resourceType },
    h('span', { class: 'viewer-when' }, `${date(when, true)} · ${LABEL[r.resourceType] ?? r.resourceType}`),
    h('span', null, summary(r)),
    h('span', { class: 'viewer-source' }, source ? `From ${orgs.get(source) ?? source} (${source})` : 'Source not recorded'));
}

/** One line saying what an entry is. */
function summary(r) {
  switch (r.resourceType) {
    case 'Encounter':
      return [text(r.type?.[0]) || text(r.serviceType) || r.class?.display, r.location?.[0] ? `at ${ref(r.location[0].location)}` : ''].filter(Boolean).join(' ');
    case 'Observation':
      return `${text(r.code)}: ${quantity(r.valueQuantity) || text(r.valueCodeableConcept) || r.valueString || ''}`;
    case 'CarePlan':
      return r.title ?? text(r.category?.[0]);
    case 'EpisodeOfCare':
      return text(r.type?.[0]) || 'Episode of care';
    case 'MedicationRequest':
    case 'MedicationStatement':
    case 'MedicationDispense':
      return text(r.medicationCodeableConcept) || ref(r.medicationReference);
    case 'Immunization':
      return text(r.vaccineCode);
    case 'DocumentReference':
      return r.description ?? text(r.type);
    case 'Consent':
      return text(r.category?.[0]) || 'Consent';
    default:
      return text(r.code) || text(r.type?.[0] ?? r.type) || r.title || r.description || r.resourceType;
  }
}

function select(id, label, options) {
  return h('div', { class: 'nhsuk-form-group' },
    h('label', { class: 'nhsuk-label', for: id }, label),
    h('select', { class: 'nhsuk-select', id, name: id }, options.map(([value, text]) => h('option', { value }, text))));
}

function dateInput(id, label) {
  return h('div', { class: 'nhsuk-form-group' },
    h('label', { class: 'nhsuk-label', for: id }, label),
    h('input', { class: 'nhsuk-input nhsuk-input--width-10', id, name: id, type: 'date' }));
}
