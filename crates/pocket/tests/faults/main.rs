//! Pocket under faults and at scale: `kill -9` with writes and bank operations in
//! flight, a full disk, PostgreSQL failover and several nodes, connection floods and
//! the load generator. Apart from `it` so that these heavy tests run beside each other
//! only.

#[path = "../common/mod.rs"]
mod common;

mod bank_faults;
mod bench;
mod connections;
mod crash;
mod disk_full;
mod failover;
mod nodes;
