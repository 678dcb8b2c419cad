//! The catalog: segment configuration and table definitions (columns, distribution
//! policy, layout version, migration bit, redistribution state).
//!
//! It is persisted in the control file at every checkpoint and changed only through WAL
//! records (`CreateSegment`, `CreateTable`, `PutTable`, `DropTable`) that are durable before the
//! in-memory catalog changes, so a crash leaves either the old or the new definition.
//! Encoding in `docs/format.md` ("Catalog").

pub mod codec;
pub mod control;
pub mod hash;
pub mod types;

use crate::catalog::codec::{Reader, Writer};
use crate::catalog::hash::{segment_for, KeyHasher, Placement};
use crate::catalog::types::{Type, Value};

/// Longest table or column name, in bytes.
pub const NAME_BYTES_MAX: usize = 63;

/// Checks that `name` (of a `what`: table, column, constraint) can be stored: 1 to
/// [`NAME_BYTES_MAX`] bytes.
pub fn check_name(what: &str, name: &str) -> crate::error::Result<()> {
    if name.is_empty() || name.len() > NAME_BYTES_MAX {
        return Err(crate::error::Error::InvalidName(format!(
            "{what} name must be 1..={NAME_BYTES_MAX} bytes, got {name:?}"
        )));
    }
    Ok(())
}
/// Most columns in a table.
pub const COLUMNS_MAX: usize = 1600;
/// Longest hostname, address or data directory in the segment configuration.
pub const CONFIG_STRING_BYTES_MAX: usize = 1024;

/// One row of `gp_segment_configuration`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentConfig {
    /// Unique id of this segment instance.
    pub dbid: u16,
    /// Content id: the segment number rows are placed on (`0..N`).
    pub content: u16,
    /// Current role: `p` primary, `m` mirror.
    pub role: char,
    /// Role at initialization: `p` or `m`.
    pub preferred_role: char,
    /// Mirror synchronization: `s` synchronized, `n` not synchronized (no mirror).
    pub mode: char,
    /// `u` up, `d` down.
    pub status: char,
    /// Port the segment listens on.
    pub port: u16,
    /// Host name.
    pub hostname: String,
    /// Address (host name or IP).
    pub address: String,
    /// Data directory of the segment.
    pub datadir: String,
    /// True when the segment's files live in `datadir` itself (given when the segment
    /// was added, e.g. on another disk); false for the node's own `segN` directory
    /// inside its data directory (then `datadir` is only shown, and a node directory
    /// that was moved still finds its segments).
    pub external: bool,
}

impl SegmentConfig {
    /// The configuration a node gives a local segment it creates: a primary without a
    /// mirror, up, dbid `content + 2` and port `6000 + content` (as gpinitsystem numbers
    /// them), its directory inside the node's data directory.
    pub fn local(content: u16, datadir: String) -> Self {
        Self {
            dbid: content.saturating_add(2),
            content,
            role: 'p',
            preferred_role: 'p',
            mode: 'n',
            status: 'u',
            port: 6000u16.saturating_add(content),
            hostname: "localhost".into(),
            address: "localhost".into(),
            datadir,
            external: false,
        }
    }

    /// The directory holding the segment's files, for a node whose data directory is
    /// `node_dir`.
    pub fn dir(&self, node_dir: &std::path::Path) -> std::path::PathBuf {
        if self.external {
            std::path::PathBuf::from(&self.datadir)
        } else {
            node_dir.join(crate::datadir::segment_dir_name(self.content))
        }
    }

    /// Encodes into `w`.
    pub fn encode(&self, w: &mut Writer) {
        w.u16(self.dbid).u16(self.content);
        for (i, c) in [self.role, self.preferred_role, self.mode, self.status]
            .into_iter()
            .enumerate()
        {
            let b = u8::try_from(c).unwrap_or(b'?');
            // The mode byte's high bit marks an external directory (format.md); the
            // flag bytes were plain lowercase letters before, so old files read as
            // internal.
            w.u8(if i == 2 && self.external { b | 0x80 } else { b });
        }
        w.u16(self.port)
            .str16(&self.hostname)
            .str16(&self.address)
            .str16(&self.datadir);
    }

