//! Table handles: a table resolved once, so a statement through the handle skips the
//! lookup by name (the catalog and table-map locks), and notices a DROP — also a DROP
//! followed by a CREATE of the same name, which makes a different table.

use crate::catalog::TableDef;
use crate::error::{Error, Result};
use crate::node::{Node, TableRt};
use std::sync::atomic::Ordering;
use std::sync::Arc;

/// A table of one node, resolved by [`Node::table`]. Cheap to clone; `Send` and `Sync`.
///
/// Statements take a handle wherever they take a name ([`TableRef`]). Through a handle
/// whose table was dropped they fail with [`Error::NoSuchTable`], even if a table of the
/// same name was created since (resolve the name again to reach that one). A
/// redistribution or TRUNCATE does not invalidate a handle: it is the same table.
#[derive(Clone)]
pub struct TableHandle {
    rt: Arc<TableRt>,
}

impl std::fmt::Debug for TableHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableHandle")
            .field("id", &self.rt.id)
            .field("name", &self.rt.def.read().name)
            .finish()
    }
}

impl TableHandle {
    /// The table's id (unique in its node, never reused).
    pub fn id(&self) -> u32 {
        self.rt.id
    }

    /// The table's current definition: its layout changes with redistributions.
    pub fn definition(&self) -> Arc<TableDef> {
        self.rt.def.read().clone()
    }

    /// Whether the table was dropped.
    pub fn is_dropped(&self) -> bool {
        self.rt.dropped.load(Ordering::Acquire)
    }
}

impl Node {
    /// Resolves the table called `name` to a handle.
    pub fn table(&self, name: &str) -> Result<TableHandle> {
        Ok(TableHandle {
            rt: self.table_rt_by_name(name)?,
        })
    }
}

pub(crate) mod sealed {
    use super::*;

    /// A table's run-time state, opaque outside the crate.
    pub struct Resolved(pub(crate) Arc<TableRt>);

    /// How a [`TableRef`](super::TableRef) finds its table.
    pub trait Resolve {
        /// The table's run-time state in `node`.
        fn resolve(&self, node: &Node) -> Result<Resolved>;
    }
}

/// What a statement names its table by: a name (`&str`, `String`), looked up on each
/// statement, or a [`TableHandle`], looked up once.
pub trait TableRef: sealed::Resolve {}

impl sealed::Resolve for str {
    fn resolve(&self, node: &Node) -> Result<sealed::Resolved> {
        node.table_rt_by_name(self).map(sealed::Resolved)
    }
}
impl TableRef for str {}

impl sealed::Resolve for String {
    fn resolve(&self, node: &Node) -> Result<sealed::Resolved> {
        node.table_rt_by_name(self).map(sealed::Resolved)
    }
}
impl TableRef for String {}

impl sealed::Resolve for TableHandle {
    fn resolve(&self, node: &Node) -> Result<sealed::Resolved> {
        if self.rt.node != node.instance {
            return Err(Error::InvalidArgument(format!(
                "the handle of table {:?} belongs to another node",
                self.rt.def.read().name
            )));
        }
        if self.is_dropped() {
            return Err(Error::NoSuchTable(self.rt.def.read().name.clone()));
        }
        Ok(sealed::Resolved(self.rt.clone()))
    }
}
impl TableRef for TableHandle {}

impl<T: sealed::Resolve + ?Sized> sealed::Resolve for &T {
    fn resolve(&self, node: &Node) -> Result<sealed::Resolved> {
        (**self).resolve(node)
    }
}
impl<T: TableRef + ?Sized> TableRef for &T {}
