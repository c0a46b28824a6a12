//! The real `tidings` executable as a child process.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::Api;

pub struct Binary {
    pub exe: PathBuf,
    pub data_dir: PathBuf,
    pub addr: SocketAddr,
    /// The SMTP submission listener.
    pub smtp_addr: Option<SocketAddr>,
    /// The key printed on first start.
    pub key: String,
    env: Vec<(String, String)>,
    child: Option<Child>,
}

impl Binary {
    /// Start `exe serve` on `data_dir` (port 0, loopback targets allowed),
    /// with extra `TIDINGS_*` variables, and read its address and key.
    pub fn start(exe: impl AsRef<Path>, data_dir: impl AsRef<Path>, env: &[(&str, &str)]) -> Self {
        let mut b = Binary {
            exe: exe.as_ref().to_path_buf(),
            data_dir: data_dir.as_ref().to_path_buf(),
            addr: "127.0.0.1:0".parse().expect("addr"),
            smtp_addr: None,
            key: String::new(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            child: None,
        };
        b.spawn();
        b
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(&self.exe);
        cmd.arg("serve")
            .env("TIDINGS_DATA_DIR", &self.data_dir)
            .env("TIDINGS_HTTP__LISTEN", "127.0.0.1:0")
            .env("TIDINGS_SMTP__LISTEN", "127.0.0.1:0")
            .env("TIDINGS_INBOUND__LISTEN", "127.0.0.1:0")
            .env("TIDINGS_HOSTNAME", "tidings.test")
            .env("TIDINGS_WEBHOOKS__ALLOW_LOOPBACK", "true")
            .env("TIDINGS_LOG__LEVEL", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn tidings");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        loop {
            let line = lines
                .next()
                .expect("tidings exited before listening")
                .expect("read stdout");
            if let Some(k) = line.strip_prefix("api key (shown once): ") {
                self.key = k.trim().to_string();
            }
            if let Some(rest) = line.strip_prefix("smtp submission (STARTTLS") {
                self.smtp_addr = rest.rsplit(' ').next().and_then(|a| a.parse().ok());
            }
            if let Some(a) = line.strip_prefix("listening on http://") {
                self.addr = a.trim().parse().expect("address");
                break;
            }
        }
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        self.child = Some(child);
    }

    pub fn api(&self) -> Api {
        Api::new(self.addr, self.key.clone())
    }

    /// SIGKILL: no chance to flush or shut down.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("kill");
            c.wait().expect("wait");
        }
    }

    /// SIGTERM and wait for a graceful exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("running");
        let pid = c.id() as i32;
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        c.wait().expect("wait")
    }

    /// Start again on the same data directory (a new port).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "still running");
        let key = std::mem::take(&mut self.key);
        self.spawn();
        assert!(
            self.key.is_empty(),
            "a restart must not create a new account"
        );
        self.key = key;
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        self.kill9();
    }
}
