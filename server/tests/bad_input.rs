//! Bad input against the server, each answered with a clear error and the right
//! SQLSTATE while the server keeps serving and loses nothing committed: malformed SQL,
//! unknown names, type and range errors, an oversized value, a duplicate key, a client
//! that vanishes mid-COPY and mid-transaction, 1,000 connect/disconnect cycles, more
//! connections than allowed, and statements on a poisoned node. The server runs in
//! process (over a fault-injecting file system for the last) and is spoken to with a
//! minimal wire-protocol client, so a client can vanish without saying goodbye.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use segexpand_engine::vfs::{FailKind, OpClass, SimVfs};
use segexpand_engine::{Node, NodeOptions};
use segexpand_server::{serve, ServerOptions};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::Duration;

/// A server on a free port, stopped when dropped.
struct InProcess {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcess {
    fn start(node: Arc<Node>, max_connections: usize) -> InProcess {
        Self::start_with(node, max_connections, None)
    }

    fn start_with(node: Arc<Node>, max_connections: usize, password: Option<&str>) -> InProcess {
        let password = password.map(str::to_string);
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
                addr_tx.send(listener.local_addr().unwrap()).unwrap();
                let opts = ServerOptions {
                    max_connections,
                    password,
                    ..ServerOptions::default()
                };
                serve(node, &opts, listener, async {
                    let _ = stop_rx.await;
                })
                .await
                .unwrap();
            });
        });
        InProcess {
            addr: addr_rx.recv().unwrap(),
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    fn connect(&self) -> Client {
        Client::connect(self.addr).unwrap_or_else(|e| panic!("connect: {e:?}"))
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// What a query string got back: rows (text), the SQLSTATEs of errors, command tags.
#[derive(Debug, Default)]
struct Reply {
    rows: Vec<Vec<Option<String>>>,
    errors: Vec<String>,
    tags: Vec<String>,
}

/// A minimal protocol-3 client: startup, simple queries, COPY data, an abrupt close.
struct Client {
    sock: TcpStream,
}

impl Client {
    /// Connects and starts up; `Err` carries the SQLSTATE of a refused startup.
    fn connect(addr: SocketAddr) -> Result<Client, String> {
        let mut sock = TcpStream::connect(addr).map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        let mut body = Vec::new();
        body.extend_from_slice(&196_608i32.to_be_bytes());
        for s in ["user", "tester", "database", "segexpand"] {
            body.extend_from_slice(s.as_bytes());
            body.push(0);
        }
        body.push(0);
        let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        msg.extend_from_slice(&body);
        sock.write_all(&msg).map_err(|e| e.to_string())?;
        let mut c = Client { sock };
        loop {
            let (t, body) = c.read_msg().map_err(|e| e.to_string())?;
            match t {
                b'Z' => return Ok(c),
                b'E' => return Err(sqlstate(&body)),
                _ => {}
            }
        }
    }

    fn read_msg(&mut self) -> std::io::Result<(u8, Vec<u8>)> {
        let mut head = [0u8; 5];
        self.sock.read_exact(&mut head)?;
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len - 4];
        self.sock.read_exact(&mut body)?;
        Ok((head[0], body))
    }

    fn send(&mut self, t: u8, body: &[u8]) {
        let mut msg = vec![t];
        msg.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        msg.extend_from_slice(body);
        self.sock.write_all(&msg).unwrap();
    }

    fn send_query(&mut self, sql: &str) {
        let mut body = sql.as_bytes().to_vec();
        body.push(0);
        self.send(b'Q', &body);
    }

    /// Runs a simple query string and reads until ReadyForQuery.
    fn query(&mut self, sql: &str) -> Reply {
        self.send_query(sql);
        self.read_reply()
    }

    fn read_reply(&mut self) -> Reply {
        let mut r = Reply::default();
        loop {
            let (t, body) = self.read_msg().unwrap();
            match t {
                b'D' => r.rows.push(data_row(&body)),
                b'E' => r.errors.push(sqlstate(&body)),
                b'C' => r.tags.push(cstr(&body)),
                b'Z' => return r,
                _ => {}
            }
        }
    }

    /// One value of a one-row, one-column query that must succeed.
    fn value(&mut self, sql: &str) -> String {
        let r = self.query(sql);
        assert!(r.errors.is_empty(), "{sql}: {r:?}");
        r.rows[0][0].clone().unwrap_or_default()
    }

    /// Starts `COPY … FROM STDIN` and sends `data` without finishing it.
    fn copy_part(&mut self, sql: &str, data: &[u8]) {
        self.send_query(sql);
        loop {
            let (t, body) = self.read_msg().unwrap();
            match t {
                b'G' => break,
                b'E' => panic!("{sql}: {}", sqlstate(&body)),
                _ => {}
            }
        }
        self.send(b'd', data);
    }

    /// Closes the connection without a Terminate message, as a crashed client would.
    fn vanish(self) {
        let _ = self.sock.shutdown(std::net::Shutdown::Both);
    }

    /// Says goodbye properly.
    fn terminate(mut self) {
        self.send(b'X', &[]);
    }
}

fn cstr(b: &[u8]) -> String {
    String::from_utf8_lossy(b.split(|c| *c == 0).next().unwrap_or_default()).into_owned()
}

/// The SQLSTATE field of an ErrorResponse.
fn sqlstate(body: &[u8]) -> String {
    let mut i = 0;
    while i < body.len() && body[i] != 0 {
        let t = body[i];
        let end = body[i + 1..].iter().position(|c| *c == 0).unwrap() + i + 1;
        if t == b'C' {
            return String::from_utf8_lossy(&body[i + 1..end]).into_owned();
        }
        i = end + 1;
    }
    String::new()
}

fn data_row(body: &[u8]) -> Vec<Option<String>> {
    let n = u16::from_be_bytes([body[0], body[1]]) as usize;
    let mut at = 2;
    (0..n)
        .map(|_| {
            let len = i32::from_be_bytes(body[at..at + 4].try_into().unwrap());
            at += 4;
            if len < 0 {
                return None;
            }
            let v = String::from_utf8_lossy(&body[at..at + len as usize]).into_owned();
            at += len as usize;
            Some(v)
        })
        .collect()
}

/// Waits until `f` holds (the server notices a vanished client asynchronously).
fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    for _ in 0..200 {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("never: {what}");
}

#[test]
fn bad_input_gets_its_sqlstate_and_the_server_keeps_every_committed_row() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::create_dir(dir.path(), 3, NodeOptions::default()).unwrap();
    let srv = InProcess::start(node.clone(), 20);
    let mut c = srv.connect();
    let r = c.query(
        "create table t (id int primary key, name varchar(5), n int2, note text);\
         create table w (id int, a text, b text, c text);\
         insert into t values (1, 'a', 1, 'x'), (2, 'b', 2, 'y')",
    );
    assert!(r.errors.is_empty(), "{r:?}");
    for (sql, state) in [
        ("selec 1", "42601"),
        ("select * from t where", "42601"),
        ("select * from nosuch", "42P01"),
        ("select nosuch from t", "42703"),
        ("insert into t values ('one', 'a', 1, 'x')", "22P02"),
        ("insert into t values (3, 'a', 70000, 'x')", "22003"),
        ("select 2147483647 + 1", "22003"),
        ("insert into t values (3, 'abcdef', 1, 'x')", "22001"),
        ("select 1 / 0", "22012"),
        ("insert into t values (1, 'dup', 1, 'x')", "23505"),
        ("insert into t values (NULL, 'a', 1, 'x')", "23502"),
        ("update t set id = 2 where id = 1", "23505"),
        // Oversized values: a text longer than the engine stores (4 KiB), and a row
        // that does not fit a page.
        (
            &format!(
                "insert into t values (4, 'big', 1, '{}')",
                "z".repeat(100_000)
            ),
            "22001",
        ),
        (
            &format!(
                "insert into w values (4, '{0}', '{0}', '{0}')",
                "z".repeat(4_000)
            ),
            "54000",
        ),
        (
            "create table r (a int primary key) distributed randomly",
            "42P16",
        ),
    ] {
        let r = c.query(sql);
        assert_eq!(r.errors, [state], "{}: {r:?}", &sql[..sql.len().min(60)]);
    }
    // Nothing of it changed a row, and the session still serves.
    assert_eq!(c.value("select count(*) from t"), "2");
    assert_eq!(c.value("select sum(n) from t"), "3");

    // A client that vanishes in the middle of a transaction: its work rolls back.
    let mut gone = srv.connect();
    let r = gone
        .query("begin; insert into t values (10, 'tx', 1, 'x'); update t set n = 99 where id = 1");
    assert!(r.errors.is_empty(), "{r:?}");
    gone.vanish();
    eventually("the vanished client's transaction rolled back", || {
        // Its row lock is released once the session is gone.
        c.query("update t set n = n where id = 1").errors.is_empty()
    });
    assert_eq!(c.value("select count(*) from t"), "2");
    assert_eq!(c.value("select n from t where id = 1"), "1");

    // ... and in the middle of a COPY: nothing of it is loaded.
    let mut gone = srv.connect();
    gone.copy_part("copy t from stdin", b"20\tc\t1\tx\n21\td\t1\tx\n22\t");
    gone.vanish();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(c.value("select count(*) from t"), "2");
    // A COPY that fails on bad data loads nothing either.
    let mut bad = srv.connect();
    bad.copy_part("copy t from stdin", b"30\tc\t1\tx\n31\td\tnotanumber\tx\n");
    bad.send(b'c', &[]);
    let r = bad.read_reply();
    assert_eq!(r.errors, ["22P02"], "{r:?}");
    bad.terminate();
    assert_eq!(c.value("select count(*) from t"), "2");

    // 1,000 connect/disconnect cycles (half of them abrupt), then the connection limit
    // still counts right: 20 at once are served, the 21st is refused with 53300.
    for i in 0..1000 {
        let mut k = srv.connect();
        if i % 2 == 0 {
            k.terminate();
        } else {
            assert_eq!(k.value("select 1"), "1");
            k.vanish();
        }
    }
    let mut held = Vec::new();
    eventually("every cycled connection released its slot", || {
        held.clear();
        held.push(srv.connect());
        held.len() == 1
    });
    // `c` holds one slot: 19 more reach the limit of 20.
    held.clear();
    for _ in 0..19 {
        held.push(srv.connect());
    }
    let refused = Client::connect(srv.addr).err();
    assert_eq!(refused.as_deref(), Some("53300"));
    drop(held);
    eventually("slots come back", || Client::connect(srv.addr).is_ok());
    assert_eq!(c.value("select count(*) from t"), "2");
    c.terminate();
    drop(srv);

    // Every committed row is on disk.
    node.close().unwrap();
    drop(node);
    let node = Node::open_dir(dir.path(), NodeOptions::default()).unwrap();
    let mut tx = node.begin().unwrap();
    assert_eq!(tx.scan("t", None).unwrap().len(), 2);
    tx.commit().unwrap();
}

