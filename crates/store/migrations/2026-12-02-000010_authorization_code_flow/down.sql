DROP TABLE auth_refresh_token;
DROP TABLE auth_refresh_family;
DROP TABLE auth_launch;
DROP TABLE auth_code;
DROP TABLE auth_session;
DROP TABLE auth_request;
