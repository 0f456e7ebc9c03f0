//! The execution flow: submit a script, follow it to its result over the execution's event
//! stream or by polling, check the result against what the script must give, and read the
//! execution's stored events (queue wait).

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use rand::Rng;
use serde_json::{json, Value};

use crate::client::{Call, Session, Stopped, Target};

/// Statuses after which an execution changes no more.
pub const TERMINAL: [&str; 5] = ["completed", "failed", "timeout", "cancelled", "error"];
/// Every status an execution can have.
pub const STATUSES: [&str; 8] = [
    "queued",
    "scheduled",
    "running",
    "completed",
    "failed",
    "timeout",
    "cancelled",
    "error",
];
/// Interval between two polls of a result (as the original tool polls).
const POLL: Duration = Duration::from_millis(500);
/// Longest buffered stream data without a complete frame.
const FRAME_MAX: usize = 4 << 20;
/// Waiting for a result past the run timeout allows this much for queueing and delivery.
const RESULT_GRACE: Duration = Duration::from_secs(60);

/// The runtime scripts are submitted to, as the server lists it.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub lang: String,
    pub version: String,
    /// The server's run timeout.
    pub timeout: Duration,
}

/// A script and how it must end.
#[derive(Debug, Clone)]
pub enum Script {
    /// Completes with exit code 0, printing the marker.
    Prints(String),
    /// Raises: as the contract has it, the execution completes (the run itself went fine) with
    /// a nonzero exit code and the marker in its stderr.
    Raises(String),
}

impl Script {
    pub fn random(rng: &mut impl Rng) -> Script {
        let marker = format!("load-{:08x}", rng.gen::<u32>());
        if rng.gen_bool(0.5) {
            Script::Prints(marker)
        } else {
            Script::Raises(marker)
        }
    }

    pub fn source(&self) -> String {
        match self {
            Script::Prints(m) => format!("print('{m}')\n"),
            Script::Raises(m) => format!("raise ValueError('{m}')\n"),
        }
    }

    /// Why `result` is not what this script gives, if it is not.
    pub fn wrong(&self, result: &Value) -> Option<String> {
        let status = result.get("status").and_then(Value::as_str);
        let exit = result.get("exit_code").and_then(Value::as_i64);
        let stdout = result.get("stdout").and_then(Value::as_str).unwrap_or("");
        let stderr = result.get("stderr").and_then(Value::as_str).unwrap_or("");
        match self {
            Script::Prints(m) => (status != Some("completed")
                || exit != Some(0)
                || stdout != format!("{m}\n"))
            .then(|| {
                format!("printing script ended {status:?} exit {exit:?}, stdout {stdout:.80?}")
            }),
            Script::Raises(m) => (status != Some("completed")
                || exit.is_none_or(|c| c == 0)
                || !stderr.contains(m.as_str()))
            .then(|| {
                format!("raising script ended {status:?} exit {exit:?}, stderr {stderr:.80?}")
            }),
        }
    }
}

/// Submits `script` and follows it to its end. Returns the execution id when it was accepted.
pub async fn run(
    target: &Target,
    session: &Session,
    runtime: &Runtime,
    script: &Script,
    over_stream: bool,
) -> Result<Option<String>, Stopped> {
    let started = Instant::now();
    let submit = Call::post(
        "/api/v1/execute",
        json!({"script": script.source(), "lang": runtime.lang, "lang_version": runtime.version}),
    );
    let answer = target.send(session, &submit).await?;
    if answer.status != 200 {
        return Ok(None);
    }
    let body = answer.json().unwrap_or_default();
    let id = body.get("execution_id").and_then(Value::as_str);
    let status = body.get("status").and_then(Value::as_str);
    let (Some(id), true) = (id, status.is_some_and(|s| STATUSES.contains(&s))) else {
        target.invalid(&answer, "submission answer without execution_id and status");
        return Ok(None);
    };
    let id = id.to_owned();
    target.stats.executions(|e| e.submitted());
    let deadline = started + runtime.timeout + RESULT_GRACE;
    let mut result = None;
    if over_stream {
        result = follow_stream(target, session, &id, deadline).await?;
    }
    if result.is_none() {
        result = poll(target, session, &id, deadline).await?;
    }
    match result {
        Some((result, answer)) => {
            let status = result
                .get("status")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned();
            target
                .stats
                .executions(|e| e.finished(&status, started.elapsed()));
            if let Some(why) = script.wrong(&result) {
                target.invalid(&answer, why);
                target.stats.executions(|e| e.wrong_result());
            }
        }
        None => target.stats.executions(|e| e.unfinished()),
    }
    events(target, session, &id).await?;
    Ok(Some(id))
}

