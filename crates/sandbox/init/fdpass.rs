//! Receiving a run's descriptors on the control socket (a `SOCK_SEQPACKET` unix socket): one
//! message per run, one byte of payload and four descriptors (`SCM_RIGHTS`): the job pipe,
//! then the script's stdin, stdout and stderr. Before its run, a waiting run init may also
//! get a prestart message: one descriptor, the pipe with the spec of the interpreter to start
//! ahead (see job.rs).

use std::io;
use std::os::raw::{c_int, c_void};
use std::os::unix::io::{FromRawFd, OwnedFd};

use crate::ffi::EINTR;

extern "C" {
    fn recvmsg(fd: c_int, msg: *mut MsgHdr, flags: c_int) -> isize;
    fn sendmsg(fd: c_int, msg: *const MsgHdr, flags: c_int) -> isize;
}

const MSG_NOSIGNAL: c_int = 0x4000;

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

/// One message of the control socket.
pub enum Message {
    /// The run's job pipe, stdin, stdout and stderr.
    Run([OwnedFd; RUN_FDS]),
    /// The pipe with a prestart spec.
    Prestart(OwnedFd),
}

/// Blocks for the next message; `Ok(None)` at end-of-file. A message with anything but one or
/// exactly [`RUN_FDS`] descriptors is an error (what it carried is closed).
pub fn receive(socket: c_int) -> io::Result<Option<Message>> {
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
        let mut fds = descriptors(&control.0, msg.control_len);
        if msg.flags & MSG_CTRUNC == 0 && fds.len() == 1 {
            if let Some(spec) = fds.pop() {
                return Ok(Some(Message::Prestart(spec)));
            }
        }
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
        return Ok(Some(Message::Run([next()?, next()?, next()?, next()?])));
    }
}

/// Sends `byte` with three descriptors (`SCM_RIGHTS`) on `socket`, as one message: how a run
/// hands its standard streams to the interpreter started ahead of it. A closed peer is an
/// error (`EPIPE`), never a signal.
pub fn send_streams(socket: c_int, byte: u8, fds: [c_int; 3]) -> io::Result<()> {
    let header = std::mem::size_of::<CmsgHdr>();
    let data_len = std::mem::size_of_val(&fds);
    let mut control = Control([0; 64]);
    let cmsg = CmsgHdr {
        len: header + data_len,
        level: SOL_SOCKET,
        kind: SCM_RIGHTS,
    };
    // SAFETY: the buffer has room for the header and its data (64 bytes); write_unaligned
    // copes with any alignment.
    unsafe {
        std::ptr::write_unaligned(control.0.as_mut_ptr().cast::<CmsgHdr>(), cmsg);
    }
    for (i, fd) in fds.iter().enumerate() {
        let at = header + i * 4;
        control.0[at..at + 4].copy_from_slice(&fd.to_ne_bytes());
    }
    let mut payload = byte;
    let mut iov = IoVec {
        base: (&mut payload as *mut u8).cast(),
        len: 1,
    };
    let msg = MsgHdr {
        name: std::ptr::null_mut(),
        name_len: 0,
        iov: &mut iov,
        iov_len: 1,
        control: control.0.as_mut_ptr().cast(),
        // Padded to a word, as CMSG_SPACE.
        control_len: (header + data_len + 7) & !7,
        flags: 0,
    };
    loop {
        // SAFETY: msg points to a valid iovec and control buffer, both living across the call.
        let n = unsafe { sendmsg(socket, &msg, MSG_NOSIGNAL) };
        if n == 1 {
            return Ok(());
        }
        let error = io::Error::last_os_error();
        if n < 0 && error.raw_os_error() == Some(EINTR) {
            continue;
        }
        return Err(if n < 0 {
            error
        } else {
            io::Error::other("short send")
        });
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
