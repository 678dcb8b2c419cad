//! Setup of gpexpand/gpshrink: the cluster read from `gp_segment_configuration`, the
//! input file checked whole (`segexpand-ops`, gpexpand's messages), this server's
//! hosts, the status tables, the segments added (or recorded for removal), and the
//! interview that writes an input file.

use super::{fail, say, Db, ExpandArgs, Failure, Res, Workflow};
use crate::wire::literal;
use segexpand_ops::{Cluster, InputFile, Role, Segment};
use std::path::Path;

/// The cluster: the coordinator (this server: content -1, dbid 1) and the segments.
pub(super) fn cluster(db: &mut Db) -> Res<Cluster> {
    let reply = db.q(
        "SELECT dbid, content, preferred_role, port, hostname, address, datadir \
         FROM gp_segment_configuration ORDER BY content",
    )?;
    let mut segs = vec![Segment {
        hostname: "localhost".into(),
        address: "localhost".into(),
        port: 5432,
        datadir: "/coordinator".into(),
        dbid: 1,
        content: -1,
        role: Role::Primary,
    }];
    for r in reply.rows {
        let cell = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
        let num = |i: usize| -> Res<i32> {
            cell(i).parse().map_err(|_| {
                Failure(format!(
                    "gp_segment_configuration: bad number {:?}",
                    cell(i)
                ))
            })
        };
        segs.push(Segment {
            dbid: num(0)?,
            content: num(1)?,
            role: Role::from_code(&cell(2)).unwrap_or(Role::Primary),
            port: u16::try_from(num(3)?).unwrap_or(0),
            hostname: cell(4),
            address: cell(5),
            datadir: cell(6),
        });
    }
    Cluster::new(segs).map_err(|e| Failure(e.to_string()))
}

/// The names this server's host goes by: a new segment must be on it (every segment
/// of a node is served by this one process).
fn local_names(db_host: &str) -> Vec<String> {
    let mut names: Vec<String> = ["localhost", "127.0.0.1", "::1", "localhost.localdomain"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    names.push(db_host.to_string());
    for f in ["/proc/sys/kernel/hostname", "/etc/hostname"] {
        if let Ok(h) = std::fs::read_to_string(f) {
            let h = h.trim().to_string();
            if !h.is_empty() {
                names.push(h);
            }
        }
    }
    names
}

/// The input file, checked whole; the segments it adds (gpexpand) or removes (gpshrink).
/// `SELECT f(host, address, port, datadir, dbid, content)` for segment `s`: the
/// check and the add take the same row.
fn segment_call(f: &str, s: &Segment) -> String {
    format!(
        "SELECT {f}({}, {}, {}, {}, {}, {})",
        literal(&s.hostname),
        literal(&s.address),
        s.port,
        literal(&s.datadir),
        s.dbid,
        s.content
    )
}

fn read_input(db: &mut Db, w: Workflow, path: &Path, host: &str) -> Res<Vec<Segment>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure(format!("cannot read input file {}: {e}", path.display())))?;
    let cluster = cluster(db)?;
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_else(|_| "/".into());
    let name = path.display().to_string();
    let file = InputFile {
        name: &name,
        text: &text,
        cwd: &cwd,
    };
    match w {
        Workflow::Expand => {
            let segs = segexpand_ops::parse_input_file(&file, &cluster)
                .map_err(|e| Failure(e.to_string()))?;
            let local = local_names(host);
            for (i, s) in segs.iter().enumerate() {
                if !local.contains(&s.hostname) || !local.contains(&s.address) {
                    return fail(format!(
                        "Invalid input file {name}: segment {} (content {}) is on host {} \
                         (address {}), which is not this server's host: segexpand serve runs \
                         every segment of its node itself, so new segments go on its host \
                         ({}) — another disk is fine, through the data directory",
                        i + 1,
                        s.content,
                        s.hostname,
                        s.address,
                        local.get(4).cloned().unwrap_or_else(|| "localhost".into())
                    ));
                }
                if s.role != Role::Primary {
                    return fail(format!(
                        "Invalid input file {name}: segment {} (content {}) is a mirror; this \
                         server runs primaries only",
                        i + 1,
                        s.content
                    ));
                }
            }
            Ok(segs)
        }
        Workflow::Shrink => shrink_input(&file, &cluster),
    }
}

