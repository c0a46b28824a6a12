//! The data directory is private to the user tidings runs as: it holds
//! the database (messages, addresses, API key hashes) and the keys that
//! sign tracking links and VERP return paths, which would let anyone who
//! reads them forge opens, clicks, unsubscribes and bounces. It is created
//! 0700 and each key file 0600 from the start (written to a private
//! temporary file, then renamed, so no moment exists where it is open);
//! a directory or key an older version left readable is tightened at each
//! start. The database's own files are the store's to make private.

use std::path::Path;

use tidings_store::sqlite::files::{private_dir as create, tighten};

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
