//! Test support (feature `testing`): a throwaway redis-server per test
//! (`scripts/redis-test-server.sh`): loopback only, a free port, nothing on disk. Dropping the
//! guard kills it, also when the test fails. Used by this crate's tests and the end-to-end tests.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../scripts/redis-test-server.sh"
);
/// Generous bound for a start; never a performance threshold.
const DEADLINE: Duration = Duration::from_secs(20);

/// A redis-server of the test's own.
pub struct RedisServer {
    pub port: u16,
    child: Option<Child>,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local address").port()
}

/// Whether the redis-server with process id `pid` answers on `port` (and not another one that
/// took the port first).
async fn answers(port: u16, pid: u32) -> bool {
    let Ok(client) = ::redis::Client::open(format!("redis://127.0.0.1:{port}/0")) else {
        return false;
    };
    let Ok(mut conn) = client.get_multiplexed_async_connection().await else {
        return false;
    };
    let info: ::redis::RedisResult<String> = ::redis::cmd("INFO")
        .arg("server")
        .query_async(&mut conn)
        .await;
    info.is_ok_and(|info| {
        info.lines()
            .any(|l| l.trim() == format!("process_id:{pid}"))
    })
}

impl RedisServer {
    /// Starts a server on a free port.
    pub async fn start() -> Self {
        for _ in 0..5 {
            let mut server = Self {
                port: free_port(),
                child: None,
            };
            if server.spawn().await {
                return server;
            }
        }
        panic!("redis-server did not start (is it installed? see scripts/install-redis.sh)");
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/0", self.port)
    }

    /// The pid of the running server.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("a running server").id()
    }

    /// Kills the server (SIGKILL, as a crash would); the port stays reserved for `restart`.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts an empty server on the same port again.
    pub async fn restart(&mut self) {
        self.stop();
        let started = tokio::time::timeout(DEADLINE, async {
            while !self.spawn().await {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
        .await;
        assert!(
            started.is_ok(),
            "redis-server did not restart on {}",
            self.port
        );
    }

    /// Spawns the server and waits until it answers; false if it exits first (port taken).
    async fn spawn(&mut self) -> bool {
        let mut child = Command::new(SCRIPT)
            .arg(self.port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("run scripts/redis-test-server.sh");
        let ready = tokio::time::timeout(DEADLINE, async {
            loop {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return false;
                }
                if answers(self.port, child.id()).await {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .unwrap_or(false);
        if ready {
            self.child = Some(child);
        } else {
            let _ = child.kill();
            let _ = child.wait();
        }
        ready
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.stop();
    }
}
