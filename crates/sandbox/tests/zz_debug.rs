mod common;
use std::time::Duration;
#[tokio::test]
async fn dbg_cgroup() {
    for i in 0..3 {
        let m = common::marker(&format!("dbg{i}"));
        let spec = common::bash(&format!("exec -a {m} sleep 1\n"));
        let running = tokio::spawn(async move { common::run(&spec).await });
        let pid = loop {
            if let Some(pid) = common::host_pids_with(&m).first() { break *pid; }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        println!("run {i} pid {pid}:\n{}", std::fs::read_to_string(format!("/proc/{pid}/cgroup")).unwrap());
        let r = running.await.unwrap();
        println!("{:?}", r.outcome);
    }
}
