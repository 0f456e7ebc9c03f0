//! The topology guard: a process that runs only some of the roles shares its work with other
//! processes, so every adapter it uses must be one that processes can share. The embedded
//! adapters (SQLite file, in-process bus, in-memory limiter, a secret generated into the data
//! dir) only make sense in the all-in-one server; with them a lone role refuses to start and
//! names the key to set.
//!
//! A deployment runs one kind of worker: the local worker and the k8s worker both consume the
//! saga's run commands (in consumer groups of their own), so beside each other they would both
//! run every command. A process that would run both refuses to start.

use integr8s_store::Backend;

use super::{Role, RoleSet};
use crate::config::Config;

/// Why a set of roles cannot run with a configuration.
#[derive(Debug, PartialEq, Eq)]
pub struct TopologyError {
    pub roles: String,
    /// The config key to set, and what to set it to; `None` when the set of roles itself is
    /// refused (`fix` says why).
    pub key: Option<&'static str>,
    pub fix: &'static str,
}

impl std::fmt::Display for TopologyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.key {
            Some(key) => write!(
                f,
                "roles '{}' run apart from the others, so they need adapters that processes share: \
                 set {} (env {}) to {} (only `integr8s serve` with all roles runs on the embedded ones)",
                self.roles,
                key,
                env_var(key),
                self.fix
            ),
            None => write!(f, "roles '{}': {}", self.roles, self.fix),
        }
    }
}

impl std::error::Error for TopologyError {}

/// The environment variable of a config key.
fn env_var(key: &str) -> String {
    format!("INTEGR8S_{}", key.replace('.', "__").to_ascii_uppercase())
}

/// Checks that `roles` can run in a process of their own with `config`.
pub fn check(config: &Config, roles: &RoleSet) -> Result<(), TopologyError> {
    if roles.contains(Role::LocalWorker) && roles.contains(Role::K8sWorker) {
        return Err(TopologyError {
            roles: roles.to_string(),
            key: None,
            fix: "local-worker and k8s-worker both run every run command of the deployment they \
                  share (each would run every script); a deployment runs one kind of worker: \
                  local-worker (local sandbox) or k8s-worker with pod-monitor (Kubernetes pods)",
        });
    }
    if roles.is_all() {
        return Ok(());
    }
    let refuse = |key, fix| {
        Err(TopologyError {
            roles: roles.to_string(),
            key: Some(key),
            fix,
        })
    };
    let sqlite = config.database.url.is_empty()
        || Backend::from_url(&config.database.url).is_ok_and(|b| b == Backend::Sqlite);
    if sqlite {
        return refuse(
            "database.url",
            "a PostgreSQL URL such as postgres://user:password@db:5432/integr8s",
        );
    }
    if config.bus.brokers.is_empty() {
        return refuse(
            "bus.brokers",
            "the Kafka bootstrap servers, e.g. kafka-1:9092,kafka-2:9092",
        );
    }
    if roles.any(Role::uses_limiter) && config.limiter.redis_url.is_empty() {
        return refuse(
            "limiter.redis_url",
            "the Redis every process shares, e.g. redis://redis:6379/0",
        );
    }
    // Sessions signed by one API instance must verify on the others.
    if roles.contains(Role::Api) && config.auth.secret.is_empty() {
        return refuse(
            "auth.secret",
            "one secret of at least 32 characters, the same for every API process",
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::config::CliOverrides;

    const SHARED: [(&str, &str); 4] = [
        ("INTEGR8S_DATABASE__URL", "postgres://u@db:5432/integr8s"),
        ("INTEGR8S_BUS__BROKERS", "kafka:9092"),
        ("INTEGR8S_LIMITER__REDIS_URL", "redis://redis:6379/0"),
        ("INTEGR8S_AUTH__SECRET", "0123456789abcdef0123456789abcdef"),
    ];

    fn config(without: Option<&str>) -> Config {
        let env: HashMap<String, String> = SHARED
            .iter()
            .filter(|(k, _)| Some(*k) != without)
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::load(None, &env, &CliOverrides::default()).unwrap()
    }

    fn roles(list: &str) -> RoleSet {
        RoleSet::parse(list).unwrap()
    }

    #[test]
    fn the_all_in_one_server_runs_on_the_embedded_adapters() {
        assert_eq!(
            check(&config(Some("INTEGR8S_DATABASE__URL")), &RoleSet::all()),
            Ok(())
        );
        let empty = Config::load(None, &HashMap::new(), &CliOverrides::default()).unwrap();
        assert_eq!(check(&empty, &RoleSet::all()), Ok(()));
    }

    #[test]
    fn a_lone_role_names_the_key_of_each_embedded_adapter() {
        for (var, key) in [
            ("INTEGR8S_DATABASE__URL", "database.url"),
            ("INTEGR8S_BUS__BROKERS", "bus.brokers"),
            ("INTEGR8S_LIMITER__REDIS_URL", "limiter.redis_url"),
            ("INTEGR8S_AUTH__SECRET", "auth.secret"),
        ] {
            let err = check(&config(Some(var)), &roles("api")).unwrap_err();
            assert_eq!(err.key, Some(key));
            let message = err.to_string();
            assert!(message.contains(key) && message.contains(var), "{message}");
        }
        assert_eq!(check(&config(None), &roles("api")), Ok(()));
    }

    #[test]
    fn a_sqlite_url_is_as_embedded_as_none() {
        let mut c = config(None);
        c.database.url = "sqlite:///var/lib/integr8s/db".into();
        assert_eq!(
            check(&c, &roles("coordinator")).unwrap_err().key,
            Some("database.url")
        );
    }

    #[test]
    fn only_the_roles_that_use_it_need_redis_and_the_secret() {
        for var in ["INTEGR8S_LIMITER__REDIS_URL", "INTEGR8S_AUTH__SECRET"] {
            let c = config(Some(var));
            assert_eq!(check(&c, &roles("coordinator,local-worker")), Ok(()));
            assert!(check(&c, &roles("coordinator,api")).is_err());
        }
    }

    #[test]
    fn the_kubernetes_roles_are_split_roles() {
        for role in ["k8s-worker", "pod-monitor", "k8s-worker,pod-monitor"] {
            assert_eq!(check(&config(None), &roles(role)), Ok(()), "{role}");
            for (var, key) in [
                ("INTEGR8S_DATABASE__URL", "database.url"),
                ("INTEGR8S_BUS__BROKERS", "bus.brokers"),
            ] {
                let err = check(&config(Some(var)), &roles(role)).unwrap_err();
                assert_eq!(err.key, Some(key), "{role}");
            }
            // Neither uses the limiter nor signs sessions.
            assert_eq!(
                check(&config(Some("INTEGR8S_LIMITER__REDIS_URL")), &roles(role)),
                Ok(())
            );
        }
    }

    #[test]
    fn one_process_never_runs_both_kinds_of_worker() {
        for set in [
            "local-worker,k8s-worker",
            "coordinator,local-worker,k8s-worker,pod-monitor",
        ] {
            let err = check(&config(None), &roles(set)).unwrap_err();
            assert_eq!(err.key, None);
            let message = err.to_string();
            assert!(message.contains("one kind of worker"), "{message}");
        }
        // Not even in an otherwise all-in-one process on the embedded adapters.
        let mut every = RoleSet::all().to_string();
        every.push_str(",k8s-worker");
        assert!(check(&config(Some("INTEGR8S_DATABASE__URL")), &roles(&every)).is_err());
        assert_eq!(
            check(&config(None), &roles("local-worker,pod-monitor")),
            Ok(())
        );
    }
}
