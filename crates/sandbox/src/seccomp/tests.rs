//! Proof that the generated program decides every tested syscall exactly as the previous
//! seccompiler programs did, plus the policy's own invariants and the program's cost.

use std::collections::BTreeMap;

use super::bpf::{Insn, JMP_JA, RET_ALLOW, RET_KILL_PROCESS};
use super::filter::{self, Action, DENY, ENOSYS, PERSONALITIES};
use super::interp::{combined, run, SeccompData};
use super::{allow, program, reference, AUDIT_ARCH, X32_SYSCALL_BIT};

const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
const AUDIT_ARCH_I386: u32 = 0x4000_0003;
const AUDIT_ARCH_AARCH64: u32 = 0xC000_00B7;
const ARCHES: [u32; 5] = [
    AUDIT_ARCH_X86_64,
    AUDIT_ARCH_I386,
    AUDIT_ARCH_AARCH64,
    0x1234_5678,
    0,
];
/// Most instructions a plain syscall may execute in the new program.
const MAX_PLAIN_PATH: usize = 20;
/// Most instructions any syscall may execute in the new program.
const MAX_PATH: usize = 30;

fn data(arch: u32, nr: u32, args: [u64; 6]) -> SeccompData {
    SeccompData { nr, arch, args }
}

fn syscall(nr: i64) -> u32 {
    u32::try_from(nr).unwrap()
}

/// Syscall numbers: the whole native range in use, the x32 range, and the edges.
fn numbers() -> Vec<u32> {
    let mut nrs: Vec<u32> = (0..=1023).collect();
    nrs.extend((0..=600).map(|n| X32_SYSCALL_BIT + n));
    nrs.extend([
        X32_SYSCALL_BIT - 1,
        0x7fff_ffff,
        0x8000_0000,
        0xffff_fffe,
        u32::MAX,
    ]);
    nrs
}

fn with_high_halves(values: &[u64]) -> Vec<u64> {
    values
        .iter()
        .flat_map(|&v| [v, v | 1 << 32, v | 0xffff_ffff_0000_0000, v | 1 << 63])
        .collect()
}

/// Values exercising each argument rule: every namespace flag alone and with the flags of a
/// thread or fork, the terminal-injection requests and benign ones, allowed and refused
/// personalities; each also with bits set in the high half.
fn interesting_values() -> Vec<u64> {
    let thread = (libc::CLONE_VM
        | libc::CLONE_FS
        | libc::CLONE_FILES
        | libc::CLONE_SIGHAND
        | libc::CLONE_THREAD
        | libc::CLONE_SYSVSEM
        | libc::CLONE_SETTLS
        | libc::CLONE_PARENT_SETTID
        | libc::CLONE_CHILD_CLEARTID) as u64;
    let fork = (libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID | libc::SIGCHLD) as u64;
    let namespaces = [
        libc::CLONE_NEWNS,
        libc::CLONE_NEWUTS,
        libc::CLONE_NEWIPC,
        libc::CLONE_NEWUSER,
        libc::CLONE_NEWPID,
        libc::CLONE_NEWNET,
        libc::CLONE_NEWCGROUP,
    ]
    .map(|f| u64::from(f.unsigned_abs()));
    let all_namespaces = namespaces.iter().fold(0, |a, f| a | f);
    let mut base = vec![
        0,
        u64::MAX,
        thread,
        fork,
        all_namespaces,
        thread | all_namespaces,
    ];
    for ns in namespaces {
        base.extend([ns, ns | thread, ns | fork, ns | libc::SIGCHLD as u64]);
    }
    base.extend(
        [
            libc::TIOCSTI,
            libc::TIOCLINUX,
            libc::TCGETS,
            libc::TCSETS,
            libc::TIOCGWINSZ,
            libc::FIONREAD,
            libc::FIONBIO,
        ]
        .map(u64::from),
    );
    base.extend(PERSONALITIES.map(u64::from));
    // Socket families, allowed and refused, and netlink protocols.
    base.extend(
        [
            libc::AF_UNIX,
            libc::AF_INET,
            libc::AF_INET6,
            libc::AF_NETLINK,
            libc::AF_VSOCK,
            libc::AF_PACKET,
            libc::AF_BLUETOOTH,
            libc::AF_ALG,
            libc::AF_KEY,
            libc::NETLINK_ROUTE,
            libc::NETLINK_AUDIT,
            libc::NETLINK_KOBJECT_UEVENT,
        ]
        .map(|v| v as u64),
    );
    base.extend([
        1,
        0x7,
        0x9,
        0x0040_0000,
        0x0040_0008,
        0x2_0001,
        0xffff_fffe,
        0x8000_0000,
    ]);
    with_high_halves(&base)
}

