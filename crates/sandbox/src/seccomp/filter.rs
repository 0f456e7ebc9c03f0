//! The generator of the sandbox's seccomp program: the architecture guard, then a balanced
//! binary search over intervals of syscall numbers sharing one action, each leaf a verdict or
//! a small argument check. A plain syscall runs a handful of comparisons instead of walking
//! a chain of several hundred.

use std::collections::BTreeMap;

use super::bpf::{
    arg_halves, jump, load, ret, stmt, Insn, JMP_JA, JMP_JEQ_K, JMP_JGE_K, JMP_JSET_K, MAX_INSNS,
    OFFSET_ARCH, OFFSET_NR, RET_ALLOW, RET_ERRNO, RET_KILL_PROCESS,
};
use super::{allow, SeccompError, AUDIT_ARCH, X32_SYSCALL_BIT};

/// The verdict for a refused syscall.
pub(crate) const DENY: u32 = RET_ERRNO | libc::EPERM as u32;
/// The verdict for `clone3`, so libc falls back to `clone`, whose flags the filter can see.
pub(crate) const ENOSYS: u32 = RET_ERRNO | libc::ENOSYS as u32;

const CLONE_NAMESPACE_FLAGS: [i32; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

/// Socket families a run may create: local sockets, IPv4 and IPv6 (inside the run's own network
/// namespace, where only `lo` exists). Everything else (vsock, which network namespaces do not
/// cover; packet; Bluetooth; the kernel crypto API; …) is refused.
pub(crate) const SOCKET_FAMILIES: [u32; 3] = [
    libc::AF_UNIX as u32,
    libc::AF_INET as u32,
    libc::AF_INET6 as u32,
];
/// Netlink protocols a run may open: only routing, which `getifaddrs` and address lookups
/// read (it sees the run's own network namespace; changing it needs a capability).
pub(crate) const NETLINK_PROTOCOLS: [u32; 1] = [libc::NETLINK_ROUTE as u32];
/// `socketpair` families: local sockets only.
pub(crate) const SOCKETPAIR_FAMILIES: [u32; 1] = [libc::AF_UNIX as u32];

/// `personality` values Docker's default profile allows: query, `PER_LINUX`,
/// `PER_LINUX32`, `UNAME26` and the combinations.
pub(crate) const PERSONALITIES: [u32; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

/// What the program answers for one syscall number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Action {
    /// This value, whatever the arguments.
    Return(u32),
    /// Allowed when the 64-bit argument `arg` has none of the `mask` bits, [`DENY`] otherwise.
    AllowWithoutBits { arg: u8, mask: u64 },
    /// [`DENY`] when the low 32 bits of `arg` equal one of `values`, allowed otherwise.
    AllowUnless { arg: u8, values: Vec<u32> },
    /// Allowed when the low 32 bits of `arg` equal one of `values`, [`DENY`] otherwise.
    AllowOnly { arg: u8, values: Vec<u32> },
    /// `socket(family, type, protocol)`: allowed for one of `families` (any protocol) and
    /// for `AF_NETLINK` with one of `netlink`, [`DENY`] otherwise.
    Socket {
        families: Vec<u32>,
        netlink: Vec<u32>,
    },
}

fn nr(syscall: i64) -> Result<u32, SeccompError> {
    u32::try_from(syscall)
        .ok()
        .filter(|&n| n < X32_SYSCALL_BIT)
        .ok_or_else(|| SeccompError(format!("syscall number {syscall} out of range")))
}

fn dword(value: impl TryInto<u32> + Copy + std::fmt::Debug) -> Result<u32, SeccompError> {
    value
        .try_into()
        .map_err(|_| SeccompError(format!("{value:?} does not fit in 32 bits")))
}

/// The sandbox policy: every syscall number with an action; the others get [`DENY`].
pub(crate) fn policy() -> Result<BTreeMap<u32, Action>, SeccompError> {
    let namespace_mask = CLONE_NAMESPACE_FLAGS
        .iter()
        .fold(0u64, |mask, &flag| mask | u64::from(flag.unsigned_abs()));
    let special = [
        (
            libc::SYS_clone,
            Action::AllowWithoutBits {
                arg: 0,
                mask: namespace_mask,
            },
        ),
        // No injecting input into the terminal.
        (
            libc::SYS_ioctl,
            Action::AllowUnless {
                arg: 1,
                values: vec![dword(libc::TIOCSTI)?, dword(libc::TIOCLINUX)?],
            },
        ),
        (
            libc::SYS_personality,
            Action::AllowOnly {
                arg: 0,
                values: PERSONALITIES.to_vec(),
            },
        ),
        (libc::SYS_clone3, Action::Return(ENOSYS)),
        (
            libc::SYS_socket,
            Action::Socket {
                families: SOCKET_FAMILIES.to_vec(),
                netlink: NETLINK_PROTOCOLS.to_vec(),
            },
        ),
        (
            libc::SYS_socketpair,
            Action::AllowOnly {
                arg: 0,
                values: SOCKETPAIR_FAMILIES.to_vec(),
            },
        ),
    ];
    let plain = allow::common()
        .into_iter()
        .chain(allow::arch_specific())
        .map(|syscall| (syscall, Action::Return(RET_ALLOW)));
    let mut policy = BTreeMap::new();
    for (syscall, action) in plain.chain(special) {
        if policy.insert(nr(syscall)?, action).is_some() {
            return Err(SeccompError(format!("syscall {syscall} listed twice")));
        }
    }
    Ok(policy)
}

/// Cuts `0..=u32::MAX` into maximal intervals of one action, as `(first number, action)`
/// in increasing order, starting at 0.
pub(crate) fn intervals(policy: &BTreeMap<u32, Action>, default: &Action) -> Vec<(u32, Action)> {
    fn push(out: &mut Vec<(u32, Action)>, start: u32, action: &Action) {
        if out.last().map(|(_, a)| a) != Some(action) {
            out.push((start, action.clone()));
        }
    }
    let mut out = Vec::new();
    // The first number not covered yet; `None` once the whole range is.
    let mut next = Some(0u32);
    for (&nr, action) in policy {
        if let Some(gap) = next.filter(|&n| n < nr) {
            push(&mut out, gap, default);
        }
        push(&mut out, nr, action);
        next = nr.checked_add(1);
    }
    if let Some(rest) = next {
        push(&mut out, rest, default);
    }
    out
}

fn short_jump(distance: usize) -> Result<u8, SeccompError> {
    u8::try_from(distance).map_err(|_| SeccompError(format!("jump of {distance} too long")))
}

/// Loads the low half of `arg`; returns `on_match` if it equals one of `values`,
/// `otherwise` if none.
fn compare_block(
    arg: u8,
    values: &[u32],
    on_match: u32,
    otherwise: u32,
) -> Result<Vec<Insn>, SeccompError> {
    let (low, _) = arg_halves(arg);
    let mut out = vec![load(low)];
    for (i, &value) in values.iter().enumerate() {
        // From comparison i, `on_match` is values.len() - i instructions further.
        out.push(jump(JMP_JEQ_K, value, short_jump(values.len() - i)?, 0));
    }
    out.push(ret(otherwise));
    out.push(ret(on_match));
    Ok(out)
}

/// The instructions of one leaf; every path through them ends in a return.
fn block(action: &Action) -> Result<Vec<Insn>, SeccompError> {
    match action {
        Action::Return(value) => Ok(vec![ret(*value)]),
        Action::AllowWithoutBits { arg, mask } => {
            let (low, high) = arg_halves(*arg);
            // High half first, as seccompiler does; a half whose mask is zero always passes.
            let checks: Vec<(u32, u32)> = [(high, (mask >> 32) as u32), (low, *mask as u32)]
                .into_iter()
                .filter(|&(_, half_mask)| half_mask != 0)
                .collect();
            let mut out = Vec::new();
            for (i, &(offset, half_mask)) in checks.iter().enumerate() {
                // Over the remaining checks (two instructions each) and the allow, to the deny.
                let to_deny = 2 * (checks.len() - i - 1) + 1;
                out.push(load(offset));
                out.push(jump(JMP_JSET_K, half_mask, short_jump(to_deny)?, 0));
            }
            out.push(ret(RET_ALLOW));
            out.push(ret(DENY));
            Ok(out)
        }
        Action::AllowUnless { arg, values } => compare_block(*arg, values, DENY, RET_ALLOW),
        Action::AllowOnly { arg, values } => compare_block(*arg, values, RET_ALLOW, DENY),
        Action::Socket { families, netlink } => socket_block(families, netlink),
    }
}

/// `socket`: the family (argument 0) among `families`, or `AF_NETLINK` with the protocol
/// (argument 2) among `netlink`. Layout: the family comparisons, the netlink test, the
/// protocol comparisons, then `DENY` and `ALLOW` as the last two instructions.
fn socket_block(families: &[u32], netlink: &[u32]) -> Result<Vec<Insn>, SeccompError> {
    let (family, _) = arg_halves(0);
    let (protocol, _) = arg_halves(2);
    // load, families, netlink test, load, protocols, deny, allow.
    let len = 1 + families.len() + 1 + 1 + netlink.len() + 2;
    let (deny_at, allow_at) = (len - 2, len - 1);
    let mut out = vec![load(family)];
    for &value in families {
        let to_allow = short_jump(allow_at - (out.len() + 1))?;
        out.push(jump(JMP_JEQ_K, value, to_allow, 0));
    }
    let to_deny = short_jump(deny_at - (out.len() + 1))?;
    out.push(jump(JMP_JEQ_K, libc::AF_NETLINK as u32, 0, to_deny));
    out.push(load(protocol));
    for &value in netlink {
        let to_allow = short_jump(allow_at - (out.len() + 1))?;
        out.push(jump(JMP_JEQ_K, value, to_allow, 0));
    }
    out.push(ret(DENY));
    out.push(ret(RET_ALLOW));
    debug_assert_eq!(out.len(), len);
    Ok(out)
}

/// A balanced search over `intervals` (non-empty, increasing starts, the first covering the
/// smallest number the accumulator can hold), the syscall number in the accumulator. Each
/// subtree is emitted in order and ends in returns, so jumps only skip the left subtree;
/// one longer than a conditional jump can skip goes through a `JA` trampoline.
pub(crate) fn search(intervals: &[(u32, Action)]) -> Result<Vec<Insn>, SeccompError> {
    let (first, rest) = intervals
        .split_first()
        .ok_or_else(|| SeccompError("empty search".to_owned()))?;
    if rest.is_empty() {
        return block(&first.1);
    }
    let mid = intervals.len() / 2;
    let pivot = intervals[mid].0;
    let left = search(&intervals[..mid])?;
    let right = search(&intervals[mid..])?;
    let mut out = Vec::with_capacity(left.len() + right.len() + 2);
    match u8::try_from(left.len()) {
        Ok(skip) => out.push(jump(JMP_JGE_K, pivot, skip, 0)),
        Err(_) => {
            let skip = u32::try_from(left.len())
                .map_err(|_| SeccompError("program too long".to_owned()))?;
            out.push(jump(JMP_JGE_K, pivot, 0, 1));
            out.push(stmt(JMP_JA, skip));
        }
    }
    out.extend(left);
    out.extend(right);
    Ok(out)
}

/// Kills the process for a foreign architecture or an x32 syscall number; leaves the
/// syscall number in the accumulator otherwise.
fn guard() -> Vec<Insn> {
    vec![
        load(OFFSET_ARCH),
        jump(JMP_JEQ_K, AUDIT_ARCH, 1, 0),
        ret(RET_KILL_PROCESS),
        load(OFFSET_NR),
        jump(JMP_JGE_K, X32_SYSCALL_BIT, 0, 1),
        ret(RET_KILL_PROCESS),
    ]
}

/// The whole program for `policy`, numbers it does not list answered with [`DENY`].
pub(crate) fn compile(policy: &BTreeMap<u32, Action>) -> Result<Vec<Insn>, SeccompError> {
    let mut program = guard();
    program.extend(search(&intervals(policy, &Action::Return(DENY)))?);
    if program.len() > MAX_INSNS {
        return Err(SeccompError(format!(
            "{} instructions, more than the kernel accepts",
            program.len()
        )));
    }
    Ok(program)
}

/// The sandbox's seccomp program.
pub(crate) fn program() -> Result<Vec<Insn>, SeccompError> {
    compile(&policy()?)
}
