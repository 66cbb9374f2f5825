-- The SMART authorization server's state. It lives here rather than in a process's memory so
-- that several server processes sharing this database behave as one: a key rotated, a client
-- registered or a token revoked through one is seen by all (NOTIFY invicta_auth tells them).

-- Signing keys of the server's own tokens. The newest key without `retired_at` signs; a retired
-- key stays published and trusted until `retired_at` plus the longest token lifetime, so the
-- tokens it signed stay valid until they expire.
CREATE TABLE auth_signing_key (
    kid         TEXT        PRIMARY KEY,
    alg         TEXT        NOT NULL,
    private_pem TEXT        NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp(),
    retired_at  TIMESTAMPTZ
);

-- Registered OAuth clients (SMART apps, point-of-care systems, feeds).
--   kind          public | confidential-symmetric (secret_hash) | confidential-asymmetric (jwks or jwks_url)
--   redirect_uris compared exactly
--   scopes        the most the client may be granted
--   backend_role  the care-record role of its client_credentials tokens (e.g. feed)
--   org           the ODS code of the organisation running it
CREATE TABLE auth_client (
    id            TEXT        PRIMARY KEY,
    name          TEXT        NOT NULL,
    kind          TEXT        NOT NULL
                  CHECK (kind IN ('public', 'confidential-symmetric', 'confidential-asymmetric')),
    secret_hash   TEXT,
    jwks          JSONB,
    jwks_url      TEXT,
    redirect_uris TEXT[]      NOT NULL DEFAULT '{}',
    scopes        TEXT        NOT NULL,
    launch_url    TEXT,
    backend_role  TEXT,
    org           TEXT,
    created_at    TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((kind = 'confidential-symmetric') = (secret_hash IS NOT NULL)),
    CHECK (kind <> 'confidential-asymmetric' OR jwks IS NOT NULL OR jwks_url IS NOT NULL)
);

-- Client assertion ids already used (RFC 7523 §3), kept until the assertion expires, so an
-- assertion cannot be replayed.
CREATE TABLE auth_assertion_jti (
    client_id  TEXT        NOT NULL,
    jti        TEXT        NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (client_id, jti)
);
CREATE INDEX auth_assertion_jti_expiry ON auth_assertion_jti (expires_at);

-- Revoked access tokens (by `jti`), kept until they would have expired anyway.
CREATE TABLE auth_revoked_token (
    jti        TEXT        PRIMARY KEY,
    expires_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX auth_revoked_token_expiry ON auth_revoked_token (expires_at);
