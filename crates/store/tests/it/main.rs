//! The store's integration tests, one binary: each module opens a real store (SQLite,
//! or PostgreSQL under `POCKET_TEST_ENGINE=postgres`) through the crate's public API.

mod world;

mod backpressure;
mod codes;
mod credentials;
mod deadline;
mod holds;
mod two_phase;
