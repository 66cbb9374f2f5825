// The care-record viewer: a SMART app. Launched by a point-of-care system (EHR launch: `iss` and
// `launch` in the URL) or opened directly (standalone: staff sign in and find a patient; a
// citizen signs in with NHS login and sees their own record). The SMART client library does
// discovery, the authorization request with PKCE and the code exchange.

import FHIR from 'fhirclient';
import { h, p, replace } from './dom.js';
import { Api, FhirError } from './fhir.js';
import { Permissions, chooseEmergency, emergencyFor, withheldIn } from './access.js';
import { allResources, loadAccessLog, loadRecord, organisationNames } from './record.js';
import { name, nhsNumber, NHS_NUMBER } from './format.js';
import { banner } from './sections/banner.js';
import { alerts } from './sections/alerts.js';
import { allergies } from './sections/allergies.js';
import { medications } from './sections/medications.js';
import { care } from './sections/care.js';
import { results } from './sections/results.js';
import { timeline } from './sections/timeline.js';
import { accessLog } from './sections/accesslog.js';
import { withheldNotice } from './sections/withheld.js';

/** What the viewer asks for: clinicians read at user level (their role and relationships
 * decide), citizens their own compartment and its audit trail; `online_access` keeps the session
 * going past the access token's hour (the library refreshes it) for as long as the sign-in lasts. */
const SCOPES = {
  ehr: 'launch openid fhirUser online_access user/*.rs',
  staff: 'openid fhirUser online_access user/*.rs',
  citizen: 'openid fhirUser online_access launch/patient patient/*.rs patient/AuditEvent.rs',
};

const app = document.getElementById('app');
const redirectUri = `${location.origin}${location.pathname}`;

boot().catch((e) => failed(e));

async function boot() {
  const config = await (await fetch('config.json')).json();
  const params = new URLSearchParams(location.search);
  if (params.has('launch')) {
    return FHIR.oauth2.authorize({ clientId: config.clientId, scope: SCOPES.ehr, redirectUri, pkceMode: 'required' });
  }
  if (params.has('code') || params.has('error') || sessionStorage.getItem('SMART_KEY')) {
    let client;
    try {
      client = await FHIR.oauth2.ready();
    } catch (e) {
      sessionStorage.clear();
      history.replaceState(null, '', redirectUri);
      return start(config, e);
    }
    return viewer(client);
  }
  return start(config);
}

/** The start page of a standalone launch: staff or citizen. */
function start(config, error) {
  const signIn = (scope) => FHIR.oauth2.authorize({ clientId: config.clientId, scope, redirectUri, iss: config.fhirBaseUrl, pkceMode: 'required' });
  document.title = 'Sign in – Shared care record';
  replace(app,
    h('h1', null, 'Shared care record'),
    error ? h('div', { class: 'nhsuk-error-summary', role: 'alert', tabindex: '-1', id: 'sign-in-error' },
      h('h2', { class: 'nhsuk-error-summary__title' }, 'You were not signed in'),
      h('div', { class: 'nhsuk-error-summary__body' }, p(String(error.message ?? error)))) : null,
    p('One view of a person’s health and social care record, from every service that cares for them.'),
    h('div', { class: 'nhsuk-card' }, h('div', { class: 'nhsuk-card__content' },
      h('h2', { class: 'nhsuk-card__heading' }, 'Health and care staff'),
      p('Sign in with your NHS Care Identity (smartcard or authenticator) to find a patient.'),
      h('button', { class: 'nhsuk-button', type: 'button', id: 'sign-in-staff', onclick: () => signIn(SCOPES.staff) }, 'Sign in as staff'))),
    h('div', { class: 'nhsuk-card' }, h('div', { class: 'nhsuk-card__content' },
      h('h2', { class: 'nhsuk-card__heading' }, 'Your own record'),
      p('Sign in with NHS login to see your record and who has looked at it.'),
      h('button', { class: 'nhsuk-button', type: 'button', id: 'sign-in-citizen', onclick: () => signIn(SCOPES.citizen) }, 'Sign in with NHS login'))));
  (document.getElementById('sign-in-error') ?? app.querySelector('h1'))?.focus?.();
}

/** A signed-in session: the patient in context, or the patient search. */
async function viewer(client) {
  const api = new Api(client);
  const perms = new Permissions(client.state.tokenResponse?.scope);
  const citizen = !String(client.state.tokenResponse?.scope ?? '').split(' ').some((s) => s.startsWith('user/'));
  const who = document.getElementById('signed-in');
  const me = client.getIdToken()?.name ?? client.getFhirUser();
  replace(who, `Signed in${me ? ` as ${me}` : ''} `,
    h('button', { class: 'nhsuk-button nhsuk-button--reverse nhsuk-u-margin-bottom-0', type: 'button', id: 'sign-out', onclick: () => { sessionStorage.clear(); location.assign(redirectUri); } }, 'Sign out'));
  who.hidden = false;
  const patient = client.patient.id;
  if (patient) return showRecord(api, perms, patient, citizen);
  return findPatient(api, perms);
}

