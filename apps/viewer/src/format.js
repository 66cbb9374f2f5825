// How the record's values read to a person: dates as in the NHS (2 March 2026), NHS numbers in
// 3-3-4 groups, names with the family name in capitals, coded values by their text.

export const NHS_NUMBER = 'https://fhir.nhs.uk/Id/nhs-number';
export const ODS = 'https://fhir.nhs.uk/Id/ods-organization-code';

/** An NHS number in 3-3-4 groups. */
export function nhsNumber(n) {
  const d = String(n ?? '').replace(/\s/g, '');
  return d.length === 10 ? `${d.slice(0, 3)} ${d.slice(3, 6)} ${d.slice(6)}` : d;
}

/** The NHS number of a Patient, if it has one. */
export const nhsNumberOf = (patient) =>
  patient?.identifier?.find((i) => i.system === NHS_NUMBER)?.value;

/** A date (`2026-11-10`) or date-time as `10 Nov 2026`, with the time when `withTime`. */
export function date(value, withTime = false) {
  if (!value) return '';
  const dateOnly = /^\d{4}(-\d{2}(-\d{2})?)?$/.test(value);
  if (/^\d{4}$/.test(value)) return value;
  if (/^\d{4}-\d{2}$/.test(value)) {
    return new Date(`${value}-01T00:00:00Z`).toLocaleDateString('en-GB', { month: 'long', year: 'numeric', timeZone: 'UTC' });
  }
  const d = new Date(dateOnly ? `${value}T00:00:00Z` : value);
  if (Number.isNaN(d.getTime())) return value;
  const opts = { day: 'numeric', month: 'short', year: 'numeric', timeZone: dateOnly ? 'UTC' : 'Europe/London' };
  if (withTime && !dateOnly) Object.assign(opts, { hour: '2-digit', minute: '2-digit' });
  return d.toLocaleString('en-GB', opts);
}

/** Whole years between a birth date and today. */
export function age(birthDate, today = new Date()) {
  if (!birthDate) return null;
  const [y, m = 1, d = 1] = birthDate.split('-').map(Number);
  let years = today.getFullYear() - y;
  if (today.getMonth() + 1 < m || (today.getMonth() + 1 === m && today.getDate() < d)) years -= 1;
  return years;
}

/** A person's name: given names, then the family name in capitals, then any prefix. */
export function name(names) {
  const n = names?.find((x) => x.use === 'official') ?? names?.[0];
  if (!n) return '';
  if (n.text && !n.family) return n.text;
  const given = (n.given ?? []).join(' ');
  const prefix = n.prefix?.length ? ` (${n.prefix.join(' ')})` : '';
  return `${given} ${String(n.family ?? '').toUpperCase()}${prefix}`.trim();
}

/** The text of a CodeableConcept. */
export const text = (cc) => cc?.text ?? cc?.coding?.find((c) => c.display)?.display ?? cc?.coding?.[0]?.code ?? '';

/** The codings of CodeableConcepts as `system|code`. */
export const codes = (...ccs) => ccs.flat().flatMap((cc) => cc?.coding ?? []).map((c) => `${c.system}|${c.code}`);

/** What a Reference names, for a person. */
export const ref = (r) => r?.display ?? r?.reference ?? '';

/** An address on one line. */
export function address(a) {
  if (!a) return '';
  return [...(a.line ?? []), a.city, a.district, a.postalCode].filter(Boolean).join(', ') || a.text || '';
}

/** A quantity with its unit. */
export const quantity = (q) => (q?.value == null ? '' : `${q.value}${q.unit ? ` ${q.unit}` : ''}`);

/** The ODS code of the organisation whose system sent a resource (Invicta tags every write). */
export const sourceOf = (resource) => resource?.meta?.tag?.find((t) => t.system === ODS)?.code;

/** Telecom values as text, phone first. */
export const telecom = (t) => (t ?? []).filter((c) => c.value).sort((a, b) => (a.system === 'phone' ? -1 : b.system === 'phone' ? 1 : 0))
  .map((c) => `${c.value}${c.use ? ` (${c.use})` : ''}`);
