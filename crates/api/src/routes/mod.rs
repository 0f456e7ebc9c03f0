//! Route groups; each module contributes a `Router<AppState>` merged by [`crate::router`].

pub mod admin;
pub mod auth;
pub mod dlq;
pub mod executions;
pub mod health;
pub mod notifications;
pub mod replay;
pub mod runtime;
pub mod sagas;
pub mod scripts;
pub mod sse;
pub mod sse_frame;
pub mod submit;
pub mod user_settings;
pub mod wait;