    /// Decodes from `r`.
    pub fn decode(r: &mut Reader<'_>) -> Option<Self> {
        let dbid = r.u16()?;
        let content = r.u16()?;
        let mut flag = |high: &mut bool| -> Option<char> {
            let b = r.u8()?;
            *high = b & 0x80 != 0;
            let b = b & 0x7f;
            b.is_ascii_lowercase().then_some(char::from(b))
        };
        let (mut h1, mut external, mut h3) = (false, false, false);
        let role = flag(&mut h1)?;
        let preferred_role = flag(&mut h3)?;
        let mode = flag(&mut external)?;
        let mut h4 = false;
        let status = flag(&mut h4)?;
        if h1 || h3 || h4 {
            return None;
        }
        Some(Self {
            dbid,
            content,
            role,
            preferred_role,
            mode,
            status,
            port: r.u16()?,
            hostname: r.str16()?,
            address: r.str16()?,
            datadir: r.str16()?,
            external,
        })
    }
}

/// A column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// Name.
    pub name: String,
    /// Type.
    pub ty: Type,
    /// NOT NULL.
    pub not_null: bool,
    /// The DEFAULT expression, as SQL text. The engine stores it; the SQL layer
    /// evaluates it for an INSERT that leaves the column out.
    pub default: Option<String>,
}

/// A PRIMARY KEY or UNIQUE constraint, enforced on every insert and update: no two live
/// versions (committed, or of running transactions) have equal values in all of its
/// columns. NULLs are never equal, as in PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UniqueKey {
    /// The constraint's name (`t_pkey`, `t_a_key`).
    pub name: String,
    /// Column positions, in constraint order.
    pub columns: Vec<u16>,
    /// PRIMARY KEY (its columns are NOT NULL).
    pub primary: bool,
}

/// Where a table's rows live: the distribution key and the segments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    /// Distribution key column positions, in key order; empty = `DISTRIBUTED RANDOMLY`.
    pub key: Vec<u16>,
    /// Number of segments (content ids `0..segments`).
    pub segments: u16,
    /// How a key hash picks a segment.
    pub placement: Placement,
}

impl Layout {
    /// True for `DISTRIBUTED RANDOMLY`.
    pub fn is_random(&self) -> bool {
        self.key.is_empty()
    }

    /// The segment of a key hash under this layout.
    pub fn segment_of(&self, hash: u64) -> u16 {
        segment_for(hash, u32::from(self.segments.max(1)), self.placement) as u16
    }

    fn encode(&self, w: &mut Writer) {
        w.u16(self.segments).u8(match self.placement {
            Placement::Jump => 1,
            Placement::Modulo => 2,
        });
        w.u16(self.key.len() as u16);
        for k in &self.key {
            w.u16(*k);
        }
    }

    fn decode(r: &mut Reader<'_>) -> Option<Self> {
        let segments = r.u16()?;
        let placement = match r.u8()? {
            1 => Placement::Jump,
            2 => Placement::Modulo,
            _ => return None,
        };
        let n = r.u16()?;
        let key = (0..n).map(|_| r.u16()).collect::<Option<Vec<_>>>()?;
        (segments > 0).then_some(Self {
            key,
            segments,
            placement,
        })
    }
}

/// A redistribution in progress (DESIGN.md, "Redistribution"; `docs/redistribution.md`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Redistribution {
    /// The layout rows are moving to (version `layout_version + 1`).
    pub target: Layout,
    /// True once cancelled: rows move back from `target` to the table's `layout`.
    pub cancelling: bool,
    /// Blocks each segment's heap had when this phase (the start, or the cancel) began,
    /// indexed by content id: the mover visits only these.
    pub start_blocks: Vec<u32>,
}

/// A table definition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDef {
    /// Table id (names the files).
    pub id: u32,
    /// Name.
    pub name: String,
    /// Columns; empty for a raw table, whose payloads are opaque bytes (storage tests).
    pub columns: Vec<Column>,
    /// The layout rows are in (the old layout while redistributing).
    pub layout: Layout,
    /// Version of `layout`; a redistribution's target is version `layout_version + 1`.
    pub layout_version: u32,
    /// Migration bit carried by every live tuple in `layout`.
    pub migration_bit: bool,
    /// `Some` while redistributing (tuples in the target carry `!migration_bit`).
    pub redistribution: Option<Redistribution>,
    /// Bumped whenever the meaning of "old bit" changes (a start or a cancel); the VM
    /// files record it, and a VM of another epoch has no valid bits.
    pub epoch: u32,
    /// PRIMARY KEY and UNIQUE constraints; each contains every distribution-key column
    /// of the layout and of a redistribution target.
    pub unique: Vec<UniqueKey>,
}

