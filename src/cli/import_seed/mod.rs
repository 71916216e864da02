//! `profiteer import-seed --from PG_URI`: copies every row of the Python
//! service's tables `user_00` … `user_99` into profiteer's database (the
//! config's `[PG] PG_URI`), keeping ids, states and creation times.
//!
//! - Plaintext passwords are bcrypt-hashed at `[AUTH] BCRYPT_COST` on every
//!   core (rayon); this is offline work, so the hashing lane does not apply.
//!   bcrypt hashes are kept as they are.
//! - Resumable: ids already in profiteer as `user_<id>` are skipped before
//!   any hashing, so a second run only copies what is new.
//! - Refused rows are listed with the reason, and the rest goes on.
//! - The id sequence is moved above each page before it is written, so a
//!   running instance never hands out an id being imported.
//!
//! Progress (rows per second, ETA) goes to stderr; the report to stdout.

mod plan;
mod source;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::Utc;
use rayon::prelude::*;

use super::Failure;
use crate::domain::UserState;
use crate::store::seeded::{self, Seeded};
use crate::store::{accounts, pg};
use crate::thrift::username_for;
use crate::Config;
use plan::{plan, table_name, OldRow, Password, Planned, Refusal};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The Python service's PostgreSQL, holding user_00 … user_99
    /// (e.g. postgres://user@host/olddb); only read
    #[arg(long = "from", value_name = "PG_URI")]
    from: String,
}

/// What became of the rows, for the report.
#[derive(Default)]
struct Tally {
    imported: u64,
    present: u64,
    /// (table, id, reason)
    refused: Vec<(u8, i64, String)>,
    /// Wrong-table rows, completed at the end: (table, id, belongs_in).
    misplaced: Vec<(u8, i64, u8)>,
    /// Ids found in their own table, to say whether a misplaced one is a
    /// duplicate.
    placed: HashSet<i64>,
    /// Tables the source does not have.
    missing: Vec<u8>,
}

struct Progress {
    total: u64,
    done: u64,
    started: Instant,
    printed: Instant,
}

impl Progress {
    fn advance(&mut self, n: u64, table: u8) {
        self.done += n;
        if self.printed.elapsed() < Duration::from_secs(1) && self.done < self.total {
            return;
        }
        self.printed = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = self.done as f64 / secs;
        let eta = if rate > 0.0 {
            format!(
                "{:.0} s",
                self.total.saturating_sub(self.done) as f64 / rate
            )
        } else {
            "?".into()
        };
        eprintln!(
            "import-seed: {} {}/{} rows ({:.1}%), {:.0} rows/s, ETA {eta}",
            table_name(table),
            self.done,
            self.total,
            100.0 * self.done as f64 / self.total.max(1) as f64,
            rate
        );
    }
}

pub fn run(config: Config, args: &Args) -> Result<(), Failure> {
    let src_config: postgres::Config = args
        .from
        .parse()
        .map_err(|_| Failure::Refused("--from: not a PostgreSQL URI".into()))?;
    let mut source = src_config
        .connect(postgres::NoTls)
        .map_err(|e| Failure::Failed(format!("--from: cannot connect ({e})")))?;
    let mut target = pg::connect_one(&config.pg).map_err(Failure::Failed)?;
    pg::migrate(&mut target).map_err(Failure::Failed)?;
    let src = |e: postgres::Error| Failure::Failed(format!("reading --from: {e}"));
    let dst = |e: postgres::Error| Failure::Failed(format!("writing [PG] PG_URI: {e}"));

    let mut tables = Vec::new();
    let mut tally = Tally::default();
    for table in 0..100u8 {
        match source::count(&mut source, table).map_err(src)? {
            Some(n) => tables.push((table, n)),
            None => tally.missing.push(table),
        }
    }
    let mut progress = Progress {
        total: tables.iter().map(|(_, n)| *n as u64).sum(),
        done: 0,
        started: Instant::now(),
        printed: Instant::now(),
    };
    let cost = config.auth.bcrypt_cost;
    for (table, _) in tables {
        let mut after = i64::MIN;
        loop {
            let rows = source::page(&mut source, table, after).map_err(src)?;
            let Some(last) = rows.last() else { break };
            after = last.id;
            let n = rows.len() as u64;
            copy_page(&mut target, rows, cost, &mut tally).map_err(dst)?;
            progress.advance(n, table);
        }
    }
    report(tally, progress.started.elapsed());
    Ok(())
}

