//! Network egress: the sandbox has its own, empty network namespace.

use std::io::ErrorKind;
use std::net::{TcpListener, UdpSocket};

use integr8s_core::ports::executor::RunOutcome;

use crate::common::{python, run};

#[tokio::test]
async fn attack_tcp_to_a_host_loopback_listener_is_refused() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!(
        "import socket\n\
         try:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3)\n    print('connected')\n\
         except OSError as e:\n    print('blocked', e.errno)\n"
    );
    let report = run(&python(&script)).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    // Landlock refuses the connect (EACCES); without it the sandbox's own empty loopback
    // would (ECONNREFUSED).
    let errno: i32 = report
        .stdout
        .trim()
        .trim_start_matches("blocked ")
        .parse()
        .unwrap();
    assert!(
        errno == libc::EACCES || errno == libc::ECONNREFUSED,
        "{report:?}"
    );
    assert_eq!(
        listener.accept().map(|_| ()).unwrap_err().kind(),
        ErrorKind::WouldBlock,
        "the host listener was reached"
    );
}

#[tokio::test]
async fn attack_udp_to_a_host_loopback_socket_never_arrives() {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_nonblocking(true).unwrap();
    let port = socket.local_addr().unwrap().port();
    let script = format!(
        "import socket\n\
         s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         try:\n    s.sendto(b'leak', ('127.0.0.1', {port}))\n    print('sent')\n\
         except OSError as e:\n    print('blocked', e.errno)\n"
    );
    let report = run(&python(&script)).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    // Sending succeeds on the sandbox's own loopback; it never reaches the host.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let mut buf = [0u8; 16];
    assert_eq!(
        socket.recv_from(&mut buf).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
}

#[tokio::test]
async fn attack_external_address_is_unreachable() {
    let script = "import socket\n\
         for addr in [('1.1.1.1', 443), ('8.8.8.8', 53)]:\n    \
           try:\n        socket.create_connection(addr, timeout=3)\n        print('connected')\n    \
           except OSError as e:\n        print('blocked', e.errno)\n";
    let report = run(&python(script)).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    // Landlock answers EACCES; the empty network namespace alone answers ENETUNREACH.
    for line in report.stdout.lines() {
        let errno: i32 = line.trim_start_matches("blocked ").parse().unwrap();
        assert!(
            errno == libc::EACCES || errno == libc::ENETUNREACH,
            "{line}"
        );
    }
    assert_eq!(report.stdout.lines().count(), 2);
}

#[tokio::test]
async fn attack_dns_lookup_fails() {
    let script = "import socket\n\
         try:\n    print(socket.getaddrinfo('example.com', 443))\n\
         except socket.gaierror as e:\n    print('no dns')\n";
    let report = run(&python(script)).await;
    assert_eq!(report.outcome, RunOutcome::Exited { code: 0 }, "{report:?}");
    assert_eq!(report.stdout, "no dns\n");
}
