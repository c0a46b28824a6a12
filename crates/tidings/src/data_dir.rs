//! The data directory is private to the user tidings runs as: it holds
//! the database (messages, addresses, API key hashes) and the keys that
//! sign tracking links and VERP return paths, which would let anyone who
//! reads them forge opens, clicks, unsubscribes and bounces. It is created
//! 0700 and each key file 0600 from the start (written to a private
//! temporary file, then renamed, so no moment exists where it is open);
//! a directory or key an older version left readable is tightened at each
//! start. The database's own files are the store's to make private.

use std::path::Path;

/// The key files kept in the data directory.
const KEYS: [&str; 2] = ["tracking.key", "verp.key"];

/// Create the directory if missing; make it and the keys in it private.
pub fn prepare(dir: &Path) -> std::io::Result<()> {
    create(dir)?;
    tighten(dir, 0o700);
    for k in KEYS {
        tighten(&dir.join(k), 0o600);
    }
    Ok(())
}

/// Write `bytes` to `path` as a private file, replacing it whole.
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

#[cfg(unix)]
fn create(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

/// Take away permissions beyond `mode`, with a warning when that is not
/// possible (a file system without modes, a file of another user).
#[cfg(unix)]
fn tighten(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return;
    };
    if meta.permissions().mode() & 0o777 & !mode == 0 {
        return;
    }
    match std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)) {
        Ok(()) => {
            tracing::info!(path = %path.display(), mode = format!("{mode:o}"), "made private")
        }
        Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot make private"),
    }
}

#[cfg(not(unix))]
fn tighten(_: &Path, _: u32) {}