impl TableDef {
    /// The column types, in order.
    pub fn column_types(&self) -> impl ExactSizeIterator<Item = Type> + '_ {
        self.columns.iter().map(|c| c.ty)
    }

    /// Where new row versions go, and the migration bit they carry: the target layout
    /// with the flipped bit while redistributing, the layout with its bit when stable or
    /// cancelling. Every live tuple carrying the other bit is one the mover must visit.
    pub fn write_layout(&self) -> (&Layout, bool) {
        match &self.redistribution {
            Some(r) if !r.cancelling => (&r.target, !self.migration_bit),
            _ => (&self.layout, self.migration_bit),
        }
    }

    /// The redistribution target, if redistributing.
    pub fn target(&self) -> Option<&Layout> {
        self.redistribution.as_ref().map(|r| &r.target)
    }

    /// Every distribution key the table's rows are indexed by: the layout's, and a
    /// redistribution target's when it differs (random layouts have none).
    pub fn index_keys(&self) -> Vec<Vec<u16>> {
        let mut keys = Vec::new();
        for l in std::iter::once(&self.layout).chain(self.target()) {
            if !l.is_random() && !keys.contains(&l.key) {
                keys.push(l.key.clone());
            }
        }
        keys
    }

    /// The key hash of a full row over the key columns `key`.
    pub fn key_hash(&self, key: &[u16], row: &[Value]) -> u64 {
        let mut h = KeyHasher::new();
        for k in key {
            let i = usize::from(*k);
            if let (Some(v), Some(c)) = (row.get(i), self.columns.get(i)) {
                v.hash_into(c.ty, &mut h);
            }
        }
        h.finish()
    }

    /// Checks the unique constraints against the columns and layouts (`docs/format.md`,
    /// "Catalog section"); the error says what is wrong.
    pub fn unique_keys_ok(&self) -> Result<(), String> {
        let mut primaries = 0;
        for u in &self.unique {
            if u.columns.is_empty() {
                return Err(format!("constraint {:?} has no columns", u.name));
            }
            for (i, c) in u.columns.iter().enumerate() {
                let Some(col) = self.columns.get(usize::from(*c)) else {
                    return Err(format!("constraint {:?} names column {c}", u.name));
                };
                if u.columns.iter().take(i).any(|o| o == c) {
                    return Err(format!(
                        "constraint {:?} names column {:?} twice",
                        u.name, col.name
                    ));
                }
                if u.primary && !col.not_null {
                    return Err(format!(
                        "primary key {:?}: column {:?} is not NOT NULL",
                        u.name, col.name
                    ));
                }
            }
            primaries += usize::from(u.primary);
            for l in std::iter::once(&self.layout).chain(self.target()) {
                if l.is_random() {
                    return Err(format!(
                        "constraint {:?}: a randomly distributed table cannot have a \
                         PRIMARY KEY or UNIQUE constraint",
                        u.name
                    ));
                }
                if let Some(k) = l.key.iter().find(|k| !u.columns.contains(k)) {
                    let name = self.columns.get(usize::from(*k)).map_or("?", |c| &c.name);
                    return Err(format!(
                        "constraint {:?} must contain every column of the distribution \
                         key; it lacks {name:?}",
                        u.name
                    ));
                }
            }
        }
        if primaries > 1 {
            return Err(format!(
                "multiple primary keys for table {:?} are not allowed",
                self.name
            ));
        }
        Ok(())
    }

    /// The position of the column called `name`.
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns.iter().position(|c| c.name == name)
    }

    /// The key hash of a full row under `layout`'s key (0 for a random layout).
    pub fn row_key_hash(&self, layout: &Layout, row: &[Value]) -> u64 {
        self.key_hash(&layout.key, row)
    }

    /// Encodes into `w`.
    pub fn encode(&self, w: &mut Writer) {
        w.u32(self.id).str16(&self.name);
        w.u16(self.columns.len() as u16);
        for c in &self.columns {
            let (code, n) = c.ty.code();
            let flags = u8::from(c.not_null) | if c.default.is_some() { 2 } else { 0 };
            w.str16(&c.name).u8(code).u32(n).u8(flags);
            if let Some(d) = &c.default {
                w.str16(d);
            }
        }
        self.layout.encode(w);
        w.u32(self.layout_version).u8(u8::from(self.migration_bit));
        w.u32(self.epoch);
        let constraints = if self.unique.is_empty() { 0 } else { 0x80 };
        match &self.redistribution {
            None => {
                w.u8(constraints);
            }
            Some(r) => {
                w.u8(constraints | if r.cancelling { 2 } else { 1 });
                r.target.encode(w);
                w.u16(r.start_blocks.len() as u16);
                for b in &r.start_blocks {
                    w.u32(*b);
                }
            }
        }
        if !self.unique.is_empty() {
            w.u16(self.unique.len() as u16);
            for u in &self.unique {
                w.str16(&u.name).u8(u8::from(u.primary));
                w.u16(u.columns.len() as u16);
                for c in &u.columns {
                    w.u16(*c);
                }
            }
        }
    }

    /// Decodes from `r`; `None` if the bytes are not a valid definition.
    pub fn decode(r: &mut Reader<'_>) -> Option<Self> {
        let id = r.u32()?;
        let name = r.str16()?;
        let n = r.u16()?;
        let mut columns = Vec::with_capacity(usize::from(n));
        for _ in 0..n {
            let name = r.str16()?;
            let code = r.u8()?;
            let len = r.u32()?;
            let ty = Type::from_code(code, len)?;
            let flags = r.u8()?;
            if flags & !3 != 0 {
                return None;
            }
            let default = if flags & 2 != 0 {
                Some(r.str16()?)
            } else {
                None
            };
            columns.push(Column {
                name,
                ty,
                not_null: flags & 1 != 0,
                default,
            });
        }
        let layout = Layout::decode(r)?;
        let layout_version = r.u32()?;
        let migration_bit = match r.u8()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let epoch = r.u32()?;
        let state = r.u8()?;
        let redistribution = match state & 0x7f {
            0 => None,
            phase @ (1 | 2) => {
                let target = Layout::decode(r)?;
                let n = r.u16()?;
                let start_blocks = (0..n).map(|_| r.u32()).collect::<Option<Vec<_>>>()?;
                Some(Redistribution {
                    target,
                    cancelling: phase == 2,
                    start_blocks,
                })
            }
            _ => return None,
        };
        let mut unique = Vec::new();
        if state & 0x80 != 0 {
            let n = r.u16()?;
            for _ in 0..n {
                let name = r.str16()?;
                let primary = match r.u8()? {
                    0 => false,
                    1 => true,
                    _ => return None,
                };
                let c = r.u16()?;
                let columns = (0..c).map(|_| r.u16()).collect::<Option<Vec<_>>>()?;
                unique.push(UniqueKey {
                    name,
                    columns,
                    primary,
                });
            }
            if unique.is_empty() {
                return None;
            }
        }
        let def = Self {
            id,
            name,
            columns,
            layout,
            layout_version,
            migration_bit,
            redistribution,
            epoch,
            unique,
        };
        let keys_ok = |l: &Layout| l.key.iter().all(|k| usize::from(*k) < def.columns.len());
        (keys_ok(&def.layout) && def.target().is_none_or(keys_ok) && def.unique_keys_ok().is_ok())
            .then_some(def)
    }
}

