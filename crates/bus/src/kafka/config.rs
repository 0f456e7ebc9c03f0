//! Settings of the Kafka adapter and the names it gives topics and consumer groups.

use std::time::Duration;

use integr8s_core::EventType;

/// How the Kafka bus connects and behaves. [`KafkaConfig::new`] gives the production defaults.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Bootstrap servers, `host:port[,host:port…]`.
    pub brokers: String,
    /// Prepended to every topic and consumer-group name, so deployments can share a cluster.
    pub topic_prefix: String,
    /// Partitions and replication factor of the topics [`create_topics`](super::create_topics)
    /// creates.
    pub partitions: i32,
    pub replication_factor: i32,
    /// Consumer-group session timeout: a member silent for this long is replaced.
    pub session_timeout: Duration,
    /// Deliveries of one message to a group before it goes to the DLQ topic; 0 never gives up.
    pub max_attempts: u32,
    /// Redelivery back-off: `redelivery_step × attempt`, at most `redelivery_max`.
    pub redelivery_step: Duration,
    pub redelivery_max: Duration,
    /// Acknowledged offsets are committed at most this long after the acknowledgement.
    pub commit_interval: Duration,
    /// Messages held per partition (read, not yet committed) before its fetching pauses.
    pub max_buffered_per_partition: usize,
    /// On a rebalance, how long handed-out deliveries of a revoked partition may take to settle
    /// before the acknowledged part is committed and the partition let go.
    pub rebalance_grace: Duration,
    /// Broker round trips (publish, metadata, topic creation) give up after this long.
    pub request_timeout: Duration,
    /// Run the outbox relay in this process.
    pub relay: bool,
    /// How often the relay reads the event store.
    pub relay_interval: Duration,
    /// An event (or a gap in the log) is only republished (skipped) by the relay once it has
    /// been seen this long: its own writer normally publishes it first.
    pub relay_grace: Duration,
    /// Events the relay reads per query.
    pub relay_batch: u32,
    /// Live events buffered per watcher before it starts missing some.
    pub watch_capacity: usize,
    /// How long the broker may hold a fetch that has no data yet. Brokers answer as soon as
    /// data arrives, so this bounds idle polling; one that waits out the whole time (tansu)
    /// adds up to this much latency per hop.
    pub fetch_wait: Duration,
}

impl KafkaConfig {
    pub fn new(brokers: impl Into<String>, topic_prefix: impl Into<String>) -> Self {
        Self {
            brokers: brokers.into(),
            topic_prefix: topic_prefix.into(),
            partitions: 3,
            replication_factor: 1,
            session_timeout: Duration::from_secs(10),
            max_attempts: 20,
            redelivery_step: Duration::from_millis(100),
            redelivery_max: Duration::from_secs(2),
            commit_interval: Duration::from_millis(50),
            max_buffered_per_partition: 256,
            rebalance_grace: Duration::from_secs(5),
            request_timeout: Duration::from_secs(5),
            relay: true,
            relay_interval: Duration::from_millis(500),
            relay_grace: Duration::from_secs(5),
            relay_batch: 256,
            watch_capacity: 1024,
            fetch_wait: Duration::from_millis(100),
        }
    }

    /// The topic of one event type.
    pub fn topic(&self, event_type: EventType) -> String {
        format!("{}{}", self.topic_prefix, event_type.as_str())
    }

    /// Where poison messages go: undecodable ones, and those nacked `max_attempts` times.
    pub fn dlq_topic(&self) -> String {
        format!("{}dlq", self.topic_prefix)
    }

    /// The Kafka group id of a consumer group (a role).
    pub fn group_id(&self, group: &str) -> String {
        format!("{}{group}", self.topic_prefix)
    }

    /// Every topic the bus uses: one per event type, then the DLQ topic.
    pub fn all_topics(&self) -> Vec<String> {
        EventType::ALL
            .iter()
            .map(|t| self.topic(*t))
            .chain(std::iter::once(self.dlq_topic()))
            .collect()
    }

    /// The event type a topic of this bus carries.
    pub(crate) fn event_type_of(&self, topic: &str) -> Option<EventType> {
        topic
            .strip_prefix(self.topic_prefix.as_str())
            .and_then(EventType::parse)
    }

    /// Redelivery back-off after the `attempt`-th delivery failed.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        self.redelivery_step
            .saturating_mul(attempt)
            .min(self.redelivery_max)
    }

    pub(crate) fn millis(d: Duration) -> String {
        d.as_millis().to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_prefix() {
        let c = KafkaConfig::new("127.0.0.1:9092", "i8s.");
        assert_eq!(
            c.topic(EventType::ExecutionRequested),
            "i8s.execution_requested"
        );
        assert_eq!(c.dlq_topic(), "i8s.dlq");
        assert_eq!(c.group_id("coordinator"), "i8s.coordinator");
        assert_eq!(c.all_topics().len(), EventType::ALL.len() + 1);
        assert_eq!(
            c.event_type_of("i8s.result_stored"),
            Some(EventType::ResultStored)
        );
        assert_eq!(c.event_type_of("other.result_stored"), None);
        assert_eq!(c.backoff(100), c.redelivery_max);
    }
}
