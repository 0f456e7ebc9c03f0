//! The wire format: the message value is the event's JSON (the contract's flat event schema),
//! the key its aggregate id (else its event id), and headers carry what consumers and operators
//! read without parsing the value.

use integr8s_core::ports::replay::is_replayed;
use integr8s_core::{Envelope, StoredEvent};
use rdkafka::message::{Header, Headers, OwnedHeaders};
use thiserror::Error;

pub(crate) const EVENT_TYPE: &str = "event_type";
pub(crate) const EVENT_ID: &str = "event_id";
/// The event's position in the event store's log.
pub(crate) const SEQ: &str = "seq";
pub(crate) const CORRELATION_ID: &str = "correlation_id";
/// Present (`"true"`) on copies published by a replay session.
pub(crate) const REPLAYED: &str = "replayed";
/// The W3C trace context of the event (also in its `metadata.traceparent`).
pub(crate) const TRACEPARENT: &str = "traceparent";

/// Why a message is not an event of ours.
#[derive(Debug, Error)]
pub(crate) enum DecodeError {
    #[error("message has no value")]
    Empty,
    #[error("value is not an event: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no valid '{SEQ}' header")]
    Seq,
}

/// A message ready to produce.
pub(crate) struct Encoded {
    pub key: String,
    pub value: Vec<u8>,
    pub headers: OwnedHeaders,
}

/// The partition key: the aggregate (an execution's events stay in one partition, in order).
pub(crate) fn key_of(envelope: &Envelope) -> &str {
    envelope
        .aggregate_id
        .as_deref()
        .unwrap_or(&envelope.event_id)
}

pub(crate) fn encode(event: &StoredEvent) -> Result<Encoded, serde_json::Error> {
    let env = &event.envelope;
    let value = serde_json::to_vec(env)?;
    let seq = event.seq.to_string();
    let mut headers = OwnedHeaders::new()
        .insert(Header {
            key: EVENT_TYPE,
            value: Some(env.event_type().as_str()),
        })
        .insert(Header {
            key: EVENT_ID,
            value: Some(env.event_id.as_str()),
        })
        .insert(Header {
            key: SEQ,
            value: Some(seq.as_str()),
        });
    if let Some(correlation) = &env.metadata.correlation_id {
        headers = headers.insert(Header {
            key: CORRELATION_ID,
            value: Some(correlation.as_str()),
        });
    }
    if let Some(traceparent) = &env.metadata.traceparent {
        headers = headers.insert(Header {
            key: TRACEPARENT,
            value: Some(traceparent.as_str()),
        });
    }
    if is_replayed(env) {
        headers = headers.insert(Header {
            key: REPLAYED,
            value: Some("true"),
        });
    }
    Ok(Encoded {
        key: key_of(env).to_owned(),
        value,
        headers,
    })
}

/// The value of header `name`, if present and UTF-8.
pub(crate) fn header<'a>(headers: Option<&'a impl Headers>, name: &str) -> Option<&'a str> {
    headers?
        .iter()
        .find(|h| h.key == name)
        .and_then(|h| h.value)
        .and_then(|v| std::str::from_utf8(v).ok())
}

pub(crate) fn decode(
    value: Option<&[u8]>,
    headers: Option<&impl Headers>,
) -> Result<StoredEvent, DecodeError> {
    let value = value.ok_or(DecodeError::Empty)?;
    let mut envelope: Envelope = serde_json::from_slice(value)?;
    let seq = header(headers, SEQ)
        .and_then(|s| s.parse::<i64>().ok())
        .filter(|s| *s > 0)
        .ok_or(DecodeError::Seq)?;
    // A producer that only set the header still hands its trace on.
    if envelope.metadata.traceparent.is_none() {
        envelope.metadata.traceparent = header(headers, TRACEPARENT).map(str::to_owned);
    }
    Ok(StoredEvent { seq, envelope })
}

#[cfg(test)]
mod tests {
    use integr8s_core::event::{EventMetadata, EventPayload};
    use integr8s_core::ports::replay::replay_correlation;

    use super::*;

    fn event(correlation: Option<String>) -> StoredEvent {
        let payload = EventPayload::ExecutionCancelled {
            execution_id: "ex-1".into(),
            cancelled_by: "u1".into(),
            force_terminated: false,
            reason: None,
        };
        let env =
            Envelope::new(payload, EventMetadata::new("test", None)).with_correlation(correlation);
        StoredEvent {
            seq: 7,
            envelope: env,
        }
    }

    #[test]
    fn round_trips_with_headers() {
        let e = event(Some(replay_correlation("s1", "e0")));
        let m = encode(&e).unwrap();
        assert_eq!(m.key, "ex-1");
        assert_eq!(
            header(Some(&m.headers), EVENT_TYPE),
            Some("execution_cancelled")
        );
        assert_eq!(
            header(Some(&m.headers), EVENT_ID),
            Some(e.envelope.event_id.as_str())
        );
        assert_eq!(header(Some(&m.headers), REPLAYED), Some("true"));
        assert!(header(Some(&m.headers), CORRELATION_ID).is_some_and(|c| c.starts_with("replay:")));
        assert_eq!(decode(Some(&m.value), Some(&m.headers)).unwrap(), e);
    }

    #[test]
    fn the_trace_context_travels_in_a_header() {
        let mut e = event(None);
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        e.envelope.metadata.traceparent = Some(traceparent.to_owned());
        let m = encode(&e).unwrap();
        assert_eq!(header(Some(&m.headers), TRACEPARENT), Some(traceparent));
        assert_eq!(decode(Some(&m.value), Some(&m.headers)).unwrap(), e);
        // A value without the field takes the header's.
        let mut bare = e;
        bare.envelope.metadata.traceparent = None;
        let value = serde_json::to_vec(&bare.envelope).unwrap();
        let decoded = decode(Some(&value), Some(&m.headers)).unwrap();
        assert_eq!(
            decoded.envelope.metadata.traceparent.as_deref(),
            Some(traceparent)
        );
        assert_eq!(
            header(Some(&encode(&bare).unwrap().headers), TRACEPARENT),
            None
        );
    }

    #[test]
    fn plain_events_carry_no_replay_marker() {
        let m = encode(&event(None)).unwrap();
        assert_eq!(header(Some(&m.headers), REPLAYED), None);
        assert_eq!(header(Some(&m.headers), CORRELATION_ID), None);
    }

    #[test]
    fn garbage_and_missing_seq_are_refused() {
        let m = encode(&event(None)).unwrap();
        assert!(matches!(
            decode(Some(b"{"), Some(&m.headers)),
            Err(DecodeError::Json(_))
        ));
        assert!(matches!(
            decode(None, Some(&m.headers)),
            Err(DecodeError::Empty)
        ));
        let no_seq = OwnedHeaders::new();
        assert!(matches!(
            decode(Some(&m.value), Some(&no_seq)),
            Err(DecodeError::Seq)
        ));
    }
}
