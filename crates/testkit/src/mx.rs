//! A recipient MX for outbound tests: a real SMTP server (aiosmtpd,
//! `support/mx.py`) on loopback that accepts, defers, rejects and blocks
//! recipients by their local part, and keeps each message it accepts as a
//! file. [`Mx::app`] starts tidings in this process with the mail for
//! `example.test` routed to it; [`Mx::binary`] starts the real executable
//! relaying all its mail to it.

use std::io::BufRead;
use std::process::{Child, Command, Stdio};

use crate::{Binary, InProcess};

/// The domain whose mail the tests' apps route to their MX.
pub const DOMAIN: &str = "example.test";

/// Route the mail for [`DOMAIN`] to a server on loopback at `port`.
pub fn route(c: &mut tidings::Config, port: u16) {
    c.outbound
        .transports
        .insert(DOMAIN.into(), format!("127.0.0.1:{port}"));
}

/// A running test MX; stopped when dropped.
pub struct Mx {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Mx {
    /// An MX that offers PIPELINING.
    pub fn start() -> Mx {
        Self::start_with(true)
    }

    pub fn start_with(pipelining: bool) -> Mx {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/support/mx.py");
        let mut child = Command::new(crate::python::interpreter_for("aiosmtpd"))
            .args([script, &port.to_string(), dir.path().to_str().unwrap()])
            .args((!pipelining).then_some("--no-pipelining"))
            .stdout(Stdio::piped())
            .spawn()
            .expect("the peers' python");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "READY", "the test MX did not start");
        Mx { child, port, dir }
    }

    /// tidings in this process, routing mail for `example.test` here, with
    /// the configuration tweaked further by `tweak`.
    pub async fn app(&self, tweak: impl FnOnce(&mut tidings::Config)) -> InProcess {
        let port = self.port;
        InProcess::start(move |c| {
            route(c, port);
            tweak(c);
        })
        .await
    }

    /// The real `tidings serve` (`exe`) on `data_dir`, relaying all its
    /// mail here, with extra `TIDINGS_*` variables.
    pub fn binary(
        &self,
        exe: impl AsRef<std::path::Path>,
        data_dir: &std::path::Path,
        env: &[(&str, &str)],
    ) -> Binary {
        let smarthost = format!("127.0.0.1:{}", self.port);
        let mut all = vec![("TIDINGS_OUTBOUND__SMARTHOST", smarthost.as_str())];
        all.extend_from_slice(env);
        Binary::start(exe, data_dir, &all)
    }

    /// The messages accepted so far, in the order they arrived.
    pub fn messages(&self) -> Vec<String> {
        let mut files: Vec<_> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "eml"))
            .collect();
        files.sort();
        files
            .iter()
            .map(|p| std::fs::read_to_string(p).unwrap())
            .collect()
    }
}

impl Drop for Mx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
