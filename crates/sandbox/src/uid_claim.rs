//! Sandbox uids belong to one integr8s process on a host. Two services (or two local workers
//! of a scaled-out deployment) that ran scripts under the same host uid could signal, trace
//! or read each other's runs, across users. So each executor claims its slot uids before it
//! runs anything: one lock file per uid in a system-wide directory, each held with an
//! exclusive `flock` for the life of the executor. The kernel drops the locks when the
//! process ends, however it ends, so a crashed service never blocks its successor; ranges
//! that merely overlap collide on the shared uids.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// The locks of a claimed range; dropping it releases them.
#[derive(Debug)]
pub(crate) struct UidClaim {
    _locks: Vec<File>,
}

/// Why a range could not be claimed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ClaimError {
    #[error(
        "sandbox uid {uid} is already used by another integr8s process on this host{holder}; \
         give each instance a uid range of its own with the setting sandbox.uid_base \
         (this one needs {first}..{end})"
    )]
    Taken {
        uid: u32,
        holder: String,
        first: u32,
        end: u32,
    },
    #[error("cannot claim the sandbox uids in {dir}: {source}")]
    Io {
        dir: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Claims `first .. first + count` under `dir` (created 0755 when missing).
pub(crate) fn claim(dir: &Path, first: u32, count: u32) -> Result<UidClaim, ClaimError> {
    let io_error = |source| ClaimError::Io {
        dir: dir.to_path_buf(),
        source,
    };
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(dir)
        .map_err(io_error)?;
    let end = first.saturating_add(count);
    let mut locks = Vec::with_capacity(count as usize);
    for uid in first..end {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(dir.join(format!("{uid}.lock")))
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                return Err(ClaimError::Taken {
                    uid,
                    holder: holder(&mut file),
                    first,
                    end,
                })
            }
            Err(TryLockError::Error(e)) => return Err(io_error(e)),
        }
        // Who holds it, for the message another process shows (informational only).
        let pid = std::process::id().to_string();
        let written = file
            .set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(pid.as_bytes()));
        if let Err(e) = written {
            tracing::debug!(error = %e, uid, "cannot record the holder of a sandbox uid");
        }
        locks.push(file);
    }
    Ok(UidClaim { _locks: locks })
}

/// " (pid N)" from the lock file, when it names one.
fn holder(file: &mut File) -> String {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    match text.trim().parse::<u32>() {
        Ok(pid) => format!(" (pid {pid})"),
        Err(_) => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlapping_ranges_collide_and_a_released_range_can_be_claimed_again() {
        let dir = tempfile::tempdir().unwrap();
        let first = claim(dir.path(), 500, 4).unwrap();
        // The same range, and one that only shares its last uid.
        for (start, shared) in [(500, 500), (497, 500)] {
            match claim(dir.path(), start, 4) {
                Err(ClaimError::Taken { uid, holder, .. }) => {
                    assert_eq!(uid, shared);
                    assert_eq!(holder, format!(" (pid {})", std::process::id()));
                }
                other => panic!("range from {start} was claimed twice: {other:?}"),
            }
        }
        // Next to it is free.
        let beside = claim(dir.path(), 504, 4).unwrap();
        drop(first);
        let again = claim(dir.path(), 500, 4).unwrap();
        drop((beside, again));
    }

    #[test]
    fn the_message_names_the_setting() {
        let dir = tempfile::tempdir().unwrap();
        let _held = claim(dir.path(), 7, 1).unwrap();
        let message = claim(dir.path(), 7, 2).unwrap_err().to_string();
        assert!(message.contains("sandbox.uid_base"), "{message}");
        assert!(message.contains("7..9"), "{message}");
    }
}
