//! Writing accounts copied from the Python service's tables (`profiteer
//! import-seed`): many rows per transaction, each keeping its id and times,
//! and never failing the batch for one row that is there already.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use postgres::GenericClient;

/// One account to write; its password already a bcrypt hash.
pub struct Seeded {
    pub id: i64,
    pub username: String,
    pub password_hash: String,
    pub state: &'static str,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// The accounts among `ids` that exist already: id -> username.
pub fn existing(
    client: &mut impl GenericClient,
    ids: &[i64],
) -> Result<HashMap<i64, String>, postgres::Error> {
    client
        .query("SELECT id, username FROM users WHERE id = ANY($1)", &[&ids])?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect()
}

/// Inserts `row` unless its id or username is taken: `false` then.
pub fn insert(client: &mut impl GenericClient, row: &Seeded) -> Result<bool, postgres::Error> {
    let inserted = client.execute(
        "INSERT INTO users (id, username, password_hash, state, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
        &[
            &row.id,
            &row.username,
            &row.password_hash,
            &row.state,
            &row.created_at,
            &row.updated_at,
        ],
    )?;
    Ok(inserted == 1)
}
