use std::time::{Duration, Instant};

use integr8s_core::event::{EventMetadata, EventPayload};
use integr8s_core::{Envelope, StoredEvent};

use super::*;

fn tp(p: i32) -> Tp {
    ("t".to_owned(), p)
}

fn event(seq: i64, aggregate: &str) -> Body {
    let payload = EventPayload::ExecutionCancelled {
        execution_id: aggregate.to_owned(),
        cancelled_by: "u".into(),
        force_terminated: false,
        reason: None,
    };
    Body::Event(Box::new(StoredEvent {
        seq,
        envelope: Envelope::new(payload, EventMetadata::new("test", None)),
    }))
}

fn never(_: &str) -> bool {
    false
}

fn ack(p: &mut Partitions, h: &Handout) -> Settled {
    p.settle(&h.token, true, 0, Instant::now())
}

#[test]
fn later_events_of_an_aggregate_wait_for_the_earlier_one() {
    let mut p = Partitions::default();
    p.assign([tp(0)]);
    assert!(p.receive(tp(0), 0, event(1, "a")));
    assert!(p.receive(tp(0), 1, event(2, "a")));
    assert!(p.receive(tp(0), 2, event(3, "b")));
    let first = p.take().unwrap();
    assert_eq!(first.event.seq, 1);
    let second = p.take().unwrap();
    assert_eq!(second.event.seq, 3, "a's second event must wait");
    assert!(p.take().is_none());
    assert_eq!(ack(&mut p, &first), Settled::Acked);
    assert_eq!(p.take().unwrap().event.seq, 2);
}

#[test]
fn commits_stop_at_the_first_unacknowledged_message() {
    let mut p = Partitions::default();
    p.assign([tp(0)]);
    for (offset, seq) in [(10, 1), (11, 2), (12, 3)] {
        p.receive(tp(0), offset, event(seq, &format!("e{seq}")));
    }
    let h: Vec<Handout> = std::iter::from_fn(|| p.take()).collect();
    assert_eq!(h.len(), 3);
    ack(&mut p, &h[1]);
    assert!(p.take_commits(None).iter().all(|(_, o)| *o == 10));
    ack(&mut p, &h[0]);
    assert_eq!(p.take_commits(None), vec![(tp(0), 12)]);
    assert!(p.take_commits(None).is_empty(), "nothing moved");
    ack(&mut p, &h[2]);
    assert_eq!(p.take_commits(None), vec![(tp(0), 13)]);
}

#[test]
fn nacks_come_back_with_a_higher_attempt_then_go_to_the_dlq() {
    let mut p = Partitions::default();
    p.assign([tp(0)]);
    p.receive(tp(0), 0, event(1, "a"));
    let h = p.take().unwrap();
    let now = Instant::now();
    assert_eq!(p.settle(&h.token, false, 2, now), Settled::Redeliver);
    assert_eq!(
        p.settle(&h.token, true, 2, now),
        Settled::Ignored,
        "settled twice"
    );
    assert_eq!(p.prepare(now - Duration::from_millis(1), never), Some(now));
    assert!(p.take().is_none(), "still backing off");
    p.prepare(now, never);
    let again = p.take().unwrap();
    assert_eq!(again.token.attempt, 2);
    assert_eq!(p.settle(&again.token, false, 2, now), Settled::DeadLetter);
    let letters = p.take_dead_letters();
    assert_eq!(letters.len(), 1);
    assert!(p.take_commits(None).iter().all(|(_, o)| *o == 0));
    p.dead_lettered(&letters[0], true);
    assert_eq!(p.take_commits(None), vec![(tp(0), 1)]);
}

#[test]
fn duplicates_of_acknowledged_events_are_skipped() {
    let mut p = Partitions::default();
    p.assign([tp(0)]);
    let body = event(1, "a");
    let Body::Event(e) = &body else {
        unreachable!()
    };
    let id = e.envelope.event_id.clone();
    p.receive(tp(0), 0, body);
    p.prepare(Instant::now(), |done| done == id);
    assert!(p.take().is_none());
    assert_eq!(p.take_commits(None), vec![(tp(0), 1)]);
}

#[test]
fn revoked_partitions_stop_handing_out_and_ignore_late_settles() {
    let mut p = Partitions::default();
    p.assign([tp(0), tp(1)]);
    p.receive(tp(0), 0, event(1, "a"));
    p.receive(tp(1), 0, event(2, "b"));
    let h = p.take().unwrap();
    p.start_revoke(std::slice::from_ref(&h.token.tp));
    assert!(p.any_out(std::slice::from_ref(&h.token.tp)));
    let other = p.take().unwrap();
    assert_ne!(other.token.tp, h.token.tp);
    p.remove(std::slice::from_ref(&h.token.tp));
    p.assign([h.token.tp.clone()]);
    assert_eq!(ack(&mut p, &h), Settled::Ignored, "older assignment");
    assert!(!p.receive(other.token.tp, 0, event(2, "b")), "already held");
}

#[test]
fn poison_goes_to_the_dlq_without_being_handed_out() {
    let mut p = Partitions::default();
    p.assign([tp(0)]);
    let raw = Raw {
        key: None,
        value: Some(b"{".to_vec()),
        headers: Vec::new(),
    };
    p.receive(tp(0), 0, Body::Poison(raw));
    p.receive(tp(0), 1, event(1, "a"));
    assert_eq!(p.take().unwrap().event.seq, 1);
    assert_eq!(p.take_dead_letters().len(), 1);
}

#[test]
fn full_partitions_pause_and_resume_at_half() {
    let mut p = Partitions::default();
    p.assign([tp(0)]);
    for i in 0..4 {
        p.receive(tp(0), i, event(i + 1, &format!("e{i}")));
    }
    assert_eq!(p.flow(4), (vec![tp(0)], vec![]));
    for _ in 0..2 {
        let h = p.take().unwrap();
        ack(&mut p, &h);
    }
    p.take_commits(None);
    assert_eq!(p.flow(4), (vec![], vec![tp(0)]));
}
