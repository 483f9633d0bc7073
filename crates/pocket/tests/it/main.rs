//! Pocket's integration tests: each module starts the real `pocket` binary and speaks
//! HTTP to it, as a merchant, a wallet, an operator or an attacker would.

#[path = "../common/mod.rs"]
mod common;

mod apps;
mod bad_input;
mod bank;
mod cards;
mod codes;
mod concurrency;
mod connectors;
mod deploy;
mod flow;
mod hardening;
mod holds;
mod live;
mod migrate_data;
mod operations;
mod pins;
mod readme_tour;
mod rules;
mod schema;
mod staff;
mod start;
mod webhooks;
