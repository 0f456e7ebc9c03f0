//! The degradation ladder of SANDBOX.md §5 as health text: which level runs (full, rlimits
//! instead of cgroups, or refused), the cgroup mode and the landlock ABI the kernel offers.

use std::path::Path;

use integr8s_core::ports::executor::ExecutorHealth;

/// What landlock the kernel offers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Landlock {
    Abi(u32),
    /// Why there is none (not built in, disabled at boot, or ABI 0).
    Unavailable(String),
}

impl Landlock {
    /// Asks the kernel: `landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)`.
    pub(crate) fn probe() -> Self {
        let (ret, errno) = crate::sys::landlock_abi_version();
        Self::from_syscall(ret, errno)
    }

    /// Interprets the syscall's return value (and `errno` when it is negative).
    pub(crate) fn from_syscall(ret: libc::c_long, errno: i32) -> Self {
        match ret {
            abi if abi > 0 => u32::try_from(abi).map_or_else(
                |_| Landlock::Unavailable(format!("the kernel reports landlock ABI {abi}")),
                Landlock::Abi,
            ),
            0 => Landlock::Unavailable("the kernel reports landlock ABI 0".into()),
            _ => Landlock::Unavailable(match errno {
                libc::ENOSYS => "the kernel has no landlock (ENOSYS)".into(),
                libc::EOPNOTSUPP => "landlock is disabled at boot (EOPNOTSUPP); add landlock \
                                     to the lsm= kernel parameter"
                    .into(),
                other => format!(
                    "landlock_create_ruleset failed: {}",
                    std::io::Error::from_raw_os_error(other)
                ),
            }),
        }
    }

    fn token(&self) -> String {
        match self {
            Landlock::Abi(abi) => format!("landlock-abi-{abi}"),
            Landlock::Unavailable(_) => "no-landlock".into(),
        }
    }

    fn describe(&self) -> String {
        match self {
            Landlock::Abi(abi) => format!("landlock ABI {abi}"),
            Landlock::Unavailable(_) => "no landlock".into(),
        }
    }
}

/// How limits are enforced at the level that runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Limits {
    /// Step 2: cgroups of this version (1 or 2) limit and account every run.
    Cgroup { version: u8 },
    /// Step 3: no usable cgroup delegation; rlimits stand in.
    Rlimits {
        /// The cgroup that memory would have to be delegated to.
        delegate_to: String,
        /// Why cgroups are not used.
        cause: String,
        /// Whether `RLIMIT_AS` stands in for the memory cap (configurable).
        rlimit_as: bool,
        /// Whether `RLIMIT_NPROC` with a unique uid per run stands in for the pids cap.
        rlimit_nproc: bool,
    },
}

/// The one warning of §5 step 3, naming the cgroup and the fix.
pub(crate) fn rlimits_warning(delegate_to: &str, rlimit_as: bool) -> String {
    let fallback = if rlimit_as {
        "memory limits fall back to RLIMIT_AS"
    } else {
        "memory is not limited (the RLIMIT_AS fallback is off)"
    };
    format!(
        "cgroup v2 controller 'memory' is not delegated to {delegate_to}; {fallback}. Fix: \
         Delegate=yes in the unit"
    )
}

/// The cgroup named in the step 3 warning: the v2 directory found, else the v2 mount.
pub(crate) fn delegate_target(v2_dir: Option<&Path>) -> String {
    v2_dir.map_or_else(
        || "the service's cgroup (no cgroup v2 hierarchy is mounted)".into(),
        |dir| dir.display().to_string(),
    )
}

/// Health of a ready executor at the level `limits`, with extra `notes` (uid sharing, ...).
pub(crate) fn ready(limits: &Limits, landlock: &Landlock, notes: &[String]) -> ExecutorHealth {
    let (level, limit_token, mut detail) = match limits {
        Limits::Cgroup { version } => (
            if matches!(landlock, Landlock::Abi(_)) {
                "full"
            } else {
                "weaker"
            },
            format!("cgroup-v{version}"),
            vec![format!(
                "{} isolation: user namespaces + cgroup v{version} + seccomp + {}",
                if matches!(landlock, Landlock::Abi(_)) {
                    "full"
                } else {
                    "weaker"
                },
                landlock.describe()
            )],
        ),
        Limits::Rlimits {
            delegate_to,
            cause,
            rlimit_as,
            rlimit_nproc,
        } => {
            let pids = if *rlimit_nproc {
                "process limits fall back to RLIMIT_NPROC with one uid per run"
            } else {
                "process counts are not limited (RLIMIT_NPROC needs one uid per run, i.e. a \
                 root service)"
            };
            (
                "rlimits",
                "rlimits".to_owned(),
                vec![
                    format!(
                        "no cgroup delegation, rlimits instead: user namespaces + rlimits + \
                         seccomp + {}",
                        landlock.describe()
                    ),
                    rlimits_warning(delegate_to, *rlimit_as),
                    format!(
                        "weaker: {pids}; RLIMIT_CPU, the wall timeout and the output cap still \
                         apply; OOM kills cannot be attributed and there is no CPU or \
                         peak-memory accounting (cause: {cause})"
                    ),
                ],
            )
        }
    };
    if let Landlock::Unavailable(why) = landlock {
        detail.push(format!(
            "landlock unavailable: {why}; weaker: the filesystem inside the sandbox is \
             confined by the mount namespace and read-only binds only"
        ));
    }
    detail.extend(notes.iter().cloned());
    ExecutorHealth {
        ready: true,
        mode: format!("{level}: userns+{limit_token}+seccomp+{}", landlock.token()),
        detail: Some(detail.join("; ")),
    }
}

