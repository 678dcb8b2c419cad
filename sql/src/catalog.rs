//! Catalog tables served from the node's own state: `gp_segment_configuration` (as
//! Greenplum's). psql's `pg_catalog` queries (`\dt`, `\d t`, `\l`) are not served yet.

use crate::expr::Scope;
use crate::Session;
use segexpand_engine::{Type, Value};

/// The rows of catalog table `name`, with its scope; `None` if it is not one.
pub(crate) fn virtual_table(
    s: &Session,
    name: &str,
    alias: Option<String>,
) -> Option<(Scope, Vec<Vec<Value>>)> {
    let mut names = vec![name.to_string()];
    names.extend(alias);
    match name {
        "gp_segment_configuration" => {
            let columns = [
                ("dbid", Type::Int2),
                ("content", Type::Int2),
                ("role", Type::Char(1)),
                ("preferred_role", Type::Char(1)),
                ("mode", Type::Char(1)),
                ("status", Type::Char(1)),
                ("port", Type::Int4),
                ("hostname", Type::Text),
                ("address", Type::Text),
                ("datadir", Type::Text),
            ];
            let rows = s
                .node
                .segment_configuration()
                .into_iter()
                .map(|c| {
                    vec![
                        Value::Int2(i16::try_from(c.dbid).unwrap_or(i16::MAX)),
                        Value::Int2(i16::try_from(c.content).unwrap_or(i16::MAX)),
                        Value::Text(c.role.to_string()),
                        Value::Text(c.preferred_role.to_string()),
                        Value::Text(c.mode.to_string()),
                        Value::Text(c.status.to_string()),
                        Value::Int4(i32::from(c.port)),
                        Value::Text(c.hostname),
                        Value::Text(c.address),
                        Value::Text(c.datadir),
                    ]
                })
                .collect();
            Some((
                Scope {
                    names,
                    columns: columns.iter().map(|(n, t)| (n.to_string(), *t)).collect(),
                    segment_id: false,
                },
                rows,
            ))
        }
        _ => None,
    }
}
