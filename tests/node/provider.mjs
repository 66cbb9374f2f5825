// A real OpenID Connect provider (the oidc-provider package) for the end-to-end tests, standing
// in for NHS CIS2 (staff: nhsid_nrbac_roles, selected_roleid) and NHS login (citizens:
// nhs_number, identity_proofing_level). Its development interactions (a login form that takes
// any known account id, and a consent form) are what a test's browser fills in.
//
//   node provider.mjs PORT
// with IDP_CLIENTS (a JSON array of client registrations) and IDP_ACCOUNTS (a JSON object of
// account id -> claims) in the environment. Prints "ready" once listening.
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const accounts = JSON.parse(process.env.IDP_ACCOUNTS ?? '{}');

const provider = new Provider(issuer, {
  clients: JSON.parse(process.env.IDP_CLIENTS ?? '[]'),
  claims: {
    openid: ['sub'],
    profile: ['name'],
    nhs: ['nhs_number', 'identity_proofing_level'],
    nationalrbacaccess: ['nhsid_nrbac_roles', 'selected_roleid'],
  },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['invicta-test-identity-provider'] },
  findAccount: async (ctx, id) => {
    if (!Object.hasOwn(accounts, id)) return undefined;
    return { accountId: id, claims: async () => ({ sub: id, ...accounts[id] }) };
  },
});
provider.listen(port, '127.0.0.1', () => console.log('ready'));
