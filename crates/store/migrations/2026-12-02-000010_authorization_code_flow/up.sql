-- The authorization code flow's state (SMART App Launch): requests in progress while a user signs
-- in and consents, signed-in sessions, single-use codes, EHR launch contexts and refresh-token
-- families. Secrets handed to browsers or clients (session ids, codes, launch values, refresh
-- tokens) are stored only as their SHA-256, so a copy of this database grants nothing.

-- An authorization request between /auth/authorize and the code: the client's parameters and
-- what the upstream sign-in needs (state, nonce, PKCE verifier).
CREATE TABLE auth_request (
    id          TEXT        PRIMARY KEY,
    params      JSONB       NOT NULL,
    upstream    JSONB,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX auth_request_expiry ON auth_request (expires_at);

-- A signed-in user (the browser holds the id in an HttpOnly cookie).
CREATE TABLE auth_session (
    id_hash     TEXT        PRIMARY KEY,
    person      JSONB       NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX auth_session_expiry ON auth_session (expires_at);

-- Authorization codes: single use, short-lived; a second use revokes what the first one issued.
CREATE TABLE auth_code (
    code_hash   TEXT        PRIMARY KEY,
    grant_data  JSONB       NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ,
    issued_jtis TEXT[]      NOT NULL DEFAULT '{}',
    family_id   UUID
);
CREATE INDEX auth_code_expiry ON auth_code (expires_at);

-- EHR launch contexts a point-of-care system created: single use, minutes long.
CREATE TABLE auth_launch (
    launch_hash TEXT        PRIMARY KEY,
    created_by  TEXT        NOT NULL,
    context     JSONB       NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    used_at     TIMESTAMPTZ
);
CREATE INDEX auth_launch_expiry ON auth_launch (expires_at);

-- Refresh tokens rotate: each use gives a new one in the same family; using a spent one again
-- means it was stolen, and revokes the family and the access tokens it issued.
CREATE TABLE auth_refresh_family (
    id          UUID        PRIMARY KEY,
    client_id   TEXT        NOT NULL,
    grant_data  JSONB       NOT NULL,
    expires_at  TIMESTAMPTZ NOT NULL,
    revoked_at  TIMESTAMPTZ,
    issued_jtis TEXT[]      NOT NULL DEFAULT '{}'
);
CREATE INDEX auth_refresh_family_expiry ON auth_refresh_family (expires_at);

CREATE TABLE auth_refresh_token (
    token_hash  TEXT        PRIMARY KEY,
    family_id   UUID        NOT NULL REFERENCES auth_refresh_family (id) ON DELETE CASCADE,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    used_at     TIMESTAMPTZ
);
CREATE INDEX auth_refresh_token_family ON auth_refresh_token (family_id);
