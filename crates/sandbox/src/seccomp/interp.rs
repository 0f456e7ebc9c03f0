//! A classic BPF interpreter for the opcodes seccomp programs here use, and the kernel's way
//! of combining the verdicts of several installed programs.

use super::bpf::{
    Insn, ALU_AND_K, JMP_JA, JMP_JEQ_K, JMP_JGE_K, JMP_JGT_K, JMP_JSET_K, LD_W_ABS,
    RET_ACTION_FULL, RET_ALLOW, RET_K,
};

/// A `struct seccomp_data`.
#[derive(Debug, Clone, Copy)]
pub(super) struct SeccompData {
    pub nr: u32,
    pub arch: u32,
    pub args: [u64; 6],
}

impl SeccompData {
    fn bytes(&self) -> [u8; 64] {
        let mut b = [0u8; 64];
        b[0..4].copy_from_slice(&self.nr.to_ne_bytes());
        b[4..8].copy_from_slice(&self.arch.to_ne_bytes());
        b[8..16].copy_from_slice(&0x7f00_dead_beefu64.to_ne_bytes());
        for (i, arg) in self.args.iter().enumerate() {
            b[16 + 8 * i..24 + 8 * i].copy_from_slice(&arg.to_ne_bytes());
        }
        b
    }
}

/// What a run returned and how many instructions it executed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Run {
    pub verdict: u32,
    pub steps: usize,
}

/// Runs `program` on `data`. Panics on anything the kernel would refuse to load or run:
/// unknown opcodes, loads outside `seccomp_data`, jumps past the end, falling off the end.
pub(super) fn run(program: &[Insn], data: &SeccompData) -> Run {
    let bytes = data.bytes();
    let mut acc: u32 = 0;
    let mut pc = 0usize;
    let mut steps = 0usize;
    loop {
        let insn = program
            .get(pc)
            .unwrap_or_else(|| panic!("pc {pc} past the end ({} insns)", program.len()));
        steps += 1;
        let next = pc + 1;
        let cond = |taken: bool| next + usize::from(if taken { insn.jt } else { insn.jf });
        pc = match insn.code {
            LD_W_ABS => {
                let k = insn.k as usize;
                assert!(
                    k.is_multiple_of(4) && k + 4 <= bytes.len(),
                    "bad load at {pc}"
                );
                acc = u32::from_ne_bytes(bytes[k..k + 4].try_into().unwrap());
                next
            }
            ALU_AND_K => {
                acc &= insn.k;
                next
            }
            JMP_JA => next + insn.k as usize,
            JMP_JEQ_K => cond(acc == insn.k),
            JMP_JGT_K => cond(acc > insn.k),
            JMP_JGE_K => cond(acc >= insn.k),
            JMP_JSET_K => cond(acc & insn.k != 0),
            RET_K => {
                return Run {
                    verdict: insn.k,
                    steps,
                }
            }
            code => panic!("opcode {code:#x} at {pc} not supported"),
        };
        assert!(pc < program.len(), "jump past the end");
    }
}

/// The verdict of several programs installed in order: the most restrictive action wins
/// (compared as signed, so KILL_PROCESS beats everything), and between equal actions the
/// program installed last, as `seccomp_run_filters` does.
pub(super) fn combined(programs: &[Vec<Insn>], data: &SeccompData) -> u32 {
    let action = |v: u32| (v & RET_ACTION_FULL) as i32;
    programs
        .iter()
        .rev()
        .map(|p| run(p, data).verdict)
        .fold(
            RET_ALLOW,
            |best, v| {
                if action(v) < action(best) {
                    v
                } else {
                    best
                }
            },
        )
}