/// Argument vectors: each value in each position alone, and in all positions at once.
fn arg_vectors() -> Vec<[u64; 6]> {
    let values = interesting_values();
    let mut vectors = Vec::new();
    for &v in &values {
        vectors.push([v; 6]);
        for i in 0..6 {
            let mut args = [0; 6];
            args[i] = v;
            vectors.push(args);
        }
    }
    vectors
}

#[test]
fn new_program_decides_exactly_as_the_seccompiler_programs() {
    let old = reference::programs();
    let new = filter::program().unwrap();
    let plain_args = [[0; 6], [u64::MAX; 6], [0x5412_0000_0000_5412; 6]];
    let mut checked = 0usize;
    for arch in ARCHES {
        for nr in numbers() {
            for args in plain_args {
                let d = data(arch, nr, args);
                assert_eq!(run(&new, &d).verdict, combined(&old, &d), "{d:?}");
                checked += 1;
            }
        }
        let checked_syscalls = [
            libc::SYS_clone,
            libc::SYS_ioctl,
            libc::SYS_personality,
            libc::SYS_clone3,
            libc::SYS_socket,
            libc::SYS_socketpair,
        ];
        for nr in checked_syscalls.map(syscall) {
            for args in arg_vectors() {
                let d = data(arch, nr, args);
                assert_eq!(run(&new, &d).verdict, combined(&old, &d), "{d:?}");
                checked += 1;
            }
        }
    }
    assert!(checked > 30_000, "only {checked} cases");
}

