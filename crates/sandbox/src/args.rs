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

/// Inputs of one bubblewrap command line.
#[derive(Debug)]
pub(crate) struct BwrapArgs<'a> {
    pub config: &'a SandboxConfig,
    pub root_entries: &'a [RootEntry],
    /// Paths under `/etc` bound read-only when they exist.
    pub etc_binds: &'a [PathBuf],
    pub env: &'a [(String, String)],
    pub file_name: &'a str,
    pub script_fd: RawFd,
    pub seccomp_fds: &'a [RawFd],
    /// The init shim's executable on the host, bound read-only at [`init::PATH_INSIDE`].
    pub init_path: &'a Path,
}

fn push(args: &mut Vec<String>, items: &[&str]) {
    args.extend(items.iter().map(|s| (*s).to_owned()));
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

impl BwrapArgs<'_> {
    /// The options, up to the final read-only remount: what `bwrap --args FD` reads. The
    /// command line after them is the init shim's (see [`crate::launch`]), which takes the
    /// command from its own fd.
    pub(crate) fn options(&self) -> Vec<String> {
        let c = self.config;
        let mut a = Vec::with_capacity(96);
        push(
            &mut a,
            &[
                "--unshare-all",
                "--die-with-parent",
                "--new-session",
                "--clearenv",
            ],
        );
        push(&mut a, &["--setenv", "PATH", &c.path_env]);
        push(&mut a, &["--setenv", "HOME", WORK_DIR]);
        push(&mut a, &["--setenv", "LANG", &c.lang_env]);
        for (key, value) in self.env {
            push(&mut a, &["--setenv", key, value]);
        }
        let id = INSIDE_ID.to_string();
        push(
            &mut a,
            &["--uid", &id, "--gid", &id, "--hostname", "sandbox"],
        );

        push(&mut a, &["--ro-bind", "/usr", "/usr"]);
        for entry in self.root_entries {
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
        for etc in self.etc_binds {
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
        let script_path = format!("{WORK_DIR}/{}", self.file_name);
        push(
            &mut a,
            &[
                "--perms",
                "0444",
                "--ro-bind-data",
                &self.script_fd.to_string(),
                &script_path,
            ],
        );
        push(&mut a, &["--chdir", WORK_DIR]);
        for fd in self.seccomp_fds {
            push(&mut a, &["--add-seccomp-fd", &fd.to_string()]);
        }
        push(
            &mut a,
            &["--ro-bind", &path_str(self.init_path), init::PATH_INSIDE],
        );
        // Must come after every other mount.
        push(&mut a, &["--remount-ro", "/"]);
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(env: &[(String, String)], entries: &[RootEntry]) -> Vec<String> {
        let config = SandboxConfig {
            extra_ro_binds: vec![(PathBuf::from("/opt/rt/py"), PathBuf::from("/opt/py"))],
            ..SandboxConfig::default()
        };
        BwrapArgs {
            config: &config,
            root_entries: entries,
            etc_binds: &[PathBuf::from("/etc/ld.so.cache")],
            env,
            file_name: "main.py",
            script_fd: 7,
            seccomp_fds: &[8, 9, 10],
            init_path: Path::new("/run/x/init"),
        }
        .options()
    }

    fn position(args: &[String], window: &[&str]) -> usize {
        args.windows(window.len())
            .position(|w| w.iter().zip(window).all(|(a, b)| a == b))
            .unwrap_or_else(|| panic!("{window:?} not in {args:?}"))
    }

    #[test]
    fn isolation_flags_and_scrubbed_environment() {
        let env = vec![("PYTHONUNBUFFERED".to_owned(), "1".to_owned())];
        let args = build(&env, &[]);
        for flag in [
            "--unshare-all",
            "--die-with-parent",
            "--new-session",
            "--clearenv",
        ] {
            assert!(args.iter().any(|a| a == flag), "{flag} missing");
        }
        assert!(!args.iter().any(|a| a == "--share-net"));
        position(&args, &["--setenv", "HOME", "/work"]);
        position(&args, &["--setenv", "PYTHONUNBUFFERED", "1"]);
        position(&args, &["--uid", "1000", "--gid", "1000"]);
        assert_eq!(args.iter().filter(|a| *a == "--setenv").count(), 4);
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
        let args = build(&[], &entries);
        position(&args, &["--ro-bind", "/usr", "/usr"]);
        position(&args, &["--symlink", "usr/bin", "/bin"]);
        position(&args, &["--ro-bind", "/lib64", "/lib64"]);
        position(&args, &["--ro-bind", "/opt/rt/py", "/opt/py"]);
        position(
            &args,
            &["--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache"],
        );
        let work = position(
            &args,
            &["--size", "67108864", "--perms", "1777", "--tmpfs", "/work"],
        );
        let script = position(&args, &["--ro-bind-data", "7", "/work/main.py"]);
        assert!(work < script, "the script must land on the /work tmpfs");
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
                "--add-seccomp-fd",
                "8",
                "--add-seccomp-fd",
                "9",
                "--add-seccomp-fd",
                "10",
            ],
        );
        let remount = position(&args, &["--remount-ro", "/"]);
        let last_mount = args
            .iter()
            .rposition(|a| a.starts_with("--") && a != "--" && a != "--remount-ro")
            .unwrap_or(0);
        assert!(last_mount < remount);
        position(&args, &["--ro-bind", "/run/x/init", init::PATH_INSIDE]);
        assert_eq!(remount + 2, args.len(), "the remount must be last");
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
