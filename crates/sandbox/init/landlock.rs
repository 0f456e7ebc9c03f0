//! Landlock for the init shim: the ruleset the script runs under (see main.rs, step 3).

use crate::ffi::{close, open, syscall, O_CLOEXEC};
use std::ffi::CString;
use std::os::raw::{c_int, c_long, c_void};

const O_PATH: c_int = 0o10_000_000;

const SYS_LANDLOCK_CREATE_RULESET: c_long = 444;
const SYS_LANDLOCK_ADD_RULE: c_long = 445;
pub const SYS_LANDLOCK_RESTRICT_SELF: c_long = 446;
const LANDLOCK_CREATE_RULESET_VERSION: u32 = 1;
const LANDLOCK_RULE_PATH_BENEATH: c_int = 1;

const FS_EXECUTE: u64 = 1 << 0;
const FS_WRITE_FILE: u64 = 1 << 1;
const FS_READ_FILE: u64 = 1 << 2;
const FS_READ_DIR: u64 = 1 << 3;
/// Everything of ABI 1: execute, read, write, and creating or removing any kind of entry.
const FS_ABI1: u64 = (1 << 13) - 1;
const FS_REFER: u64 = 1 << 13;
const FS_TRUNCATE: u64 = 1 << 14;
const FS_IOCTL_DEV: u64 = 1 << 15;
const NET_BIND_TCP: u64 = 1 << 0;
const NET_CONNECT_TCP: u64 = 1 << 1;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

#[repr(C)]
struct RulesetAttr {
    handled_access_fs: u64,
    handled_access_net: u64,
    scoped: u64,
}

#[repr(C, packed)]
struct PathBeneathAttr {
    allowed_access: u64,
    parent_fd: i32,
}

/// Directories the script may write below.
const WRITABLE_DIRS: [&str; 3] = ["/work", "/tmp", "/dev/shm"];
/// Devices (and the pseudo-terminal tree) the script may open for writing.
const WRITABLE_DEVICES: [&str; 8] = [
    "/dev/ptmx",
    "/dev/pts",
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
    "/dev/tty",
];

/// The kernel's landlock ABI version, or 0 without landlock.
pub fn landlock_abi() -> i64 {
    // SAFETY: a NULL attribute with size 0 and the VERSION flag only queries the version.
    let abi = unsafe {
        syscall(
            SYS_LANDLOCK_CREATE_RULESET,
            std::ptr::null::<c_void>(),
            0usize,
            LANDLOCK_CREATE_RULESET_VERSION,
        )
    };
    abi.max(0)
}

fn add_path_rule(ruleset: c_int, path: &str, access: u64) {
    let Ok(c_path) = CString::new(path) else {
        return;
    };
    // SAFETY: c_path is a valid NUL-terminated string.
    let fd = unsafe { open(c_path.as_ptr(), O_PATH | O_CLOEXEC) };
    if fd < 0 {
        return; // Absent paths need no rule.
    }
    let attr = PathBeneathAttr {
        allowed_access: access,
        parent_fd: fd,
    };
    // SAFETY: attr is a valid landlock_path_beneath_attr living across the call; fd is ours.
    unsafe {
        syscall(
            SYS_LANDLOCK_ADD_RULE,
            ruleset as c_long,
            LANDLOCK_RULE_PATH_BENEATH as c_long,
            &attr as *const PathBeneathAttr,
            0u32,
        );
        close(fd);
    }
}

/// Builds the ruleset; returns its close-on-exec fd, or `None` when landlock is unusable.
pub fn landlock_ruleset(abi: i64) -> Option<c_int> {
    if abi < 1 {
        return None;
    }
    let mut fs = FS_ABI1;
    if abi >= 2 {
        fs |= FS_REFER;
    }
    if abi >= 3 {
        fs |= FS_TRUNCATE;
    }
    if abi >= 5 {
        fs |= FS_IOCTL_DEV;
    }
    let attr = RulesetAttr {
        handled_access_fs: fs,
        handled_access_net: if abi >= 4 {
            NET_BIND_TCP | NET_CONNECT_TCP
        } else {
            0
        },
        scoped: if abi >= 6 {
            SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        } else {
            0
        },
    };
    // The attribute grew with the ABI: 8 bytes up to 3, 16 for 4 and 5, 24 from 6 on.
    let size: usize = match abi {
        1..=3 => 8,
        4 | 5 => 16,
        _ => 24,
    };
    // SAFETY: attr is valid for `size` bytes (size never exceeds the struct).
    let ruleset = unsafe {
        syscall(
            SYS_LANDLOCK_CREATE_RULESET,
            &attr as *const RulesetAttr,
            size,
            0u32,
        )
    };
    if ruleset < 0 {
        return None;
    }
    let ruleset = ruleset as c_int;
    add_path_rule(ruleset, "/", FS_EXECUTE | FS_READ_FILE | FS_READ_DIR);
    for dir in WRITABLE_DIRS {
        add_path_rule(ruleset, dir, fs & !FS_IOCTL_DEV);
    }
    let device = FS_READ_FILE | FS_WRITE_FILE | (fs & (FS_TRUNCATE | FS_IOCTL_DEV));
    for dev in WRITABLE_DEVICES {
        add_path_rule(ruleset, dev, device);
    }
    Some(ruleset)
}
