//! The seccomp program of every run, as raw `sock_filter` bytes: handed to the sandbox's init
//! shim, which installs it in the command's process as the last step before exec.
//!
//! One program ([`filter`]), generated here rather than with a rule compiler, so that a
//! syscall costs a binary search instead of a walk down a chain of several hundred
//! comparisons. It
//! 1. kills the process for a foreign architecture or an x32 syscall number;
//! 2. allows the syscalls of the allow-list ([`allow`]) and answers EPERM for everything else,
//!    with `clone` allowed only without `CLONE_NEW*` flags, `ioctl` only without the
//!    terminal-injection requests, `personality` only with Docker's values, `socket` only
//!    for local, IPv4 and IPv6 sockets and routing netlink (no vsock, which network
//!    namespaces do not cover, no packet, Bluetooth, crypto or other families) and
//!    `socketpair` only for local sockets;
//! 3. answers `clone3` with ENOSYS, so libc falls back to `clone`, whose flags it can see.
//!
//! The tests prove its verdicts identical to the three linear programs seccompiler built
//! before ([`reference`]), combined as the kernel combines installed programs.

mod allow;
mod bpf;
mod filter;
#[cfg(test)]
mod interp;
#[cfg(test)]
mod reference;
#[cfg(test)]
mod tests;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// First x32 syscall number (`__X32_SYSCALL_BIT`).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

#[derive(Debug, thiserror::Error)]
#[error("building the seccomp filter failed: {0}")]
pub(crate) struct SeccompError(String);

/// The program, serialised.
pub(crate) fn program() -> Result<Vec<u8>, SeccompError> {
    Ok(bpf::to_bytes(&filter::program()?))
}
