//! The Python peers the tests talk to — aiosmtpd as a recipient MX, dkimpy
//! as an independent DKIM verifier, and the standard library's `smtplib`
//! and `email` — run in one virtual environment that the tests make for
//! themselves, so `cargo test` needs nothing but a `python3` on PATH.
//!
//! - The environment is `target/py-peers` (in the workspace's target
//!   directory), made from `crates/testkit/python-peers.txt`, which pins
//!   every package exactly. Nothing is ever installed into the system
//!   Python.
//! - It is made once and reused by every test binary. Whoever makes it holds
//!   an exclusive lock on `target/py-peers.lock`; test processes that start
//!   at the same time wait on that lock and then find it ready.
//! - Ready means the marker `target/py-peers/.ready`, written last (to a
//!   temporary name, then renamed) and holding the requirements it was made
//!   from. A half-made environment has no marker, and one made from other
//!   requirements has a different one: both are removed and made again.
//! - A peer that cannot be had fails the test with one line that names it
//!   and the first error, e.g. `Python peer aiosmtpd unavailable: pip
//!   install into …/target/py-peers failed: ERROR: Could not find a version
//!   that satisfies the requirement aiosmtpd==1.4.6`.

use std::fs::{self, OpenOptions};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

/// What an environment is made from.
struct Spec<'a> {
    /// The pinned requirements; the marker holds them, so a change remakes
    /// the environment.
    requirements: &'a str,
    /// A statement that must run once they are installed.
    imports: &'a str,
    /// Extra environment variables for pip.
    pip_env: &'a [(&'a str, &'a str)],
}

/// The peers of the tests.
const PEERS: Spec<'static> = Spec {
    requirements: include_str!("../python-peers.txt"),
    imports: "import aiosmtpd, dkim, nacl",
    pip_env: &[],
};

/// The environment's interpreter, for scripts that use only the standard
/// library. Panics with one line if the environment cannot be had.
pub fn interpreter() -> PathBuf {
    match environment() {
        Ok(python) => python.clone(),
        Err(why) => panic!("Python peers unavailable: {why}"),
    }
}

/// The environment's interpreter, for a script that needs `peer` (a package
/// of `python-peers.txt`, e.g. `aiosmtpd` or `dkimpy`). Panics with one line
/// naming `peer` if the environment cannot be had.
pub fn interpreter_for(peer: &str) -> PathBuf {
    match environment() {
        Ok(python) => python.clone(),
        Err(why) => panic!("Python peer {peer} unavailable: {why}"),
    }
}

/// The environment, made or found once per process.
fn environment() -> &'static Result<PathBuf, String> {
    static ENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    ENV.get_or_init(|| {
        let target = target_dir();
        ensure(
            &target.join("py-peers"),
            &target.join("py-peers.lock"),
            &PEERS,
        )
    })
}

/// The target directory the running test binary was built into (the
/// nearest ancestor holding cargo's `CACHEDIR.TAG`), else the workspace's
/// `target/`.
fn target_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| {
            exe.ancestors()
                .find(|d| d.join("CACHEDIR.TAG").is_file())
                .map(Path::to_path_buf)
        })
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"))
}

/// The interpreter of the environment at `dir`, made first unless it is
/// ready; `lock` serialises the making across processes.
fn ensure(dir: &Path, lock: &Path, spec: &Spec) -> Result<PathBuf, String> {
    let python = dir.join("bin").join("python");
    let marker = dir.join(".ready");
    let ready =
        || python.exists() && fs::read_to_string(&marker).is_ok_and(|m| m == spec.requirements);
    if ready() {
        return Ok(python);
    }
    if let Some(parent) = lock.parent() {
        fs::create_dir_all(parent)
            .map_err(|e| format!("cannot create {}: {e}", parent.display()))?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock)
        .map_err(|e| format!("cannot open {}: {e}", lock.display()))?;
    let mut lock_file = fd_lock::RwLock::new(file);
    let _held = lock_file
        .write()
        .map_err(|e| format!("cannot lock {}: {e}", lock.display()))?;
    // Another process may have made it while this one waited.
    if ready() {
        return Ok(python);
    }
    make(dir, &python, spec)?;
    let tmp = dir.join(".ready.tmp");
    fs::write(&tmp, spec.requirements)
        .and_then(|()| fs::rename(&tmp, &marker))
        .map_err(|e| format!("cannot write {}: {e}", marker.display()))?;
    Ok(python)
}

/// Make the environment at `dir` from scratch: a venv from the `python3` on
/// PATH, the pinned requirements, and a check that the peers import.
fn make(dir: &Path, python: &Path, spec: &Spec) -> Result<(), String> {
    match fs::remove_dir_all(dir) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot remove the old {}: {e}", dir.display())),
    }
    run(
        Command::new("python3").arg("-m").arg("venv").arg(dir),
        &format!("python3 -m venv {} failed", dir.display()),
    )?;
    let requirements = dir.join("requirements.txt");
    fs::write(&requirements, spec.requirements)
        .map_err(|e| format!("cannot write {}: {e}", requirements.display()))?;
    run(
        Command::new(python)
            .args(["-m", "pip", "install", "--quiet", "--no-input"])
            .args(["--disable-pip-version-check", "--require-virtualenv"])
            .arg("-r")
            .arg(&requirements)
            .envs(spec.pip_env.iter().copied()),
        &format!("pip install into {} failed", dir.display()),
    )?;
    run(
        Command::new(python).args(["-c", spec.imports]),
        &format!("{} cannot `{}`", dir.display(), spec.imports),
    )
}

