//! The test servers' harness: `segexpand serve` started on a data directory, the
//! PostgreSQL clients pointed at it, and pgbench's checks. Shared by the tests that
//! drive the server as users do.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};

pub struct Server {
    pub child: Child,
    pub port: u16,
    pub _dir: tempfile::TempDir,
}

impl Server {
    pub fn start() -> Server {
        Self::start_in(tempfile::tempdir().unwrap(), 4)
    }

    /// Starts a server of `segments` segments (when it creates the node) on
    /// `dir/data`.
    pub fn start_in(dir: tempfile::TempDir, segments: u16) -> Server {
        let seg = segments.to_string();
        let mut child = Command::new(env!("CARGO_BIN_EXE_segexpand"))
            .args([
                "serve",
                "--port",
                "0",
                "--segments",
                &seg,
                "--max-connections",
                "20",
                "--dir",
            ])
            .arg(dir.path().join("data"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        // "segexpand serve: listening on 127.0.0.1:PORT (…)"
        let port = first
            .split("listening on ")
            .nth(1)
            .and_then(|r| r.split_whitespace().next())
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("no port in {first:?}"));
        let ready = lines.next().unwrap().unwrap();
        assert!(ready.contains("ready"), "{ready}");
        std::thread::spawn(move || for _ in lines {});
        Server {
            child,
            port,
            _dir: dir,
        }
    }

    pub fn dir(&self) -> std::path::PathBuf {
        self._dir.path().join("data")
    }

    pub fn client(&self, program: &str) -> Command {
        let found = Command::new(program).arg("--version").output();
        assert!(
            found.is_ok(),
            "{program} is not installed: apt-get install -y postgresql-client (.ci/run does)"
        );
        let mut c = Command::new(program);
        c.env("PGHOST", "127.0.0.1")
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", "tester")
            .env("PGDATABASE", "segexpand")
            .env("PGCONNECT_TIMEOUT", "10");
        c
    }

    /// Runs a psql script (`-X -v ON_ERROR_STOP=0`), returning stdout and stderr.
    pub fn psql(&self, script: &str) -> (String, String) {
        let mut child = self
            .client("psql")
            .args(["-X", "-q", "-v", "VERBOSITY=verbose"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(script.as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn query(&self, sql: &str) -> String {
        let out = self
            .client("psql")
            .args(["-X", "-q", "-At", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `kill -9`: no shutdown at all; returns the directory for a restart.
    pub fn kill9(mut self) -> tempfile::TempDir {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let dir = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self._dir, dir)
    }

    pub fn stop(&mut self) {
        // SIGTERM: sessions roll back, a checkpoint, the lock released, exit 0.
        let pid = self.child.id().to_string();
        let st = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
        assert!(st.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "serve exited with {status}");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        // After a failed assertion: do not leave the server running.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Server {
    /// `pgbench -i -s 1` with its default steps (`dtgvp`: the last adds the primary
    /// keys), or with `steps`: 100,000 accounts.
    pub fn pgbench_init(&self, steps: Option<&str>) {
        let mut cmd = self.client("pgbench");
        cmd.args(["-i", "-s", "1", "-q"]);
        if let Some(steps) = steps {
            cmd.args(["-I", steps]);
        }
        let init = cmd.output().unwrap();
        assert!(
            init.status.success(),
            "{}",
            String::from_utf8_lossy(&init.stderr)
        );
        assert_eq!(
            self.query("select count(*) from pgbench_accounts"),
            "100000"
        );
        if steps.is_none() {
            // The primary keys are enforced.
            let dup = self
                .client("psql")
                .args([
                    "-X",
                    "-q",
                    "-c",
                    "insert into pgbench_branches values (1, 0)",
                ])
                .output()
                .unwrap();
            let err = String::from_utf8_lossy(&dup.stderr);
            assert!(
                err.contains(
                    "duplicate key value violates unique constraint \"pgbench_branches_pkey\""
                ),
                "{err}"
            );
        }
    }

    /// TPC-B: every delta went to one account, one teller, one branch and the history.
    pub fn assert_tpcb_invariant(&self) {
        let sums: Vec<String> = [
            "select sum(abalance) from pgbench_accounts",
            "select sum(tbalance) from pgbench_tellers",
            "select sum(bbalance) from pgbench_branches",
            "select sum(delta) from pgbench_history",
        ]
        .iter()
        .map(|q| self.query(q))
        .collect();
        assert!(sums.iter().all(|s| *s == sums[0]), "{sums:?}");
    }

    /// Rows of `table` per segment, in segment order.
    pub fn per_segment(&self, table: &str) -> Vec<f64> {
        let out = self.query(&format!(
            "select gp_segment_id, count(*) from {table} group by 1 order by 1"
        ));
        out.lines()
            .map(|l| l.split('|').nth(1).unwrap().parse().unwrap())
            .collect()
    }
}
