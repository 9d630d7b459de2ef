//! Opening the store a `--db` / `BUILDSTATE_DB` value names:
//!
//! - `postgres://…` or `postgresql://…`, or libpq's key/value form (`host=db dbname=bs
//!   user=ci`) — PostgreSQL, for fleets of CI workers;
//! - `file:///dir`, or a directory that already holds one — JSON files, one document per
//!   build;
//! - any other path — the embedded SQLite file;
//! - nothing — the default SQLite file, `<data dir>/buildstate/buildstate.db`.
//!
//! A store that does not exist is created only by a command that can put something in
//! it, and only inside a directory that exists (`init` creates the directories too): a
//! typo in `--db` must fail, not become a new empty store whose emptiness a read then
//! reports as the truth. For the same reason an empty file is no store yet, and a
//! device or FIFO (`/dev/null`) never is one: SQLite would make either "work". Object
//! storage (`s3://`, `az://`, `gs://`) is not a store but a place for copies, and is
//! refused here with a pointer to `--sync`.
//!
//! Nothing here prints the value given: a PostgreSQL connection string carries its
//! password, so messages use the backend's redacted location, and paths are shown
//! through the same redactor as `config show` ([`shown`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use buildstate_files::FileStore;
use buildstate_postgres::PostgresStore;
use buildstate_sqlite::SqliteStore;
use buildstate_store::{Store, StoreError};

use crate::exit::{CliError, io_error};
use buildstate_postgres::conninfo;

use crate::config;

/// What a command does with the store, which decides what happens when it is missing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Needs what is already there: reads, and writes to existing builds, catalog items
    /// and failures. A missing store is an error (exit 3), never created.
    Existing,
    /// May put the first things in a store (catalog items, builds, imports, pipeline
    /// runs): a missing store is created, inside a directory that exists.
    Create,
    /// `init`: creates the store and any directories above it.
    Init,
}

/// An open store and what the CLI needs to know about it.
#[derive(Debug)]
pub struct Opened {
    pub store: Arc<dyn Store>,
    /// Where the store is, for people: never contains a password.
    pub location: String,
    /// How steps reach the same store (`BUILDSTATE_DB`): for PostgreSQL the URL as
    /// given — steps run here with our environment, the password is theirs already.
    pub step_db: String,
    /// A local path whose siblings `logs/` and `sync/` hold this store's attempt logs
    /// and copy state by default: the SQLite file itself; a name inside a JSON store's
    /// directory; a name in a directory of its own under the data dir for PostgreSQL.
    /// Never shared between two stores.
    pub local_anchor: PathBuf,
    pub schema_version: u32,
}

/// The store's own `logs` or `sync` directory, beside its anchor. The default SQLite
/// file (`buildstate.db`) and the anchors of JSON and PostgreSQL stores (each in a
/// directory of its own) use the plain names; any other SQLite file `NAME.db` gets
/// `NAME.logs` / `NAME.sync`, so that two stores in one directory never share attempt
/// logs or copy state (shared copy state let one machine's ETags become the base of
/// another's writes).
pub fn beside(anchor: &Path, what: &str) -> PathBuf {
    match anchor.file_stem().and_then(|s| s.to_str()) {
        Some(stem) if !matches!(stem, "buildstate" | "store") => {
            anchor.with_file_name(format!("{stem}.{what}"))
        }
        _ => anchor.with_file_name(what),
    }
}

/// Where a `--db` value points, before anything is opened.
#[derive(Debug, PartialEq, Eq)]
enum Spec {
    Postgres(String),
    /// `explicit`: named with `file://`, so an existing directory may become a store.
    Files {
        dir: PathBuf,
        explicit: bool,
    },
    /// `default`: not given, the data dir's file (whose directories are ours to create).
    Sqlite {
        path: PathBuf,
        default: bool,
    },
}

pub async fn open(given: Option<&Path>, access: Access) -> Result<Opened, CliError> {
    match spec(given)? {
        Spec::Postgres(url) => open_postgres(&url).await,
        Spec::Files { dir, explicit } => open_files(dir, explicit, access),
        Spec::Sqlite { path, default } => open_sqlite(path, default, access),
    }
}

