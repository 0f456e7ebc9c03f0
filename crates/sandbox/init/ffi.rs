//! The C library calls and constants the shim uses, declared once (the shim is built with the
//! standard library only, without the `libc` crate). Each is a plain FFI declaration; callers
//! pass integers or pointers valid for the call.

use std::os::raw::{c_char, c_int, c_long, c_ulong, c_void};

extern "C" {
    pub fn syscall(number: c_long, ...) -> c_long;
    pub fn socketpair(domain: c_int, kind: c_int, protocol: c_int, fds: *mut c_int) -> c_int;
    pub fn dup2(old: c_int, new: c_int) -> c_int;
    pub fn prctl(option: c_int, ...) -> c_int;
    pub fn fcntl(fd: c_int, cmd: c_int, ...) -> c_int;
    pub fn signal(signum: c_int, handler: usize) -> usize;
    pub fn open(path: *const c_char, flags: c_int, ...) -> c_int;
    pub fn write(fd: c_int, buf: *const u8, count: usize) -> isize;
    pub fn close(fd: c_int) -> c_int;
    pub fn chdir(path: *const c_char) -> c_int;
    pub fn mount(
        source: *const c_char,
        target: *const c_char,
        fstype: *const c_char,
        flags: c_ulong,
        data: *const c_void,
    ) -> c_int;
    pub fn socket(domain: c_int, kind: c_int, protocol: c_int) -> c_int;
    pub fn ioctl(fd: c_int, request: c_ulong, ...) -> c_int;
    pub fn waitpid(pid: c_int, status: *mut c_int, options: c_int) -> c_int;
    pub fn kill(pid: c_int, sig: c_int) -> c_int;
    pub fn mmap(
        addr: *mut c_void,
        len: usize,
        prot: c_int,
        flags: c_int,
        fd: c_int,
        off: i64,
    ) -> *mut c_void;
    pub fn setsid() -> c_int;
    pub fn getppid() -> c_int;
    pub fn setgroups(size: usize, list: *const u32) -> c_int;
    pub fn setresgid(rgid: u32, egid: u32, sgid: u32) -> c_int;
    pub fn setresuid(ruid: u32, euid: u32, suid: u32) -> c_int;
    pub fn execve(
        path: *const c_char,
        argv: *const *const c_char,
        envp: *const *const c_char,
    ) -> c_int;
    pub fn _exit(code: c_int) -> !;
    pub fn mkdir(path: *const c_char, mode: u32) -> c_int;
    pub fn rmdir(path: *const c_char) -> c_int;
    pub fn symlink(target: *const c_char, link: *const c_char) -> c_int;
    pub fn statvfs(path: *const c_char, buf: *mut StatVfs) -> c_int;
}

/// The C library's `struct statvfs` on 64-bit Linux (x86_64 and aarch64 alike).
#[repr(C)]
#[derive(Clone, Copy)]
pub struct StatVfs {
    pub f_bsize: c_ulong,
    pub f_frsize: c_ulong,
    pub f_blocks: u64,
    pub f_bfree: u64,
    pub f_bavail: u64,
    pub f_files: u64,
    pub f_ffree: u64,
    pub f_favail: u64,
    pub f_fsid: c_ulong,
    pub f_flag: c_ulong,
    pub f_namemax: c_ulong,
    pub f_spare: [c_int; 6],
}

pub const EINTR: i32 = 4;
pub const EINVAL: i32 = 22;
pub const ENOENT: i32 = 2;
pub const O_CLOEXEC: c_int = 0o2_000_000;
pub const SIG_DFL: usize = 0;
pub const SIG_IGN: usize = 1;
pub const SIGKILL: c_int = 9;
