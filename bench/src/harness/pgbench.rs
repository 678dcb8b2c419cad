//! pgbench tpcb-like over the wire: the run's node is served in-process on a free
//! loopback port (the same server as `segexpand serve`), `pgbench -i -s SCALE` makes
//! and loads its four tables, and during the run `pgbench -c CLIENTS -j CLIENTS` runs in
//! rounds of `round_s` seconds (`-T`) until the run ends, each round logging every
//! transaction (`-l`: its latency and completion time). After the run the logs are read
//! into the timeline: each transaction in the interval in which it completed, in the
//! phase its completion time falls in (before the `start` mark, between `start` and
//! `flip`, or after); a failed transaction is an abort.
//!
//! With `pgbench_target = "postgres"` pgbench runs the same way against a throwaway
//! PostgreSQL 15 cluster instead (initdb in a temporary directory, started on a free
//! loopback port with its defaults: fsync and synchronous commit on), the reference
//! line beside segexpand's. Its tables stay in PostgreSQL: only the checking table is
//! redistributed in that run, and the checking workload runs beside pgbench as in every
//! run, so the two runs share the machine the same way.
//!
//! pgbench is Debian's `postgresql-client` (PostgreSQL 15's client tools); the server
//! is `postgresql-15` (`/usr/lib/postgresql/15/bin`, or `SEGEXPAND_PG_BIN`).

use super::config::PgTarget;
use super::workload::Load;
use super::{bad, Config, Error, Node};
use crate::timeline::{Op, Outcome, Timeline};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// pgbench's tables, every one of which the reconfiguration moves.
pub(super) const TABLES: [&str; 4] = [
    "pgbench_accounts",
    "pgbench_branches",
    "pgbench_tellers",
    "pgbench_history",
];

/// Seconds of each pgbench round (`-T`).
const ROUND_S: u32 = 5;

/// The in-process server and where pgbench writes its logs.
pub(super) struct Pgbench {
    cfg: Config,
    port: u16,
    logs: tempfile::TempDir,
    server: parking_lot::Mutex<Option<Target>>,
    /// Rounds started (each has its own log prefix) and their failures.
    rounds: parking_lot::Mutex<Vec<String>>,
}

/// The server thread and the way to stop it.
struct Server {
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl Server {
    fn stop(self) -> Result<(), Error> {
        let _ = self.stop.send(());
        match self.thread.join() {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(bad(format!("the in-process server failed: {e}"))),
            Err(_) => Err(bad("the in-process server panicked")),
        }
    }
}

/// The server: this node in-process, or a PostgreSQL cluster.
enum Target {
    InProcess(Server),
    Postgres(PgCluster),
}

impl Target {
    fn stop(self) -> Result<(), Error> {
        match self {
            Target::InProcess(s) => s.stop(),
            Target::Postgres(c) => c.stop(),
        }
    }
}

/// A throwaway PostgreSQL cluster (removed with its directory).
struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// Run its commands as the `postgres` user (we are root, whom initdb refuses).
    as_postgres: bool,
}

impl PgCluster {
    /// A PostgreSQL binary's command, as the `postgres` user when we are root.
    fn cmd(&self, prog: &str, args: &[String]) -> Command {
        let path = self.bin.join(prog);
        if self.as_postgres {
            let mut line = shell_quote(&path.to_string_lossy());
            for a in args {
                line.push(' ');
                line.push_str(&shell_quote(a));
            }
            let mut c = Command::new("su");
            c.args(["postgres", "-c", &line]);
            c
        } else {
            let mut c = Command::new(path);
            c.args(args);
            c
        }
    }

