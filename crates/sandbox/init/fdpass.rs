//! Receiving a run's descriptors on the control socket (a `SOCK_SEQPACKET` unix socket): one
//! message per run, one byte of payload and four descriptors (`SCM_RIGHTS`): the job pipe,
//! then the script's stdin, stdout and stderr.

use std::io;
use std::os::raw::{c_int, c_void};
use std::os::unix::io::{FromRawFd, OwnedFd};

use crate::ffi::EINTR;

extern "C" {
    fn recvmsg(fd: c_int, msg: *mut MsgHdr, flags: c_int) -> isize;
}

/// Descriptors per run message.
pub const RUN_FDS: usize = 4;

const SOL_SOCKET: c_int = 1;
const SCM_RIGHTS: c_int = 1;
const MSG_CTRUNC: c_int = 0x8;
const MSG_CMSG_CLOEXEC: c_int = 0x4000_0000;

#[repr(C)]
struct IoVec {
    base: *mut c_void,
    len: usize,
}

#[repr(C)]
struct MsgHdr {
    name: *mut c_void,
    name_len: u32,
    iov: *mut IoVec,
    iov_len: usize,
    control: *mut c_void,
    control_len: usize,
    flags: c_int,
}

#[repr(C)]
struct CmsgHdr {
    len: usize,
    level: c_int,
    kind: c_int,
}

/// Room for one header and the descriptors of one message (and a few more, to see them).
#[repr(C, align(8))]
struct Control([u8; 64]);

/// Blocks for the next run's descriptors; `Ok(None)` at end-of-file. A message with anything
/// but exactly [`RUN_FDS`] descriptors is an error (what it carried is closed).
pub fn receive(socket: c_int) -> io::Result<Option<[OwnedFd; RUN_FDS]>> {
    let mut byte = 0u8;
    let mut control = Control([0; 64]);
    loop {
        let mut iov = IoVec {
            base: (&mut byte as *mut u8).cast(),
            len: 1,
        };
        let mut msg = MsgHdr {
            name: std::ptr::null_mut(),
            name_len: 0,
            iov: &mut iov,
            iov_len: 1,
            control: control.0.as_mut_ptr().cast(),
            control_len: control.0.len(),
            flags: 0,
        };
        // SAFETY: msg points to a valid iovec and control buffer, both living across the call.
        let n = unsafe { recvmsg(socket, &mut msg, MSG_CMSG_CLOEXEC) };
        if n < 0 {
            let error = io::Error::last_os_error();
            if error.raw_os_error() == Some(EINTR) {
                continue;
            }
            return Err(error);
        }
        if n == 0 {
            return Ok(None);
        }
        let fds = descriptors(&control.0, msg.control_len);
        if msg.flags & MSG_CTRUNC != 0 || fds.len() != RUN_FDS {
            return Err(io::Error::other(format!(
                "a run message carried {} descriptors",
                fds.len()
            )));
        }
        let mut owned = fds.into_iter();
        let mut next = || {
            owned
                .next()
                .ok_or_else(|| io::Error::other("missing descriptor"))
        };
        return Ok(Some([next()?, next()?, next()?, next()?]));
    }
}

/// The descriptors of the `SCM_RIGHTS` headers in the first `len` bytes of `control`, owned.
fn descriptors(control: &[u8], len: usize) -> Vec<OwnedFd> {
    let header = std::mem::size_of::<CmsgHdr>();
    let len = len.min(control.len());
    let mut fds = Vec::new();
    let mut offset = 0;
    while offset + header <= len {
        // SAFETY: the buffer holds `header` bytes at `offset`; read_unaligned copes with any
        // alignment.
        let cmsg: CmsgHdr =
            unsafe { std::ptr::read_unaligned(control.as_ptr().add(offset).cast()) };
        if cmsg.len < header || offset + cmsg.len > len {
            break;
        }
        if cmsg.level == SOL_SOCKET && cmsg.kind == SCM_RIGHTS {
            let data = &control[offset + header..offset + cmsg.len];
            for chunk in data.chunks_exact(4) {
                let fd = c_int::from_ne_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
                // SAFETY: the kernel installed this descriptor for us; nothing else owns it.
                fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
            }
        }
        // Headers are padded to the size of a word.
        offset += (cmsg.len + 7) & !7;
    }
    fds
}
