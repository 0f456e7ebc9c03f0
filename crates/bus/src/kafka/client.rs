//! What every Kafka client of the bus shares: the connection settings, librdkafka's logs and
//! errors routed to `tracing`, and the producer.

use std::time::Duration;

use rdkafka::client::ClientContext;
use rdkafka::config::{ClientConfig, RDKafkaLogLevel};
use rdkafka::consumer::ConsumerContext;
use rdkafka::error::KafkaError;
use rdkafka::message::OwnedHeaders;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;

use super::KafkaConfig;

/// Settings of every client: brokers and timeouts.
pub(crate) fn client_config(config: &KafkaConfig) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", &config.brokers)
        .set("client.id", "integr8s")
        .set(
            "socket.timeout.ms",
            KafkaConfig::millis(config.request_timeout.max(Duration::from_millis(10))),
        )
        .set("log_level", "6");
    c
}

pub(crate) fn log(level: RDKafkaLogLevel, facility: &str, message: &str) {
    match level {
        RDKafkaLogLevel::Emerg
        | RDKafkaLogLevel::Alert
        | RDKafkaLogLevel::Critical
        | RDKafkaLogLevel::Error => tracing::error!(facility, "librdkafka: {message}"),
        RDKafkaLogLevel::Warning => tracing::warn!(facility, "librdkafka: {message}"),
        RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
            tracing::info!(facility, "librdkafka: {message}")
        }
        RDKafkaLogLevel::Debug => tracing::debug!(facility, "librdkafka: {message}"),
    }
}

pub(crate) fn error(error: KafkaError, reason: &str) {
    tracing::warn!(%error, "kafka client: {reason}");
}

/// The context of clients without callbacks of their own.
pub(crate) struct Logs;

impl ClientContext for Logs {
    fn log(&self, level: RDKafkaLogLevel, facility: &str, message: &str) {
        log(level, facility, message);
    }

    fn error(&self, e: KafkaError, reason: &str) {
        error(e, reason);
    }
}

impl ConsumerContext for Logs {}

/// The bus's producer: every message is acknowledged by all in-sync replicas, sent without
/// lingering (latency first), and given up after the request timeout.
pub(crate) struct Producer {
    inner: FutureProducer<Logs>,
    timeout: Duration,
}

impl Producer {
    pub(crate) fn new(config: &KafkaConfig) -> Result<Self, KafkaError> {
        let inner = client_config(config)
            .set("acks", "all")
            .set("linger.ms", "0")
            .set(
                "message.timeout.ms",
                KafkaConfig::millis(config.request_timeout),
            )
            .create_with_context(Logs)?;
        Ok(Self {
            inner,
            timeout: config.request_timeout,
        })
    }

    /// Produces one message and waits until the broker has it.
    pub(crate) async fn send(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: OwnedHeaders,
    ) -> Result<(), KafkaError> {
        let mut record = FutureRecord::<[u8], [u8]>::to(topic).headers(headers);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(value) = value {
            record = record.payload(value);
        }
        self.inner
            .send(record, Timeout::After(self.timeout))
            .await
            .map(|_| ())
            .map_err(|(e, _)| e)
    }

    /// Whether the brokers answer a metadata request (blocking).
    pub(crate) fn ping(&self) -> Result<(), KafkaError> {
        use rdkafka::producer::Producer as _;
        self.inner
            .client()
            .fetch_metadata(None, self.timeout)
            .map(|_| ())
    }
}

/// Runs `close` (a final commit, then dropping a consumer, which leaves its group) on a thread
/// of its own: librdkafka's close waits for the brokers, without bound when they are gone, and
/// must hold up neither the runtime nor its shutdown.
pub(crate) fn close_in_background(what: &'static str, close: impl FnOnce() + Send + 'static) {
    let spawned = std::thread::Builder::new()
        .name(format!("kafka-close-{what}"))
        .spawn(close);
    if let Err(e) = spawned {
        tracing::warn!(error = %e, what, "cannot start a thread to close a kafka consumer");
    }
}
