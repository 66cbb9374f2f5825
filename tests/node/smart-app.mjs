// A SMART app built on the SMART JavaScript client library (the fhirclient package), run by the
// end-to-end tests: /launch starts an EHR or standalone launch against the `iss` it is given, and
// /app completes it (code exchange with PKCE) and reads the patient in context, answering what it
// got as JSON. Every protocol step is the library's own, not the tests'.
//
//   node smart-app.mjs PORT CLIENT_ID
// Prints "ready" once listening.
import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const smart = require('fhirclient');

const port = Number(process.argv[2]);
const clientId = process.argv[3];
const origin = `http://127.0.0.1:${port}`;

// fhirclient keeps its state in a session store; one in memory does for a test.
const kept = new Map();
const storage = {
  async get(key) { return kept.get(key); },
  async set(key, value) { kept.set(key, value); return value; },
  async unset(key) { return kept.delete(key); },
};

http.createServer(async (req, res) => {
  const url = new URL(req.url, origin);
  try {
    if (url.pathname === '/launch') {
      await smart(req, res, storage).authorize({
        clientId,
        scope: url.searchParams.get('scope') ?? 'launch openid fhirUser patient/*.rs',
        redirectUri: `${origin}/app`,
        pkceMode: 'required',
      });
    } else if (url.pathname === '/app') {
      const client = await smart(req, res, storage).ready();
      const patient = await client.patient.read();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({
        patient: client.patient.id,
        family: patient.name?.[0]?.family ?? null,
        scope: client.state.tokenResponse?.scope ?? null,
        fhirUser: client.getFhirUser() ?? null,
      }));
    } else {
      res.writeHead(404);
      res.end();
    }
  } catch (e) {
    res.writeHead(500, { 'content-type': 'text/plain' });
    res.end(String(e?.stack ?? e));
  }
}).listen(port, '127.0.0.1', () => console.log('ready'));
