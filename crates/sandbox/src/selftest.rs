//! The startup self-test (SANDBOX.md §5): find bubblewrap, pick the cgroup mode, run
//! `/bin/true` in a real sandbox, and describe the result for health.

use std::path::{Path, PathBuf};

use integr8s_core::execution::RunLimits;
use integr8s_core::ports::executor::{ExecutorHealth, RunControl, RunOutcome, RunSpec};

use crate::cgroup::CgroupLayout;
use crate::executor::{LocalExecutor, Mode, State};
use crate::ladder::{self, Landlock, Limits};
use crate::{cgroup, sys};

/// Oldest bubblewrap with `--size` for capped tmpfs mounts.
const MIN_VERSION: (u32, u32) = (0, 7);

/// Resolves the configured bubblewrap to an absolute path.
pub(crate) fn find_bwrap(configured: &Path) -> Option<PathBuf> {
    if configured.components().count() > 1 || configured.is_absolute() {
        return configured.is_file().then(|| configured.to_path_buf());
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/local/bin")])
        .map(|dir| dir.join(configured))
        .find(|candidate| candidate.is_file())
}

/// Parses `bubblewrap 0.8.0` into (major, minor).
pub(crate) fn parse_version(output: &str) -> Option<(u32, u32)> {
    let version = output.split_whitespace().nth(1)?;
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor))
}

/// The owner of the first `/etc/subuid`-style entry overlapping `(start, count)`.
pub(crate) fn subid_overlap(text: &str, (start, count): (u64, u64)) -> Option<String> {
    text.lines().find_map(|line| {
        let mut parts = line.trim().split(':');
        let owner = parts.next()?;
        let first: u64 = parts.next()?.parse().ok()?;
        let len: u64 = parts.next()?.parse().ok()?;
        (first < start + count && start < first + len).then(|| owner.to_owned())
    })
}

/// Maps bubblewrap's stderr to a cause and a fix.
pub(crate) fn explain_failure(stderr: &str, code: Option<i32>) -> String {
    if stderr.contains("No permissions to create new namespace")
        || stderr.contains("Creating new namespace failed")
        || stderr.contains("setting up uid map")
    {
        return ladder::userns_blocked(stderr);
    }
    if stderr.contains("Can't mount proc") {
        return format!(
            "bwrap cannot mount /proc (\"{}\"), as inside a default Docker container. Run the \
             container with --security-opt systempaths=unconfined and a seccomp profile that \
             allows CLONE_NEWUSER, or configure the Kubernetes backend",
            stderr.trim()
        );
    }
    let code = code.map_or_else(|| "unknown".to_owned(), |c| c.to_string());
    format!(
        "a test run of /bin/true failed (exit {code}): {}",
        stderr.trim()
    )
}

fn probe_spec() -> RunSpec {
    RunSpec {
        execution_id: "self-test".into(),
        lang: "self-test".into(),
        lang_version: String::new(),
        file_name: "self-test".into(),
        script: String::new(),
        command: vec!["/bin/true".into()],
        env: Vec::new(),
        limits: RunLimits {
            timeout_seconds: 30,
            memory_bytes: 64 * 1024 * 1024,
            max_processes: 16,
            max_output_bytes: 64 * 1024,
            cpu_time_ms: None,
        },
        stdin: None,
        prestart: None,
    }
}

fn unavailable(reason: String) -> State {
    State {
        health: ladder::refused(&reason),
        mode: Mode::Unavailable { reason },
    }
}

/// The directory a layout's memory limits live in, for the rlimit warning.
fn memory_dir(layout: &CgroupLayout) -> String {
    match layout {
        CgroupLayout::V1 { memory, .. } => memory.display().to_string(),
        CgroupLayout::V2 { parent, .. } => parent.display().to_string(),
    }
}

impl LocalExecutor {
    /// Tests the sandbox on this host, stores the result (mode and health) and returns the
    /// health. Runs are refused unless it reports ready.
    pub async fn self_test(&self) -> ExecutorHealth {
        let state = self.probe().await;
        match &state.mode {
            Mode::Unavailable { reason } => tracing::error!(%reason, "sandbox unavailable"),
            _ => tracing::info!(
                mode = %state.health.mode,
                detail = ?state.health.detail,
                "sandbox ready"
            ),
        }
        let ready = state.health.ready;
        let health = state.health.clone();
        *self
            .state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = state;
        if ready {
            self.warm_slots().await;
        }
        health
    }

