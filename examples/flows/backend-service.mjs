// SMART Backend Services against Invicta, with nothing but Node.js (20 or later): make a P-384 key
// pair, register it, sign a client assertion (ES384), get a 5-minute system token, use it.
//
//   node examples/flows/backend-service.mjs setup  CLIENT_ID DIR   # key pair in DIR, prints the
//                                                                 # `invicta client add` command
//   node examples/flows/backend-service.mjs run    CLIENT_ID DIR FHIR_BASE [SCOPE]
//
// `run` prints the token response and the first page of `GET [base]/Patient` as JSON.
import { createPrivateKey, generateKeyPairSync, randomUUID, sign } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const [command, clientId, dir, fhirBase, scope = 'system/Patient.rs'] = process.argv.slice(2);
const b64url = (buf) => Buffer.from(buf).toString('base64url');

if (command === 'setup') {
  mkdirSync(dir, { recursive: true });
  const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const jwk = { ...publicKey.export({ format: 'jwk' }), kid: randomUUID(), alg: 'ES384', use: 'sig' };
  writeFileSync(join(dir, 'private-key.pem'), privateKey.export({ format: 'pem', type: 'pkcs8' }), { mode: 0o600 });
  writeFileSync(join(dir, 'jwks.json'), JSON.stringify({ keys: [jwk] }, null, 2));
  writeFileSync(join(dir, 'kid'), jwk.kid);
  console.log(`invicta client add --id ${clientId} --name "Backend service ${clientId}" ` +
    `--kind confidential-asymmetric --jwks ${join(dir, 'jwks.json')} --scope "system/*.rs" --role feed --org RWF`);
} else if (command === 'run') {
  // Where the token endpoint is: the server's SMART configuration says.
  const config = await (await fetch(`${fhirBase}/.well-known/smart-configuration`)).json();
  const key = createPrivateKey(readFileSync(join(dir, 'private-key.pem')));
  const now = Math.floor(Date.now() / 1000);
  const header = { alg: 'ES384', typ: 'JWT', kid: readFileSync(join(dir, 'kid'), 'utf8') };
  const claims = { iss: clientId, sub: clientId, aud: config.token_endpoint, exp: now + 60, iat: now, jti: randomUUID() };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  // JWS wants the raw r||s signature, not DER.
  const signature = sign('sha384', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' });
  const assertion = `${input}.${b64url(signature)}`;
  const tokenResponse = await fetch(config.token_endpoint, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      scope,
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: assertion,
    }),
  });
  const token = await tokenResponse.json();
  if (!tokenResponse.ok) {
    console.error(JSON.stringify(token));
    process.exit(1);
  }
  const patients = await fetch(`${fhirBase}/Patient?_count=5`, {
    headers: { authorization: `Bearer ${token.access_token}`, accept: 'application/fhir+json' },
  });
  console.log(JSON.stringify({ token: { ...token, access_token: '…' }, status: patients.status, bundle: await patients.json() }));
} else {
  console.error('usage: backend-service.mjs setup CLIENT_ID DIR | run CLIENT_ID DIR FHIR_BASE [SCOPE]');
  process.exit(2);
}
