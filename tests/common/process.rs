//! Programs as their own processes: the shipped sidecar binary, nginx, Caddy. Every child runs
//! in its own process group and is stopped with its whole group on drop (nginx's master and
//! workers alike), and every scratch directory is removed.

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The sidecar binary that `cargo test` builds from `examples/sidecar.rs`.
pub fn sidecar_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).unwrap();
    let bin = dir.join("examples").join("sidecar");
    assert!(
        bin.exists(),
        "{} is missing: `cargo test` builds it (or run `cargo build --example sidecar`)",
        bin.display()
    );
    bin
}

/// An installed program, or a failure that says how to get it.
pub fn program(name: &str) -> PathBuf {
    for dir in ["/usr/sbin", "/usr/bin", "/usr/local/bin", "/usr/local/sbin"] {
        let p = PathBuf::from(dir).join(name);
        if p.exists() {
            return p;
        }
    }
    panic!("{name} is not installed: run ./scripts/test-all.sh, which installs it");
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Waits until something listens on `addr`.
pub fn wait_listening(addr: SocketAddr) {
    let started = Instant::now();
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "nothing listens on {addr}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A scratch directory removed on drop.
#[derive(Debug)]
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("aot-{name}-{}-{}", std::process::id(), free_port()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tmp")).unwrap();
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A child in its own process group; the group is stopped on drop.
#[derive(Debug)]
pub struct Proc {
    child: Child,
}

impl Proc {
    /// Spawns `cmd` as the leader of a new process group.
    pub fn spawn(cmd: &mut Command) -> Proc {
        let child = cmd.process_group(0).spawn().unwrap();
        Proc { child }
    }

    /// The child's piped stdout (spawned with `Stdio::piped()`).
    pub fn take_stdout(&mut self) -> std::process::ChildStdout {
        self.child.stdout.take().expect("stdout is piped")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The child itself, for its piped stdin and stdout.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// SIGKILL to the whole group at once, then reaps it.
    pub fn kill(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }

    /// Stops the whole group: SIGTERM, then SIGKILL if it lingers.
    pub fn stop(&mut self) {
        if matches!(self.child.try_wait(), Ok(Some(_))) {
            return;
        }
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-TERM", "--", &group])
            .stderr(Stdio::null())
            .status();
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(5) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The shipped sidecar binary running on a config written to a scratch directory; its log
/// (stdout and stderr) is kept there.
#[derive(Debug)]
pub struct SidecarProcess {
    pub addr: SocketAddr,
    proc: Proc,
    dir: Scratch,
}

impl SidecarProcess {
    /// Starts the sidecar on `yaml`, where `{port}` stands for a free port.
    pub fn start(yaml: &str) -> SidecarProcess {
        Self::start_with_rust_log(yaml, None)
    }

    /// [`SidecarProcess::start`] with `RUST_LOG` set to `rust_log` (`None`: unset, so the
    /// test's own `logging` section decides, not the developer's environment).
    pub fn start_with_rust_log(yaml: &str, rust_log: Option<&str>) -> SidecarProcess {
        let port = free_port();
        let dir = Scratch::new("sidecar");
        let config = dir.path().join("config.yaml");
        std::fs::write(&config, yaml.replace("{port}", &port.to_string())).unwrap();
        let log = std::fs::File::create(dir.path().join("log")).unwrap();
        let mut cmd = Command::new(sidecar_binary());
        cmd.arg("--config")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log);
        match rust_log {
            Some(v) => cmd.env("RUST_LOG", v),
            None => cmd.env_remove("RUST_LOG"),
        };
        let proc = Proc::spawn(&mut cmd);
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        wait_listening(addr);
        SidecarProcess { addr, proc, dir }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    pub fn stop(&mut self) {
        self.proc.stop();
    }

    /// SIGKILL, no chance to flush or clean up (a crash, an OOM kill).
    pub fn kill(&mut self) {
        self.proc.kill();
    }
}

/// An example file from `examples/` with its default ports replaced.
pub fn shipped(file: &str, replacements: &[(&str, String)]) -> String {
    let mut text = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("examples")
            .join(file),
    )
    .unwrap();
    for (from, to) in replacements {
        text = text.replace(from, to);
    }
    text
}

/// nginx on the shipped `examples/nginx.conf`, in front of the sidecar port `side` and the app
/// port `app`.
pub fn nginx(side: u16, app: u16) -> (Proc, Scratch, SocketAddr) {
    let port = free_port();
    let dir = Scratch::new("nginx");
    let conf = dir.path().join("nginx.conf");
    std::fs::write(
        &conf,
        shipped(
            "nginx.conf",
            &[
                ("127.0.0.1:8088", format!("127.0.0.1:{port}")),
                ("127.0.0.1:8080", format!("127.0.0.1:{side}")),
                ("127.0.0.1:8081", format!("127.0.0.1:{app}")),
            ],
        ),
    )
    .unwrap();
    let nginx = program("nginx");
    let check = Command::new(&nginx)
        .arg("-t")
        .arg("-p")
        .arg(dir.path())
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let proc = Proc::spawn(
        Command::new(nginx)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_listening(addr);
    (proc, dir, addr)
}

/// Caddy on the shipped `examples/Caddyfile`.
pub fn caddy(side: u16, app: u16) -> (Proc, Scratch, SocketAddr) {
    let port = free_port();
    let dir = Scratch::new("caddy");
    let file = dir.path().join("Caddyfile");
    std::fs::write(
        &file,
        shipped(
            "Caddyfile",
            &[
                ("127.0.0.1:8089", format!("127.0.0.1:{port}")),
                ("127.0.0.1:8080", format!("127.0.0.1:{side}")),
                ("127.0.0.1:8081", format!("127.0.0.1:{app}")),
            ],
        ),
    )
    .unwrap();
    let proc = Proc::spawn(
        Command::new(program("caddy"))
            .args(["run", "--adapter", "caddyfile", "--config"])
            .arg(&file)
            .env("XDG_DATA_HOME", dir.path().join("data"))
            .env("XDG_CONFIG_HOME", dir.path().join("cfg"))
            .env("HOME", dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null()),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_listening(addr);
    (proc, dir, addr)
}

/// Traefik on the shipped `examples/traefik.yml` (static) and `examples/traefik-dynamic.yml`.
pub fn traefik(side: u16, app: u16) -> (Proc, Scratch, SocketAddr) {
    let port = free_port();
    let dir = Scratch::new("traefik");
    let dynamic = dir.path().join("traefik-dynamic.yml");
    std::fs::write(
        &dynamic,
        shipped(
            "traefik-dynamic.yml",
            &[
                ("127.0.0.1:8080", format!("127.0.0.1:{side}")),
                ("127.0.0.1:8081", format!("127.0.0.1:{app}")),
            ],
        ),
    )
    .unwrap();
    let file = dir.path().join("traefik.yml");
    std::fs::write(
        &file,
        shipped(
            "traefik.yml",
            &[
                ("127.0.0.1:8090", format!("127.0.0.1:{port}")),
                (
                    "examples/traefik-dynamic.yml",
                    dynamic.display().to_string(),
                ),
            ],
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.path().join("log")).unwrap();
    let proc = Proc::spawn(
        Command::new(program("traefik"))
            .arg(format!("--configFile={}", file.display()))
            .current_dir(dir.path())
            .env("HOME", dir.path())
            .stdout(log.try_clone().unwrap())
            .stderr(log),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    wait_listening(addr);
    // The file provider loads the routes just after the entry point listens.
    let started = Instant::now();
    loop {
        let ready = std::net::TcpStream::connect(addr).and_then(|mut s| {
            use std::io::{Read, Write};
            s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")?;
            let mut out = Vec::new();
            s.read_to_end(&mut out)?;
            Ok(!out.starts_with(b"HTTP/1.1 404"))
        });
        if matches!(ready, Ok(true)) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "traefik never loaded its routes: {}",
            std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    (proc, dir, addr)
}
