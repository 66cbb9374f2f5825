// "Who has looked at my record": the audit trail of accesses to the citizen's record, as the
// server lets a patient see it (accesses the policy hides from patients are not returned):
// reads and searches by people, not the systems that send data, nor the citizen's own.

import { h, section, p, table } from '../dom.js';
import { date } from '../format.js';

const ROLE_SYSTEM_CODES = {
  gp: 'GP', 'hospital-clinician': 'Hospital clinician', paramedic: 'Paramedic', 'community-nurse': 'Community nurse',
  'mental-health-clinician': 'Mental health clinician', pharmacist: 'Pharmacist', 'social-worker-adults': 'Social worker (adults)',
  'social-worker-children': "Social worker (children's)", 'safeguarding-lead': 'Safeguarding lead', receptionist: 'Receptionist',
  'privacy-officer': 'Privacy officer', feed: 'A system sending data',
};
const WHY = { TREAT: 'Care and treatment', BTG: 'Emergency access (break glass)', ETREAT: 'Emergency treatment', HOPERAT: 'Running the service' };
const WHAT = { read: 'Looked at', vread: 'Looked at', search: 'Searched', 'search-type': 'Searched', 'search-system': 'Searched', create: 'Added to', update: 'Changed', patch: 'Changed', delete: 'Removed from', operation: 'Looked at', batch: 'Looked at', transaction: 'Changed' };

/** The access-log section (for a role that may read AuditEvents about this patient). */
export function accessLog(record, orgs) {
  if (!record.allowed.has('accessLog')) return null;
  const rows = (record.found.accessLog ?? [])
    .map((e) => ({ e, agent: (e.agent ?? []).find((a) => a.requestor) ?? e.agent?.[0] }))
    .filter(({ agent }) => roleOf(agent) !== 'patient' && roleOf(agent) !== 'feed');
  return section('access-log', 'Who has looked at my record',
    p('Every time someone opens your record it is recorded. These are the most recent, newest first.'),
    rows.length ? table('Who has looked at my record', ['When', 'Organisation', 'Role', 'Why', 'What'], rows.map(({ e, agent }) => [
      date(e.recorded, true),
      agent?.altId ? `${orgs.get(agent.altId) ?? agent.altId}` : 'Not recorded',
      ROLE_SYSTEM_CODES[roleOf(agent)] ?? roleOf(agent) ?? '',
      WHY[e.purposeOfEvent?.[0]?.coding?.[0]?.code] ?? e.purposeOfEvent?.[0]?.coding?.[0]?.code ?? '',
      WHAT[e.subtype?.[0]?.code] ?? e.subtype?.[0]?.code ?? '',
    ])) : p('No one else has looked at your record yet.'));
}

const roleOf = (agent) => agent?.role?.[0]?.coding?.[0]?.code;
