//! The `[bus]` section: which event bus the process uses. Empty `brokers` keeps the
//! in-process bus; otherwise the Kafka bus with these settings ([`BusSection::kafka`]).

use std::time::Duration;

use integr8s_bus::kafka::KafkaConfig;
use serde::Deserialize;

use super::{string_list, ConfigError};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BusSection {
    #[serde(deserialize_with = "string_list")]
    pub brokers: Vec<String>,
    pub topic_prefix: String,
    pub partitions: i32,
    pub replication_factor: i32,
    pub session_timeout_ms: u64,
    pub max_attempts: u32,
    pub request_timeout_ms: u64,
    pub relay: bool,
    pub relay_grace_ms: u64,
    pub fetch_wait_ms: u64,
}

/// A broker address: `host:port`.
fn valid_broker(b: &str) -> bool {
    b.rsplit_once(':').is_some_and(|(host, port)| {
        !host.is_empty()
            && !host.contains(char::is_whitespace)
            && port.parse::<u16>().is_ok_and(|p| p > 0)
    })
}

impl BusSection {
    /// Whether the Kafka bus is configured (otherwise the in-process bus).
    fn is_kafka(&self) -> bool {
        !self.brokers.is_empty()
    }

    pub(super) fn validate(
        &self,
        check: &dyn Fn(bool, &str, &str) -> Result<(), ConfigError>,
    ) -> Result<(), ConfigError> {
        check(
            self.brokers.iter().all(|b| valid_broker(b)),
            "bus.brokers",
            "expected host:port addresses such as kafka-1:9092 (empty: the in-process bus)",
        )?;
        check(
            self.topic_prefix.len() <= 100
                && self
                    .topic_prefix
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')),
            "bus.topic_prefix",
            "at most 100 characters among letters, digits, '.', '_' and '-'",
        )?;
        check(
            (1..=1000).contains(&self.partitions),
            "bus.partitions",
            "must be between 1 and 1000",
        )?;
        check(
            (1..=16).contains(&self.replication_factor),
            "bus.replication_factor",
            "must be between 1 and 16",
        )?;
        check(
            (1000..=3_600_000).contains(&self.session_timeout_ms),
            "bus.session_timeout_ms",
            "must be between 1000 and 3600000 (and within the brokers' group.min/max.session.timeout.ms)",
        )?;
        check(
            self.max_attempts == 0 || self.max_attempts >= 2,
            "bus.max_attempts",
            "must be 0 (never dead-letter) or at least 2",
        )?;
        check(
            (100..=300_000).contains(&self.request_timeout_ms),
            "bus.request_timeout_ms",
            "must be between 100 and 300000",
        )?;
        check(
            (100..=3_600_000).contains(&self.relay_grace_ms),
            "bus.relay_grace_ms",
            "must be between 100 and 3600000",
        )?;
        check(
            (1..=10_000).contains(&self.fetch_wait_ms),
            "bus.fetch_wait_ms",
            "must be between 1 and 10000",
        )
    }

    /// The Kafka bus's settings, `None` for the in-process bus. Build the bus with
    /// `integr8s_bus::kafka::KafkaBus::new(event_store, config)`; `integr8s migrate` creates
    /// its topics (`integr8s_bus::kafka::create_topics`).
    pub fn kafka(&self) -> Option<KafkaConfig> {
        if !self.is_kafka() {
            return None;
        }
        let mut c = KafkaConfig::new(self.brokers.join(","), self.topic_prefix.clone());
        c.partitions = self.partitions;
        c.replication_factor = self.replication_factor;
        c.session_timeout = Duration::from_millis(self.session_timeout_ms);
        c.max_attempts = self.max_attempts;
        c.request_timeout = Duration::from_millis(self.request_timeout_ms);
        c.relay = self.relay;
        c.relay_grace = Duration::from_millis(self.relay_grace_ms);
        c.fetch_wait = Duration::from_millis(self.fetch_wait_ms);
        Some(c)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::time::Duration;

    use crate::config::{CliOverrides, Config};

    fn load(pairs: &[(&str, &str)]) -> Result<Config, String> {
        let env: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::load(None, &env, &CliOverrides::default()).map_err(|e| e.to_string())
    }

    #[test]
    fn no_brokers_means_the_in_process_bus() {
        let config = load(&[]).unwrap();
        assert!(!config.bus.is_kafka());
        assert!(config.bus.kafka().is_none());
    }

    #[test]
    fn brokers_from_the_environment_make_a_kafka_config() {
        let config = load(&[
            ("INTEGR8S_BUS__BROKERS", "kafka-1:9092, kafka-2:9093"),
            ("INTEGR8S_BUS__TOPIC_PREFIX", "prod."),
            ("INTEGR8S_BUS__PARTITIONS", "6"),
            ("INTEGR8S_BUS__SESSION_TIMEOUT_MS", "3000"),
        ])
        .unwrap();
        let kafka = config.bus.kafka().unwrap();
        assert_eq!(kafka.brokers, "kafka-1:9092,kafka-2:9093");
        assert_eq!(kafka.topic_prefix, "prod.");
        assert_eq!(kafka.partitions, 6);
        assert_eq!(kafka.session_timeout, Duration::from_secs(3));
        assert_eq!(kafka.dlq_topic(), "prod.dlq");
        assert!(kafka.relay);
    }

    #[test]
    fn invalid_bus_values_name_the_key() {
        for (var, value, key) in [
            ("INTEGR8S_BUS__BROKERS", "kafka-1", "bus.brokers"),
            ("INTEGR8S_BUS__TOPIC_PREFIX", "a b", "bus.topic_prefix"),
            ("INTEGR8S_BUS__PARTITIONS", "0", "bus.partitions"),
            (
                "INTEGR8S_BUS__SESSION_TIMEOUT_MS",
                "10",
                "bus.session_timeout_ms",
            ),
            ("INTEGR8S_BUS__MAX_ATTEMPTS", "1", "bus.max_attempts"),
        ] {
            let err = load(&[(var, value)]).unwrap_err();
            assert!(err.contains(key) && err.contains(var), "{err}");
        }
    }
}