    /// initdb, and start on `port`.
    fn start(port: u16) -> Result<PgCluster, Error> {
        let bin = check_postgres()?;
        let dir = tempfile::Builder::new()
            .prefix("segexpand-pg")
            .tempdir()
            .map_err(|e| bad(format!("a directory for PostgreSQL: {e}")))?;
        let c = PgCluster {
            bin,
            dir,
            as_postgres: is_root(),
        };
        let path = |p: &Path| p.to_string_lossy().to_string();
        let data = path(&c.dir.path().join("data"));
        if c.as_postgres {
            // The cluster's files belong to `postgres`.
            run_to_end_any(
                Command::new("chown").args(["postgres", &path(c.dir.path())]),
                "chown",
            )?;
        }
        let args = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        run_to_end_any(
            &mut c.cmd(
                "initdb",
                &args(&["-D", &data, "-A", "trust", "-U", "postgres"]),
            ),
            "initdb",
        )?;
        let opts = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1",
            path(c.dir.path())
        );
        let log = path(&c.dir.path().join("server.log"));
        run_to_end_any(
            &mut c.cmd(
                "pg_ctl",
                &args(&["-D", &data, "-o", &opts, "-l", &log, "-w", "start"]),
            ),
            "pg_ctl start",
        )?;
        Ok(c)
    }

    fn stop_with(&self, mode: &str) -> Result<(), Error> {
        let data = self.dir.path().join("data").to_string_lossy().to_string();
        let args: Vec<String> = ["-D", &data, "-m", mode, "stop"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        run_to_end_any(&mut self.cmd("pg_ctl", &args), "pg_ctl stop")
    }

    fn stop(self) -> Result<(), Error> {
        self.stop_with("fast")
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        // Stopped already unless a run failed half way.
        if self.dir.path().join("data/postmaster.pid").exists() {
            let _ = self.stop_with("immediate");
        }
    }
}

/// PostgreSQL 15's server binaries: their directory, or why they cannot be used.
pub(super) fn check_postgres() -> Result<PathBuf, Error> {
    let bin = std::env::var_os("SEGEXPAND_PG_BIN").map_or_else(
        || PathBuf::from("/usr/lib/postgresql/15/bin"),
        PathBuf::from,
    );
    if !bin.join("initdb").exists() || !bin.join("pg_ctl").exists() {
        return Err(bad(format!(
            "pgbench_target postgres needs PostgreSQL 15's server: no initdb and pg_ctl in \
             {} (apt-get install -y postgresql-15, or set SEGEXPAND_PG_BIN)",
            bin.display()
        )));
    }
    Ok(bin)
}

/// `s` quoted for `sh`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// True when this process runs as root.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A free loopback port (bound and released; PostgreSQL takes it right after).
fn free_port() -> Result<u16, Error> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))
        .map_err(|e| bad(format!("a free port: {e}")))?;
    l.local_addr()
        .map(|a| a.port())
        .map_err(|e| bad(format!("a free port: {e}")))
}