/** Staff without a patient in context find one by NHS number. */
function findPatient(api, perms, notice) {
  document.title = 'Find a patient – Shared care record';
  const input = h('input', { class: 'nhsuk-input nhsuk-input--width-10', id: 'nhs-number', name: 'nhs-number', type: 'text', inputmode: 'numeric', autocomplete: 'off', spellcheck: 'false', 'aria-describedby': 'nhs-number-hint' });
  const form = h('form', { id: 'find-form', novalidate: true },
    h('div', { class: 'nhsuk-form-group' },
      h('label', { class: 'nhsuk-label nhsuk-label--m', for: 'nhs-number' }, 'NHS number'),
      h('div', { class: 'nhsuk-hint', id: 'nhs-number-hint' }, 'For example, 485 777 3456'),
      input),
    h('button', { class: 'nhsuk-button', type: 'submit', id: 'find-submit' }, 'Find patient'));
  const answer = h('div', { id: 'find-answer', 'aria-live': 'polite' }, notice ?? null);
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const n = input.value.replace(/\s/g, '');
    if (!/^\d{10}$/.test(n)) {
      replace(answer, h('p', { class: 'nhsuk-error-message', id: 'find-error' }, 'Enter a 10-digit NHS number'));
      input.focus();
      return;
    }
    await search(api, perms, n, answer);
  });
  replace(app, h('h1', null, 'Find a patient'), form, answer);
  input.focus();
}

async function search(api, perms, n, answer) {
  api.emergency = emergencyFor(`nhs:${n}`);
  replace(answer, p('Searching…'));
  let bundle;
  try {
    bundle = await api.request(`Patient?identifier=${encodeURIComponent(`${NHS_NUMBER}|${n}`)}&_count=2`);
  } catch (e) {
    replace(answer, h('p', { class: 'nhsuk-error-message' }, e.message));
    return;
  }
  const found = (bundle.entry ?? []).find((e) => e.resource?.resourceType === 'Patient')?.resource;
  if (found) {
    if (api.emergency) chooseEmergency(found.id, api.emergency);
    return showRecord(api, perms, found.id, false);
  }
  const withheld = withheldIn(bundle);
  if (withheld) {
    replace(answer, withheldNotice({ ...withheld, whole: true }, (choice) => {
      chooseEmergency(`nhs:${n}`, choice);
      search(api, perms, n, answer);
    }));
    answer.querySelector('h2')?.setAttribute('tabindex', '-1');
    answer.querySelector('h2')?.focus();
    return;
  }
  replace(answer, p(`No record has the NHS number ${nhsNumber(n)}.`));
}

/** The record of one patient: every section the user may see, in order. */
async function showRecord(api, perms, id, citizen) {
  document.body.dataset.ready = 'false';
  api.emergency = emergencyFor(id);
  replace(app, p('Loading the record…'));
  let record;
  try {
    record = await loadRecord(api, perms, id);
  } catch (e) {
    return failed(e);
  }
  // A claimed relationship is recorded by the server: later requests need no header.
  if (api.emergency?.kind === 'relationship-claim' && record.patient) {
    chooseEmergency(id, null);
    api.emergency = null;
  }
  const choose = (choice) => {
    chooseEmergency(id, choice);
    showRecord(api, perms, id, citizen);
  };
  if (record.refused) {
    return replace(app, h('h1', null, 'The record could not be shown'), p(record.refused.text));
  }
  if (!record.patient) {
    replace(app, h('h1', null, 'Shared care record'), withheldNotice(record.withheld, choose));
    return;
  }
  await loadAccessLog(api, perms, record);
  const orgs = await organisationNames(api, perms, allResources(record));
  const tl = timeline(api, perms, record, orgs);
  replace(app,
    citizen ? h('p', { class: 'nhsuk-caption-l' }, 'Your care record') : null,
    banner(record),
    api.emergency?.kind === 'break-glass' ? h('div', { class: 'nhsuk-card nhsuk-card--warning', id: 'break-glass-in-force' }, h('div', { class: 'nhsuk-card__content' },
      h('h2', { class: 'nhsuk-card__heading' }, 'Emergency access in force'),
      p(`You broke glass: “${api.emergency.reason}”. Everything you see is audited and reviewed.`),
      h('button', { class: 'nhsuk-button nhsuk-button--secondary', type: 'button', id: 'end-break-glass', onclick: () => choose(null) }, 'End emergency access'))) : null,
    record.withheld && !citizen ? withheldNotice(record.withheld, choose) : null,
    alerts(record),
    allergies(record),
    medications(record, orgs),
    care(record),
    results(record),
    tl,
    accessLog(record, orgs));
  document.title = `${name(record.patient.name)} – Shared care record`;
  // A screen reader starts at the person's name, not wherever the last page left it.
  document.getElementById('patient-name')?.focus();
  if (tl) await tl.load();
  document.body.dataset.ready = 'true';
}

function failed(e) {
  const status = e instanceof FhirError ? ` (${e.status})` : '';
  replace(app, h('h1', null, 'Something went wrong'), p(`${e?.message ?? e}${status}`));
  document.body.dataset.ready = 'true';
}
