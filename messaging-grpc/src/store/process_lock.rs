//! SQLite is one process: the process serving a SQLite database holds an exclusive OS
//! file lock on `<database>.lock` next to it for as long as it runs, and a second
//! process on the same file refuses to start instead of contending for (or, on a
//! network file system, corrupting) the database. The lock ends with the process,
//! however it ends (a `kill -9` included): no stale lock is ever left to clean up.

use std::{
    fs::{File, OpenOptions},
    io::Write as _,
    path::{Path, PathBuf},
};

/// Held for as long as the process uses the database; dropping it releases the lock.
#[derive(Debug)]
pub struct SqliteProcessLock {
    _file: File,
    path: PathBuf,
}

impl SqliteProcessLock {
    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// Takes the single-process lock of `database_url` when it is a SQLite file; `None`
/// for PostgreSQL and in-memory databases (nothing to lock).
pub fn lock_sqlite(database_url: &str) -> anyhow::Result<Option<SqliteProcessLock>> {
    let Some(db) = super::sqlite_path(database_url) else {
        return Ok(None);
    };
    let path = lock_path(db);
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow::anyhow!("creating database folder {}: {e}", parent.display()))?;
    }
    let mut file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .read(true)
        .write(true)
        .open(&path)
        .map_err(|e| anyhow::anyhow!("opening the lock file {}: {e}", path.display()))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(std::fs::TryLockError::WouldBlock) => {
            let holder = std::fs::read_to_string(&path).unwrap_or_default();
            let holder = holder.trim();
            let holder = if holder.is_empty() {
                String::new()
            } else {
                format!(" (process {holder})")
            };
            anyhow::bail!(
                "DATABASE_URL: the SQLite database {} is already in use by another messaging process{holder}. \
                 SQLite is for one process: stop the other one, or use PostgreSQL to run several replicas.",
                db.display()
            );
        }
        Err(std::fs::TryLockError::Error(e)) => {
            anyhow::bail!("locking {}: {e}", path.display());
        }
    }
    // Who holds it, for the message above (best effort: the lock is what counts).
    let _ = file
        .set_len(0)
        .and_then(|()| writeln!(file, "{}", std::process::id()));
    Ok(Some(SqliteProcessLock { _file: file, path }))
}

/// `<database file name>.lock` in the database's folder.
fn lock_path(db: &Path) -> PathBuf {
    let mut name = db.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    db.with_file_name(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_file_is_refused() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("m.db").display());
        let first = lock_sqlite(&url).ok().flatten();
        assert!(first.is_some());
        let second = lock_sqlite(&url).map(|_| ()).unwrap_err().to_string();
        assert!(second.contains("already in use"), "{second}");
        drop(first);
        assert!(lock_sqlite(&url).ok().flatten().is_some());
        assert!(lock_sqlite("postgres://x/y").ok().flatten().is_none());
        assert!(lock_sqlite("sqlite::memory:").ok().flatten().is_none());
    }
}
