//! End-to-end tests: each test starts the real `invicta` binary on its own PostgreSQL database
//! and talks HTTP to it. `make test` provides `INVICTA_TEST_ADMIN_URL`; without a reachable
//! PostgreSQL these tests fail, they never skip.

mod harness;

mod access;
mod authorization;
mod authorization_code;
mod bad_input;
mod browser;
mod crud;
mod durability;
mod everything;
mod example_flows;
mod examples;
mod feeds;
mod history;
mod hostile;
mod logging;
mod operations;
mod provisioning;
mod replicas;
mod scale_out;
mod search;
mod smart_client_library;
mod timeline;
mod upstream_signin;
mod validation;
mod viewer;
mod whole_record;
