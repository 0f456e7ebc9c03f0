//! What an executor container tells about its run: the framed output the entrypoint prints
//! (`STDOUT <n>\n…\nSTDERR <m>\n…`) and the `key=value` lines of its termination message. See
//! `manifest/entrypoint.sh`; the writers here produce the same bytes (the fake kubelet uses
//! them), and a test runs the real entrypoint through the parsers.

use std::fmt::Write as _;
use std::time::Duration;

/// The output of a run, capped as the local sandbox caps it: one budget of `cap` bytes shared
/// by stdout then stderr, the cut marked by the same marker line.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CapturedOutput {
    pub stdout: String,
    pub stderr: String,
    pub truncated: bool,
}

/// The termination message of an executor container.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Termination {
    pub exit_code: Option<i32>,
    pub wall_time: Option<Duration>,
    pub cpu_time: Option<Duration>,
    pub peak_memory_bytes: Option<u64>,
}

/// The line appended where output was cut (the local sandbox's marker).
pub fn truncation_marker(cap: u64) -> String {
    format!("\n[output truncated: limit of {cap} bytes reached]\n")
}

/// How many log bytes to ask for so that both frames fit with `cap` bytes each.
pub fn log_limit_bytes(cap: u64) -> i64 {
    i64::try_from(cap.saturating_mul(2).saturating_add(128)).unwrap_or(i64::MAX)
}

/// Parses the framed log; `None` when it is not framed (the entrypoint never ran, or the log
/// was lost).
pub fn parse_framed_log(log: &[u8], cap: u64) -> Option<CapturedOutput> {
    let (stdout_len, rest) = header(log, "STDOUT ")?;
    let stdout_kept = stdout_len.min(cap) as usize;
    let stdout = rest.get(..stdout_kept.min(rest.len()))?;
    let rest = rest.get(stdout.len()..)?;
    let rest = rest.strip_prefix(b"\n")?;
    let (stderr_len, rest) = header(rest, "STDERR ")?;
    let stderr_kept = stderr_len.min(cap) as usize;
    let stderr = &rest[..stderr_kept.min(rest.len())];

    let room = cap.saturating_sub(stdout.len() as u64) as usize;
    let mut out = CapturedOutput {
        stdout: String::from_utf8_lossy(stdout).into_owned(),
        stderr: String::from_utf8_lossy(&stderr[..stderr.len().min(room)]).into_owned(),
        truncated: stdout_len.saturating_add(stderr_len) > cap,
    };
    if out.truncated {
        if stdout_len > cap {
            out.stdout.push_str(&truncation_marker(cap));
        } else {
            out.stderr.push_str(&truncation_marker(cap));
        }
    }
    Some(out)
}

fn header<'a>(data: &'a [u8], tag: &str) -> Option<(u64, &'a [u8])> {
    let data = data.strip_prefix(tag.as_bytes())?;
    let end = data.iter().position(|b| *b == b'\n')?;
    let n = std::str::from_utf8(&data[..end])
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some((n, &data[end + 1..]))
}

/// Parses the termination message; unknown keys and bad values are ignored.
pub fn parse_termination(message: &str) -> Termination {
    let mut t = Termination::default();
    let mut started = None;
    let mut ended = None;
    for line in message.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let value = value.trim();
        match key.trim() {
            "exit_code" => t.exit_code = value.parse().ok(),
            "uptime_started" => started = value.parse::<f64>().ok(),
            "uptime_ended" => ended = value.parse::<f64>().ok(),
            "cpu_usec" => t.cpu_time = value.parse().ok().map(Duration::from_micros),
            "memory_peak_bytes" => t.peak_memory_bytes = value.parse().ok(),
            _ => {}
        }
    }
    if let (Some(s), Some(e)) = (started, ended) {
        if e >= s {
            t.wall_time = Some(Duration::from_secs_f64(e - s));
        }
    }
    t
}

/// The framed log the entrypoint prints for this output (at most `cap` bytes of each stream).
pub fn frame_output(stdout: &[u8], stderr: &[u8], cap: u64) -> Vec<u8> {
    let cap = usize::try_from(cap).unwrap_or(usize::MAX);
    let mut log = format!("STDOUT {}\n", stdout.len()).into_bytes();
    log.extend_from_slice(&stdout[..stdout.len().min(cap)]);
    log.extend_from_slice(format!("\nSTDERR {}\n", stderr.len()).as_bytes());
    log.extend_from_slice(&stderr[..stderr.len().min(cap)]);
    log
}