fn spec(given: Option<&Path>) -> Result<Spec, CliError> {
    let Some(given) = given.filter(|p| !p.as_os_str().is_empty()) else {
        let path = config::db_path(None)?;
        return Ok(Spec::Sqlite { path, default: true });
    };
    let text = given.to_string_lossy();
    // libpq's other form: a file whose name has a `host=` word is no SQLite path (as
    // for libpq), and such a string must never reach a "no store at PATH" message.
    if conninfo::is_key_value(&text) {
        return Ok(Spec::Postgres(text.into_owned()));
    }
    if let Some((scheme, rest)) = url_scheme(&text) {
        return match scheme.to_ascii_lowercase().as_str() {
            "postgres" | "postgresql" => Ok(Spec::Postgres(text.into_owned())),
            "file" => {
                let path = rest.strip_prefix("localhost").unwrap_or(rest);
                if path.is_empty() {
                    return Err(CliError::usage("--db file:// needs a directory")
                        .with_hint("give it as file:///path/to/dir"));
                }
                Ok(Spec::Files { dir: absolute(Path::new(path))?, explicit: true })
            }
            // The scheme only: the rest of the URL may carry credentials.
            "s3" | "az" | "azure" | "gs" => Err(CliError::usage(format!(
                "--db cannot be object storage ({scheme}://…): builds are copied there, not kept there"
            ))
            .with_hint(format!(
                "keep the store in a file, a directory or PostgreSQL, and pass the {scheme}:// URL as --sync (or BUILDSTATE_SYNC) to copy every change to it"
            ))),
            _ => Err(CliError::usage(format!("--db does not know the scheme {scheme}://"))
                .with_hint("give a path (SQLite), file:///dir (JSON files) or postgres://…")),
        };
    }
    // `postgres:/u:pw@db/bs`, one slash short: a URL with its password, not a file to
    // name in "no store at PATH".
    let lower = text.get(..11).unwrap_or(&text).to_ascii_lowercase();
    if let Some(scheme) = ["postgresql:", "postgres:"].into_iter().find(|p| lower.starts_with(p)) {
        return Err(CliError::usage(format!("--db starts with {scheme} but is not a {scheme}// URL"))
            .with_hint("give PostgreSQL as postgres://user@host/database or as host=… dbname=… user=…; a SQLite file named so as ./postgres:…"));
    }
    let path = absolute(given)?;
    Ok(if path.is_dir() {
        Spec::Files { dir: path, explicit: false }
    } else {
        Spec::Sqlite { path, default: false }
    })
}

/// `("s3", "bucket/prefix")` for `s3://bucket/prefix`: a scheme is a letter, then
/// letters, digits, `+`, `-` or `.` (RFC 3986), so `./a://b` stays a path.
fn url_scheme(text: &str) -> Option<(&str, &str)> {
    let (scheme, rest) = text.split_once("://")?;
    let mut chars = scheme.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some((scheme, rest))
}

/// Relative paths are resolved here, once: steps run in other directories and must
/// reach the same store, and logs recorded with a relative path would be lost.
fn absolute(path: &Path) -> Result<PathBuf, CliError> {
    std::path::absolute(path).map_err(|e| io_error(&format!("resolve the store path {}", shown(path)), &e))
}

async fn open_postgres(url: &str) -> Result<Opened, CliError> {
    let store = PostgresStore::connect(url).await.map_err(|e| match e {
        // The backend hides `password`; a string it cannot read may hold other secrets
        // (`sslpassword`, which it does not know), so it is shown as `config show` does.
        StoreError::Unavailable { reason, .. } => {
            StoreError::Unavailable { location: config::redact_url(url), reason }
        }
        other => other,
    })?;
    let location = Store::location(&store);
    Ok(Opened {
        schema_version: store.schema_version(),
        local_anchor: postgres_anchor(url)?,
        location,
        step_db: url.to_owned(),
        store: Arc::new(store),
    })
}

