//! What becomes of one row of the old tables: refused (with the reason the
//! report prints), or an account to write, its password to hash first or
//! kept as the bcrypt hash it is. Pure, so every rule is unit-tested here.

use chrono::{DateTime, Utc};

use crate::domain::password::MAX_BYTES;
use crate::model::password as pw;

/// A row as read from `user_NN`, times already in UTC. `password` is
/// secret: this type has no `Debug`.
pub struct OldRow {
    pub table: u8,
    pub id: i64,
    pub password: Option<String>,
    pub state: Option<i16>,
    pub created: Option<DateTime<Utc>>,
    pub updated: Option<DateTime<Utc>>,
}

pub enum Password {
    /// A bcrypt hash, stored as it is.
    Keep(String),
    /// Plaintext, to be hashed at `BCRYPT_COST`.
    Hash(String),
    /// NULL: an account without a usable password (`pw::NO_PASSWORD`).
    Unusable,
}

/// An account to write, once its password is settled.
pub struct Planned {
    pub id: i64,
    pub password: Password,
    pub active: bool,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
}

/// Why a row is refused; `WrongTable` is completed in the report with
/// whether the id's own table holds it too.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    NotPositive,
    WrongTable { belongs_in: u8 },
    Other(String),
}

/// The table an id lives in: its last two decimal digits.
pub fn table_of(id: i64) -> u8 {
    (id.rem_euclid(100)) as u8
}

pub fn table_name(n: u8) -> String {
    format!("user_{n:02}")
}

/// Applies the rules: the id is positive and in its own table; a password
/// is not empty, and either a bcrypt hash of an acceptable cost or
/// plaintext bcrypt can take whole; a NULL password makes an account
/// without a usable password (login refused until a reset); NULL state is
/// 0 (active), any other state is disabled; NULL times are `now`.
pub fn plan(row: OldRow, config_cost: u32, now: DateTime<Utc>) -> Result<Planned, Refusal> {
    if row.id <= 0 {
        return Err(Refusal::NotPositive);
    }
    if table_of(row.id) != row.table {
        return Err(Refusal::WrongTable {
            belongs_in: table_of(row.id),
        });
    }
    let password = match row.password {
        None => Password::Unusable,
        Some(p) if p.is_empty() => return Err(Refusal::Other("password is empty".into())),
        Some(p) if pw::is_bcrypt(&p) => match pw::acceptable_hash(&p, config_cost) {
            Ok(_) => Password::Keep(p),
            Err(_) => {
                return Err(Refusal::Other(format!(
                    "bcrypt hash of cost {}, above [AUTH] BCRYPT_COST + {} = {}",
                    pw::cost_of(&p).unwrap_or(0),
                    pw::MAX_COST_ABOVE_CONFIG,
                    config_cost + pw::MAX_COST_ABOVE_CONFIG
                )))
            }
        },
        Some(p) if p.len() > MAX_BYTES => {
            return Err(Refusal::Other(format!(
                "plaintext password over {MAX_BYTES} bytes (bcrypt reads {MAX_BYTES}; never cut)"
            )))
        }
        Some(p) => Password::Hash(p),
    };
    let created = row.created.unwrap_or(now);
    Ok(Planned {
        id: row.id,
        password,
        active: row.state.unwrap_or(0) == 0,
        created,
        updated: row.updated.unwrap_or(now),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(table: u8, id: i64, password: Option<&str>) -> OldRow {
        OldRow {
            table,
            id,
            password: password.map(str::to_string),
            state: None,
            created: None,
            updated: None,
        }
    }

    #[test]
    fn an_id_lives_in_the_table_of_its_last_two_digits() {
        assert_eq!(table_of(5), 5);
        assert_eq!(table_of(1701), 1);
        assert_eq!(table_of(105), 5);
        assert_eq!(table_name(5), "user_05");
        let now = Utc::now();
        assert!(plan(row(5, 105, Some("pw")), 12, now).is_ok());
        assert_eq!(
            plan(row(7, 105, Some("pw")), 12, now).err(),
            Some(Refusal::WrongTable { belongs_in: 5 })
        );
        assert_eq!(
            plan(row(0, 0, Some("pw")), 12, now).err(),
            Some(Refusal::NotPositive)
        );
    }

    #[test]
    fn passwords_are_hashed_kept_made_unusable_or_refused_with_a_reason() {
        let now = Utc::now();
        let reason = |r: OldRow| match plan(r, 4, now) {
            Err(Refusal::Other(reason)) => reason,
            _ => String::new(),
        };
        assert!(matches!(
            plan(row(1, 1, None), 4, now).map(|p| p.password),
            Ok(Password::Unusable)
        ));
        assert_eq!(reason(row(1, 1, Some(""))), "password is empty");
        assert!(reason(row(1, 1, Some(&"x".repeat(73)))).contains("over 72 bytes"));
        let costly = bcrypt::hash("pw", 7).unwrap();
        assert!(reason(row(1, 1, Some(&costly))).contains("cost 7"));
        let kept = bcrypt::hash("pw", 6).unwrap();
        assert!(matches!(
            plan(row(1, 1, Some(&kept)), 4, now).map(|p| p.password),
            Ok(Password::Keep(h)) if h == kept
        ));
        assert!(matches!(
            plan(row(1, 1, Some("123456")), 4, now).map(|p| p.password),
            Ok(Password::Hash(p)) if p == "123456"
        ));
    }

    #[test]
    fn null_state_is_active_other_states_disabled_null_times_now() {
        let now = Utc::now();
        let mut r = row(2, 2, Some("pw"));
        let p = plan(r, 4, now).unwrap();
        assert!(p.active);
        assert_eq!((p.created, p.updated), (now, now));
        r = row(2, 2, Some("pw"));
        r.state = Some(3);
        assert!(!plan(r, 4, now).unwrap().active);
    }
}
