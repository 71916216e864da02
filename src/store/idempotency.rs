//! PostgreSQL queries on `idempotency_keys`: the first successful answer
//! of a call that named a key, kept a day.

use postgres::GenericClient;

/// One key: whose (the calling client's name, `""` without `[CLIENTS]`),
/// for which method, and the SHA-256 of the params it came with.
pub struct Scope<'a> {
    pub client: &'a str,
    pub method: &'a str,
    pub key: &'a str,
    pub params_hash: &'a [u8; 32],
}

/// What a key was kept with.
#[derive(Debug, PartialEq)]
pub enum Kept {
    /// The same params: the answer, as JSON text.
    Answer(String),
    /// Other params.
    OtherParams,
}

/// How long a key is kept.
const KEPT: &str = "24 hours";

/// The key's kept answer, if it was kept within a day.
pub fn recall(
    client: &mut impl GenericClient,
    scope: &Scope,
) -> Result<Option<Kept>, postgres::Error> {
    let Some(row) = client.query_opt(
        &format!(
            "SELECT params_hash, answer FROM idempotency_keys \
             WHERE client = $1 AND method = $2 AND key = $3 \
               AND created_at > now() - interval '{KEPT}'"
        ),
        &[&scope.client, &scope.method, &scope.key],
    )?
    else {
        return Ok(None);
    };
    let hash: &[u8] = row.try_get(0)?;
    Ok(Some(if hash == scope.params_hash.as_slice() {
        Kept::Answer(row.try_get(1)?)
    } else {
        Kept::OtherParams
    }))
}

/// Keeps `answer` for the key; `false` if the key is kept already (by a
/// call that committed first). Run it in the transaction of the work the
/// answer is about, so the two commit together.
pub fn remember(
    client: &mut impl GenericClient,
    scope: &Scope,
    answer: &str,
) -> Result<bool, postgres::Error> {
    // A key older than a day is forgotten, even before retention runs.
    client.execute(
        &format!(
            "DELETE FROM idempotency_keys WHERE client = $1 AND method = $2 AND key = $3 \
             AND created_at <= now() - interval '{KEPT}'"
        ),
        &[&scope.client, &scope.method, &scope.key],
    )?;
    Ok(client.execute(
        "INSERT INTO idempotency_keys (client, method, key, params_hash, answer) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        &[
            &scope.client,
            &scope.method,
            &scope.key,
            &scope.params_hash.as_slice(),
            &answer,
        ],
    )? == 1)
}

/// Keys older than a day, for the retention job; how many went.
pub fn forget_old(client: &mut impl GenericClient) -> Result<u64, postgres::Error> {
    client.execute(
        &format!("DELETE FROM idempotency_keys WHERE created_at <= now() - interval '{KEPT}'"),
        &[],
    )
}
