//! Store adapters of integr8s: implementations of the `integr8s_core::ports::store` role traits.
//!
//! One module per database dialect, each with its own migrations under `migrations/<dialect>/`:
//! SQLite (`sqlite`) always, PostgreSQL (`postgres`) with the `postgres` feature. What does not
//! depend on the dialect is shared: row decoding ([`rows`]), value conversions ([`codec`]), the
//! queue's claim order ([`queue_order`]) and the tables a user deletion cascades to ([`cascade`]).
//! [`open`] chooses the adapter by the URL's scheme.

mod cascade;
mod codec;
mod open;
#[cfg(feature = "postgres")]
mod postgres;
mod queue_order;
mod retention;
mod rows;
mod sqlite;
#[cfg(feature = "testkit")]
pub mod testkit;

pub use open::{open, redact_url, Backend, DatabaseStore, UnsupportedUrl};
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
pub use sqlite::SqliteStore;