/// Health of a refused sandbox (§5 step 4 and every other fail-closed case).
pub(crate) fn refused(reason: &str) -> ExecutorHealth {
    ExecutorHealth {
        ready: false,
        mode: "unavailable".into(),
        detail: Some(format!("sandbox unavailable: {reason}")),
    }
}

/// The cause and fix of §5 step 4, with bubblewrap's own message.
pub(crate) fn userns_blocked(bwrap_stderr: &str) -> String {
    let message = bwrap_stderr
        .trim()
        .strip_prefix("bwrap: ")
        .unwrap_or(bwrap_stderr.trim());
    format!(
        "user namespaces are blocked (bwrap: \"{message}\"). Enable \
         kernel.unprivileged_userns_clone / give the service an AppArmor 'userns' profile / run \
         the container with a seccomp profile that allows CLONE_NEWUSER — or configure the \
         Kubernetes backend."
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn landlock_abi_is_read_from_the_syscall_result() {
        assert_eq!(Landlock::from_syscall(7, 0), Landlock::Abi(7));
        for (ret, errno, expected) in [
            (0, 0, "ABI 0"),
            (-1, libc::ENOSYS, "ENOSYS"),
            (-1, libc::EOPNOTSUPP, "EOPNOTSUPP"),
            (-1, libc::EINVAL, "failed"),
        ] {
            match Landlock::from_syscall(ret, errno) {
                Landlock::Unavailable(why) => assert!(why.contains(expected), "{why}"),
                other => panic!("{ret}/{errno}: {other:?}"),
            }
        }
    }

    #[test]
    fn full_level_names_cgroup_version_and_landlock_abi() {
        let health = ready(&Limits::Cgroup { version: 2 }, &Landlock::Abi(6), &[]);
        assert!(health.ready);
        assert_eq!(health.mode, "full: userns+cgroup-v2+seccomp+landlock-abi-6");
        assert_eq!(
            health.detail.as_deref(),
            Some("full isolation: user namespaces + cgroup v2 + seccomp + landlock ABI 6")
        );
    }

    #[test]
    fn missing_landlock_is_weaker_not_refused() {
        let landlock = Landlock::from_syscall(-1, libc::ENOSYS);
        let health = ready(
            &Limits::Cgroup { version: 1 },
            &landlock,
            &["a note".to_owned()],
        );
        assert!(health.ready);
        assert_eq!(health.mode, "weaker: userns+cgroup-v1+seccomp+no-landlock");
        let detail = health.detail.unwrap_or_default();
        assert!(
            detail.starts_with(
                "weaker isolation: user namespaces + cgroup v1 + seccomp + no landlock; \
                 landlock unavailable: the kernel has no landlock (ENOSYS); weaker:"
            ),
            "{detail}"
        );
        assert!(detail.ends_with("; a note"), "{detail}");
    }

    #[test]
    fn rlimit_level_carries_the_exact_warning() {
        let limits = Limits::Rlimits {
            delegate_to: "/sys/fs/cgroup/integr8s.service".into(),
            cause: "cgroup v2 controller 'memory' is not available".into(),
            rlimit_as: true,
            rlimit_nproc: true,
        };
        let health = ready(&limits, &Landlock::Abi(7), &[]);
        assert!(health.ready);
        assert_eq!(
            health.mode,
            "rlimits: userns+rlimits+seccomp+landlock-abi-7"
        );
        let detail = health.detail.unwrap_or_default();
        assert!(
            detail.starts_with(
                "no cgroup delegation, rlimits instead: user namespaces + rlimits + seccomp + \
                 landlock ABI 7; cgroup v2 controller 'memory' is not delegated to \
                 /sys/fs/cgroup/integr8s.service; memory limits fall back to RLIMIT_AS. Fix: \
                 Delegate=yes in the unit; weaker: process limits fall back to RLIMIT_NPROC"
            ),
            "{detail}"
        );
        assert!(detail.ends_with("(cause: cgroup v2 controller 'memory' is not available)"));
    }

    #[test]
    fn rlimit_level_without_rlimit_fallbacks_says_nothing_limits_memory() {
        let limits = Limits::Rlimits {
            delegate_to: delegate_target(None),
            cause: "x".into(),
            rlimit_as: false,
            rlimit_nproc: false,
        };
        let detail = ready(&limits, &Landlock::Abi(1), &[])
            .detail
            .unwrap_or_default();
        assert!(detail.contains(
            "not delegated to the service's cgroup (no cgroup v2 hierarchy is mounted); memory \
             is not limited (the RLIMIT_AS fallback is off). Fix: Delegate=yes in the unit"
        ));
        assert!(detail.contains("process counts are not limited"));
    }

    #[test]
    fn blocked_user_namespaces_are_refused_with_cause_and_fix() {
        let reason = userns_blocked(
            "bwrap: No permissions to create new namespace, likely because the kernel does not \
             allow non-privileged user namespaces\n",
        );
        let health = refused(&reason);
        assert!(!health.ready);
        assert_eq!(health.mode, "unavailable");
        assert_eq!(
            health.detail.as_deref(),
            Some(
                "sandbox unavailable: user namespaces are blocked (bwrap: \"No permissions to \
                 create new namespace, likely because the kernel does not allow non-privileged \
                 user namespaces\"). Enable kernel.unprivileged_userns_clone / give the service \
                 an AppArmor 'userns' profile / run the container with a seccomp profile that \
                 allows CLONE_NEWUSER — or configure the Kubernetes backend."
            )
        );
    }
}
