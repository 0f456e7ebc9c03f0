//! The bubblewrap argument vector (SANDBOX.md §6), built as plain data so it can be tested.

use std::fs;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use crate::config::SandboxConfig;
use crate::init;

/// The uid and gid the script sees inside the sandbox.
pub(crate) const INSIDE_ID: u32 = 1000;
/// Working directory and `HOME` inside the sandbox.
pub(crate) const WORK_DIR: &str = "/work";

/// Capabilities (of the sandbox's own user namespace) the init shim keeps between runs.
pub(crate) const SHIM_CAPS: [&str; 3] = ["CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SETPCAP"];

/// The descriptors the init shim is started with (inherited through bubblewrap).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ShimFds {
    pub control: RawFd,
    pub status: RawFd,
    pub seccomp: RawFd,
}

/// How a top-level directory next to `/usr` is recreated inside the sandbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum RootEntry {
    /// Merged-/usr hosts: `/bin -> usr/bin` and friends.
    Symlink { target: PathBuf, path: PathBuf },
    /// Hosts where the directory is real: bind it read-only.
    Bind { path: PathBuf },
}

/// Mirrors the host's `/bin`, `/lib*` and `/sbin` (symlinks stay symlinks).
pub(crate) fn root_entries() -> Vec<RootEntry> {
    ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"]
        .iter()
        .filter_map(|p| {
            let path = Path::new(p);
            let meta = fs::symlink_metadata(path).ok()?;
            if meta.file_type().is_symlink() {
                let target = fs::read_link(path).ok()?;
                Some(RootEntry::Symlink {
                    target,
                    path: path.to_path_buf(),
                })
            } else if meta.is_dir() {
                Some(RootEntry::Bind {
                    path: path.to_path_buf(),
                })
            } else {
                None
            }
        })
        .collect()
}

/// Configuration under `/etc` that runtimes read: the loader cache, the alternatives links,
/// and the JVM and PHP configuration trees when installed. Nothing else of `/etc` is visible.
pub(crate) fn etc_binds() -> Vec<PathBuf> {
    let mut binds: Vec<PathBuf> = ["/etc/ld.so.cache", "/etc/alternatives", "/etc/php"]
        .iter()
        .map(PathBuf::from)
        .collect();
    if let Ok(entries) = fs::read_dir("/etc") {
        let mut java: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().starts_with("java-"))
            .map(|e| e.path())
            .collect();
        java.sort();
        binds.extend(java);
    }
    binds
}

/// A script file name must be one plain path component.
pub(crate) fn valid_file_name(name: &str) -> bool {
    !name.is_empty()
        && name != "."
        && name != ".."
        && !name.contains('/')
        && !name.contains('\0')
        && name.len() <= 255
}

/// An environment variable name bubblewrap can set.
pub(crate) fn valid_env_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('=') && !name.contains('\0')
}

/// Everything a bubblewrap command line is built from; fixed for an executor, so a sandbox
/// can be prepared before its run is known (the run itself reaches the init shim as a job).
#[derive(Debug, Clone)]
pub(crate) struct BwrapArgs {
    pub config: SandboxConfig,
    pub root_entries: Vec<RootEntry>,
    /// Paths under `/etc` bound read-only when they exist.
    pub etc_binds: Vec<PathBuf>,
    /// The init shim's memfd (see [`init::InitMemfd`]), inherited by bubblewrap.
    pub init_fd: RawFd,
}

