//! The in-sandbox init shim (built from `init/main.rs` by the build script): it serves the
//! sandbox's runs one after another, each isolated on its own (`init/run.rs`), and reports
//! each command's real wait status over a pipe.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};

use crate::classify::ExitKind;

/// The job format, shared with the shim (which parses it).
#[path = "../init/job.rs"]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) mod job;

/// The shim executable, embedded at build time.
pub(crate) const BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sandbox-init"));

/// The shim in a sealed memfd (nothing can change it, and no file on disk can be swapped
/// or be busy): every bubblewrap inherits the fd and execs the shim through
/// `/proc/self/fd/N` of the sandbox's own procfs. One per executor; exec ignores the offset.
#[derive(Debug)]
pub(crate) struct InitMemfd(OwnedFd);

impl InitMemfd {
    pub(crate) fn create() -> io::Result<Self> {
        crate::sys::sealed_memfd(c"sandbox-init", BINARY).map(InitMemfd)
    }

    pub(crate) fn raw_fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }

    /// The program path of the shim inside a sandbox that inherited the fd.
    pub(crate) fn path_inside(fd: RawFd) -> String {
        format!("/proc/self/fd/{fd}")
    }
}

/// What the shim reported about one run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct InitStatus {
    /// The landlock ABI the shim enforced (0: none).
    pub landlock_abi: Option<u32>,
    /// How the command ended; `None` when the shim did not get to report it (killed).
    pub exit: Option<ExitKind>,
    /// Why the launcher could not start bubblewrap (see `init/launch.rs`).
    pub launch_error: Option<String>,
}

/// Parses the shim's status lines; malformed lines are ignored.
pub(crate) fn parse_status(text: &str) -> InitStatus {
    let mut status = InitStatus::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(' ') else {
            continue;
        };
        if key == "launch-error" {
            status.launch_error = Some(value.trim().to_owned());
            continue;
        }
        let Ok(value) = value.trim().parse::<i32>() else {
            continue;
        };
        match key {
            "landlock" => status.landlock_abi = u32::try_from(value).ok(),
            "exit" => status.exit = Some(ExitKind::Code(value)),
            "signal" if value > 0 => status.exit = Some(ExitKind::Signal(value)),
            _ => {}
        }
    }
    status
}

impl InitStatus {
    /// Whether the shim reported the end of the run: it writes the exit line only after every
    /// process of the sandbox is gone, so the run's output is complete in the pipes.
    pub(crate) fn finished(&self) -> bool {
        self.exit.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    #[test]
    fn status_lines_parse() {
        assert_eq!(
            parse_status("landlock 7\nsignal 11\n"),
            InitStatus {
                landlock_abi: Some(7),
                exit: Some(ExitKind::Signal(11)),
                launch_error: None,
            }
        );
        assert_eq!(
            parse_status("landlock 0\nexit 139\n").exit,
            Some(ExitKind::Code(139))
        );
        assert_eq!(parse_status("landlock 7\n").exit, None);
        assert_eq!(parse_status("garbage\nexit x\n"), InitStatus::default());
        assert_eq!(
            parse_status("launch-error setresuid: Operation not permitted\n").launch_error,
            Some("setresuid: Operation not permitted".into())
        );
    }

    #[test]
    fn jobs_round_trip_and_bad_ones_are_refused() {
        use job::{Job, Rlimit};
        let job = Job {
            file_name: b"main.py".to_vec(),
            script: b"print('a')\n\0 binary \n".to_vec(),
            env: vec![(b"GOCACHE".to_vec(), b"/tmp/go=x".to_vec())],
            argv: vec![b"python3".to_vec(), b"main.py".to_vec(), Vec::new()],
            rlimits: vec![
                Rlimit::Cpu(11),
                Rlimit::AddressSpace(1 << 30),
                Rlimit::Processes(64),
            ],
            prestart: vec![b"python3".to_vec(), b"-c".to_vec(), b"wait()".to_vec()],
        };
        assert_eq!(Job::parse(&job.encode()), Ok(job.clone()));
        // A prestart spec is the job without its script; another script still matches it,
        // anything else about the run does not.
        let spec = Job::parse(
            &Job {
                script: Vec::new(),
                ..job.clone()
            }
            .encode(),
        )
        .unwrap();
        assert!(job.same_run_as(&spec));
        let other_env = Job {
            env: Vec::new(),
            ..job.clone()
        };
        let other_limits = Job {
            rlimits: vec![Rlimit::Cpu(12)],
            ..job.clone()
        };
        let other_command = Job {
            argv: vec![b"python3".to_vec()],
            ..job.clone()
        };
        let no_prestart = Job {
            prestart: Vec::new(),
            ..job.clone()
        };
        for different in [other_env, other_limits, other_command] {
            assert!(!different.same_run_as(&spec), "{different:?}");
        }
        assert!(!no_prestart.same_run_as(&Job {
            prestart: Vec::new(),
            ..spec
        }));
        let nul = Job {
            prestart: vec![b"py\0".to_vec()],
            ..job.clone()
        };
        assert!(Job::parse(&nul.encode()).is_err());
        for name in [&b""[..], b".", b"..", b"a/b", b"x\0"] {
            let bad = Job {
                file_name: name.to_vec(),
                ..job.clone()
            };
            assert!(Job::parse(&bad.encode()).is_err(), "{name:?}");
        }
        let no_program = Job {
            argv: Vec::new(),
            ..job.clone()
        };
        assert!(Job::parse(&no_program.encode()).is_err());
        let encoded = job.encode();
        assert!(Job::parse(&encoded[..encoded.len() - 3]).is_err());
        assert!(Job::parse(b"what 1\nx").is_err());
        assert!(Job::parse(b"rlimit 5\nfoo 1").is_err());
        assert!(
            Job::parse(b"").is_err(),
            "an empty job (writer gone) runs nothing"
        );
    }

    #[test]
    fn the_shim_is_embedded_in_a_sealed_memfd() {
        use std::io::{Read, Seek, Write};
        assert!(BINARY.starts_with(b"\x7fELF"));
        let memfd = InitMemfd::create().unwrap();
        let mut file = fs::File::open(InitMemfd::path_inside(memfd.raw_fd())).unwrap();
        let mut content = Vec::new();
        file.read_to_end(&mut content).unwrap();
        assert_eq!(content, BINARY);
        // Sealed: neither writable nor resizable, through any descriptor.
        let mut writable = fs::OpenOptions::new()
            .write(true)
            .open(InitMemfd::path_inside(memfd.raw_fd()));
        if let Ok(w) = writable.as_mut() {
            w.rewind().unwrap();
            assert!(w.write_all(b"x").is_err());
            assert!(w.set_len(1).is_err());
        }
    }
}
