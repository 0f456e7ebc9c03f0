//! The roles of the `integr8s` binary and how a process runs a set of them.
//!
//! Every role can run in any process: `integr8s <role>` runs one, `integr8s serve --roles a,b`
//! several, `integr8s serve` the all-in-one server (every role but the Kubernetes executor's:
//! it runs scripts in the local sandbox). The adapters (store, bus, limiter, executor) are
//! chosen once per process from the configuration ([`adapters`]); a process that runs only
//! some roles must use adapters that processes can share ([`topology`]).

pub mod adapters;
mod api;
mod engine;
mod health;
mod process;
pub mod topology;

use std::collections::BTreeSet;
use std::fmt;

pub use process::run;

/// A part of the system that can run in a process of its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// Queue admission and dispatch.
    Coordinator,
    /// The execution saga: validate, allocate, start the run, compensate.
    SagaOrchestrator,
    /// Runs scripts in the local bubblewrap sandbox.
    LocalWorker,
    /// Runs scripts as Kubernetes pods: creates and deletes executor pods and ConfigMaps.
    K8sWorker,
    /// Watches the executor pods and reports their runs (one per namespace).
    PodMonitor,
    /// Stores outcomes and frees queue slots.
    ResultProcessor,
    /// Redelivers or discards dead-lettered events.
    DlqProcessor,
    /// Runs replay sessions.
    EventReplay,
    /// The notification service and the webhook/Slack delivery worker.
    Notifications,
    /// The HTTP API (and SSE streams, the web console); started last, so that it listens once
    /// the other roles of its process run.
    Api,
}

impl Role {
    /// Every role, in the order a process starts them.
    pub const ALL: [Role; 10] = [
        Role::Coordinator,
        Role::SagaOrchestrator,
        Role::LocalWorker,
        Role::K8sWorker,
        Role::PodMonitor,
        Role::ResultProcessor,
        Role::DlqProcessor,
        Role::EventReplay,
        Role::Notifications,
        Role::Api,
    ];

    /// The role's name: its subcommand and its name in `serve --roles`.
    pub fn name(self) -> &'static str {
        match self {
            Role::Api => "api",
            Role::Coordinator => "coordinator",
            Role::SagaOrchestrator => "saga-orchestrator",
            Role::LocalWorker => "local-worker",
            Role::K8sWorker => "k8s-worker",
            Role::PodMonitor => "pod-monitor",
            Role::ResultProcessor => "result-processor",
            Role::DlqProcessor => "dlq-processor",
            Role::EventReplay => "event-replay",
            Role::Notifications => "notifications",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }

    /// Whether the role uses the rate limiter and short-lived keys (`limiter.*`).
    pub fn uses_limiter(self) -> bool {
        self == Role::Api
    }

    /// Whether the role runs scripts on this host (sandbox, runtimes).
    pub fn uses_sandbox(self) -> bool {
        self == Role::LocalWorker
    }

    /// Whether the role belongs to the Kubernetes executor (`[k8s]`, a client of the cluster).
    pub fn uses_kubernetes(self) -> bool {
        matches!(self, Role::K8sWorker | Role::PodMonitor)
    }

    /// Whether the all-in-one server (`integr8s serve`) runs the role: all but the
    /// Kubernetes executor's, since it runs scripts in the local sandbox.
    pub fn in_all_in_one(self) -> bool {
        !self.uses_kubernetes()
    }

