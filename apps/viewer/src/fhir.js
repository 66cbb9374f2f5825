// Every request the viewer makes to the FHIR server goes through here: the SMART client's
// authenticated request, the emergency-access headers in force, and a count of requests (the
// end-to-end tests report how many the first screen took).

import { emergencyHeaders } from './access.js';

/** The FHIR API of one signed-in session. */
export class Api {
  constructor(client) {
    this.client = client;
    this.count = 0;
    this.emergency = null;
  }

  /** GET (or `init.method`) a URL relative to the FHIR base, or absolute on it; the JSON body. */
  async request(url, init = {}) {
    this.count += 1;
    document.body.dataset.fhirRequests = String(this.count);
    try {
      return await this.client.request(
        { url, method: init.method ?? 'GET', body: init.body, headers: { ...emergencyHeaders(this.emergency), ...init.headers } },
        { pageLimit: 1, flat: false },
      );
    } catch (e) {
      throw await asFhirError(e);
    }
  }

  /** Runs GET entries as one batch Bundle; each answer is `{ status, resource }`. */
  async batch(urls) {
    const bundle = {
      resourceType: 'Bundle',
      type: 'batch',
      entry: urls.map((url) => ({ request: { method: 'GET', url } })),
    };
    const answer = await this.request('', {
      method: 'POST',
      body: JSON.stringify(bundle),
      headers: { 'Content-Type': 'application/fhir+json' },
    });
    return (answer.entry ?? []).map((e) => ({
      status: Number.parseInt(e.response?.status ?? '0', 10),
      resource: e.resource ?? e.response?.outcome ?? null,
    }));
  }
}

/** An error a person can read: the status and the server's OperationOutcome, if it sent one. */
export class FhirError extends Error {
  constructor(status, outcome, message) {
    super(message);
    this.status = status;
    this.outcome = outcome;
  }
}

async function asFhirError(e) {
  const status = e?.status ?? e?.statusCode ?? 0;
  let body = e?.body;
  if (body == null && typeof e?.parse === 'function') {
    try {
      await e.parse();
      body = e.body;
    } catch {
      body = null;
    }
  }
  const outcome = body?.resourceType === 'OperationOutcome' ? body : null;
  const text = outcome?.issue?.map((i) => i.diagnostics).filter(Boolean).join(' ') || e?.message || String(e);
  return new FhirError(status, outcome, text);
}
