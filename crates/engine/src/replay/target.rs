//! Delivery of one replayed event to a session's target.

use std::path::{Component, Path, PathBuf};

use integr8s_core::event::StoredEvent;
use integr8s_core::outbox::Outbox;
use integr8s_core::ports::replay::{replay_correlation, ReplaySession, ReplayTarget};
use tokio::io::AsyncWriteExt;

/// Why one event could not be delivered.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("store: {0}")]
    Store(#[from] integr8s_core::StoreError),
    #[error("file: {0}")]
    Io(#[from] std::io::Error),
    #[error("unsupported replay target: {0}")]
    Unsupported(&'static str),
    #[error("invalid target file path: {0}")]
    BadPath(String),
}

impl DeliveryError {
    /// A short category for `ReplayError.error_type`.
    pub fn kind(&self) -> &'static str {
        match self {
            DeliveryError::Store(_) => "store_error",
            DeliveryError::Io(_) => "io_error",
            DeliveryError::Unsupported(_) => "unsupported_target",
            DeliveryError::BadPath(_) => "invalid_path",
        }
    }
}

/// Resolves a session's `target_file_path` inside `dir`: relative, without `..`, and by
/// default `<session_id>.jsonl`.
pub fn resolve_file(dir: &Path, session: &ReplaySession) -> Result<PathBuf, DeliveryError> {
    let name = session
        .config
        .target_file_path
        .clone()
        .unwrap_or_else(|| format!("{}.jsonl", session.session_id));
    let relative = Path::new(&name);
    let safe = !name.is_empty()
        && relative
            .components()
            .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
    if !safe {
        return Err(DeliveryError::BadPath(name));
    }
    Ok(dir.join(relative))
}

/// Sends events of one session to its target.
pub struct Target<'a> {
    pub outbox: &'a Outbox,
    pub session: &'a ReplaySession,
    pub file: Option<PathBuf>,
}

impl Target<'_> {
    pub async fn deliver(&self, event: &StoredEvent) -> Result<(), DeliveryError> {
        match self.session.config.target {
            ReplayTarget::Test => Ok(()),
            ReplayTarget::Callback => Err(DeliveryError::Unsupported("callback")),
            ReplayTarget::Kafka => {
                let mut copy = event.envelope.clone();
                copy.event_id = integr8s_core::new_id();
                if !self.session.config.preserve_timestamps {
                    copy.timestamp = integr8s_core::now();
                }
                copy.metadata.correlation_id = Some(replay_correlation(
                    &self.session.session_id,
                    &event.envelope.event_id,
                ));
                self.outbox.emit_envelope(&copy).await?;
                Ok(())
            }
            ReplayTarget::File => {
                let path = self
                    .file
                    .as_ref()
                    .ok_or_else(|| DeliveryError::BadPath("no replay directory".to_owned()))?;
                if let Some(parent) = path.parent() {
                    tokio::fs::create_dir_all(parent).await?;
                }
                let mut line = serde_json::to_vec(&event.envelope)
                    .map_err(|e| DeliveryError::Io(std::io::Error::other(e)))?;
                line.push(b'\n');
                let mut file = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(path)
                    .await?;
                file.write_all(&line).await?;
                file.flush().await?;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use integr8s_core::ports::replay::{ReplayConfig, ReplayFilter, ReplayType};

    fn session(path: Option<&str>) -> ReplaySession {
        ReplaySession::new(
            ReplayConfig {
                replay_type: ReplayType::Query,
                target: ReplayTarget::File,
                filter: ReplayFilter::default(),
                speed_multiplier: 1.0,
                preserve_timestamps: false,
                batch_size: 10,
                max_events: None,
                target_topics: None,
                target_file_path: path.map(str::to_owned),
                skip_errors: true,
                retry_failed: false,
                retry_attempts: 3,
                enable_progress_tracking: true,
            },
            None,
        )
    }

    #[test]
    fn file_paths_stay_inside_the_replay_dir() {
        let dir = Path::new("/data/replays");
        assert_eq!(
            resolve_file(dir, &session(Some("a/b.jsonl"))).unwrap(),
            dir.join("a/b.jsonl")
        );
        let s = session(None);
        assert_eq!(
            resolve_file(dir, &s).unwrap(),
            dir.join(format!("{}.jsonl", s.session_id))
        );
        for bad in ["/etc/passwd", "../x", "a/../../x", ""] {
            assert!(resolve_file(dir, &session(Some(bad))).is_err(), "{bad}");
        }
    }
}
