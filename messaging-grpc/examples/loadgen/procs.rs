//! The servers under test, each its own process: the loader's CPU is not theirs, and
//! the memory read from `/proc/<pid>/status` is theirs alone.

use std::{
    fs::File,
    io::{BufRead, BufReader},
    net::{SocketAddr, TcpListener},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};

/// A running server; killed when dropped, so an error in the loader leaves none behind.
pub struct Server {
    pub name: &'static str,
    pub addr: SocketAddr,
    child: Child,
}

impl Server {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `(VmRSS, VmHWM)` in MiB: resident memory now and its peak.
    pub fn memory(&self) -> (f64, f64) {
        memory(self.pid()).unwrap_or((f64::NAN, f64::NAN))
    }

    /// Fails if the process has exited (a crash must not look like a slow server).
    pub fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{} exited ({status}); see its log", self.name);
        }
        Ok(())
    }
}

impl Drop for Server {
    /// SIGTERM first (the servers drain and exit; a profiler in front writes its
    /// output), SIGKILL if it is still there after 30 s.
    fn drop(&mut self) {
        let pid = self.pid().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn memory(pid: u32) -> Option<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<f64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// A free loopback port for a server that takes its address from the environment.
pub fn free_addr() -> anyhow::Result<SocketAddr> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?)
}

/// Where the binaries are: `--bin-dir`, else the folder above this example's
/// (`target/release/examples/loadgen` → `target/release`).
pub fn bin_dir(arg: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(dir) = arg {
        return Ok(dir);
    }
    let exe = std::env::current_exe()?;
    let examples = exe.parent().context("the loader's folder")?;
    Ok(examples.parent().context("the build folder")?.to_path_buf())
}

fn binary(dir: &Path, name: &str) -> anyhow::Result<PathBuf> {
    let path = dir.join(name);
    if !path.is_file() {
        bail!(
            "{} not found: build it first (`cargo build --release -p messaging-grpc -p webhook-gateway --examples --bins`) or pass --bin-dir",
            path.display()
        );
    }
    Ok(path)
}

/// Starts `name` with a clean environment plus `vars` (behind `prefix`, e.g. a
/// profiler's command line); its stderr (logs) goes to `logs/NAME.log`.
fn spawn(
    prefix: &[String],
    path: &Path,
    args: &[&str],
    vars: &[(String, String)],
    logs: &Path,
    name: &str,
    stdout: Stdio,
) -> anyhow::Result<Child> {
    let log = File::create(logs.join(format!("{name}.log")))?;
    let mut cmd = match prefix.split_first() {
        Some((program, rest)) => {
            let mut cmd = Command::new(program);
            cmd.args(rest).arg(path);
            cmd
        }
        None => Command::new(path),
    };
    cmd.args(args)
        .env_clear()
        // A profiler in front finds itself on the PATH.
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env(
            "RUST_LOG",
            std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
        )
        .envs(vars.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(log);
    cmd.spawn()
        .with_context(|| format!("starting {}", path.display()))
}

/// Starts a floor example, which prints `listening on ADDR` first.
pub fn start_floor(bin_dir: &Path, example: &'static str, logs: &Path) -> anyhow::Result<Server> {
    let path = binary(&bin_dir.join("examples"), example)?;
    let mut child = spawn(&[], &path, &[], &[], logs, example, Stdio::piped())?;
    let stdout = child.stdout.take().context("the floor's stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .with_context(|| format!("{example} printed {line:?}"))?
        .parse()?;
    Ok(Server {
        name: example,
        addr,
        child,
    })
}

/// Starts a binary of the workspace that listens on `addr` (set through `vars`), and
/// waits until it accepts connections.
pub struct Binary<'a> {
    pub name: &'static str,
    pub args: &'a [&'a str],
    pub addr: SocketAddr,
    pub vars: &'a [(String, String)],
    /// Words put in front of the command (`--core-prefix`).
    pub prefix: &'a [String],
}

pub async fn start_binary(bin_dir: &Path, b: Binary<'_>, logs: &Path) -> anyhow::Result<Server> {
    let path = binary(bin_dir, b.name)?;
    let child = spawn(b.prefix, &path, b.args, b.vars, logs, b.name, Stdio::null())?;
    let (name, addr) = (b.name, b.addr);
    eprintln!("loadgen: {name} is pid {} on {addr}", child.id());
    let mut server = Server { name, addr, child };
    // Slow under a profiler such as valgrind: migrations alone take a while there.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        server.check_alive()?;
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(server);
        }
        if Instant::now() > deadline {
            bail!("{name} did not listen on {addr} within 600 s");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