/// Reads the execution's event stream to its end; the result its last frames carry.
async fn follow_stream(
    target: &Target,
    session: &Session,
    id: &str,
    deadline: Instant,
) -> Result<Option<(Value, crate::client::Answer)>, Stopped> {
    let call = Call::get(format!("/api/v1/events/executions/{id}"));
    let (answer, resp) = target.open(session, &call).await?;
    let Some((mut resp, _slot)) = resp else {
        return Ok(None);
    };
    if answer.status != 200 {
        return Ok(None);
    }
    if !answer
        .content_type()
        .is_some_and(|ct| ct.starts_with("text/event-stream"))
    {
        target.invalid(&answer, "execution stream is not text/event-stream");
        return Ok(None);
    }
    let mut buf = String::new();
    let mut result = None;
    let mut read = 0u64;
    let until = tokio::time::Instant::from_std(deadline);
    loop {
        let chunk = tokio::select! {
            () = target.cancel.cancelled() => return Err(Stopped),
            c = tokio::time::timeout_at(until, resp.chunk()) => c,
        };
        let Ok(Ok(Some(chunk))) = chunk else { break };
        read += chunk.len() as u64;
        buf.push_str(&String::from_utf8_lossy(&chunk).replace('\r', ""));
        while let Some(end) = buf.find("\n\n") {
            let frame: String = buf.drain(..end + 2).collect();
            for data in frame.lines().filter_map(|l| l.strip_prefix("data:")) {
                match serde_json::from_str::<Value>(data.trim_start()) {
                    Ok(v)
                        if v.get("execution_id").and_then(Value::as_str) == Some(id)
                            && v.get("event_type").is_some_and(Value::is_string) =>
                    {
                        if let Some(r) = v.get("result").filter(|r| r.is_object()) {
                            result = Some(r.clone());
                        }
                    }
                    _ => target.invalid(&answer, format!("bad stream frame {data:.120}")),
                }
            }
        }
        if buf.len() > FRAME_MAX {
            target.invalid(&answer, "stream data without frame end");
            break;
        }
    }
    target.stats.add_bytes("GET", answer.endpoint, read);
    Ok(result
        .filter(|r| {
            r.get("status")
                .and_then(Value::as_str)
                .is_some_and(|s| TERMINAL.contains(&s))
        })
        .map(|r| (r, answer)))
}

/// Polls the result until it is terminal or `deadline` passes.
async fn poll(
    target: &Target,
    session: &Session,
    id: &str,
    deadline: Instant,
) -> Result<Option<(Value, crate::client::Answer)>, Stopped> {
    let call = Call::get(format!("/api/v1/executions/{id}/result"));
    loop {
        let answer = target.send(session, &call).await?;
        if answer.status == 200 {
            let v = answer.json().unwrap_or_default();
            match v.get("status").and_then(Value::as_str) {
                Some(s) if TERMINAL.contains(&s) => return Ok(Some((v, answer))),
                Some(s) if STATUSES.contains(&s) => {}
                _ => target.invalid(&answer, "result without a known status"),
            }
        }
        if Instant::now() + POLL > deadline {
            return Ok(None);
        }
        target.pause(POLL).await?;
    }
}

/// Reads the stored events of the execution; records its queue wait.
pub async fn events(target: &Target, session: &Session, id: &str) -> Result<(), Stopped> {
    let call = Call::get(format!("/api/v1/executions/{id}/events"));
    let answer = target.send(session, &call).await?;
    if answer.status != 200 {
        return Ok(());
    }
    let Some(list) = answer.json().and_then(|v| v.as_array().cloned()) else {
        target.invalid(&answer, "events answer is not a list");
        return Ok(());
    };
    let at = |kind: &str| {
        list.iter()
            .find(|e| e.get("event_type").and_then(Value::as_str) == Some(kind))
            .and_then(|e| e.get("timestamp")?.as_str()?.parse::<DateTime<Utc>>().ok())
    };
    if list
        .iter()
        .any(|e| !e.get("event_type").is_some_and(Value::is_string))
    {
        target.invalid(&answer, "event without event_type");
    }
    let queued = at("execution_queued").or_else(|| at("execution_requested"));
    if let (Some(queued), Some(started)) = (queued, at("execution_started")) {
        if let Ok(wait) = (started - queued).to_std() {
            target.stats.executions(|e| e.queue_wait(wait));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_judged_by_what_the_script_must_give() {
        let prints = Script::Prints("m1".to_owned());
        let ok = json!({"status": "completed", "exit_code": 0, "stdout": "m1\n", "stderr": ""});
        assert_eq!(prints.wrong(&ok), None);
        let other = json!({"status": "completed", "exit_code": 0, "stdout": "x\n"});
        assert!(prints.wrong(&other).is_some());
        let raises = Script::Raises("m2".to_owned());
        let raised = json!({"status": "completed", "exit_code": 1, "stdout": "",
            "stderr": "Traceback...\nValueError: m2\n"});
        assert_eq!(raises.wrong(&raised), None);
        assert!(raises.wrong(&ok).is_some());
        let zero = json!({"status": "completed", "exit_code": 0, "stderr": "m2"});
        assert!(raises.wrong(&zero).is_some());
        let failed = json!({"status": "failed", "exit_code": 1, "stderr": "m2"});
        assert!(raises.wrong(&failed).is_some());
    }

    #[test]
    fn sources_carry_their_marker() {
        assert_eq!(Script::Prints("a".into()).source(), "print('a')\n");
        assert!(Script::Raises("b".into()).source().contains("'b'"));
    }
}