/// The catalog.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Catalog {
    /// Segment configuration, one entry per segment of this node.
    pub segments: Vec<SegmentConfig>,
    /// Tables.
    pub tables: Vec<TableDef>,
}

impl Catalog {
    /// The table with this id.
    pub fn table(&self, id: u32) -> Option<&TableDef> {
        self.tables.iter().find(|t| t.id == id)
    }

    /// The directory of segment `content`'s files for a node in `node_dir` (its
    /// configured directory when external, else `node_dir/segN` — also for a segment
    /// not in the configuration, such as one retired).
    pub fn segment_dir(&self, node_dir: &std::path::Path, content: u16) -> std::path::PathBuf {
        match self.segments.iter().find(|s| s.content == content) {
            Some(s) => s.dir(node_dir),
            None => node_dir.join(crate::datadir::segment_dir_name(content)),
        }
    }

    /// The table called `name`.
    pub fn table_by_name(&self, name: &str) -> Option<&TableDef> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// The content ids of the segments.
    pub fn contents(&self) -> Vec<u16> {
        self.segments.iter().map(|s| s.content).collect()
    }

    /// Adds or replaces (by id) a table definition.
    pub fn put_table(&mut self, def: TableDef) {
        match self.tables.iter_mut().find(|t| t.id == def.id) {
            Some(t) => *t = def,
            None => self.tables.push(def),
        }
    }

