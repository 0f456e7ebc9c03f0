//! End-to-end suite: starts the real `integr8s` binary on a free loopback port with its own data
//! dir and drives it over HTTP, as a client of the contract would.

mod harness;
mod otlp;

mod admin_events;
mod admin_executions;
mod admin_settings;
mod admin_users;

mod auth;
mod auth_abuse;
mod bad_input;
mod browser_limits;
mod cli;
mod console;
mod contract;
mod cross_cutting;
mod delivery_proxy;
mod dlq;
mod executions;
mod fair_share;
mod lifecycle;
mod limits;
mod load;
mod metrics;
mod notifications;
mod openapi;
mod postgres;
mod quotas;
mod rate_limits;
mod redis_limiter;
mod replay;
mod retention;
mod sagas;
mod sandbox_uids;
mod scripts;
mod sessions;
mod sse;
mod streams;
mod traces;
mod user_settings;
mod wait;

mod chaos;
mod compose;
mod deployment;
mod k8s_deployment;
mod k8s_figures;
mod k8s_manifests;
mod k8s_roles;
mod scale_out;
mod scale_out_failures;
mod scale_out_figures;
