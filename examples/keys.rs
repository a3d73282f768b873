//! Key management for the server side: create, list, revoke and roll API keys in a SQLite file
//! (`keys.db` here, created if missing) or, when `DATABASE_URL` is set, in PostgreSQL.
//!
//! ```sh
//! cargo run --example keys -- create alice --scope jobs:read      # prints the key, once
//! cargo run --example keys -- create bob --scope jobs:read --scope jobs:write --expires-in 90d
//! cargo run --example keys -- list
//! cargo run --example keys -- revoke <key id>
//! cargo run --example keys -- roll <key id> --overlap 1h          # new key; old one expires in 1 h
//! DATABASE_URL=postgres://localhost/app cargo run --example keys -- list
//! ```
//!
//! `cargo run --example axum_server -- --serve --database` serves an API checking these keys
//! (same file or `DATABASE_URL`); a revocation here is refused there within a second.

#[path = "shared/key_database.rs"]
mod key_database;

use std::error::Error;
use std::time::{Duration, SystemTime};

use tower_api_auth::server::sql::{IssuedKey, KeyDatabase, NewKey};

type Result<T = (), E = Box<dyn Error + Send + Sync>> = std::result::Result<T, E>;

const USAGE: &str = "usage: keys create <principal> [--scope S]... [--org O] [--expires-in 90d]
       keys list
       keys revoke <key id>
       keys roll <key id> [--overlap 1h]";

#[tokio::main(flavor = "current_thread")]
async fn main() -> std::process::ExitCode {
    match run().await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            // Display, not Debug: "no key has the id …", the usage text as it reads.
            eprintln!("{err}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run() -> Result {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(command) = args.first() else {
        return Err(USAGE.into());
    };
    let database = KeyDatabase::connect(&key_database::url(), key_database::format()?).await?;
    match (command.as_str(), args.get(1)) {
        ("create", Some(principal)) => {
            let mut key = NewKey::new(principal.as_str());
            let mut options = args[2..].iter();
            while let Some(option) = options.next() {
                let value = options.next().ok_or(USAGE)?;
                key = match option.as_str() {
                    "--scope" => key.scopes([value.as_str()]),
                    "--org" => key.organization(value.as_str()),
                    "--expires-in" => key.expires_at(SystemTime::now() + duration(option, value)?),
                    _ => return Err(USAGE.into()),
                };
            }
            print_issued(&database.create(key).await?);
        }
        ("list", None) => {
            println!(
                "{:<16}  {:<16}  {:<12}  {:<24}  {:<22}  last used",
                "id", "key starts", "principal", "scopes", "state"
            );
            let now = SystemTime::now();
            for key in database.list().await? {
                let state = match (key.revoked_at(), key.expires_at()) {
                    (Some(_), _) => "revoked".to_owned(),
                    (None, Some(at)) if at <= now => "expired".to_owned(),
                    (None, Some(at)) => format!("expires in {}", rough(at.duration_since(now)?)),
                    (None, None) => "active".to_owned(),
                };
                let last_used = key.last_used_at().map_or("never".to_owned(), |at| {
                    format!("{} ago", rough(now.duration_since(at).unwrap_or_default()))
                });
                println!(
                    "{:<16}  {:<16}  {:<12}  {:<24}  {state:<22}  {last_used}",
                    key.id(),
                    format!("{}…", key.start()),
                    key.principal(),
                    key.scopes().join(" "),
                );
            }
        }
        ("revoke", Some(id)) => match database.revoke(id).await? {
            true => println!(
                "revoked {id}: servers refuse it as soon as the change reaches them \
                 (PostgreSQL: at once; SQLite: within their poll interval, 1 s by default)"
            ),
            false => println!("{id} was revoked already"),
        },
        ("roll", Some(id)) => {
            let overlap = match args.get(2).map(String::as_str) {
                Some("--overlap") => duration("--overlap", args.get(3).ok_or(USAGE)?)?,
                None => Duration::from_secs(3600),
                Some(_) => return Err(USAGE.into()),
            };
            let issued = database.roll(id, overlap).await?;
            let overlap = humantime::format_duration(overlap);
            println!("rolled {id}: it stays valid for {overlap}");
            print_issued(&issued);
        }
        _ => return Err(USAGE.into()),
    }
    database.close().await;
    Ok(())
}

fn print_issued(issued: &IssuedKey) {
    let info = issued.info();
    println!("created key {} for {}", info.id(), info.principal());
    println!("scopes: {}", info.scopes().join(" "));
    // Shown once: the database keeps only its SHA-256 digest.
    println!("key (shown once, store it now): {}", issued.key().expose());
}

/// `value` of `option` as a duration (`90d`, `12h`, `30m`).
fn duration(option: &str, value: &str) -> Result<Duration> {
    humantime::parse_duration(value).map_err(|err| {
        format!("{option} {value}: {err} (a duration such as 90d, 12h or 30m)").into()
    })
}

/// A duration in its two largest units, rounded down to minutes: `89d 23h`, `5h 12m`, `42m`.
fn rough(duration: Duration) -> String {
    const HOUR: u64 = 60;
    const DAY: u64 = 24 * HOUR;
    match duration.as_secs() / 60 {
        0 => "under a minute".to_owned(),
        minutes if minutes < HOUR => format!("{minutes}m"),
        minutes if minutes < DAY => format!("{}h {}m", minutes / HOUR, minutes % HOUR),
        minutes => format!("{}d {}h", minutes / DAY, minutes % DAY / HOUR),
    }
}