/// Plans, hashes and writes one page of rows.
fn copy_page(
    target: &mut postgres::Client,
    rows: Vec<OldRow>,
    cost: u32,
    tally: &mut Tally,
) -> Result<(), postgres::Error> {
    let now = Utc::now();
    let mut planned: Vec<Planned> = Vec::new();
    for row in rows {
        let (table, id) = (row.table, row.id);
        match plan(row, cost, now) {
            Ok(p) => {
                tally.placed.insert(p.id);
                planned.push(p);
            }
            Err(Refusal::WrongTable { belongs_in }) => {
                tally.misplaced.push((table, id, belongs_in))
            }
            Err(Refusal::NotPositive) => {
                tally
                    .refused
                    .push((table, id, "id is not a positive number".into()))
            }
            Err(Refusal::Other(reason)) => tally.refused.push((table, id, reason)),
        }
    }
    // Resuming: what is there already is neither hashed nor written again.
    let ids: Vec<i64> = planned.iter().map(|p| p.id).collect();
    let existing = seeded::existing(target, &ids)?;
    planned.retain(|p| match existing.get(&p.id) {
        None => true,
        Some(name) if *name == username_for(p.id) => {
            tally.present += 1;
            false
        }
        Some(name) => {
            tally.refused.push((
                plan::table_of(p.id),
                p.id,
                format!("id taken in profiteer by the account {name:?}"),
            ));
            false
        }
    });
    // bcrypt on every core: the slow part, so only for rows to be written.
    let accounts: Vec<Result<Seeded, (i64, String)>> = planned
        .into_par_iter()
        .map(|p| {
            let password_hash = match p.password {
                Password::Keep(hash) => hash,
                Password::Hash(plain) => {
                    bcrypt::hash(plain, cost).map_err(|e| (p.id, format!("bcrypt: {e}")))?
                }
                Password::Unusable => crate::model::password::NO_PASSWORD.to_string(),
            };
            Ok(Seeded {
                id: p.id,
                username: username_for(p.id),
                password_hash,
                state: if p.active {
                    UserState::Active
                } else {
                    UserState::Disabled
                }
                .as_str(),
                created_at: p.created,
                updated_at: p.updated,
            })
        })
        .collect();
    if let Some(max) = ids.iter().max() {
        accounts::allocate_above(target, *max)?;
    }
    let mut tx = target.transaction()?;
    for account in accounts {
        match account {
            Ok(a) => {
                if seeded::insert(&mut tx, &a)? {
                    tally.imported += 1;
                } else {
                    tally.refused.push((
                        plan::table_of(a.id),
                        a.id,
                        format!("the username {} is taken by another account", a.username),
                    ));
                }
            }
            Err((id, reason)) => tally.refused.push((plan::table_of(id), id, reason)),
        }
    }
    tx.commit()
}

fn report(mut tally: Tally, took: Duration) {
    for (table, id, belongs_in) in std::mem::take(&mut tally.misplaced) {
        let own = table_name(belongs_in);
        let also = if tally.placed.contains(&id) {
            format!("{own} holds it too: a duplicate")
        } else {
            format!("{own} does not hold it")
        };
        tally.refused.push((
            table,
            id,
            format!("in the wrong table: id {id} belongs in {own} ({also})"),
        ));
    }
    tally.refused.sort();
    println!(
        "import-seed: {} imported, {} already there, {} refused, in {:.1} s",
        tally.imported,
        tally.present,
        tally.refused.len(),
        took.as_secs_f64()
    );
    if !tally.missing.is_empty() {
        let names: Vec<String> = tally.missing.iter().map(|t| table_name(*t)).collect();
        println!("tables not in the source: {}", names.join(" "));
    }
    for (table, id, reason) in &tally.refused {
        println!("refused {} id {id}: {reason}", table_name(*table));
    }
}
