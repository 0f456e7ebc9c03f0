//! Topic creation for `integr8s migrate`: every topic of the bus, with the configured
//! partitions and replication factor. Topics that exist already are left as they are.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::types::RDKafkaErrorCode;

use super::client::{client_config, Logs};
use super::{KafkaConfig, KafkaSetupError};

/// What [`create_topics`] did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct TopicsCreated {
    pub created: Vec<String>,
    pub existing: Vec<String>,
}

/// Creates every topic of the bus (one per event type, and the DLQ topic).
pub async fn create_topics(config: &KafkaConfig) -> Result<TopicsCreated, KafkaSetupError> {
    let admin: AdminClient<Logs> = client_config(config).create_with_context(Logs)?;
    let names = config.all_topics();
    let topics: Vec<NewTopic<'_>> = names
        .iter()
        .map(|name| {
            NewTopic::new(
                name,
                config.partitions,
                TopicReplication::Fixed(config.replication_factor),
            )
        })
        .collect();
    let options = AdminOptions::new()
        .operation_timeout(Some(config.request_timeout))
        .request_timeout(Some(config.request_timeout));
    let mut outcome = TopicsCreated::default();
    for result in admin.create_topics(&topics, &options).await? {
        match result {
            Ok(name) => outcome.created.push(name),
            Err((name, RDKafkaErrorCode::TopicAlreadyExists)) => outcome.existing.push(name),
            Err((topic, code)) => {
                return Err(KafkaSetupError::CreateTopic {
                    topic,
                    reason: code.to_string(),
                })
            }
        }
    }
    tracing::info!(
        created = outcome.created.len(),
        existing = outcome.existing.len(),
        "kafka topics ready"
    );
    Ok(outcome)
}
