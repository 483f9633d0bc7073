//! Webhook delivery: every event reaches every subscribed endpoint at least once.
//!
//! - [`signature`]: the `Pocket-Signature` header (Stripe's scheme).
//! - [`ssrf`]: which destinations are refused (loopback, private networks…), checked
//!   on the URL and again on every address DNS returns.
//! - [`dispatcher`]: claims due deliveries from the store's outbox, sends them with
//!   bounded concurrency (per endpoint and in all), records each attempt, and
//!   schedules retries from `pocket_core::retry`.
//!
//! What this crate must not do: decide what an event contains (the store wrote it),
//! or keep delivery state in memory (a restart loses nothing: state is in the store).
//!
//! Architecture invariant: every destination is checked by [`ssrf`] on each address it
//! resolves to, and the client takes no proxy from the environment.

pub mod dispatcher;
pub mod signature;
pub mod ssrf;

pub use dispatcher::{Dispatcher, DispatcherConfig};