fn open_files(dir: PathBuf, explicit: bool, access: Access) -> Result<Opened, CliError> {
    let step_db = format!("file://{}", dir.display());
    let location = config::redact_url(&step_db);
    if dir.exists() && !dir.is_dir() {
        return Err(CliError::usage(format!("{location} is not a directory, which a JSON-file store is"))
            .with_hint(
                "give file:// a directory; for a SQLite store give --db the file's path without file://",
            ));
    }
    let exists = holds_file_store(&dir);
    if !exists {
        if !explicit {
            return Err(not_a_store(&dir));
        }
        may_create(&location, &dir, false, access, false)?;
    }
    let store = FileStore::open(&dir)?;
    if !exists {
        announce(&location);
    }
    Ok(Opened {
        schema_version: 1,
        step_db,
        location,
        local_anchor: dir.join("buildstate.json-store"),
        store: Arc::new(store),
    })
}

fn open_sqlite(path: PathBuf, default: bool, access: Access) -> Result<Opened, CliError> {
    let location = shown(&path);
    let at = what_is_at(&path);
    let exists = match at {
        At::Nothing | At::EmptyFile => false,
        At::Store => true,
        At::NotAFile(kind) => {
            return Err(CliError::usage(format!("{location} is {kind}, not a file that can hold a store"))
                .with_hint("give --db (or BUILDSTATE_DB) the path of a SQLite file, file:///dir for JSON files, or postgres://…"));
        }
    };
    if !exists {
        may_create(&location, &path, default, access, at == At::EmptyFile)?;
    }
    tracing::debug!(path = %location, "opening store");
    let store = match SqliteStore::open(&path) {
        Ok(store) => store,
        // A store shipped read-only (file 0444, a read-only directory or mount) cannot
        // be opened for writing; commands that need an existing store may still read
        // it, and its writes are refused as unavailable.
        Err(e @ StoreError::Unavailable { .. }) if exists && access == Access::Existing => {
            SqliteStore::open_read_only(&path).map_err(|_| e)?
        }
        Err(e) => return Err(e.into()),
    };
    if !exists {
        announce(&location);
    }
    Ok(Opened {
        schema_version: store.schema_version(),
        step_db: path.display().to_string(),
        location,
        local_anchor: path,
        store: Arc::new(store),
    })
}

