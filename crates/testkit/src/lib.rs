//! Test support for tidings.
//!
//! - [`Receiver`]: a real HTTP server on 127.0.0.1:0 that records every
//!   request and answers as the test scripts it (status, headers, delay).
//! - [`Binary`]: the real `tidings` executable started on a temporary data
//!   directory and port 0; it can be killed with SIGKILL and restarted on
//!   the same directory.
//! - [`InProcess`]: the same app started inside the test with a manual
//!   clock, for tests that move time instead of waiting for it.
//! - [`Api`]: a small client for the JSON API.
//! - [`dns::FakeDns`]: a DNS server on loopback answering from a table.
//! - [`mx::Mx`]: a recipient SMTP server for outbound mail, and the app
//!   wired to it ([`mx::Mx::app`]).
//! - [`python`]: the interpreter of the Python peers (aiosmtpd, dkimpy), in
//!   an environment the tests make for themselves under `target/`. It is
//!   the one part without the `app` feature, so crates below the binary
//!   take it with `default-features = false` and do not build the app.
//!
//! Everything waits on conditions with deadlines; nothing sleeps a guessed
//! amount.

pub mod python;

#[cfg(feature = "app")]
mod api;
#[cfg(feature = "app")]
mod binary;
#[cfg(feature = "app")]
pub mod dns;
#[cfg(feature = "app")]
pub mod mx;
#[cfg(feature = "app")]
mod receiver;

#[cfg(feature = "app")]
pub use api::Api;
#[cfg(feature = "app")]
pub use binary::Binary;
#[cfg(feature = "app")]
pub use receiver::{Received, Receiver, Reply};

#[cfg(feature = "app")]
use std::sync::Arc;
use std::time::Duration;

#[cfg(feature = "app")]
use tidings_types::ManualClock;

/// How long a test waits for anything before failing.
pub const DEADLINE: Duration = Duration::from_secs(30);

/// Poll `f` until it returns `Some`, or panic after `deadline`.
#[cfg(feature = "app")]
pub async fn wait_until<T, F, Fut>(what: &str, deadline: Duration, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if tokio::time::Instant::now() > end {
            panic!("timed out waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// The app started in-process on a fresh data directory.
#[cfg(feature = "app")]
pub struct InProcess {
    pub running: Option<tidings::RunningApp>,
    pub clock: Arc<ManualClock>,
    pub api: Api,
    pub config: tidings::Config,
    pub dir: tempfile::TempDir,
    /// The DNS server outbound mail resolves through (every name is
    /// NXDOMAIN unless a test points `outbound.nameservers` elsewhere), so
    /// no test ever asks the Internet.
    pub dns: dns::FakeDns,
}

#[cfg(feature = "app")]
impl InProcess {
    /// Start with a manual clock, loopback targets allowed, and `tweak`
    /// applied to the configuration.
    pub async fn start(tweak: impl FnOnce(&mut tidings::Config)) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = tidings::Config {
            data_dir: dir.path().to_path_buf(),
            ..Default::default()
        };
        config.http.listen = "127.0.0.1:0".parse().expect("addr");
        config.smtp.listen = Some("127.0.0.1:0".parse().expect("addr"));
        config.inbound.listen = Some("127.0.0.1:0".parse().expect("addr"));
        config.hostname = "tidings.test".into();
        let dns = dns::FakeDns::start(Default::default()).await;
        config.outbound.nameservers = vec![dns.addr];
        config.webhooks.allow_loopback = true;
        config.storage.durability = tidings::config::Durability::Normal;
        tweak(&mut config);
        let clock = Arc::new(ManualClock::new(chrono_now()));
        let running = tidings::App::start_with_clock(&config, clock.clone())
            .await
            .expect("start app");
        let (_, key) = running
            .app
            .bootstrap()
            .await
            .expect("bootstrap")
            .expect("fresh store");
        let api = Api::new(running.addr, key.key.expose().to_string());
        Self {
            running: Some(running),
            clock,
            api,
            config,
            dir,
            dns,
        }
    }

    /// Stop the app and start it again on the same data directory, clock
    /// and DNS server (a new HTTP port; the same API key).
    pub async fn restart(mut self) -> Self {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
        let running = tidings::App::start_with_clock(&self.config, self.clock.clone())
            .await
            .expect("restart app");
        self.api = Api::new(running.addr, self.api.key.clone());
        self.running = Some(running);
        self
    }

    pub fn app(&self) -> &tidings_core::Tidings {
        &self.running.as_ref().expect("running").app
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }
}

#[cfg(feature = "app")]
fn chrono_now() -> tidings_types::Timestamp {
    tidings_types::time::trunc(std::time::SystemTime::now().into())
}
