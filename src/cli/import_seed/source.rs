//! Reading the Python service's tables `user_00` … `user_99` (columns `id
//! integer`, `password varchar(256)`, `state smallint`, `create_time` and
//! `update_time timestamp`, local time of that server, no zone), a page at
//! a time in id order.

use postgres::Client;

use super::plan::{table_name, OldRow};

/// Rows read per query.
pub const PAGE: i64 = 500;

/// Whether `user_NN` exists in the source, and how many rows it has.
pub fn count(source: &mut Client, table: u8) -> Result<Option<i64>, postgres::Error> {
    let name = table_name(table);
    let exists: bool = source
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&name])?
        .try_get(0)?;
    if !exists {
        return Ok(None);
    }
    let n: i64 = source
        .query_one(&format!("SELECT count(*) FROM {name}"), &[])?
        .try_get(0)?;
    Ok(Some(n))
}

/// Up to [`PAGE`] rows of `user_NN` with ids above `after`. The times are
/// the source server's local time: `AT TIME ZONE` its session time zone
/// (the server's own `TimeZone` unless the URI sets one) turns them into
/// instants, which arrive here as UTC.
pub fn page(source: &mut Client, table: u8, after: i64) -> Result<Vec<OldRow>, postgres::Error> {
    let sql = format!(
        "SELECT id::bigint, password, state, \
                create_time AT TIME ZONE current_setting('TimeZone'), \
                update_time AT TIME ZONE current_setting('TimeZone') \
         FROM {} WHERE id > $1::bigint ORDER BY id LIMIT $2::bigint",
        table_name(table)
    );
    source
        .query(&sql, &[&after, &PAGE])?
        .iter()
        .map(|r| {
            Ok(OldRow {
                table,
                id: r.try_get(0)?,
                password: r.try_get(1)?,
                state: r.try_get(2)?,
                created: r.try_get(3)?,
                updated: r.try_get(4)?,
            })
        })
        .collect()
}