    async fn probe(&self) -> State {
        let Some(bwrap) = find_bwrap(&self.config.bwrap) else {
            return unavailable(format!(
                "bubblewrap ({}) was not found. Install the 'bubblewrap' package or set the \
                 sandbox bwrap path",
                self.config.bwrap.display()
            ));
        };
        let version = match tokio::process::Command::new(&bwrap)
            .arg("--version")
            .output()
            .await
        {
            Ok(out) => String::from_utf8_lossy(&out.stdout).into_owned(),
            Err(e) => return unavailable(format!("cannot run {}: {e}", bwrap.display())),
        };
        match parse_version(&version) {
            Some(v) if v >= MIN_VERSION => {}
            _ => {
                return unavailable(format!(
                    "{} reports version {:?}; bubblewrap >= {}.{} is required",
                    bwrap.display(),
                    version.trim(),
                    MIN_VERSION.0,
                    MIN_VERSION.1
                ))
            }
        }

        let mut notes = Vec::new();
        if self.switch_ids && self.config.uid_base == 0 {
            return unavailable(
                "the sandbox uid_base is 0, which would run scripts as host root; set an \
                 unprivileged uid_base such as 100000"
                    .into(),
            );
        }
        if let Some(reason) = self.uid_claim_error() {
            return unavailable(reason.to_owned());
        }
        if self.switch_ids {
            let slots = self.config.max_concurrent.max(1) as u64 * 2;
            let range = (u64::from(self.config.uid_base), slots);
            for file in ["/etc/subuid", "/etc/subgid"] {
                let text = std::fs::read_to_string(file).unwrap_or_default();
                if let Some(owner) = subid_overlap(&text, range) {
                    notes.push(format!(
                        "sandbox ids {}..{} overlap the {file} range of '{owner}'; choose \
                         another uid_base so no container shares them",
                        range.0,
                        range.0 + range.1
                    ));
                }
            }
        }
        if !self.switch_ids {
            notes.push(format!(
                "the service is not root: runs share its uid {} and gid {} instead of one \
                 unprivileged uid per slot",
                sys::effective_uid(),
                sys::effective_gid()
            ));
        }
        let landlock = Landlock::probe();
        let rlimits = |delegate_to: String, cause: String| {
            let rlimit_as = self.config.rlimit_as_fallback;
            tracing::warn!("{}", ladder::rlimits_warning(&delegate_to, rlimit_as));
            Limits::Rlimits {
                delegate_to,
                cause,
                rlimit_as,
                rlimit_nproc: self.switch_ids,
            }
        };
        let (mut mode, mut limits) = match cgroup::detect(self.config.cgroup_parent.as_deref()) {
            Ok(layout) => {
                let version = match layout {
                    CgroupLayout::V1 { .. } => 1,
                    CgroupLayout::V2 { .. } => 2,
                };
                let mode = Mode::Cgroup {
                    bwrap: bwrap.clone(),
                    layout,
                };
                (mode, Limits::Cgroup { version })
            }
            Err(failure) => (
                Mode::Rlimits {
                    bwrap: bwrap.clone(),
                },
                rlimits(
                    ladder::delegate_target(failure.v2_dir.as_deref()),
                    failure.cause,
                ),
            ),
        };

        let spec = probe_spec();
        let control = RunControl::default();
        let mut result = self.run_in_mode(&mode, &spec, &control).await;
        if let (Err(e), Mode::Cgroup { layout, .. }) = (&result, &mode) {
            // Cgroups looked usable but are not (e.g. joining them is refused): degrade.
            limits = rlimits(
                memory_dir(layout),
                format!("cgroups could not be used ({e})"),
            );
            mode = Mode::Rlimits {
                bwrap: bwrap.clone(),
            };
            result = self.run_in_mode(&mode, &spec, &control).await;
        }
        match result {
            Ok(report) if report.outcome == (RunOutcome::Exited { code: 0 }) => State {
                health: ladder::ready(&limits, &landlock, &notes),
                mode,
            },
            Ok(report) => {
                let code = match report.outcome {
                    RunOutcome::Exited { code } => Some(code),
                    _ => None,
                };
                unavailable(explain_failure(&report.stderr, code))
            }
            Err(e) => unavailable(format!("a test run of /bin/true could not start: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subid_overlaps_are_detected() {
        let text = "alice:100000:65536\nbob:165536:65536\n";
        assert_eq!(subid_overlap(text, (100_000, 2)), Some("alice".into()));
        assert_eq!(subid_overlap(text, (165_535, 2)), Some("alice".into()));
        assert_eq!(subid_overlap(text, (231_072, 4)), None);
        assert_eq!(subid_overlap("", (100_000, 2)), None);
    }

    #[test]
    fn versions_parse() {
        assert_eq!(parse_version("bubblewrap 0.8.0\n"), Some((0, 8)));
        assert_eq!(parse_version("bubblewrap 0.11.1"), Some((0, 11)));
        assert_eq!(parse_version("garbage"), None);
        assert!(Some((0, 6)) < Some(MIN_VERSION));
    }

    #[test]
    fn failures_name_cause_and_fix() {
        let msg = explain_failure(
            "bwrap: No permissions to create new namespace, likely because the kernel does not allow non-privileged user namespaces",
            Some(1),
        );
        assert!(msg.contains("user namespaces are blocked"));
        assert!(msg.contains("Kubernetes backend"));
        let msg = explain_failure(
            "bwrap: Can't mount proc on /newroot/proc: Operation not permitted",
            Some(1),
        );
        assert!(msg.contains("systempaths=unconfined"));
        assert!(explain_failure("boom", Some(2)).contains("exit 2"));
    }

    #[test]
    fn bwrap_is_found_by_absolute_path_only_if_it_exists() {
        assert_eq!(find_bwrap(Path::new("/nonexistent/bwrap")), None);
        assert_eq!(
            find_bwrap(Path::new("/bin/sh")),
            Some(PathBuf::from("/bin/sh"))
        );
    }
}