/// The termination message the entrypoint writes for this run.
pub fn termination_message(termination: &Termination) -> String {
    let mut text = String::new();
    if let Some(code) = termination.exit_code {
        let _ = writeln!(text, "exit_code={code}");
    }
    if let Some(wall) = termination.wall_time {
        let _ = writeln!(text, "uptime_started=100.00");
        let _ = writeln!(text, "uptime_ended={:.2}", 100.0 + wall.as_secs_f64());
    }
    if let Some(cpu) = termination.cpu_time {
        let _ = writeln!(text, "cpu_usec={}", cpu.as_micros());
    }
    if let Some(peak) = termination.peak_memory_bytes {
        let _ = writeln!(text, "memory_peak_bytes={peak}");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framed_output_round_trips() {
        let log = frame_output(b"hello\n", b"oops\n", 1024);
        let out = parse_framed_log(&log, 1024).unwrap();
        assert_eq!(out.stdout, "hello\n");
        assert_eq!(out.stderr, "oops\n");
        assert!(!out.truncated);
        assert!(parse_framed_log(b"random text", 1024).is_none());
    }

    #[test]
    fn output_over_the_cap_is_cut_like_locally() {
        let log = frame_output(&[b'a'; 10], &[b'b'; 10], 15);
        let out = parse_framed_log(&log, 15).unwrap();
        assert!(out.truncated);
        assert_eq!(out.stdout, "aaaaaaaaaa");
        assert_eq!(out.stderr, format!("bbbbb{}", truncation_marker(15)));
        let log = frame_output(&[b'a'; 20], b"", 15);
        let out = parse_framed_log(&log, 15).unwrap();
        assert_eq!(
            out.stdout,
            format!("{}{}", "a".repeat(15), truncation_marker(15))
        );
        assert_eq!(out.stderr, "");
    }

    #[test]
    fn termination_messages_round_trip() {
        let t = Termination {
            exit_code: Some(3),
            wall_time: Some(Duration::from_millis(1250)),
            cpu_time: Some(Duration::from_micros(12345)),
            peak_memory_bytes: Some(4096),
        };
        let back = parse_termination(&termination_message(&t));
        assert_eq!(back.exit_code, Some(3));
        assert_eq!(back.cpu_time, t.cpu_time);
        assert_eq!(back.peak_memory_bytes, Some(4096));
        let wall = back.wall_time.unwrap().as_secs_f64();
        assert!((wall - 1.25).abs() < 0.011, "{wall}");
    }

    /// The real entrypoint, run by the host's `/bin/sh`, prints what the parsers read.
    #[test]
    fn the_entrypoint_output_parses() {
        let dir = std::env::temp_dir().join(format!("integr8s-entry-{}", std::process::id()));
        let (scripts, work, out) = (dir.join("scripts"), dir.join("work"), dir.join("out"));
        for d in [&scripts, &work, &out] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(
            scripts.join("main.sh"),
            "read line; echo \"got $line\"; echo err >&2; printf 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'; exit 3\n",
        )
        .unwrap();
        std::fs::write(scripts.join("stdin"), "input\n").unwrap();
        let term = dir.join("term");
        let output = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(crate::manifest::ENTRYPOINT)
            .arg("entrypoint")
            .args(["sh", "main.sh"])
            .env("INTEGR8S_WORK_DIR", &work)
            .env("INTEGR8S_SCRIPT_DIR", &scripts)
            .env("INTEGR8S_OUTPUT_DIR", &out)
            .env("INTEGR8S_TERMINATION_LOG", &term)
            .env("INTEGR8S_SCRIPT_FILE", "main.sh")
            .env("INTEGR8S_MAX_OUTPUT_BYTES", "20")
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(3));
        let parsed = parse_framed_log(&output.stdout, 20).unwrap();
        assert!(parsed.truncated);
        assert_eq!(
            parsed.stdout,
            format!("got input\nxxxxxxxxxx{}", truncation_marker(20))
        );
        let t = parse_termination(&std::fs::read_to_string(&term).unwrap());
        assert_eq!(t.exit_code, Some(3));
        assert!(t.wall_time.is_some());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