/// What a SQLite path holds, before SQLite is let near it: opening a path creates and
/// migrates whatever is there, so an empty file would silently become a store (for a
/// read, too), and `/dev/null` would "work" and lose every write.
#[derive(Debug, PartialEq, Eq)]
enum At {
    /// Nothing, or a dangling symbolic link.
    Nothing,
    /// A regular file of 0 bytes (`touch`, a failed copy): no store yet. A store being
    /// created has its first page written before anything else, so this is never a
    /// store in the making, unless its write-ahead log already holds the pages.
    EmptyFile,
    Store,
    /// A device, FIFO or socket (`/dev/null`): never a store; the words say which.
    NotAFile(&'static str),
}

fn what_is_at(path: &Path) -> At {
    use std::os::unix::fs::FileTypeExt;
    // `metadata` follows symbolic links: a link to /dev/null is /dev/null.
    let Ok(meta) = std::fs::metadata(path) else { return At::Nothing };
    let kind = meta.file_type();
    if kind.is_file() {
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let wal_has_pages = std::fs::metadata(PathBuf::from(wal)).is_ok_and(|m| m.len() > 0);
        return if meta.len() == 0 && !wal_has_pages { At::EmptyFile } else { At::Store };
    }
    At::NotAFile(if kind.is_char_device() || kind.is_block_device() {
        "a device"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_dir() {
        // `spec` sends directories to the JSON-file store; one that appeared since.
        "a directory"
    } else {
        "not a regular file"
    })
}

/// Whether `access` may create the missing store at `path`: `init` anywhere, other
/// writers only inside a directory that exists (or under the data dir, ours to make).
/// `empty`: an empty file is there, which a command that creates a store makes one.
fn may_create(
    location: &str,
    path: &Path,
    default: bool,
    access: Access,
    empty: bool,
) -> Result<(), CliError> {
    let init = if default {
        "buildstate init".to_owned()
    } else {
        format!("buildstate init --db {}", shell_word(location))
    };
    match access {
        Access::Init => Ok(()),
        Access::Existing => {
            let empty = if empty { " (an empty file)" } else { "" };
            Err(CliError::not_found(format!("no store at {location}{empty}; create it with `{init}`")))
        }
        Access::Create => match path.parent().filter(|p| !default && !p.is_dir()) {
            None => Ok(()),
            Some(parent) => Err(CliError::not_found(format!(
                "no store at {location}, and no directory {} to create it in",
                shown(parent)
            ))
            .with_hint(format!(
                "check --db or BUILDSTATE_DB; `{init}` creates the store and its directories"
            ))),
        },
    }
}

/// Creating a store is never silent (unless asked with `--quiet`): it is what a
/// mistyped path looks like.
fn announce(location: &str) {
    crate::output::notice(format!("created a new store at {location}"));
}

/// A JSON-file store marks its directory with a `format` file before anything else.
// The marker's name is `buildstate-files`' layout; a `FileStore::holds_store(dir)`
// there would keep it in one place.
fn holds_file_store(dir: &Path) -> bool {
    dir.join("format").is_file()
}

/// An existing directory given without `file://` and holding no store: which was meant?
fn not_a_store(dir: &Path) -> CliError {
    let sqlite = shown(&dir.join("buildstate.db"));
    let hint = if dir.join("buildstate.db").is_file() {
        format!("did you mean the SQLite store in it, --db {}?", shell_word(&sqlite))
    } else {
        format!(
            "for a SQLite store give a file (--db {}); to keep a JSON-file store in this directory, --db {}",
            shell_word(&sqlite),
            shell_word(&config::redact_url(&format!("file://{}", dir.display())))
        )
    };
    CliError::usage(format!("{} is a directory that holds no store", shown(dir))).with_hint(hint)
}

/// A path of the store for messages: through the redactor of `config show`, which
/// leaves a path as it is, unless it holds what would be a URL's password.
fn shown(path: &Path) -> String {
    config::redact_url(&path.display().to_string())
}

/// `<data dir>/buildstate/postgres/<name>/store`, the name from what identifies the
/// database ([`conninfo::store_name`]: hosts, port, database, search path; not the
/// password, user or TLS options): the runs of each PostgreSQL store keep their logs
/// and copy state in a directory of their own, apart from the default SQLite store's
/// and from each other's, wherever the URL asks for TLS.
/// A `buildstate serve` as the store (`--server`). Nothing is sent yet: the first call
/// says whether the server answers and takes the token.
pub fn open_server(url: &str, token: Option<&str>) -> Result<Opened, CliError> {
    let store = buildstate_client::HttpStore::new(url, token)?;
    let location = Store::location(&store);
    let default = config::default_db_path().ok_or_else(|| {
        CliError::usage("cannot find a data directory for local run logs (is HOME set?)")
            .with_hint("pass --logs-dir DIR")
    })?;
    // This machine's attempt logs and copy state for runs through this server.
    let slug: String = location
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '.' | '-') { c } else { '_' })
        .take(120)
        .collect();
    Ok(Opened {
        // The server's store is its own: it has no schema version a client can see.
        schema_version: 0,
        local_anchor: default.with_file_name("servers").join(slug).join("store"),
        // A step reaches the same server through `BUILDSTATE_DB=https://…`, with the
        // token it inherits in BUILDSTATE_TOKEN.
        step_db: location.clone(),
        location,
        store: Arc::new(store),
    })
}

fn postgres_anchor(conninfo: &str) -> Result<PathBuf, CliError> {
    let default = config::default_db_path().ok_or_else(|| {
        CliError::usage("cannot find a data directory for local run logs (is HOME set?)")
            .with_hint("pass --logs-dir DIR")
    })?;
    Ok(default.with_file_name("postgres").join(conninfo::store_name(conninfo)).join("store"))
}

