//! SQLite's page reads (ListConversations, GetConversation) on connections of their
//! own, one thread each, through rusqlite: a page is one hop to its thread and back.
//!
//! Why not sqlx, which every other read uses: a profile of GetConversation (BENCHMARKS.md,
//! "Delivery at Twilio's limits, GetConversation in one query") spent ~12 % of the core in
//! thread switches and as much again in sqlx's value handling. sqlx's SQLite driver runs
//! the statement on its worker thread and hands the rows over one at a time, copying
//! every column value (`sqlite3_value_dup`) before it is decoded; a page of 50 rows × 43
//! columns is thousands of copies and dozens of wake-ups. Here the whole page is read and
//! decoded on the connection's thread, values in place, with the statement cached.
//!
//! Both drivers link the same bundled SQLite (`libsqlite3-sys`, with the QPSG and
//! MEMSTATUS options of `.cargo/config.toml`). The connections are `query_only` and see
//! what the write pipeline committed (WAL), like the sqlx readers.

use std::{
    path::{Path, PathBuf},
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::Duration,
};

use chrono::{DateTime, NaiveDateTime, Utc};
use rusqlite::{
    Connection, OpenFlags, Row,
    types::{ToSqlOutput, ValueRef},
};
use sea_orm::{
    DbErr, QueryResult,
    sea_query::{SelectStatement, SqliteQueryBuilder, Value},
};
use tokio::sync::oneshot;

/// Reader threads: what two cores can use (the loader's 64 callers wait on the sqlx
/// pool's 8 connections today; two threads reading while the other core serves).
const READERS: usize = 4;

type Job = Box<dyn FnOnce(&Connection) + Send>;

/// Handle to the reader threads; cheap to clone. The threads end when the last handle
/// is dropped.
#[derive(Clone, Debug)]
pub struct SqliteReads {
    lanes: Arc<[mpsc::Sender<Job>]>,
    next: Arc<AtomicUsize>,
}

impl SqliteReads {
    /// Opens [`READERS`] read-only connections to the file at `path`, each on its own
    /// thread.
    pub fn open(path: &Path) -> Result<Self, DbErr> {
        let mut lanes = Vec::with_capacity(READERS);
        for i in 0..READERS {
            let conn = connect(path)?;
            let (tx, rx) = mpsc::channel::<Job>();
            std::thread::Builder::new()
                .name(format!("sqlite-read-{i}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        job(&conn);
                    }
                })
                .map_err(|e| DbErr::Custom(format!("starting a SQLite reader: {e}")))?;
            lanes.push(tx);
        }
        Ok(Self {
            lanes: lanes.into(),
            next: Arc::default(),
        })
    }

    /// Runs `q` on a reader thread and decodes each row there with `decode`.
    pub async fn rows<T, F>(&self, q: &SelectStatement, decode: F) -> Result<Vec<T>, DbErr>
    where
        T: Send + 'static,
        F: Fn(&Row<'_>) -> Result<T, DbErr> + Send + 'static,
    {
        let (sql, values) = q.build(SqliteQueryBuilder);
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = reply.send(read(conn, &sql, &values.0, decode));
        });
        let lane = self.next.fetch_add(1, Ordering::Relaxed) % self.lanes.len();
        self.lanes[lane]
            .send(job)
            .map_err(|_| DbErr::Custom("the SQLite readers stopped".into()))?;
        answer
            .await
            .map_err(|_| DbErr::Custom("a SQLite reader stopped mid-read".into()))?
    }
}

fn connect(path: &Path) -> Result<Connection, DbErr> {
    let path: PathBuf = path.into();
    // Read-write flags with `query_only`: a read-only connection to a WAL file needs
    // its shared-memory file in a state this process does not control.
    let conn = Connection::open_with_flags(
        &path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(lite)?;
    conn.busy_timeout(Duration::from_secs(10)).map_err(lite)?;
    conn.pragma_update(None, "query_only", true).map_err(lite)?;
    // The same memory map as the sqlx connections.
    conn.pragma_update(None, "mmap_size", super::SQLITE_MMAP_BYTES as i64)
        .map_err(lite)?;
    conn.set_prepared_statement_cache_capacity(32);
    Ok(conn)
}

fn read<T>(
    conn: &Connection,
    sql: &str,
    values: &[Value],
    decode: impl Fn(&Row<'_>) -> Result<T, DbErr>,
) -> Result<Vec<T>, DbErr> {
    let mut stmt = conn.prepare_cached(sql).map_err(lite)?;
    let mut rows = stmt
        .query(rusqlite::params_from_iter(values.iter().map(Bind)))
        .map_err(lite)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(lite)? {
        out.push(decode(row)?);
    }
    Ok(out)
}

fn lite(e: rusqlite::Error) -> DbErr {
    DbErr::Custom(format!("SQLite read: {e}"))
}

/// A sea-query value bound as sqlx binds it, so a bound value compares with what the
/// write pipeline stored: times as RFC 3339 text with `+00:00`, booleans as integers.
struct Bind<'a>(&'a Value);

impl rusqlite::ToSql for Bind<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        use rusqlite::types::Value as V;
        Ok(match self.0 {
            Value::Bool(Some(b)) => ToSqlOutput::Owned(V::Integer(i64::from(*b))),
            Value::Int(Some(i)) => ToSqlOutput::Owned(V::Integer(i64::from(*i))),
            Value::BigInt(Some(i)) => ToSqlOutput::Owned(V::Integer(*i)),
            Value::BigUnsigned(Some(u)) => ToSqlOutput::Owned(V::Integer(
                i64::try_from(*u).map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into()))?,
            )),
            Value::String(Some(s)) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
            Value::Bytes(Some(b)) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            Value::ChronoDateTimeUtc(Some(t)) => ToSqlOutput::Owned(V::Text(
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false),
            )),
            Value::Bool(None)
            | Value::Int(None)
            | Value::BigInt(None)
            | Value::BigUnsigned(None)
            | Value::String(None)
            | Value::Bytes(None)
            | Value::ChronoDateTimeUtc(None) => ToSqlOutput::Owned(V::Null),
            other => {
                return Err(rusqlite::Error::ToSqlConversionFailure(
                    format!("no SQLite binding for {other:?}").into(),
                ));
            }
        })
    }
}

