//! The end-to-end suite: one test binary whose themes are modules, so the workspace's
//! dependency set is linked once (docs/TESTING.md lists what each theme covers). Run one theme
//! with `cargo nextest run -p chime-identity-sync --test e2e replay::`.
//!
//! The harness (the Runtime API mock, moto, the fakes' wiring) is the `testkit` crate.

mod bootstrap;
mod bootstrap_binaries;
mod cli_fake;
mod cli_reconcile;
mod cognito_faults;
mod credential_exchange;
mod credential_samples;
mod event_shapes;
mod fault_run;
mod function_url;
mod https;
mod ledger_moto;
mod local_loop;
mod metrics;
mod no_pii_in_logs;
mod ownership;
mod reconcile;
mod reconcile_faults;
mod replay;
mod sim_vs_moto;
mod sqs_moto;
mod template;
mod tls_stack;