/// Run `cmd`; on failure, `what` and the first line of its error.
fn run(cmd: &mut Command, what: &str) -> Result<(), String> {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .map_err(|e| format!("{what}: cannot run {:?}: {e}", cmd.get_program()))?;
    if out.status.success() {
        return Ok(());
    }
    Err(format!(
        "{what}: {}",
        first_error(&String::from_utf8_lossy(&out.stderr))
    ))
}

/// The line of `stderr` that says what went wrong: pip's first `ERROR:`
/// (its retries print warnings before it), else a Python exception's last
/// line, else the first line.
fn first_error(stderr: &str) -> &str {
    let all: Vec<&str> = stderr
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    all.iter()
        .find(|l| l.starts_with("ERROR:"))
        .or_else(|| {
            all.first()
                .filter(|l| l.starts_with("Traceback"))
                .and(all.last())
        })
        .or(all.first())
        .copied()
        .unwrap_or("(no error output)")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec with no packages (pip asks no index, so these run offline)
    /// whose import check appends a line to `log`: one line per making.
    fn spec<'a>(requirements: &'a str, check: &'a str) -> Spec<'a> {
        Spec {
            requirements,
            imports: check,
            pip_env: &[("PIP_NO_INDEX", "1")],
        }
    }

    fn check(log: &Path) -> String {
        format!("open({:?}, 'a').write('made\\n')", log.to_str().unwrap())
    }

    fn makings(log: &Path) -> usize {
        fs::read_to_string(log).map_or(0, |s| s.lines().count())
    }

    #[test]
    fn processes_starting_at_once_make_it_once() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, lock, log) = (
            tmp.path().join("env"),
            tmp.path().join("env.lock"),
            tmp.path().join("log"),
        );
        let check = check(&log);
        // Each thread opens the lock file itself, as separate processes do.
        let made: Vec<_> = std::thread::scope(|s| {
            let all: Vec<_> = (0..4)
                .map(|_| s.spawn(|| ensure(&dir, &lock, &spec("# none\n", &check))))
                .collect();
            all.into_iter()
                .map(|t| t.join().unwrap().unwrap())
                .collect()
        });
        assert_eq!(makings(&log), 1);
        assert!(made.iter().all(|p| *p == dir.join("bin/python")));
        let out = Command::new(&made[0])
            .args(["-c", "import sys; print(sys.prefix)"])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            dir.to_str().unwrap()
        );
    }

    #[test]
    fn it_is_reused_and_made_again_when_half_made_or_the_requirements_change() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, lock, log) = (
            tmp.path().join("env"),
            tmp.path().join("env.lock"),
            tmp.path().join("log"),
        );
        let check = check(&log);
        let (a, b) = (spec("# a\n", &check), spec("# b\n", &check));
        ensure(&dir, &lock, &a).unwrap();
        ensure(&dir, &lock, &a).unwrap();
        assert_eq!(makings(&log), 1, "reused");
        fs::remove_file(dir.join(".ready")).unwrap();
        fs::write(dir.join("leftover"), "").unwrap();
        ensure(&dir, &lock, &a).unwrap();
        assert_eq!(makings(&log), 2, "a half-made one is made again");
        assert!(!dir.join("leftover").exists(), "from scratch");
        ensure(&dir, &lock, &b).unwrap();
        assert_eq!(makings(&log), 3, "new requirements make it again");
        assert_eq!(fs::read_to_string(dir.join(".ready")).unwrap(), "# b\n");
    }

    #[test]
    fn an_unreachable_index_fails_with_one_line_and_leaves_it_unready() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, lock) = (tmp.path().join("env"), tmp.path().join("env.lock"));
        let broken = Spec {
            requirements: "aiosmtpd==1.4.6\n",
            imports: "import aiosmtpd",
            pip_env: &[
                ("PIP_INDEX_URL", "http://127.0.0.1:9/"),
                ("PIP_RETRIES", "0"),
            ],
        };
        let err = ensure(&dir, &lock, &broken).unwrap_err();
        assert_eq!(
            err,
            format!(
                "pip install into {} failed: ERROR: Could not find a version that satisfies \
                 the requirement aiosmtpd==1.4.6 (from versions: none)",
                dir.display()
            )
        );
        assert!(!dir.join(".ready").exists());
    }

    #[test]
    fn the_first_error_is_pips_error_line_or_the_exception() {
        let pip = "WARNING: Retrying (Retry(total=4)) after connection broken\n\
                   ERROR: Could not find a version that satisfies the requirement aiosmtpd==1.4.6\n\
                   ERROR: No matching distribution found for aiosmtpd==1.4.6\n";
        assert_eq!(
            first_error(pip),
            "ERROR: Could not find a version that satisfies the requirement aiosmtpd==1.4.6"
        );
        let py = "Traceback (most recent call last):\n  File \"<string>\", line 1\n\
                  ModuleNotFoundError: No module named 'aiosmtpd'\n";
        assert_eq!(
            first_error(py),
            "ModuleNotFoundError: No module named 'aiosmtpd'"
        );
        assert_eq!(first_error("\nError: no venv\nmore\n"), "Error: no venv");
        assert_eq!(first_error(""), "(no error output)");
    }
}
