//! Time is passed in. Production code asks a [`Clock`] for "now" and sleeps
//! through it, so tests can use [`ManualClock`] and say "advance five
//! minutes" instead of sleeping.

use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use chrono::Utc;

use crate::time::Timestamp;

pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
    /// Resolves once `now() >= t`.
    fn sleep_until(&self, t: Timestamp) -> Sleep;
}

/// The wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        crate::time::trunc(Utc::now())
    }

    fn sleep_until(&self, t: Timestamp) -> Sleep {
        let d = (t - Utc::now()).to_std().unwrap_or_default();
        Box::pin(tokio::time::sleep(d))
    }
}

/// A clock that moves only when told to.
pub struct ManualClock {
    now: Mutex<Timestamp>,
    tx: tokio::sync::watch::Sender<Timestamp>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        let start = crate::time::trunc(start);
        let (tx, _) = tokio::sync::watch::channel(start);
        Self {
            now: Mutex::new(start),
            tx,
        }
    }

    pub fn advance(&self, by: std::time::Duration) {
        let mut now = self.now.lock().expect("clock lock");
        *now += chrono::Duration::from_std(by).expect("duration in range");
        self.tx.send_replace(*now);
    }

    pub fn set(&self, t: Timestamp) {
        let mut now = self.now.lock().expect("clock lock");
        *now = crate::time::trunc(t);
        self.tx.send_replace(*now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.lock().expect("clock lock")
    }

    fn sleep_until(&self, t: Timestamp) -> Sleep {
        let mut rx = self.tx.subscribe();
        Box::pin(async move {
            // An error means the clock was dropped; then nothing will wake us.
            let _ = rx.wait_for(|now| *now >= t).await;
        })
    }
}
