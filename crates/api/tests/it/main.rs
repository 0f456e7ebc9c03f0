//! Integration tests of the HTTP API against a real SQLite store, bus and key/value store.

mod auth;
mod common;
mod executions;
mod lifecycle;
mod misc;
mod openapi_params;
mod sse;
