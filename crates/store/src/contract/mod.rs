//! What every backend must do, as checks written once against the
//! [`Store`] and [`MessageStore`] traits: one transaction per method, the
//! durable head, stream settling, leases, holds, pruning, isolation
//! between accounts, and the outcome rules applied atomically with their
//! counts.
//!
//! A backend runs the suite by handing [`store_contract!`](crate::store_contract)
//! a function that makes a fresh, empty store; each check becomes a test
//! of its own. Enabled by the `contract` feature (a backend crate's
//! dev-dependency turns it on), and always in this crate's own tests.

mod delivery;
mod log;

pub(crate) use log::message;
mod sending;

use std::sync::{Arc, Mutex};

use chrono::Duration;
use tidings_types::{
    AccountId, AttemptId, EventType, NewEvent, Timestamp, Webhook, WebhookFormat, WebhookId,
    WebhookSecret, WebhookSettings,
};

pub use delivery::*;
pub use log::*;
pub use sending::*;

use crate::model::*;
use crate::{FailureFacts, MessageStore, PauseRule, SoftBounceRule, Store};

/// A fresh, empty store, as a backend's factory makes one for each check.
pub struct Fresh {
    pub store: Arc<dyn Store>,
    /// The same store's sending side.
    pub messages: Arc<dyn MessageStore>,
    /// Whatever must outlive the store (its temporary directory); dropped
    /// after it.
    pub keep: Box<dyn std::any::Any + Send + Sync>,
}

/// Stamp out one `#[tokio::test]` per check of the contract, each with a
/// store made by `$fresh` (an expression callable as `Fn() -> Fresh`).
#[macro_export]
macro_rules! store_contract {
    ($fresh:expr) => {
        $crate::store_contract!(@checks $fresh;
            one_transaction_per_method,
            a_failing_method_leaves_nothing_half_written,
            the_log_reads_back_in_commit_order_across_concurrent_writers,
            a_stream_settles_in_order_and_completion_moves_its_head,
            a_leased_job_is_leased_again_only_once_its_lease_runs_out,
            a_paused_type_holds_its_events_and_resume_releases_them_in_order,
            pruning_keeps_what_a_stream_has_not_settled,
            no_method_answers_with_another_accounts_objects,
            the_pause_rule_is_applied_to_the_consecutive_failures_counted,
            the_soft_bounce_rule_is_applied_to_the_consecutive_soft_bounces_counted,
        );
    };
    (@checks $fresh:expr; $($check:ident,)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $check() {
                $crate::contract::$check(($fresh)()).await;
            }
        )*
    };
}

pub(crate) fn now() -> Timestamp {
    tidings_types::time::trunc(std::time::SystemTime::now().into())
}

pub(crate) async fn account(s: &dyn Store, name: &str) -> AccountId {
    let a = Account {
        id: AccountId::new(),
        name: name.into(),
        contact_email: None,
        created_at: now(),
    };
    s.create_account(&a).await.unwrap();
    a.id
}

pub(crate) fn webhook(account: AccountId, types: &[EventType], now: Timestamp) -> Webhook {
    Webhook {
        id: WebhookId::new(),
        account_id: account,
        settings: WebhookSettings {
            url: "http://127.0.0.1:9/h".parse().unwrap(),
            event_types: types.to_vec(),
            format: WebhookFormat::Json,
            fields: None,
            headers: Default::default(),
            description: None,
            max_in_flight: 1,
            max_per_second: None,
            batch: None,
        },
        secret: WebhookSecret::generate(),
        previous_secret: None,
        created_at: now,
        updated_at: now,
    }
}

pub(crate) async fn record(s: &dyn Store, account: AccountId, types: &[EventType], at: Timestamp) {
    let events = types
        .iter()
        .map(|t| NewEvent::new(account, *t, at, Default::default()).unwrap())
        .collect();
    s.record_events(events).await.unwrap();
}

/// The outcome of one attempt of `job`: delivered for [`Next::Done`],
/// failed otherwise.
pub(crate) fn outcome(job: &LeasedJob, next: Next, at: Timestamp) -> JobOutcome {
    JobOutcome {
        job_id: job.job_id,
        event_seq: job.event.seq,
        account_id: job.event.account_id,
        counts: true,
        next,
        attempt: AttemptRecord {
            id: AttemptId::new(),
            webhook_id: job.webhook_id,
            event_id: job.event.id,
            event_type: job.event.event_type,
            at,
            url: "http://127.0.0.1:9/h".into(),
            outcome: if next == Next::Done {
                AttemptOutcome::Delivered
            } else {
                AttemptOutcome::Failed
            },
            status_code: Some(if next == Next::Done { 200 } else { 500 }),
            error: None,
            duration_ms: 1,
            response: String::new(),
            attempt: job.attempts + 1,
            next_attempt_at: None,
        },
    }
}

/// Commit a batch as a dispatcher's completer does: outcomes, holds, and
/// how far the webhook's stream is now settled.
pub(crate) async fn complete(
    s: &dyn Store,
    outcomes: Vec<JobOutcome>,
    holds: Vec<Hold>,
    settled: (WebhookId, i64),
    rule: Arc<dyn PauseRule>,
) -> CompletionSummary {
    let done = Completion {
        outcomes,
        holds,
        unleases: vec![],
        settled: vec![settled],
    };
    s.complete_jobs(Arc::new(done), rule).await.unwrap()
}

/// A pause rule that pauses on exactly the facts it is given, and
/// remembers every fact it was asked about: what a check needs to see
/// that the store counted right and applied the answer.
#[derive(Debug, Default)]
pub(crate) struct PausesOn {
    on: Option<FailureFacts>,
    pub(crate) asked: Mutex<Vec<FailureFacts>>,
}

impl PausesOn {
    pub(crate) fn facts(on: Option<FailureFacts>) -> Arc<Self> {
        Arc::new(Self {
            on,
            asked: Mutex::default(),
        })
    }
    pub(crate) fn asked(&self) -> Vec<FailureFacts> {
        std::mem::take(&mut *self.asked.lock().unwrap())
    }
}

impl PauseRule for PausesOn {
    fn pause(&self, facts: FailureFacts) -> Option<PauseReason> {
        self.asked.lock().unwrap().push(facts);
        (Some(facts) == self.on).then_some(if facts.gone {
            PauseReason::Gone
        } else {
            PauseReason::ConsecutiveFailures
        })
    }
}

/// A soft-bounce rule that suppresses on exactly the count it is given,
/// with the reason it is given, and remembers every count it was asked
/// about.
#[derive(Debug)]
pub(crate) struct SuppressesOn {
    on: u32,
    reason: &'static str,
    asked: Mutex<Vec<u32>>,
}

impl SuppressesOn {
    pub(crate) fn count(on: u32, reason: &'static str) -> Arc<Self> {
        Arc::new(Self {
            on,
            reason,
            asked: Mutex::default(),
        })
    }
    pub(crate) fn asked(&self) -> Vec<u32> {
        std::mem::take(&mut *self.asked.lock().unwrap())
    }
}

impl SoftBounceRule for SuppressesOn {
    fn suppress(&self, consecutive: u32) -> Option<String> {
        self.asked.lock().unwrap().push(consecutive);
        (consecutive == self.on).then(|| self.reason.to_string())
    }
}

/// A rule that never pauses.
pub(crate) fn never_pause() -> Arc<dyn PauseRule> {
    PausesOn::facts(None)
}

pub(crate) fn minutes(n: i64) -> Duration {
    Duration::minutes(n)
}