#[test]
fn verdicts_anchor_the_interpreter() {
    let p = filter::program().unwrap();
    let verdict = |arch, nr: i64, args| run(&p, &data(arch, syscall(nr), args)).verdict;
    let native = AUDIT_ARCH;
    assert_eq!(verdict(native, libc::SYS_read, [0; 6]), RET_ALLOW);
    assert_eq!(verdict(native, libc::SYS_ptrace, [0; 6]), DENY);
    let socket = |family: i32, protocol: i32| {
        verdict(
            native,
            libc::SYS_socket,
            [family as u64, 1, protocol as u64, 0, 0, 0],
        )
    };
    for family in [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6] {
        assert_eq!(socket(family, 0), RET_ALLOW, "family {family}");
        // The high half of a 32-bit argument is ignored, as the kernel ignores it.
        let high = (1u64 << 32) | family as u64;
        assert_eq!(
            verdict(native, libc::SYS_socket, [high, 1, 0, 0, 0, 0]),
            RET_ALLOW
        );
    }
    assert_eq!(socket(libc::AF_NETLINK, libc::NETLINK_ROUTE), RET_ALLOW);
    for protocol in [libc::NETLINK_AUDIT, libc::NETLINK_KOBJECT_UEVENT, 12] {
        assert_eq!(
            socket(libc::AF_NETLINK, protocol),
            DENY,
            "netlink {protocol}"
        );
    }
    for family in [
        libc::AF_VSOCK,
        libc::AF_PACKET,
        libc::AF_BLUETOOTH,
        libc::AF_ALG,
        libc::AF_KEY,
        libc::AF_CAN,
        libc::AF_XDP,
    ] {
        assert_eq!(socket(family, 0), DENY, "family {family}");
    }
    let pair = |family: i32| verdict(native, libc::SYS_socketpair, [family as u64, 1, 0, 0, 0, 0]);
    assert_eq!(pair(libc::AF_UNIX), RET_ALLOW);
    assert_eq!(pair(libc::AF_VSOCK), DENY);
    assert_eq!(pair(libc::AF_INET), DENY);
    assert_eq!(verdict(native, libc::SYS_clone3, [0; 6]), ENOSYS);
    assert_eq!(
        verdict(0x1234_5678, libc::SYS_read, [0; 6]),
        RET_KILL_PROCESS
    );
    let user_ns = u64::from(libc::CLONE_NEWUSER.unsigned_abs());
    assert_eq!(
        verdict(native, libc::SYS_clone, [user_ns, 0, 0, 0, 0, 0]),
        DENY
    );
    let sigchld = libc::SIGCHLD as u64;
    assert_eq!(
        verdict(native, libc::SYS_clone, [sigchld, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    let tiocsti = libc::TIOCSTI;
    assert_eq!(
        verdict(native, libc::SYS_ioctl, [1, tiocsti, 0, 0, 0, 0]),
        DENY
    );
    assert_eq!(
        verdict(native, libc::SYS_personality, [8, 0, 0, 0, 0, 0]),
        RET_ALLOW
    );
    assert_eq!(
        verdict(native, libc::SYS_personality, [1, 0, 0, 0, 0, 0]),
        DENY
    );
    let x32_read = X32_SYSCALL_BIT + syscall(libc::SYS_read);
    assert_eq!(
        run(&p, &data(native, x32_read, [0; 6])).verdict,
        RET_KILL_PROCESS
    );
}

#[test]
fn new_program_is_short_and_every_path_is_short() {
    let p = filter::program().unwrap();
    let policy = filter::policy().unwrap();
    let intervals = filter::intervals(&policy, &Action::Return(DENY));
    // The guard (6), one comparison per interval boundary, one return per plain interval and
    // a few instructions per argument check.
    assert!(p.len() < 6 + 2 * intervals.len() + 40, "{} insns", p.len());
    assert!(p.len() <= 200, "{} insns", p.len());
    let old: usize = reference::programs().iter().map(Vec::len).sum();
    assert!(old > 3 * p.len(), "old {old}, new {}", p.len());
    let depth = usize::BITS - (intervals.len() - 1).leading_zeros();
    let mut longest_plain = 0;
    let mut longest = 0;
    for nr in numbers() {
        let r = run(&p, &data(AUDIT_ARCH, nr, [0; 6]));
        let plain = matches!(policy.get(&nr), None | Some(Action::Return(_)));
        if plain {
            longest_plain = longest_plain.max(r.steps);
        }
        longest = longest.max(r.steps);
    }
    for nr in [
        libc::SYS_clone,
        libc::SYS_ioctl,
        libc::SYS_personality,
        libc::SYS_socket,
        libc::SYS_socketpair,
    ]
    .map(syscall)
    {
        for args in arg_vectors() {
            longest = longest.max(run(&p, &data(AUDIT_ARCH, nr, args)).steps);
        }
    }
    // Guard, then at most `depth` comparisons (no trampoline on this size), then the return.
    assert!(
        longest_plain <= 6 + depth as usize + 1,
        "{longest_plain} steps"
    );
    assert!(longest_plain <= MAX_PLAIN_PATH, "{longest_plain} steps");
    assert!(longest <= MAX_PATH, "{longest} steps");
}

#[test]
fn long_subtrees_are_reached_through_trampolines() {
    // Every third number allowed up to 3000: about 2000 intervals, so the upper levels of
    // the tree skip far more than 255 instructions.
    let policy: BTreeMap<u32, Action> = (0..3000)
        .step_by(3)
        .map(|nr| (nr, Action::Return(RET_ALLOW)))
        .collect();
    let p = filter::compile(&policy).unwrap();
    assert!(
        p.iter().any(|i: &Insn| i.code == JMP_JA),
        "no trampoline used"
    );
    for nr in (0..3100).chain([X32_SYSCALL_BIT - 1, X32_SYSCALL_BIT, u32::MAX]) {
        let expected = if nr >= X32_SYSCALL_BIT {
            RET_KILL_PROCESS
        } else if nr < 3000 && nr % 3 == 0 {
            RET_ALLOW
        } else {
            DENY
        };
        let r = run(&p, &data(AUDIT_ARCH, nr, [0; 6]));
        assert_eq!(r.verdict, expected, "nr {nr}");
        // Guard, 11 levels each with at most a trampoline, the return.
        assert!(r.steps <= 6 + 2 * 11 + 1, "nr {nr}: {} steps", r.steps);
    }
}

#[test]
fn intervals_cover_everything_once_in_order() {
    let policy = filter::policy().unwrap();
    let deny = Action::Return(DENY);
    let intervals = filter::intervals(&policy, &deny);
    assert_eq!(intervals.first().map(|(s, _)| *s), Some(0));
    for pair in intervals.windows(2) {
        assert!(pair[0].0 < pair[1].0);
        assert_ne!(pair[0].1, pair[1].1, "adjacent intervals not merged");
    }
    for nr in 0..2048u32 {
        let i = intervals.partition_point(|(start, _)| *start <= nr) - 1;
        assert_eq!(&intervals[i].1, policy.get(&nr).unwrap_or(&deny), "nr {nr}");
    }
}

#[test]
fn the_program_serialises_to_whole_instructions() {
    let p = program().unwrap();
    assert!(!p.is_empty());
    assert_eq!(p.len() % 8, 0);
    assert!(p.len() / 8 <= 4096);
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
    let p = filter::program().unwrap();
    for &nr in allow::NEVER {
        let verdict = run(&p, &data(AUDIT_ARCH, syscall(nr), [0; 6])).verdict;
        assert_eq!(verdict, DENY, "syscall {nr}");
    }
}