/// gpshrink's input file: the existing segments to remove, by their rows as
/// `gp_segment_configuration` has them; they must be the highest content ids.
fn shrink_input(file: &InputFile<'_>, cluster: &Cluster) -> Res<Vec<Segment>> {
    let mut out: Vec<Segment> = Vec::new();
    for (n, line) in file.text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split('|').collect();
        let bad = |m: String| {
            Failure(format!(
                "Invalid input file on line {} of file {}: {m}",
                n + 1,
                file.name
            ))
        };
        if parts.len() != 7 {
            return Err(bad(format!("expected 7 parts, obtained {}", parts.len())));
        }
        let content: i32 = parts
            .get(5)
            .copied()
            .unwrap_or_default()
            .parse()
            .map_err(|_| bad(format!("Invalid content ID on line {}", n + 1)))?;
        let dbid: i32 = parts
            .get(4)
            .copied()
            .unwrap_or_default()
            .parse()
            .map_err(|_| bad(format!("Invalid dbid on line {}", n + 1)))?;
        let Some(seg) = cluster
            .segments()
            .iter()
            .find(|s| s.content == content && s.dbid == dbid && s.is_primary())
        else {
            return Err(bad(format!(
                "no primary segment with content {content} and dbid {dbid} in the cluster"
            )));
        };
        if out.iter().any(|s| s.content == content) {
            return Err(bad(format!("content {content} is listed twice")));
        }
        out.push(seg.clone());
    }
    if out.is_empty() {
        return fail("Invalid input file: No segments to remove defined");
    }
    let max = cluster.max_content();
    let mut contents: Vec<i32> = out.iter().map(|s| s.content).collect();
    contents.sort_unstable();
    let lowest = max + 1 - contents.len() as i32;
    if contents != (lowest..=max).collect::<Vec<_>>() {
        return fail(format!(
            "Invalid input file: the segments to remove must be the highest content ids \
             ({lowest}..={max}), got {contents:?}"
        ));
    }
    if lowest < 1 {
        return fail("Invalid input file: at least one segment must remain");
    }
    Ok(out)
}

/// Setup: everything checked first, then the schema, the segments, the queue.
pub(super) fn setup(db: &mut Db, w: Workflow, args: &ExpandArgs, input: &Path) -> Res<()> {
    let host = args.conn().host;
    let segs = read_input(db, w, input, &host)?;
    let schema = w.schema();
    // Every new segment checked by the server as it will add it (directory creatable
    // and writable, outside the node's, dbid free) before anything changes.
    if w == Workflow::Expand {
        for s in &segs {
            if let Err(e) = db.q(&segment_call("segexpand_check_segment", s)) {
                return fail(format!(
                    "Invalid input file {}: segment content {} ({}): {}",
                    input.display(),
                    s.content,
                    s.datadir,
                    e.message
                ));
            }
        }
    }
    // The user tables as they are now, before anything changes.
    let tables = db.q("SELECT fq_name, table_oid, bytes FROM segexpand_tables \
         WHERE fq_name NOT LIKE 'gpexpand.%' AND fq_name NOT LIKE 'gpshrink.%' ORDER BY fq_name")?;
    db.q(&format!("CREATE SCHEMA {schema}"))?;
    db.q(&format!(
        "CREATE TABLE {schema}.status (status text, updated timestamp) DISTRIBUTED RANDOMLY"
    ))?;
    db.set_status(w, "SETUP")?;
    db.q(&format!(
        "CREATE TABLE {schema}.status_detail (dbname text, fq_name text, table_oid int8, \
         root_partition_oid int8, rank int4, external_writable bool, status text, \
         expansion_started timestamp, expansion_finished timestamp, source_bytes numeric) \
         DISTRIBUTED BY (table_oid)"
    ))?;
    match w {
        Workflow::Expand => {
            for s in &segs {
                if let Err(e) = db.q(&segment_call("segexpand_add_segment", s)) {
                    return fail(format!(
                        "adding segment {} (content {}, {}) failed: {e}; run gpexpand -r to \
                         roll the setup back",
                        s.dbid, s.content, s.datadir
                    ));
                }
                say(
                    args,
                    format!(
                        "Added segment content {} (dbid {}) at {}:{}",
                        s.content, s.dbid, s.hostname, s.datadir
                    ),
                );
            }
        }
        Workflow::Shrink => {
            db.q(&format!(
                "CREATE TABLE {schema}.segments_to_remove (content int4, dbid int4, \
                 hostname text, datadir text) DISTRIBUTED RANDOMLY"
            ))?;
            for s in &segs {
                db.q(&format!(
                    "INSERT INTO {schema}.segments_to_remove VALUES ({}, {}, {}, {})",
                    s.content,
                    s.dbid,
                    literal(&s.hostname),
                    literal(&s.datadir)
                ))?;
            }
        }
    }
    for r in &tables.rows {
        let cell = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
        db.q(&format!(
            "INSERT INTO {schema}.status_detail VALUES (current_database(), {}, {}, NULL, 2, \
             false, 'NOT STARTED', NULL, NULL, {})",
            literal(&cell(0)),
            cell(1),
            cell(2)
        ))?;
    }
    db.set_status(w, "SETUP DONE")?;
    Ok(())
}