fn push(args: &mut Vec<String>, items: &[&str]) {
    args.extend(items.iter().map(|s| (*s).to_owned()));
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl BwrapArgs {
    /// The whole command line after the bubblewrap binary: the options (the final read-only
    /// remount last), then the init shim as pid 1 with its control socket, status pipe,
    /// seccomp program and the sizes of each run's tmpfs (see `init/main.rs`).
    pub(crate) fn command_line(&self, fds: ShimFds) -> Vec<String> {
        let c = &self.config;
        let mut a = self.options();
        push(
            &mut a,
            &[
                "--",
                &init::InitMemfd::path_inside(self.init_fd),
                &fds.control.to_string(),
                &fds.status.to_string(),
                &fds.seccomp.to_string(),
                &format!(
                    "{},{},{}",
                    c.work_size_bytes, c.tmp_size_bytes, c.shm_size_bytes
                ),
            ],
        );
        a
    }

    fn options(&self) -> Vec<String> {
        let c = &self.config;
        let mut a = Vec::with_capacity(96);
        push(
            &mut a,
            &[
                "--unshare-all",
                "--as-pid-1",
                "--die-with-parent",
                "--new-session",
                "--clearenv",
            ],
        );
        push(&mut a, &["--setenv", "PATH", &c.path_env]);
        push(&mut a, &["--setenv", "HOME", WORK_DIR]);
        push(&mut a, &["--setenv", "LANG", &c.lang_env]);
        let id = INSIDE_ID.to_string();
        push(
            &mut a,
            &["--uid", &id, "--gid", &id, "--hostname", "sandbox"],
        );

        push(&mut a, &["--ro-bind", "/usr", "/usr"]);
        for entry in &self.root_entries {
            match entry {
                RootEntry::Symlink { target, path } => {
                    push(&mut a, &["--symlink", &path_str(target), &path_str(path)]);
                }
                RootEntry::Bind { path } => {
                    let p = path_str(path);
                    push(&mut a, &["--ro-bind", &p, &p]);
                }
            }
        }
        for etc in &self.etc_binds {
            let etc = path_str(etc);
            push(&mut a, &["--ro-bind-try", &etc, &etc]);
        }
        for (source, dest) in &c.extra_ro_binds {
            push(&mut a, &["--ro-bind", &path_str(source), &path_str(dest)]);
        }

        push(&mut a, &["--proc", "/proc", "--dev", "/dev"]);
        for (size, dir) in [
            (c.shm_size_bytes, "/dev/shm"),
            (c.work_size_bytes, WORK_DIR),
            (c.tmp_size_bytes, "/tmp"),
        ] {
            push(
                &mut a,
                &[
                    "--size",
                    &size.to_string(),
                    "--perms",
                    "1777",
                    "--tmpfs",
                    dir,
                ],
            );
        }
        push(&mut a, &["--chdir", WORK_DIR]);
        // The shim's, inside the sandbox's user namespace only: it gives each run fresh
        // namespaces and tmpfs, and each run init drops them all before it takes a job.
        for cap in SHIM_CAPS {
            push(&mut a, &["--cap-add", cap]);
        }
        // Must come after every other mount.
        push(&mut a, &["--remount-ro", "/"]);
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(entries: &[RootEntry]) -> Vec<String> {
        let config = SandboxConfig {
            extra_ro_binds: vec![(PathBuf::from("/opt/rt/py"), PathBuf::from("/opt/py"))],
            ..SandboxConfig::default()
        };
        BwrapArgs {
            config,
            root_entries: entries.to_vec(),
            etc_binds: vec![PathBuf::from("/etc/ld.so.cache")],
            init_fd: 4,
        }
        .command_line(ShimFds {
            control: 5,
            status: 6,
            seccomp: 8,
        })
    }

    fn position(args: &[String], window: &[&str]) -> usize {
        args.windows(window.len())
            .position(|w| w.iter().zip(window).all(|(a, b)| a == b))
            .unwrap_or_else(|| panic!("{window:?} not in {args:?}"))
    }

    #[test]
    fn isolation_flags_and_scrubbed_environment() {
        let args = build(&[]);
        for flag in [
            "--unshare-all",
            "--as-pid-1",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
        ] {
            assert!(args.iter().any(|a| a == flag), "{flag} missing");
        }
        assert!(!args.iter().any(|a| a == "--share-net"));
        position(&args, &["--setenv", "HOME", "/work"]);
        position(&args, &["--uid", "1000", "--gid", "1000"]);
        // The run's own variables reach the shim with its job, not bubblewrap.
        assert_eq!(args.iter().filter(|a| *a == "--setenv").count(), 3);
    }

    #[test]
    fn mounts_are_ordered_and_root_is_remounted_last() {
        let entries = vec![
            RootEntry::Symlink {
                target: PathBuf::from("usr/bin"),
                path: PathBuf::from("/bin"),
            },
            RootEntry::Bind {
                path: PathBuf::from("/lib64"),
            },
        ];
        let args = build(&entries);
        position(&args, &["--ro-bind", "/usr", "/usr"]);
        position(&args, &["--symlink", "usr/bin", "/bin"]);
        position(&args, &["--ro-bind", "/lib64", "/lib64"]);
        position(&args, &["--ro-bind", "/opt/rt/py", "/opt/py"]);
        position(
            &args,
            &["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"],
        );
        position(
            &args,
            &["--size", "67108864", "--perms", "1777", "--tmpfs", "/work"],
        );
        position(
            &args,
            &["--size", "16777216", "--perms", "1777", "--tmpfs", "/tmp"],
        );
        position(
            &args,
            &[
                "--size", "16777216", "--perms", "1777", "--tmpfs", "/dev/shm",
            ],
        );
        position(
            &args,
            &[
                "--cap-add",
                "CAP_SYS_ADMIN",
                "--cap-add",
                "CAP_NET_ADMIN",
                "--cap-add",
                "CAP_SETPCAP",
            ],
        );
        assert!(!args.iter().any(|a| a == "--add-seccomp-fd"));
        let remount = position(&args, &["--remount-ro", "/"]);
        let last_mount = args
            .iter()
            .rposition(|a| a.starts_with("--") && a != "--" && a != "--remount-ro")
            .unwrap_or(0);
        assert!(last_mount < remount);
        let sizes = "67108864,16777216,16777216";
        let end = position(&args, &["--", "/proc/self/fd/4", "5", "6", "8", sizes]);
        assert_eq!(remount + 2, end, "the remount must be the last option");
        assert_eq!(end + 6, args.len());
    }

    #[test]
    fn file_and_env_names_are_validated() {
        assert!(valid_file_name("main.py"));
        for bad in ["", ".", "..", "a/b", "../x", "x\0"] {
            assert!(!valid_file_name(bad), "{bad:?}");
        }
        assert!(valid_env_name("A_B"));
        assert!(!valid_env_name("A=B"));
        assert!(!valid_env_name(""));
    }
}
