//! A throwaway PostgreSQL cluster for a test: `initdb` in a temp dir, `postgres` on a free
//! loopback port, stopped and deleted on drop. Run as the `postgres` user when we are root
//! (PostgreSQL refuses root).
//!
//! Where the binaries are absent, [`Postgres::start`] prints a loud `SKIPPED` line and returns
//! `None`; with `TOWER_API_AUTH_REQUIRE_SERVICES=1` (CI) it panics instead.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::{Command, Output};

pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    as_postgres: bool,
}

impl Postgres {
    /// A running cluster, or `None` (after a loud `SKIPPED` line) when PostgreSQL is not
    /// installed and services are not required.
    pub fn start(test: &str) -> Option<Self> {
        let Some(bin) = find_bin() else {
            if std::env::var("TOWER_API_AUTH_REQUIRE_SERVICES").as_deref() == Ok("1") {
                panic!(
                    "{test}: pg_ctl not found (PATH, /usr/lib/postgresql/*/bin) and TOWER_API_AUTH_REQUIRE_SERVICES=1"
                );
            }
            eprintln!(
                "SKIPPED: pg_ctl not found (PATH, /usr/lib/postgresql/*/bin): {test} needs PostgreSQL"
            );
            return None;
        };
        let as_postgres = is_root();
        let dir = tempfile::Builder::new()
            .prefix("tower-api-auth-pg-")
            .tempdir()
            .expect("temp dir");
        if as_postgres {
            run(Command::new("chown")
                .arg("-R")
                .arg("postgres:")
                .arg(dir.path()));
        }
        let port = free_port();
        let postgres = Self {
            bin,
            dir,
            port,
            as_postgres,
        };
        postgres.pg(
            "initdb",
            &[
                "-D",
                &postgres.data(),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        postgres.start_again();
        Some(postgres)
    }

    /// `postgres://postgres@127.0.0.1:<port>/postgres`.
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server (fast shutdown: clients are disconnected).
    pub fn stop(&self) {
        self.pg("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "stop"]);
    }

    /// Starts the server again on the same port and data.
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.pg(
            "pg_ctl",
            &[
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
                "-w",
                "start",
            ],
        );
    }

    /// `url` through another address, for a proxy in between.
    pub fn url_via(&self, address: std::net::SocketAddr) -> String {
        format!("postgres://postgres@{address}/postgres")
    }

    /// The server's address.
    pub fn address(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([127, 0, 0, 1], self.port))
    }

    /// Takes a backup of the data directory (stopping the server for it) and starts again.
    pub fn back_up(&self) {
        self.stop();
        self.as_owner("cp", &["-a", &self.data(), &self.backup()]);
        self.start_again();
    }

    /// Puts the data directory back as [`back_up`](Self::back_up) left it: the database's
    /// history wound back, as a restore or a failover to a lagging standby does.
    pub fn restore(&self) {
        self.stop();
        self.as_owner("rm", &["-rf", &self.data()]);
        self.as_owner("cp", &["-a", &self.backup(), &self.data()]);
        self.start_again();
    }

    fn backup(&self) -> String {
        self.dir.path().join("backup").display().to_string()
    }

    fn as_owner(&self, program: &str, args: &[&str]) -> Output {
        let mut command = match self.as_postgres {
            true => {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--", program]);
                command
            }
            false => Command::new(program),
        };
        run(command.args(args))
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn pg(&self, program: &str, args: &[&str]) -> Output {
        run(self.command(program).args(args))
    }

    fn command(&self, program: &str) -> Command {
        let program = self.bin.join(program);
        let mut command = match self.as_postgres {
            true => {
                let mut command = Command::new("runuser");
                command.args(["-u", "postgres", "--"]).arg(&program);
                command
            }
            false => Command::new(&program),
        };
        command.current_dir(self.dir.path());
        command
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let data = self.data();
        let _ = self
            .command("pg_ctl")
            .args(["-D", &data, "-m", "immediate", "-w", "stop"])
            .output();
    }
}

fn run(command: &mut Command) -> Output {
    let output = command.output().expect("run a PostgreSQL command");
    assert!(
        output.status.success(),
        "{command:?} failed: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn find_bin() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .map(|version| version.path().join("bin"))
        .collect();
    candidates.sort();
    candidates.reverse();
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates
        .into_iter()
        .find(|dir| dir.join("pg_ctl").is_file() && dir.join("initdb").is_file())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| output.stdout.trim_ascii() == b"0")
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}
