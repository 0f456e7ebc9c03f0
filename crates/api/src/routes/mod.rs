//! Route groups; each module contributes a `Router<AppState>` merged by [`crate::router`].

pub mod auth;
pub mod executions;
pub mod health;
pub mod runtime;
pub mod sse;
pub mod submit;
