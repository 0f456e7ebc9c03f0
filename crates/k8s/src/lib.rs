//! The Kubernetes executor of integr8s (ARCHITECTURE.md §6).
//!
//! - [`K8sWorker`] consumes the saga's `create_pod_command` / `delete_pod_command` and creates
//!   (or deletes) one ConfigMap and one hardened Pod per execution ([`manifest`]); it also
//!   deletes them once the result is stored, and sweeps orphans.
//! - [`PodMonitor`] watches the executor pods and emits the same events as the local worker,
//!   with the container's output and usage.
//! - [`K8sConfig`] names the namespace (never `default`), the image registry
//!   ([`ImageRegistry`]), the runtime class and how to reach the cluster.
//!
//! Both components use core ports for the store and the bus, and kube-rs for the cluster. With
//! the `fake-apiserver` feature, [`fake`] is a Kubernetes API server for tests that speaks the
//! real wire protocol over loopback HTTP and runs pods in the local sandbox.

mod config;
mod error;
pub mod events;
pub mod images;
pub mod manifest;
mod monitor;
pub mod quantity;
pub mod report;
mod settings;
mod worker;

#[cfg(feature = "fake-apiserver")]
pub mod fake;

pub use config::{Connection, K8sConfig};
pub use error::{CreateFailure, K8sError};
pub use images::{ContainerRuntime, ImageRegistry};
pub use monitor::{Ending, PodMonitor, PodView};
pub use settings::{K8sSettings, DEFAULT_SECTION};
pub use worker::{K8sWorker, GROUP as K8S_WORKER_GROUP, MODE as EXECUTOR_MODE};

/// The client type of [`K8sConfig::client`].
pub use kube::Client;
