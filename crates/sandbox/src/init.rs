//! The in-sandbox init shim (built from `init/main.rs` by the build script): it applies
//! landlock, runs the command and reports its real wait status over a pipe.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::classify::ExitKind;

/// The shim executable, embedded at build time.
pub(crate) const BINARY: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/sandbox-init"));

/// Where the shim is mounted inside the sandbox.
pub(crate) const PATH_INSIDE: &str = "/.sandbox-init";

/// The shim written to a private directory (mode 0711, file 0555, owned by the service) so
/// bubblewrap can bind it read-only; bubblewrap cannot bind a memfd. Removed on drop.
#[derive(Debug)]
pub(crate) struct InstalledInit {
    dir: PathBuf,
    path: PathBuf,
}

impl InstalledInit {
    /// Writes the shim below `parent` (usually the system temp dir) into a freshly created
    /// directory, so nobody else can have placed or can replace the file.
    pub(crate) fn install(parent: &Path) -> io::Result<Self> {
        remove_stale(parent);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let mut last_error = None;
        for attempt in 0..16u32 {
            let dir = parent.join(format!(
                "integr8s-sandbox-{}-{:x}",
                std::process::id(),
                nanos.wrapping_add(attempt)
            ));
            match DirBuilder::new().mode(0o711).create(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    last_error = Some(e);
                    continue;
                }
                Err(e) => return Err(e),
            }
            let installed = InstalledInit {
                path: dir.join("init"),
                dir,
            };
            let mut file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o555)
                .open(&installed.path)?;
            file.write_all(BINARY)?;
            file.sync_all()?;
            return Ok(installed);
        }
        Err(last_error.unwrap_or_else(|| io::Error::other("no free directory name")))
    }

    /// The shim on the host, as a bind source.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

/// Removes shim directories left by processes that no longer exist (an executor kept in a
/// static is never dropped).
fn remove_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix("integr8s-sandbox-"))
        else {
            continue;
        };
        let Some(pid) = rest.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        let owned_by_us = fs::symlink_metadata(entry.path())
            .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == crate::sys::effective_uid())
            .unwrap_or(false);
        if owned_by_us && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = fs::remove_file(entry.path().join("init"));
            let _ = fs::remove_dir(entry.path());
        }
    }
}

impl Drop for InstalledInit {
    fn drop(&mut self) {
        // Best effort: a leftover file in the temp dir is harmless.
        let _ = fs::remove_file(&self.path);
        let _ = fs::remove_dir(&self.dir);
    }
}

/// What the shim reported about one run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct InitStatus {
    /// The landlock ABI the shim enforced (0: none).
    pub landlock_abi: Option<u32>,
    /// How the command ended; `None` when the shim did not get to report it (killed).
    pub exit: Option<ExitKind>,
}

/// Parses the shim's status lines; malformed lines are ignored.
pub(crate) fn parse_status(text: &str) -> InitStatus {
    let mut status = InitStatus::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(' ') else {
            continue;
        };
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

/// Reads what the shim wrote to the (non-blocking) status pipe. Call after bubblewrap was
/// reaped: everything the shim wrote is in the pipe by then.
pub(crate) fn read_status(pipe: OwnedFd) -> InitStatus {
    let mut file = std::fs::File::from(pipe);
    let mut buf = Vec::with_capacity(64);
    // A short or failed read only loses the detail; bubblewrap's exit code remains.
    let _ = Read::by_ref(&mut file).take(4096).read_to_end(&mut buf);
    parse_status(&String::from_utf8_lossy(&buf))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_parse() {
        assert_eq!(
            parse_status("landlock 7\nsignal 11\n"),
            InitStatus {
                landlock_abi: Some(7),
                exit: Some(ExitKind::Signal(11))
            }
        );
        assert_eq!(
            parse_status("landlock 0\nexit 139\n").exit,
            Some(ExitKind::Code(139))
        );
        assert_eq!(parse_status("landlock 7\n").exit, None);
        assert_eq!(parse_status("garbage\nexit x\n"), InitStatus::default());
    }

    #[test]
    fn the_shim_is_embedded_and_installed_privately() {
        use std::os::unix::fs::PermissionsExt;
        assert!(BINARY.starts_with(b"\x7fELF"));
        let installed = InstalledInit::install(&std::env::temp_dir()).unwrap();
        let path = installed.path().to_path_buf();
        let dir = path.parent().unwrap().to_path_buf();
        assert_eq!(fs::read(&path).unwrap(), BINARY);
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&path), 0o555);
        assert_eq!(mode(&dir), 0o711);
        drop(installed);
        assert!(!dir.exists());
    }
}
