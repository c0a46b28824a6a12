//! The database's files are private to the user tidings runs as: they hold
//! every message, address and API key hash. The directory is created 0700
//! and the database file 0600 before SQLite opens it — SQLite gives the
//! WAL and shared-memory files the database file's mode, so they follow —
//! and files an older version left readable are tightened.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// Make the directory and database file at `path` if missing, private.
pub(crate) fn prepare(path: &Path) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        private_dir(dir)?;
    }
    private_file(path)?;
    for suffix in ["-wal", "-shm", "-journal"] {
        let mut p = OsString::from(path.as_os_str());
        p.push(suffix);
        tighten(&PathBuf::from(p), 0o600);
    }
    Ok(())
}

/// Create a directory and its parents, 0700.
#[cfg(unix)]
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
pub fn private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn private_file(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(path)?;
    tighten(path, 0o600);
    Ok(())
}

#[cfg(not(unix))]
fn private_file(_: &Path) -> std::io::Result<()> {
    Ok(())
}

/// Take away permissions beyond `mode` from an existing file or directory,
/// with a warning when that is not possible (a file system without modes,
/// a file of another user).
#[cfg(unix)]
pub fn tighten(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.permissions().mode() & 0o777 & !mode == 0 {
        return;
    }
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        tracing::warn!(path = %path.display(), error = %e, "cannot make the file private");
    }
}

#[cfg(not(unix))]
pub fn tighten(_: &Path, _: u32) {}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &std::path::Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_database_files_are_private() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let db = dir.join("tidings.db");
        super::prepare(&db).unwrap();
        assert_eq!((mode(&dir), mode(&db)), (0o700, 0o600));
        let wal = dir.join("tidings.db-wal");
        std::fs::write(&wal, b"").unwrap();
        for p in [&db, &wal] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        super::prepare(&db).unwrap();
        assert_eq!((mode(&db), mode(&wal)), (0o600, 0o600));
    }
}