    /// Adds or replaces (by content id) a segment.
    pub fn put_segment(&mut self, cfg: SegmentConfig) {
        match self.segments.iter_mut().find(|s| s.content == cfg.content) {
            Some(s) => *s = cfg,
            None => self.segments.push(cfg),
        }
    }

    /// Encodes the catalog section of the control file.
    pub fn encode(&self, w: &mut Writer) {
        w.u16(self.segments.len() as u16);
        for s in &self.segments {
            s.encode(w);
        }
        w.u32(self.tables.len() as u32);
        for t in &self.tables {
            t.encode(w);
        }
    }

    /// Decodes the catalog section; `None` if it does not decode exactly.
    pub fn decode(buf: &[u8]) -> Option<Self> {
        let mut r = Reader::new(buf);
        let n = r.u16()?;
        let segments = (0..n)
            .map(|_| SegmentConfig::decode(&mut r))
            .collect::<Option<Vec<_>>>()?;
        let t = r.u32()?;
        let mut tables = Vec::new();
        for _ in 0..t {
            tables.push(TableDef::decode(&mut r)?);
        }
        r.is_empty().then_some(Self { segments, tables })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn sample() -> Catalog {
        Catalog {
            segments: vec![
                SegmentConfig::local(0, "/d/seg0".into()),
                SegmentConfig::local(1, "/d/seg1".into()),
            ],
            tables: vec![TableDef {
                id: 3,
                name: "orders".into(),
                columns: vec![
                    Column {
                        name: "id".into(),
                        ty: Type::Int8,
                        not_null: true,
                        default: None,
                    },
                    Column {
                        name: "note".into(),
                        ty: Type::Varchar(20),
                        not_null: false,
                        default: Some("'none'".into()),
                    },
                ],
                layout: Layout {
                    key: vec![0],
                    segments: 2,
                    placement: Placement::Jump,
                },
                layout_version: 4,
                migration_bit: true,
                redistribution: Some(Redistribution {
                    target: Layout {
                        key: vec![1, 0],
                        segments: 3,
                        placement: Placement::Modulo,
                    },
                    cancelling: true,
                    start_blocks: vec![7, 0, 9],
                }),
                epoch: 5,
                unique: vec![UniqueKey {
                    name: "orders_id_note_key".into(),
                    columns: vec![0, 1],
                    primary: false,
                }],
            }],
        }
    }

    #[test]
    fn unenforceable_constraints_do_not_decode() {
        for bad in [
            // A column the table lacks.
            vec![0, 9],
            // Without the target's key column 1.
            vec![0],
        ] {
            let mut cat = sample();
            if let Some(t) = cat.tables.first_mut() {
                if let Some(u) = t.unique.first_mut() {
                    u.columns = bad.clone();
                }
            }
            let mut w = Writer::default();
            cat.encode(&mut w);
            assert_eq!(Catalog::decode(&w.buf), None, "{bad:?}");
        }
        // A primary key over a nullable column.
        let mut cat = sample();
        if let Some(u) = cat.tables.first_mut().and_then(|t| t.unique.first_mut()) {
            u.primary = true;
        }
        let mut w = Writer::default();
        cat.encode(&mut w);
        assert_eq!(Catalog::decode(&w.buf), None);
    }

    #[test]
    fn catalog_round_trips_and_rejects_every_truncation() {
        let cat = sample();
        let mut w = Writer::default();
        cat.encode(&mut w);
        assert_eq!(Catalog::decode(&w.buf), Some(cat));
        for cut in 0..w.buf.len() {
            assert_eq!(Catalog::decode(&w.buf[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn a_key_column_out_of_range_does_not_decode() {
        let mut cat = sample();
        if let Some(t) = cat.tables.first_mut() {
            t.layout.key = vec![7];
        }
        let mut w = Writer::default();
        cat.encode(&mut w);
        assert_eq!(Catalog::decode(&w.buf), None);
    }
}
