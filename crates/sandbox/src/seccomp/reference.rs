//! The previous programs, built with seccompiler as a linear chain, kept as the reference the
//! generated program is proven against: the x86_64/x32 guard, the allow-list with its
//! argument rules, and `clone3` → ENOSYS, installed in that order. The socket family rules
//! were added to both after seccompiler was replaced, so the proof covers them too.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch,
};

use super::bpf::{jump, load, ret, Insn, JMP_JEQ_K, JMP_JGE_K, OFFSET_ARCH, OFFSET_NR};
use super::bpf::{RET_ALLOW, RET_KILL_PROCESS};
use super::{allow, AUDIT_ARCH, X32_SYSCALL_BIT};

#[cfg(target_arch = "x86_64")]
const TARGET: TargetArch = TargetArch::x86_64;
#[cfg(target_arch = "aarch64")]
const TARGET: TargetArch = TargetArch::aarch64;

const CLONE_NAMESPACE_FLAGS: [i32; 7] = [
    libc::CLONE_NEWNS,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWCGROUP,
];

const PERSONALITIES: [u64; 5] = [0x0, 0x8, 0x2_0000, 0x2_0008, 0xffff_ffff];

fn convert(program: BpfProgram) -> Vec<Insn> {
    program
        .into_iter()
        .map(|i| Insn {
            code: i.code,
            jt: i.jt,
            jf: i.jf,
            k: i.k,
        })
        .collect()
}

fn rule(arg: u8, len: SeccompCmpArgLen, op: SeccompCmpOp, value: u64) -> SeccompRule {
    SeccompRule::new(vec![SeccompCondition::new(arg, len, op, value).unwrap()]).unwrap()
}

fn allow_list() -> Vec<Insn> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> = allow::common()
        .into_iter()
        .chain(allow::arch_specific())
        .map(|nr| (nr, Vec::new()))
        .collect();
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
        )],
    );
    let ioctl = SeccompRule::new(
        [libc::TIOCSTI, libc::TIOCLINUX]
            .iter()
            .map(|&request| {
                SeccompCondition::new(1, SeccompCmpArgLen::Dword, SeccompCmpOp::Ne, request)
                    .unwrap()
            })
            .collect(),
    )
    .unwrap();
    rules.insert(libc::SYS_ioctl, vec![ioctl]);
    let personality = PERSONALITIES
        .iter()
        .map(|&p| rule(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, p))
        .collect();
    rules.insert(libc::SYS_personality, personality);
    let mut socket: Vec<SeccompRule> = [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6]
        .iter()
        .map(|&family| rule(0, SeccompCmpArgLen::Dword, SeccompCmpOp::Eq, family as u64))
        .collect();
    socket.push(
        SeccompRule::new(vec![
            SeccompCondition::new(
                0,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Eq,
                libc::AF_NETLINK as u64,
            )
            .unwrap(),
            SeccompCondition::new(
                2,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Eq,
                libc::NETLINK_ROUTE as u64,
            )
            .unwrap(),
        ])
        .unwrap(),
    );
    rules.insert(libc::SYS_socket, socket);
    rules.insert(
        libc::SYS_socketpair,
        vec![rule(
            0,
            SeccompCmpArgLen::Dword,
            SeccompCmpOp::Eq,
            libc::AF_UNIX as u64,
        )],
    );
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Errno(libc::EPERM as u32),
        SeccompAction::Allow,
        TARGET,
    )
    .unwrap();
    convert(filter.try_into().unwrap())
}

fn clone3_enosys() -> Vec<Insn> {
    let rules = BTreeMap::from([(libc::SYS_clone3, Vec::new())]);
    let filter = SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        TARGET,
    )
    .unwrap();
    convert(filter.try_into().unwrap())
}

fn arch_guard() -> Vec<Insn> {
    vec![
        load(OFFSET_ARCH),
        jump(JMP_JEQ_K, AUDIT_ARCH, 1, 0),
        ret(RET_KILL_PROCESS),
        load(OFFSET_NR),
        jump(JMP_JGE_K, X32_SYSCALL_BIT, 0, 1),
        ret(RET_KILL_PROCESS),
        ret(RET_ALLOW),
    ]
}

/// The three previous programs, in the order they were installed.
pub(super) fn programs() -> Vec<Vec<Insn>> {
    vec![arch_guard(), allow_list(), clone3_enosys()]
}
