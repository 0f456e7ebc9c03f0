//! Poison messages to the DLQ topic: the message as it was read (or, for an event nacked
//! too often, as it was published), with headers saying where it came from and why.

use rdkafka::message::{Header, OwnedHeaders};

use super::client::Producer;
use super::codec;
use super::partitions::{Body, DeadLetter};
use super::KafkaConfig;

pub(crate) const REASON: &str = "dlq_reason";
pub(crate) const ORIGINAL_TOPIC: &str = "dlq_original_topic";
pub(crate) const ORIGINAL_PARTITION: &str = "dlq_original_partition";
pub(crate) const ORIGINAL_OFFSET: &str = "dlq_original_offset";
pub(crate) const GROUP: &str = "dlq_group";

/// Writes one dead letter; false (logged) if the broker did not take it.
pub(crate) async fn write(
    producer: &Producer,
    config: &KafkaConfig,
    group: &str,
    letter: &DeadLetter,
) -> bool {
    let (key, value, mut headers) = match &letter.body {
        Body::Event(event) => match codec::encode(event) {
            Ok(m) => (Some(m.key.into_bytes()), Some(m.value), m.headers),
            Err(e) => {
                tracing::error!(error = %e, "cannot encode an event for the DLQ topic");
                return false;
            }
        },
        Body::Poison(raw) => {
            let mut headers = OwnedHeaders::new();
            for (name, value) in &raw.headers {
                headers = headers.insert(Header {
                    key: name.as_str(),
                    value: value.as_deref(),
                });
            }
            (raw.key.clone(), raw.value.clone(), headers)
        }
    };
    let partition = letter.tp.1.to_string();
    let offset = letter.offset.to_string();
    for (name, value) in [
        (REASON, letter.reason.as_str()),
        (ORIGINAL_TOPIC, letter.tp.0.as_str()),
        (ORIGINAL_PARTITION, partition.as_str()),
        (ORIGINAL_OFFSET, offset.as_str()),
        (GROUP, group),
    ] {
        headers = headers.insert(Header {
            key: name,
            value: Some(value),
        });
    }
    let topic = config.dlq_topic();
    match producer
        .send(&topic, key.as_deref(), value.as_deref(), headers)
        .await
    {
        Ok(()) => {
            tracing::warn!(group, topic = %letter.tp.0, partition = letter.tp.1, offset = letter.offset, reason = %letter.reason, "message moved to the DLQ topic");
            true
        }
        Err(e) => {
            tracing::warn!(group, error = %e, "cannot write to the DLQ topic; retrying");
            false
        }
    }
}