/// Runs a command to its end; its output is the error when it fails.
fn run_to_end_any(c: &mut Command, what: &str) -> Result<(), Error> {
    let out = c.stdin(Stdio::null()).output().map_err(|e| {
        bad(format!(
            "cannot run {what}: {e} (pgbench is in postgresql-client, initdb and \
                 pg_ctl in postgresql-15)"
        ))
    })?;
    if !out.status.success() {
        return Err(bad(format!(
            "{what} failed ({}): {} {}",
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

impl Drop for Pgbench {
    fn drop(&mut self) {
        if let Some(s) = self.server.lock().take() {
            let _ = s.stop();
        }
    }
}

/// Serves `node` on a free loopback port in a thread of its own.
fn serve(node: &Arc<Node>) -> Result<(Server, u16), Error> {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let node = node.clone();
    let thread = std::thread::spawn(move || -> std::io::Result<()> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
            let _ = addr_tx.send(listener.local_addr()?);
            let opts = segexpand_server::ServerOptions {
                port: 0,
                ..Default::default()
            };
            segexpand_server::serve(node, &opts, listener, async {
                let _ = stop_rx.await;
            })
            .await
        })
    });
    let server = Server { stop, thread };
    match addr_rx.recv_timeout(Duration::from_secs(30)) {
        Ok(addr) => Ok((server, addr.port())),
        Err(_) => {
            let e = server.stop().err();
            Err(bad(format!(
                "the in-process server did not start{}",
                e.map(|e| format!(": {e}")).unwrap_or_default()
            )))
        }
    }
}

/// A pgbench command against the server on `port`.
fn pgbench(port: u16) -> Command {
    let mut c = Command::new("pgbench");
    c.env("PGHOST", "127.0.0.1")
        .env("PGPORT", port.to_string())
        .env("PGUSER", "postgres")
        .env("PGDATABASE", "postgres")
        .stdin(Stdio::null());
    c
}

/// Serves the node (or starts PostgreSQL) and loads pgbench's tables (`pgbench -i -s
/// SCALE`).
pub(super) fn prepare(a: &Config, node: &Arc<Node>) -> Result<Pgbench, Error> {
    let logs =
        tempfile::tempdir().map_err(|e| bad(format!("a directory for pgbench's logs: {e}")))?;
    let (server, port) = match a.pgbench_target {
        PgTarget::Segexpand => {
            let (s, port) = serve(node)?;
            (Target::InProcess(s), port)
        }
        PgTarget::Postgres => {
            let port = free_port()?;
            (Target::Postgres(PgCluster::start(port)?), port)
        }
    };
    let p = Pgbench {
        cfg: a.clone(),
        port,
        logs,
        server: parking_lot::Mutex::new(Some(server)),
        rounds: parking_lot::Mutex::new(Vec::new()),
    };
    let t0 = Instant::now();
    let mut init = pgbench(port);
    init.args(["-i", "-q", "-s", &a.pgbench_scale.to_string()]);
    run_to_end_any(&mut init, "pgbench -i")?;
    say!(
        a,
        "pgbench -i -s {} over the wire against {} in {:.2} s (port {port})",
        a.pgbench_scale,
        match a.pgbench_target {
            PgTarget::Segexpand => "this node, served in-process",
            PgTarget::Postgres => "PostgreSQL 15",
        },
        t0.elapsed().as_secs_f64()
    );
    Ok(p)
}

impl Pgbench {
    /// True when pgbench runs against this node.
    pub(super) fn in_process(&self) -> bool {
        self.cfg.pgbench_target == PgTarget::Segexpand
    }

    /// Starts the thread that runs pgbench rounds until `stop` (or the workload's).
    pub(super) fn spawn<'s>(
        &'s self,
        s: &'s std::thread::Scope<'s, '_>,
        load: &'s Load<'_>,
        stop: &'s AtomicBool,
    ) {
        s.spawn(move || {
            let mut round = 0;
            while !load.stopped_or(stop) {
                let prefix = self.logs.path().join(format!("round{round}"));
                round += 1;
                match self.round(&prefix, load) {
                    Ok(()) => self.rounds.lock().push(String::new()),
                    Err(e) => {
                        self.rounds.lock().push(e.to_string());
                        let _ = load.error("a pgbench round", e);
                        // A round that cannot run will not run the next time either.
                        break;
                    }
                }
            }
        });
    }

    /// One round: pgbench for `ROUND_S` seconds, killed if the workload failed.
    fn round(&self, prefix: &Path, load: &Load<'_>) -> Result<(), Error> {
        let clients = self.cfg.clients.to_string();
        let mut c = pgbench(self.port);
        c.args([
            "-n",
            "-c",
            &clients,
            "-j",
            &clients,
            "-T",
            &ROUND_S.to_string(),
            "-l",
        ])
        .arg(format!("--log-prefix={}", prefix.display()))
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
        let mut child: Child = c.spawn().map_err(|e| {
            bad(format!(
                "cannot run pgbench ({e}): install PostgreSQL 15's client tools"
            ))
        })?;
        loop {
            if let Some(status) = child.try_wait().map_err(|e| bad(format!("pgbench: {e}")))? {
                if status.success() {
                    return Ok(());
                }
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    let _ = std::io::Read::read_to_string(&mut e, &mut err);
                }
                return Err(bad(format!("pgbench failed ({status}): {}", err.trim())));
            }
            if load.stopped() {
                let _ = child.kill();
                let _ = child.wait();
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// After the run: stops the server and reads every round's log into the timeline.
    pub(super) fn finish(&self, a: &Config, tl: &Timeline) -> Result<(), Error> {
        if let Some(s) = self.server.lock().take() {
            s.stop()?;
        }
        let n = read_logs(self.logs.path(), tl)?;
        let rounds = self.rounds.lock().len();
        say!(a, "pgbench: {n} transactions logged over {rounds} rounds");
        Ok(())
    }
}

/// Reads every pgbench log in `dir` into `tl`; returns the transactions read.
pub(super) fn read_logs(dir: &Path, tl: &Timeline) -> Result<u64, Error> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| bad(format!("pgbench's logs in {}: {e}", dir.display())))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    files.sort();
    let (start, flip) = (tl.mark_time("start"), tl.mark_time("flip"));
    let t0_unix = tl.t0_unix();
    let mut rec = tl.client();
    let mut n = 0;
    for f in files {
        let text = std::fs::read_to_string(&f)
            .map_err(|e| bad(format!("pgbench's log {}: {e}", f.display())))?;
        for (i, line) in text.lines().enumerate() {
            let Some(t) = parse_line(line) else {
                return Err(bad(format!(
                    "pgbench's log {} line {}: not a transaction line: {line:?}",
                    f.display(),
                    i + 1
                )));
            };
            let at = t.end_unix - t0_unix;
            let phase = match (start, flip) {
                (Some(s), _) if at < s => 0,
                (_, Some(e)) if at >= e => 2,
                (Some(_), _) => 1,
                _ => 0,
            };
            let end = tl.t0() + Duration::from_secs_f64(at.max(0.0));
            let outcome = if t.failed {
                Outcome::Abort
            } else {
                Outcome::Ok
            };
            rec.record_in(phase, Op::Tpcb, t.latency_us * 1_000, end, outcome);
            n += 1;
        }
    }
    Ok(n)
}

/// One transaction of a pgbench log.
#[derive(Debug, PartialEq)]
struct LogLine {
    latency_us: u64,
    /// Completion time, seconds since the Unix epoch.
    end_unix: f64,
    failed: bool,
}

/// Parses `client_id transaction_no time script_no time_epoch time_us [...]`, where
/// `time` is the latency in µs, or `failed` (PostgreSQL 15).
fn parse_line(line: &str) -> Option<LogLine> {
    let f: Vec<&str> = line.split_whitespace().collect();
    let time = *f.get(2)?;
    let epoch: u64 = f.get(4)?.parse().ok()?;
    let us: u64 = f.get(5)?.parse().ok()?;
    let (latency_us, failed) = match time {
        "failed" => (0, true),
        t => (t.parse().ok()?, false),
    };
    Some(LogLine {
        latency_us,
        end_unix: epoch as f64 + us as f64 / 1e6,
        failed,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_lines_parse_and_bad_ones_are_refused() {
        assert_eq!(
            parse_line("3 17 1520 0 1763800000 250000"),
            Some(LogLine {
                latency_us: 1520,
                end_unix: 1_763_800_000.25,
                failed: false
            })
        );
        assert!(parse_line("0 1 failed 0 1763800000 5").unwrap().failed);
        assert_eq!(parse_line("0 1 skipped 0 1763800000 5"), None);
        assert_eq!(parse_line("garbage"), None);
        // A log that is not pgbench's stops the run's report, naming the line.
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("round0.1"), "0 1 10 0 1 0\nnot a line\n").unwrap();
        let tl = Timeline::new(Duration::from_millis(100));
        let e = read_logs(d.path(), &tl).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
    }
}
