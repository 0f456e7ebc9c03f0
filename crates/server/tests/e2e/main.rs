//! End-to-end suite: starts the real `integr8s` binary on a free loopback port with its own data
//! dir and drives it over HTTP, as a client of the contract would.

mod harness;

mod auth;
mod bad_input;
mod cli;
mod executions;
mod lifecycle;
mod sse;
