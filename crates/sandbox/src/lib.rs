//! The local sandbox executor: bubblewrap for namespaces and the filesystem, plus a supervisor
//! for cgroups, the host-uid drop, seccomp, output caps, timeouts and accounting.
//!
//! Start it with [`LocalExecutor::start`]; [`integr8s_core::ports::Executor::health`] then tells
//! whether (and how strongly) runs are isolated. An executor that is not ready refuses every
//! run with [`integr8s_core::ports::executor::ExecError::Unavailable`].

mod args;
mod bench;
mod capture;
mod cgroup;
mod classify;
mod config;
mod executor;
mod init;
mod ladder;
mod launch;
mod pool;
mod seccomp;
mod selftest;
mod slot_checks;
mod supervise;
mod sys;
mod uid_claim;

pub use bench::{
    bench_report, BenchReport, LatencyPair, TargetVerdict, TARGET_ADDED_OVERHEAD,
    TARGET_PYTHON_RATIO, TARGET_THROUGHPUT_SHARE,
};
pub use config::{SandboxConfig, DEFAULT_UID_CLAIM_DIR};
pub use executor::LocalExecutor;
