//! A throwaway `redis-server` on a free loopback port, in a temp dir, without persistence;
//! stopped on drop. Where the binary is absent, [`RedisServer::start`] prints a loud
//! `SKIPPED` line and returns `None`, unless `TOWER_API_AUTH_REQUIRE_SERVICES=1` (CI), where it
//! panics.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

/// Whether a binary is on `PATH`.
fn on_path(binary: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(binary).is_file()))
}

impl RedisServer {
    /// Starts one, or says loudly why not.
    pub fn start(test: &str) -> Option<Self> {
        if !on_path("redis-server") {
            if std::env::var("TOWER_API_AUTH_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!("redis-server not found, and TOWER_API_AUTH_REQUIRE_SERVICES=1");
            }
            eprintln!(
                "SKIPPED: redis-server not found on PATH: {test} did not run \
                 (apt-get install redis-server; CI sets TOWER_API_AUTH_REQUIRE_SERVICES=1)"
            );
            return None;
        }
        // A free port: bound, read, released; redis-server takes it a moment later.
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free loopback port")
            .port();
        let mut server = Self {
            child: None,
            port,
            dir: tempfile::tempdir().expect("a temp dir"),
        };
        server.launch();
        Some(server)
    }

    /// Starts redis-server on this server's port and waits for its "ready" line.
    fn launch(&mut self) {
        let mut child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(["--logfile", "", "--daemonize", "no"])
            .arg("--dir")
            .arg(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("redis-server starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        loop {
            let line = lines
                .next()
                .expect("redis-server exited before it was ready")
                .expect("redis-server's output");
            if line.contains("Ready to accept connections") {
                break;
            }
        }
        // Keep draining its output so that it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        self.child = Some(child);
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// Kills it (SIGKILL) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops it answering (SIGSTOP): connections stay open, nothing is answered.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets it answer again (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, signal: &str) {
        let pid = self.child.as_ref().expect("running").id().to_string();
        let status = Command::new("kill").args([signal, &pid]).status().unwrap();
        assert!(status.success(), "kill {signal} {pid}");
    }

    /// Starts it again on the same port, empty.
    pub fn restart(&mut self) {
        self.kill();
        self.launch();
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}