    /// Whether a process running this role also runs the Kafka outbox relay (when
    /// `bus.relay` is on). The relay reads the whole event store, so it republishes the events
    /// of every process; it runs beside the roles that every deployment has and that already
    /// read every topic or poll the store (the API for its live streams, the coordinator for
    /// its tick), so that a deployment with two of each has four relays and no other process
    /// pays for one.
    pub fn hosts_relay(self) -> bool {
        matches!(self, Role::Api | Role::Coordinator)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The roles one process runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleSet(BTreeSet<Role>);

impl RoleSet {
    /// The roles of the all-in-one server ([`Role::in_all_in_one`]).
    pub fn all() -> Self {
        Self(
            Role::ALL
                .into_iter()
                .filter(|r| r.in_all_in_one())
                .collect(),
        )
    }

    pub fn one(role: Role) -> Self {
        Self(BTreeSet::from([role]))
    }

    /// Parses `api,coordinator,…` (names as in [`Role::name`], no duplicates, at least one).
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut set = BTreeSet::new();
        for name in list.split(',').map(str::trim) {
            let role = Role::parse(name).ok_or_else(|| {
                format!(
                    "unknown role '{name}' (roles: {})",
                    Role::ALL.map(Role::name).join(", ")
                )
            })?;
            if !set.insert(role) {
                return Err(format!("role '{name}' named twice"));
            }
        }
        Ok(Self(set))
    }

    /// Whether this is the whole system in one process (the all-in-one server: exactly its
    /// roles, see [`RoleSet::all`]).
    pub fn is_all(&self) -> bool {
        *self == Self::all()
    }

    pub fn contains(&self, role: Role) -> bool {
        self.0.contains(&role)
    }

    pub fn iter(&self) -> impl Iterator<Item = Role> + '_ {
        self.0.iter().copied()
    }

    pub fn any(&self, f: impl Fn(Role) -> bool) -> bool {
        self.iter().any(f)
    }

    /// The `service.name` of the process's spans: `integr8s` for the all-in-one server,
    /// `integr8s-<role>[+<role>…]` otherwise.
    pub fn service_name(&self) -> String {
        if self.is_all() {
            return "integr8s".to_owned();
        }
        let names: Vec<_> = self.iter().map(Role::name).collect();
        format!("integr8s-{}", names.join("+"))
    }
}

impl fmt::Display for RoleSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<_> = self.iter().map(Role::name).collect();
        f.write_str(&names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.name()), Some(role));
        }
        assert_eq!(Role::parse("worker"), None);
    }

    #[test]
    fn role_lists_parse_and_refuse_unknown_or_repeated_names() {
        let set = RoleSet::parse("api, coordinator").unwrap();
        assert!(set.contains(Role::Api) && set.contains(Role::Coordinator));
        assert!(!set.is_all());
        assert_eq!(set.to_string(), "coordinator,api");
        let every = Role::ALL.map(Role::name).join(",");
        assert!(!RoleSet::parse(&every).unwrap().is_all());
        let all_in_one = "coordinator,saga-orchestrator,local-worker,result-processor,\
                          dlq-processor,event-replay,notifications,api";
        assert!(RoleSet::parse(all_in_one).unwrap().is_all());
        assert!(!RoleSet::parse(&format!("{all_in_one},pod-monitor"))
            .unwrap()
            .is_all());
        assert!(RoleSet::parse("api,worker")
            .unwrap_err()
            .contains("unknown role 'worker'"));
        assert!(RoleSet::parse("api,api").unwrap_err().contains("twice"));
        assert!(RoleSet::parse("").is_err());
        assert_eq!(RoleSet::all().service_name(), "integr8s");
        assert_eq!(
            RoleSet::one(Role::LocalWorker).service_name(),
            "integr8s-local-worker"
        );
        assert_eq!(set.service_name(), "integr8s-coordinator+api");
    }

    #[test]
    fn the_all_in_one_server_runs_the_roles_it_always_ran() {
        // `integr8s serve` runs scripts in the local sandbox, never as Kubernetes pods.
        assert_eq!(
            RoleSet::all().to_string(),
            "coordinator,saga-orchestrator,local-worker,result-processor,dlq-processor,\
             event-replay,notifications,api"
        );
        assert!(RoleSet::all().is_all());
        assert!(!RoleSet::all().any(Role::uses_kubernetes));
        for role in [Role::K8sWorker, Role::PodMonitor] {
            assert_eq!(Role::parse(role.name()), Some(role));
            assert!(!RoleSet::one(role).is_all());
        }
    }
}