#[test]
fn a_poisoned_node_refuses_writes_with_a_clear_error_and_the_server_keeps_serving() {
    let vfs = SimVfs::new();
    let node = Node::create(
        Arc::new(vfs.clone()),
        std::path::Path::new("/db"),
        2,
        NodeOptions::default(),
    )
    .unwrap();
    let srv = InProcess::start(node.clone(), 10);
    let mut c = srv.connect();
    assert!(c
        .query("create table t (id int, v int); insert into t values (1, 1)")
        .errors
        .is_empty());
    // The next fsync fails: the commit that needs it fails, and the node is poisoned.
    vfs.fail_nth(OpClass::Sync, vfs.count(OpClass::Sync), FailKind::Eio);
    let r = c.query("insert into t values (2, 2)");
    assert_eq!(r.errors, ["58030"], "{r:?}");
    assert!(node.is_poisoned());
    // Every later write is refused with the same SQLSTATE, on this and new connections;
    // the server answers them all.
    for _ in 0..3 {
        let mut k = srv.connect();
        let r = k.query("insert into t values (3, 3)");
        assert_eq!(r.errors, ["58030"], "{r:?}");
        k.terminate();
    }
    let r = c.query("update t set v = 5 where id = 1");
    assert_eq!(r.errors, ["58030"], "{r:?}");
    c.terminate();
}

