DROP TABLE auth_revoked_token;
DROP TABLE auth_assertion_jti;
DROP TABLE auth_client;
DROP TABLE auth_signing_key;
