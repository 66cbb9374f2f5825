// What the signed-in user may see, read from the scopes the authorization server granted (the
// app's request narrowed to the user's role), and the emergency access they chose: a claimed
// relationship or break-glass, sent with every request of this session as Invicta's headers.

const ROUTE_SYSTEM = 'https://invicta.example.org/fhir/CodeSystem/access-route';
const EMERGENCY_KEY = 'invicta-viewer-emergency';

/** The granted scopes, answering whether the user may search (or read) a type. */
export class Permissions {
  constructor(scope) {
    this.scopes = String(scope ?? '').split(/\s+/).filter(Boolean).map(parse).filter(Boolean);
    /** Beyond one patient's compartment (staff): organisations and practitioners can be read. */
    this.userLevel = this.scopes.some((s) => s.context !== 'patient');
  }

  /** True when some granted scope lets the user do `letter` (`r`, `s`) on `type`. */
  may(type, letter = 's') {
    return this.scopes.some((s) => (s.type === type || (s.type === '*' && type !== 'AuditEvent')) && s.letters.includes(letter));
  }

  /** True when any of `types` may be searched. */
  any(...types) {
    return types.some((t) => this.may(t));
  }
}

function parse(scope) {
  const m = /^(patient|user|system)\/([A-Za-z*]+)\.([a-z*]+)(\?.*)?$/.exec(scope);
  if (!m) return null;
  const [, context, type, perms] = m;
  const letters = perms === 'read' ? 'rs' : perms === 'write' ? 'cud' : perms === '*' ? 'cruds' : perms;
  return { context, type, letters };
}

/** The ways to see withheld data the server offered (codes of its access-route system). */
export function routesOf(issue) {
  return (issue?.details?.coding ?? []).filter((c) => c.system === ROUTE_SYSTEM).map((c) => c.code);
}

/** The withheld notice of a searchset (its `suppressed` outcome issue), if any. */
export function withheldIn(bundle) {
  for (const e of bundle?.entry ?? []) {
    if (e.search?.mode !== 'outcome') continue;
    const issue = e.resource?.issue?.find((i) => i.code === 'suppressed');
    if (issue) return { routes: routesOf(issue), text: issue.diagnostics };
  }
  return null;
}

/** The emergency access chosen for a patient in this browser session. */
export function emergencyFor(patientKey) {
  try {
    const all = JSON.parse(sessionStorage.getItem(EMERGENCY_KEY) ?? '{}');
    return all[patientKey] ?? null;
  } catch {
    return null;
  }
}

/** Records the emergency access chosen (`{ kind: 'break-glass' | 'relationship-claim', reason }`). */
export function chooseEmergency(patientKey, choice) {
  let all = {};
  try {
    all = JSON.parse(sessionStorage.getItem(EMERGENCY_KEY) ?? '{}');
  } catch {
    all = {};
  }
  all[patientKey] = choice;
  sessionStorage.setItem(EMERGENCY_KEY, JSON.stringify(all));
}

/** The request headers of an emergency access. */
export function emergencyHeaders(choice) {
  if (choice?.kind === 'break-glass') {
    return { 'X-Purpose-Of-Use': 'BTG', 'X-Break-Glass-Reason': choice.reason };
  }
  if (choice?.kind === 'relationship-claim') {
    return { 'X-Relationship-Claim': choice.reason };
  }
  return {};
}