/// A row whose columns are read by position, through either driver (the page decoders
/// in `pages.rs` take both).
pub trait RowAt {
    fn cell<T: Cell>(&self, i: usize) -> Result<T, DbErr>;
}

impl RowAt for QueryResult {
    fn cell<T: Cell>(&self, i: usize) -> Result<T, DbErr> {
        T::from_orm(self, i)
    }
}

impl RowAt for Row<'_> {
    fn cell<T: Cell>(&self, i: usize) -> Result<T, DbErr> {
        T::from_lite(self, i)
    }
}

/// A column type the page decoders read.
pub trait Cell: Sized {
    fn from_orm(row: &QueryResult, i: usize) -> Result<Self, DbErr>;
    fn from_lite(row: &Row<'_>, i: usize) -> Result<Self, DbErr>;
}

macro_rules! cells {
    ($($t:ty),*) => {$(
        impl Cell for $t {
            fn from_orm(row: &QueryResult, i: usize) -> Result<Self, DbErr> {
                row.try_get_by_index(i)
            }
            fn from_lite(row: &Row<'_>, i: usize) -> Result<Self, DbErr> {
                row.get(i).map_err(lite)
            }
        }
        impl Cell for Option<$t> {
            fn from_orm(row: &QueryResult, i: usize) -> Result<Self, DbErr> {
                row.try_get_by_index(i)
            }
            fn from_lite(row: &Row<'_>, i: usize) -> Result<Self, DbErr> {
                row.get(i).map_err(lite)
            }
        }
    )*};
}

cells!(String, i32, i64, bool);

impl Cell for Vec<u8> {
    fn from_orm(row: &QueryResult, i: usize) -> Result<Self, DbErr> {
        row.try_get_by_index(i)
    }
    fn from_lite(row: &Row<'_>, i: usize) -> Result<Self, DbErr> {
        Option::<Vec<u8>>::from_lite(row, i)?
            .ok_or_else(|| DbErr::Custom(format!("column {i}: bytes are NULL")))
    }
}

impl Cell for Option<Vec<u8>> {
    fn from_orm(row: &QueryResult, i: usize) -> Result<Self, DbErr> {
        row.try_get_by_index(i)
    }
    /// A blob, or text's bytes as sqlx reads them (SQLite's `||` makes text of blobs, so
    /// a row changed by hand must still read, and fail its integrity check, not this).
    fn from_lite(row: &Row<'_>, i: usize) -> Result<Self, DbErr> {
        match row.get_ref(i).map_err(lite)? {
            ValueRef::Null => Ok(None),
            ValueRef::Blob(b) | ValueRef::Text(b) => Ok(Some(b.to_vec())),
            _ => Err(DbErr::Custom(format!("column {i}: not bytes"))),
        }
    }
}

impl Cell for DateTime<Utc> {
    fn from_orm(row: &QueryResult, i: usize) -> Result<Self, DbErr> {
        row.try_get_by_index(i)
    }
    fn from_lite(row: &Row<'_>, i: usize) -> Result<Self, DbErr> {
        Option::<DateTime<Utc>>::from_lite(row, i)?
            .ok_or_else(|| DbErr::Custom(format!("column {i}: a time is NULL")))
    }
}

impl Cell for Option<DateTime<Utc>> {
    fn from_orm(row: &QueryResult, i: usize) -> Result<Self, DbErr> {
        row.try_get_by_index(i)
    }
    fn from_lite(row: &Row<'_>, i: usize) -> Result<Self, DbErr> {
        match row.get_ref(i).map_err(lite)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(text) => {
                let text = std::str::from_utf8(text)
                    .map_err(|_| DbErr::Custom(format!("column {i}: a time is not UTF-8")))?;
                time_of(text)
                    .map(Some)
                    .ok_or_else(|| DbErr::Custom(format!("column {i}: not a time: {text}")))
            }
            ValueRef::Integer(secs) => Ok(DateTime::from_timestamp(secs, 0)),
            _ => Err(DbErr::Custom(format!("column {i}: not a time"))),
        }
    }
}

/// A stored time as sqlx reads it: RFC 3339 (how it writes one), else SQLite's own
/// `YYYY-MM-DD HH:MM:SS[.f]` in UTC.
fn time_of(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    ["%F %T%.f", "%FT%T%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_back_as_sqlx_writes_and_sqlite_writes_them() {
        let t = crate::store::now();
        let written = t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, false);
        assert_eq!(time_of(&written), Some(t));
        assert_eq!(
            time_of("2026-12-04 02:38:16.5"),
            DateTime::parse_from_rfc3339("2026-12-04T02:38:16.5Z")
                .ok()
                .map(|t| t.with_timezone(&Utc))
        );
        assert_eq!(time_of("yesterday"), None);
    }
}