#[test]
fn a_password_is_checked_with_scram_sha_256() {
    let dir = tempfile::tempdir().unwrap();
    let node = Node::create_dir(dir.path(), 1, NodeOptions::default()).unwrap();
    let srv = InProcess::start_with(node, 10, Some("s3cret"));
    // The server asks for SASL with SCRAM-SHA-256 (AuthenticationSASL, code 10), never
    // for a cleartext password (code 3).
    let mut sock = TcpStream::connect(srv.addr).unwrap();
    let mut body = 196_608i32.to_be_bytes().to_vec();
    body.extend_from_slice(b"user\0tester\0\0");
    let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    msg.extend_from_slice(&body);
    sock.write_all(&msg).unwrap();
    let mut c = Client { sock };
    let (t, body) = c.read_msg().unwrap();
    assert_eq!(t, b'R');
    assert_eq!(i32::from_be_bytes(body[..4].try_into().unwrap()), 10);
    assert!(String::from_utf8_lossy(&body[4..]).contains("SCRAM-SHA-256"));
    c.vanish();
    // The real psql: the right password works, a wrong one is refused with 28P01.
    let psql = |password: &str| {
        std::process::Command::new("psql")
            .args(["-X", "-At", "-v", "VERBOSITY=verbose", "-c", "select 1"])
            .env("PGHOST", "127.0.0.1")
            .env("PGPORT", srv.addr.port().to_string())
            .env("PGUSER", "tester")
            .env("PGDATABASE", "segexpand")
            .env("PGPASSWORD", password)
            .output()
            .expect("psql is installed (.ci/run installs postgresql-client)")
    };
    let ok = psql("s3cret");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "1");
    let bad = psql("wrong");
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.to_lowercase()
            .contains("password authentication failed"),
        "{err}"
    );
}
