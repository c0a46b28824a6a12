//! Leasing: the worker's loop. It leases due recipient deliveries
//! (through `tidings-core`) in batches (room for a quarter of `max_parallel` at a time),
//! sleeps until the next is due or the store says something new is
//! queued, and runs each transaction's delivery within the overall and
//! per-domain limits, committing its outcomes when it ends.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::prepare::transactions;
use super::record::record;
use super::transact::deliver;
use super::{Conn, Worker};

impl Worker {
    /// Deliver until `shutdown`; deliveries in progress finish first.
    pub async fn run(self, shutdown: CancellationToken) {
        if self.config.release_leases_on_start {
            match self.app.release_outbound_leases().await {
                Ok(n) if n > 0 => {
                    tracing::info!(deliveries = n, "released leases of a previous run")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot release old outbound leases"),
            }
        }
        let notify = match self.app.outbound_notify() {
            Ok(n) => n,
            Err(e) => {
                tracing::error!(error = %e, "outbound delivery cannot start");
                return;
            }
        };
        let all = Arc::new(Semaphore::new(self.config.max_parallel));
        let mut per_domain: HashMap<String, Arc<Semaphore>> = HashMap::new();
        let tasks = TaskTracker::new();
        let lease_for = self.config.timeout * 6 + Duration::from_secs(60);
        // Deliveries finishing; the loop waits on it for room to lease a
        // batch (a quarter of `max_parallel`) rather than one delivery at
        // a time as each finishes, which would cost a store write each.
        let finished = Arc::new(tokio::sync::Notify::new());
        let batch = (self.config.max_parallel / 4).max(1);
        while !shutdown.is_cancelled() {
            while all.available_permits() < batch && !shutdown.is_cancelled() {
                tokio::select! {
                    _ = finished.notified() => {}
                    _ = shutdown.cancelled() => {}
                }
            }
            let now = self.app.clock.now();
            let until = now + chrono::Duration::from_std(lease_for).unwrap_or_default();
            let room = all.available_permits().max(1) as u32;
            let jobs = match self.app.lease_outbound(now, until, room.min(200)).await {
                Ok(j) => j,
                Err(e) => {
                    tracing::error!(error = %e, "leasing outbound deliveries failed");
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                        _ = shutdown.cancelled() => {}
                    }
                    continue;
                }
            };
            if jobs.is_empty() {
                let next = self.app.next_outbound_due().await.ok().flatten();
                if next.is_some_and(|t| t <= now) {
                    tokio::task::yield_now().await;
                    continue;
                }
                let wake = next.map(|t| self.app.clock.sleep_until(t));
                tokio::select! {
                    _ = notify.notified() => {}
                    _ = async { match wake { Some(w) => w.await, None => std::future::pending().await } } => {}
                    _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                    _ = shutdown.cancelled() => {}
                }
                continue;
            }
            for (domain, group) in transactions(&self.app, jobs) {
                let permit = all.clone().acquire_owned().await.expect("semaphore open");
                let dsem = per_domain
                    .entry(domain.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(self.config.per_destination)))
                    .clone();
                let (app, config, router, pool, tls, finished) = (
                    self.app.clone(),
                    self.config.clone(),
                    self.router.clone(),
                    self.pool.clone(),
                    self.tls.clone(),
                    finished.clone(),
                );
                tasks.spawn(async move {
                    let d = dsem.acquire_owned().await.expect("semaphore open");
                    let conn = Conn {
                        app: &app,
                        router: &router,
                        pool: &pool,
                        config: &config,
                        tls: &tls,
                    };
                    let replies = deliver(conn, &domain, &group).await;
                    // The connection is free for the next delivery while
                    // this one's results are committed.
                    drop(d);
                    record(&app, &config, group, replies).await;
                    drop(permit);
                    finished.notify_one();
                });
            }
        }
        tasks.close();
        tasks.wait().await;
    }
}
