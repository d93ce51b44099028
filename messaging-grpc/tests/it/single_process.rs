//! SQLite is one process: a second `messaging` process on the same SQLite file
//! refuses to start with a clear message; once the first one is gone (even by
//! `kill -9`), the next one starts. The container health check (`messaging health`)
//! is exercised on the way.

use std::{
    collections::HashMap,
    net::SocketAddr,
    process::{Command, Stdio},
    time::Duration,
};

use crate::helpers::*;

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn vars(dir: &std::path::Path) -> HashMap<String, String> {
    HashMap::from([
        ("MESSAGING_DATA_DIR".into(), dir.display().to_string()),
        (
            "DATABASE_URL".into(),
            format!("sqlite://{}?mode=rwc", dir.join("m.db").display()),
        ),
        ("MESSAGING_MASTER_KEYS".into(), master_keys_spec()),
        ("JWT_HS256_SECRET".into(), SECRET.into()),
        ("RUST_LOG".into(), "warn".into()),
    ])
}

fn serve(vars: &HashMap<String, String>, addr: SocketAddr) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_messaging"));
    cmd.arg("serve")
        .env_clear()
        .envs(vars)
        .env("MESSAGING_GRPC_ADDR", addr.to_string());
    cmd
}

/// `messaging health --grpc URL` succeeds.
fn healthy(addr: SocketAddr) -> bool {
    Command::new(env!("CARGO_BIN_EXE_messaging"))
        .args([
            "health",
            "--grpc",
            &format!("http://{addr}"),
            "--timeout-secs",
            "2",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_sqlite_file_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let vars = vars(dir.path());
    let first_addr = free_addr();
    let mut first = serve(&vars, first_addr)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until("the first process to serve", 30, || async {
        tokio::task::spawn_blocking(move || healthy(first_addr))
            .await
            .unwrap()
    })
    .await;

    // The second one exits at once with a message naming the problem and the way out.
    let second_addr = free_addr();
    let second = tokio::time::timeout(
        Duration::from_secs(20),
        tokio::task::spawn_blocking({
            let mut cmd = serve(&vars, second_addr);
            move || cmd.output().unwrap()
        }),
    )
    .await
    .expect("the second process exits instead of serving")
    .unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(
        stderr.contains("already in use by another messaging process")
            && stderr.contains("m.db")
            && stderr.contains("PostgreSQL"),
        "{stderr}"
    );
    // `serve` with a shared HS256 secret says loudly what that secret can do.
    assert!(
        stderr.contains("WARNING: JWT_HS256_SECRET") && stderr.contains("JWT_PUBLIC_KEY_FILE"),
        "{stderr}"
    );
    assert!(!healthy(second_addr), "the second process never served");
    assert!(healthy(first_addr), "the first one is untouched");

    // The lock dies with its process, however it ends: no stale lock to clean up.
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(!healthy(first_addr));
    let third_addr = free_addr();
    let mut third = serve(&vars, third_addr)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_until(
        "a new process to serve after the first died",
        30,
        || async {
            tokio::task::spawn_blocking(move || healthy(third_addr))
                .await
                .unwrap()
        },
    )
    .await;
    third.kill().unwrap();
    third.wait().unwrap();
}
