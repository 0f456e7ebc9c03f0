//! The seccomp programs handed to bubblewrap (`--add-seccomp-fd`), as raw `sock_filter` bytes.
//!
//! Three programs, combined by the kernel (the most restrictive verdict wins; between two
//! errno verdicts the one installed last):
//! 1. a guard killing the process for a foreign architecture or an x32 syscall number;
//! 2. an allow-list ([`allow`]) answering EPERM for everything else, with `clone` allowed only
//!    without `CLONE_NEW*` flags and `ioctl` only without the terminal-injection requests;
//! 3. `clone3` answering ENOSYS, so libc falls back to `clone`, whose flags program 2 can see.

mod allow;

use std::collections::BTreeMap;

use seccompiler::{
    sock_filter, BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};

#[cfg(target_arch = "x86_64")]
const TARGET: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const TARGET: TargetArch = TargetArch::aarch64;

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xC000_003E;
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xC000_00B7;

/// First x32 syscall number (`__X32_SYSCALL_BIT`).
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const CLONE_NAMESPACE_FLAGS: [i32; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

#[derive(Debug, thiserror::Error)]
#[error("building the seccomp filter failed: {0}")]
pub(crate) struct SeccompError(String);

fn err(e: impl std::fmt::Display) -> SeccompError {
    SeccompError(e.to_string())
}

fn rule(
    arg: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompRule, SeccompError> {
    SeccompRule::new(vec![
        SeccompCondition::new(arg, len, op, value).map_err(err)?
    ])
    .map_err(err)
}

/// `personality` values Docker's default profile allows: query, `PER_LINUX`,
/// `PER_LINUX32`, `UNAME26` and the combinations.
const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

fn allow_list() -> Result<BpfProgram, SeccompError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = allow::common()
        .into_iter()
        .chain(allow::arch_specific())
        .map(|nr| (nr, Vec::new()))
        .collect();
    // clone is allowed when (flags & every CLONE_NEW* bit) == 0.
    let namespace_mask = CLONE_NAMESPACE_FLAGS
        .iter()
        .fold(0u64, |mask, &flag| mask | u64::from(flag.unsigned_abs()));
    rules.insert(
        libc::SYS_clone,
        vec![rule(
            0,
            SeccompCmpArgLen::Qword,
            SeccompCmpOp::MaskedEq(namespace_mask),
            0,
        )?],
    );
    // ioctl is allowed unless the request injects terminal input (conditions of one rule
    // are AND-ed).
    let ioctl = SeccompRule::new(
        [libc::TIOCSTI, libc::TIOCLINUX]
            .iter()
            .map(|&request| {
                SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, request)
                    .map_err(err)
            })
            .collect::<Result<Vec<_>, _>>()?,
    )
    .map_err(err)?;
    rules.insert(libc::SYS_ioctl, vec![ioctl]);
    let personality = PERSONALITIES
        .iter()
        .map(|&p| rule(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, p))
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_personality, personality);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        TARGET,
    )
    .map_err(err)?;
    filter.try_into().map_err(err)
}

fn clone3_enosys() -> Result<BpfProgram, SeccompError> {
    let rules = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        TARGET,
    )
    .map_err(err)?;
    filter.try_into().map_err(err)
}

// Classic BPF opcodes (linux/filter.h) for the hand-written guard.
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_RET_K: u16 = 0x06;
const SECCOMP_RET_KILL_PROCESS: u32 = 0x8000_0000;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
/// Offsets in `struct seccomp_data`.
const OFFSET_NR: u32 = 0;
const OFFSET_ARCH: u32 = 4;

fn insn(code: u16, jt: u8, jf: u8, k: u32) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

/// Kills the process for a foreign architecture or an x32 syscall number; allows the rest.
fn arch_guard() -> BpfProgram {
    vec![
        insn(BPF_LD_W_ABS, 0, 0, OFFSET_ARCH),
        insn(BPF_JEQ_K, 1, 0, AUDIT_ARCH),
        insn(BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),
        insn(BPF_LD_W_ABS, 0, 0, OFFSET_NR),
        insn(BPF_JGE_K, 0, 1, X32_SYSCALL_BIT),
        insn(BPF_RET_K, 0, 0, SECCOMP_RET_KILL_PROCESS),
        insn(BPF_RET_K, 0, 0, SECCOMP_RET_ALLOW),
    ]
}

/// Serialises a program the way the kernel's `struct sock_filter` lays it out.
pub(crate) fn to_bytes(program: &[sock_filter]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for i in program {
        bytes.extend_from_slice(&i.code.to_ne_bytes());
        bytes.push(i.jt);
        bytes.push(i.jf);
        bytes.extend_from_slice(&i.k.to_ne_bytes());
    }
    bytes
}

/// The three programs, serialised, in the order they are installed.
pub(crate) fn programs() -> Result<Vec<Vec<u8>>, SeccompError> {
    Ok(vec![
        to_bytes(&arch_guard()),
        to_bytes(&allow_list()?),
        to_bytes(&clone3_enosys()?),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn programs_build_and_serialise_to_whole_instructions() {
        let programs = programs().unwrap();
        assert_eq!(programs.len(), 3);
        for p in &programs {
            assert!(!p.is_empty());
            assert_eq!(p.len() % 8, 0);
            // The kernel refuses programs longer than BPF_MAXINSNS.
            assert!(p.len() / 8 <= 4096);
        }
    }

    #[test]
    fn dangerous_syscalls_are_not_on_the_allow_list() {
        let allowed: Vec<i64> = allow::common()
            .into_iter()
            .chain(allow::arch_specific())
            .collect();
        for nr in allow::NEVER {
            assert!(!allowed.contains(nr), "syscall {nr} must not be allowed");
        }
        assert!(!allowed.contains(&libc::SYS_clone3));
        assert!(!allowed.contains(&libc::SYS_clone));
        assert!(!allowed.contains(&libc::SYS_ioctl));
        let mut sorted = allowed.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), allowed.len(), "duplicate entries");
    }

    #[test]
    fn guard_checks_arch_then_x32_bit() {
        let guard = arch_guard();
        assert_eq!(guard[1].k, AUDIT_ARCH);
        assert_eq!(guard[4].k, X32_SYSCALL_BIT);
        assert_eq!(guard.last().map(|i| i.k), Some(SECCOMP_RET_ALLOW));
    }
}
