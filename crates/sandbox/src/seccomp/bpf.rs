//! Classic BPF instructions as seccomp reads them: the layout of the kernel's
//! `struct sock_filter`, the few opcodes the generator uses, and the `seccomp_data` offsets.

/// One instruction, laid out like the kernel's `struct sock_filter`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Insn {
    pub code: u16,
    /// Instructions skipped when a conditional jump holds.
    pub jt: u8,
    /// Instructions skipped when a conditional jump fails.
    pub jf: u8,
    pub k: u32,
}

// Opcodes (linux/bpf_common.h): class (LD 0x00, ALU 0x04, JMP 0x05, RET 0x06) | operation
// (W 0x00 with ABS 0x20; JA 0x00, JEQ 0x10, JGT 0x20, JGE 0x30, JSET 0x40, AND 0x50) | source
// (K 0x00, the constant).
/// `A = *(u32 *)(seccomp_data + k)`.
pub(crate) const LD_W_ABS: u16 = 0x20;
/// `pc += k`.
pub(crate) const JMP_JA: u16 = 0x05;
/// `pc += (A == k) ? jt : jf`.
pub(crate) const JMP_JEQ_K: u16 = 0x05 | 0x10;
/// `pc += (A > k) ? jt : jf` (only seccompiler's programs use it).
#[cfg(test)]
pub(crate) const JMP_JGT_K: u16 = 0x05 | 0x20;
/// `pc += (A >= k) ? jt : jf`.
pub(crate) const JMP_JGE_K: u16 = 0x05 | 0x30;
/// `pc += (A & k) != 0 ? jt : jf`.
pub(crate) const JMP_JSET_K: u16 = 0x05 | 0x40;
/// `A &= k` (only seccompiler's programs use it).
#[cfg(test)]
pub(crate) const ALU_AND_K: u16 = 0x04 | 0x50;
/// `return k`.
pub(crate) const RET_K: u16 = 0x06;

// Return values (linux/seccomp.h).
pub(crate) const RET_KILL_PROCESS: u32 = 0x8000_0000;
pub(crate) const RET_ERRNO: u32 = 0x0005_0000;
pub(crate) const RET_ALLOW: u32 = 0x7fff_0000;
/// The action part of a return value; the rest is its data (the errno).
#[cfg(test)]
pub(crate) const RET_ACTION_FULL: u32 = 0xffff_0000;

// Offsets in `struct seccomp_data`.
pub(crate) const OFFSET_NR: u32 = 0;
pub(crate) const OFFSET_ARCH: u32 = 4;
const OFFSET_ARGS: u32 = 16;
/// Longest program the kernel accepts (`BPF_MAXINSNS`).
pub(crate) const MAX_INSNS: usize = 4096;

/// Offsets of the low and high 32-bit halves of syscall argument `arg` (0..6).
pub(crate) fn arg_halves(arg: u8) -> (u32, u32) {
    let start = OFFSET_ARGS + 8 * u32::from(arg);
    if cfg!(target_endian = "little") {
        (start, start + 4)
    } else {
        (start + 4, start)
    }
}

pub(crate) fn stmt(code: u16, k: u32) -> Insn {
    Insn {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

pub(crate) fn jump(code: u16, k: u32, jt: u8, jf: u8) -> Insn {
    Insn { code, jt, jf, k }
}

pub(crate) fn load(offset: u32) -> Insn {
    stmt(LD_W_ABS, offset)
}

pub(crate) fn ret(value: u32) -> Insn {
    stmt(RET_K, value)
}

/// Serialises a program the way the kernel's `struct sock_filter` lays it out.
pub(crate) fn to_bytes(program: &[Insn]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(program.len() * 8);
    for i in program {
        bytes.extend_from_slice(&i.code.to_ne_bytes());
        bytes.push(i.jt);
        bytes.push(i.jf);
        bytes.extend_from_slice(&i.k.to_ne_bytes());
    }
    bytes
}