/// `text` as one shell word, quoted only when it needs to be, for commands in hints.
fn shell_word(text: &str) -> String {
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_alphanumeric() || "/._-+:,@%=".contains(c)) {
        text.to_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> Result<Spec, String> {
        spec(Some(Path::new(text))).map_err(|e| e.to_string())
    }

    #[test]
    fn schemes_choose_the_backend() {
        assert_eq!(parsed("postgres://u:p@db/x"), Ok(Spec::Postgres("postgres://u:p@db/x".into())));
        assert_eq!(parsed("PostgreSQL://db/x"), Ok(Spec::Postgres("PostgreSQL://db/x".into())));
        assert_eq!(parsed("file:///srv/bs"), Ok(Spec::Files { dir: "/srv/bs".into(), explicit: true }));
        assert_eq!(
            parsed("file://localhost/srv/bs"),
            Ok(Spec::Files { dir: "/srv/bs".into(), explicit: true })
        );
        assert_eq!(
            parsed("/no/such/bs.db"),
            Ok(Spec::Sqlite { path: "/no/such/bs.db".into(), default: false })
        );
        // Not a scheme: a path with `://` in it.
        assert_eq!(parsed("/x/a://b"), Ok(Spec::Sqlite { path: "/x/a://b".into(), default: false }));
    }

    #[test]
    fn object_storage_and_unknown_schemes_are_refused_without_echoing_the_url() {
        for url in ["s3://key:s3cret@bucket/p", "az://c/p?sig=s3cret", "gs://b/p", "sqlite://u:s3cret@x"] {
            let e = spec(Some(Path::new(url))).expect_err(url);
            assert_eq!(e.exit, crate::exit::Exit::Usage, "{url}");
            assert!(!e.to_string().contains("s3cret"), "{url}: {e}");
        }
        let e = spec(Some(Path::new("s3://bucket/p"))).expect_err("s3");
        assert!(e.to_string().contains("s3://…"), "{e}");
    }

    #[test]
    fn relative_paths_are_made_absolute() {
        match parsed("rel/bs.db") {
            Ok(Spec::Sqlite { path, default: false }) => {
                assert!(path.is_absolute() && path.ends_with("rel/bs.db"), "{}", path.display())
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn key_value_connection_strings_are_postgres() {
        let kv = "host=db user=x password=secret dbname=y";
        assert_eq!(parsed(kv), Ok(Spec::Postgres(kv.into())));
        assert_eq!(parsed("dbname = y"), Ok(Spec::Postgres("dbname = y".into())));
        assert!(matches!(parsed("/srv/a=b.db"), Ok(Spec::Sqlite { .. })));
    }

    #[test]
    fn a_postgres_url_one_slash_short_is_refused_without_echoing_it() {
        for text in ["postgres:/ci:s3cret@db/bs", "PostgreSQL:ci:s3cret@db/bs", "postgres:s3cret"] {
            let e = spec(Some(Path::new(text))).expect_err(text);
            assert_eq!(e.exit, crate::exit::Exit::Usage, "{text}");
            assert!(!format!("{e} {e:?}").contains("s3cret"), "{text}: {e:?}");
        }
    }

    #[test]
    fn postgres_stores_get_a_directory_of_their_own() {
        let tls = "postgres://ci:pw@db/a?sslmode=require&sslrootcert=/etc/ca.pem";
        assert_eq!(postgres_anchor(tls).ok(), postgres_anchor("postgres://ci@db/a").ok(), "{tls}");
        if let (Ok(anchor), Some(default)) = (postgres_anchor("postgres://db/a"), config::default_db_path()) {
            let logs = anchor.with_file_name("logs");
            assert_ne!(logs, default.with_file_name("logs"), "not the default store's logs");
            assert!(logs.ends_with("buildstate/postgres/db_a/logs"), "{}", logs.display());
        }
    }

    #[test]
    fn hints_quote_what_a_shell_would_split() {
        assert_eq!(shell_word("/srv/bs.db"), "/srv/bs.db");
        assert_eq!(shell_word("/my dir/it's.db"), r"'/my dir/it'\''s.db'");
    }
}