/// The segment count a shrink leaves: the lowest content id it removes.
pub(super) fn shrink_target(db: &mut Db) -> Res<u16> {
    let r = db.q("SELECT min(content) FROM gpshrink.segments_to_remove")?;
    r.scalar()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| Failure("gpshrink.segments_to_remove is empty".into()))
}

/// After a shrink: retires the segments at and above `n`.
pub(super) fn retire(db: &mut Db, n: u16, args: &ExpandArgs) -> Res<()> {
    let have: u16 = db
        .q("SELECT count(*) FROM gp_segment_configuration")?
        .scalar()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    if have > n {
        // Tables still on the segments that go — the workflow's own status tables,
        // tables created since setup — move off them first.
        let left = db.q(&format!(
            "SELECT fq_name FROM segexpand_tables WHERE segments > {n} OR target_segments > {n}"
        ))?;
        for r in &left.rows {
            let t = r.first().cloned().flatten().unwrap_or_default();
            say(args, format!("{t}: moving off the segments to retire"));
            db.q(&format!(
                "ALTER TABLE {} SHRINK TABLE TO {n}",
                super::phase2::quoted(&t)
            ))?;
        }
        let r = db.q(&format!("SELECT segexpand_retire_segments({})", have - n))?;
        say(
            args,
            format!("Retired segments {}", r.scalar().unwrap_or_default()),
        );
    }
    Ok(())
}

/// Rollback of a failed gpexpand setup: the segments that no table uses yet go.
pub(super) fn remove_added_segments(db: &mut Db, args: &ExpandArgs) -> Res<()> {
    let used: u16 = db
        .q("SELECT max(segments) FROM segexpand_tables")?
        .scalar()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    retire(db, used.max(1), args)
}

/// The interview (no `-i`): gpexpand's questions; writes the input file.
pub(super) fn interview_to_file(db: &mut Db, args: &ExpandArgs) -> Res<()> {
    let cluster = cluster(db)?;
    let now = segexpand_ops::Timestamp::from_unix(super::phase2::unix_now());
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut output = std::io::stdout();
    let file = match &args.hosts_file {
        Some(f) => {
            let text = std::fs::read_to_string(f)
                .map_err(|e| Failure(format!("cannot read hosts file {}: {e}", f.display())))?;
            let hosts = segexpand_ops::parse_hosts_file(&text);
            segexpand_ops::interview_with_hosts(&mut input, &mut output, &cluster, now, &hosts)
        }
        None => segexpand_ops::interview(&mut input, &mut output, &cluster, now),
    }
    .map_err(|e| Failure(e.to_string()))?;
    std::fs::write(&file.name, &file.contents)
        .map_err(|e| Failure(format!("writing {}: {e}", file.name)))?;
    // gpexpand stops after writing the file, so the operator can review it.
    println!("{}", file.written_message());
    Ok(())
}
