// The first screen's data in two requests: one batch Bundle of every search the user's role
// allows (the patient, alerts, directives, allergies, medicines, plans, teams, carers, results,
// a current stay, and for a citizen the access log), then the names of the organisations that
// sent it. The timeline is its own request (it pages).

import { withheldIn, routesOf } from './access.js';
import { ODS, sourceOf } from './format.js';

/** What the viewer reads, by key: the search and the type the role must be allowed to search. */
const READS = [
  ['flags', 'Flag', (id) => `Flag?patient=${id}&status=active&_count=50`],
  ['consents', 'Consent', (id) => `Consent?patient=${id}&status=active&_count=50`],
  ['allergies', 'AllergyIntolerance', (id) => `AllergyIntolerance?patient=${id}&_count=100`],
  ['medicationRequests', 'MedicationRequest', (id) => `MedicationRequest?patient=${id}&_count=100`],
  ['medicationStatements', 'MedicationStatement', (id) => `MedicationStatement?patient=${id}&_count=100`],
  ['carePlans', 'CarePlan', (id) => `CarePlan?patient=${id}&_count=50`],
  ['careTeams', 'CareTeam', (id) => `CareTeam?patient=${id}&status=active&_include=CareTeam:participant&_count=20`],
  ['related', 'RelatedPerson', (id) => `RelatedPerson?patient=${id}&_count=50`],
  ['results', 'Observation', (id) => `Observation?patient=${id}&category=laboratory&_sort=-date&_count=200`],
  ['stays', 'Encounter', (id) => `Encounter?patient=${id}&status=in-progress&_include=Encounter:location&_count=10`],
];

/** The record of one patient as far as the user may see it. */
export async function loadRecord(api, perms, patientId) {
  const id = encodeURIComponent(patientId);
  const reads = READS.filter(([, type]) => perms.may(type));
  const answers = await api.batch([`Patient/${id}`, ...reads.map(([, , url]) => url(id))]);
  const [patientAnswer, ...rest] = answers;
  const record = { id: patientId, patient: null, withheld: null, refused: null, allowed: new Set(), found: {}, included: [] };
  if (patientAnswer.status >= 400 || patientAnswer.resource?.resourceType !== 'Patient') {
    const issue = patientAnswer.resource?.issue?.[0];
    const routes = routesOf(issue);
    if (patientAnswer.status === 403 && routes.length) {
      record.withheld = { routes, text: issue?.diagnostics, whole: true };
    } else {
      record.refused = { status: patientAnswer.status, text: issue?.diagnostics ?? `The record could not be read (${patientAnswer.status})` };
    }
    return record;
  }
  record.patient = patientAnswer.resource;
  reads.forEach(([key], i) => {
    const answer = rest[i];
    if (!answer || answer.status >= 400 || answer.resource?.resourceType !== 'Bundle') return;
    record.allowed.add(key);
    const entries = answer.resource.entry ?? [];
    record.found[key] = entries.filter((e) => e.search?.mode !== 'outcome' && e.search?.mode !== 'include').map((e) => e.resource);
    record.included.push(...entries.filter((e) => e.search?.mode === 'include').map((e) => e.resource));
    const withheld = withheldIn(answer.resource);
    if (withheld && !record.withheld) {
      // The Patient was readable, so the user's relationship with this person stands: what is
      // still withheld is restricted content, which only break-glass lifts.
      record.withheld = { ...withheld, routes: withheld.routes.filter((r) => r !== 'relationship-claim') };
    }
  });
  return record;
}

/** The access log of the record (a request of its own: Invicta reads the audit trail only for
 * requests that name it). Added to `record` when the role may read it. */
export async function loadAccessLog(api, perms, record) {
  if (!perms.may('AuditEvent')) return;
  try {
    const bundle = await api.request(`AuditEvent?patient=${encodeURIComponent(record.id)}&action=R,E&_sort=-date&_count=100`);
    record.found.accessLog = (bundle.entry ?? []).filter((e) => e.search?.mode === 'match').map((e) => e.resource);
    record.allowed.add('accessLog');
  } catch {
    // The section is left out; the rest of the record stands.
  }
}

/** ODS code → organisation name, for every organisation the record names (when the role may read them). */
export async function organisationNames(api, perms, resources) {
  const names = new Map();
  const found = new Set();
  for (const r of resources) {
    const code = sourceOf(r);
    if (code) found.add(code);
    if (r?.resourceType === 'AuditEvent') {
      for (const a of r.agent ?? []) if (a.altId) found.add(a.altId);
    }
  }
  if (!found.size || !perms.userLevel || !perms.may('Organization')) return names;
  const codes = [...found].slice(0, 50).map((c) => `${ODS}|${c}`).join(',');
  try {
    const bundle = await api.request(`Organization?identifier=${encodeURIComponent(codes)}&_count=50&_elements=name,identifier`);
    for (const e of bundle.entry ?? []) {
      const org = e.resource;
      const code = org?.identifier?.find((i) => i.system === ODS)?.value;
      if (code && org.name) names.set(code, org.name);
    }
  } catch {
    // Without names the viewer shows the ODS codes: less friendly, nothing withheld.
  }
  return names;
}

/** Every resource the batch returned, for looking up names. */
export const allResources = (record) => [record.patient, ...Object.values(record.found).flat(), ...record.included].filter(Boolean);
