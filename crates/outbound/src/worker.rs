//! The outbound worker loop.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tidings_mail::reply::{classify, Kind};
use tidings_store::{MessageStore, OutboundJob, OutboundResult, RecipientStatus, SoftBounceRule};
use tidings_types::{Clock, EventType, NewEvent, SecretString, Timestamp};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::Reply;
use crate::connect::{no_answer, open, Open, Peer, Policies, Pool};
use crate::route::{Destination, RouteError, Router};
use crate::tls::TlsPolicy;
use crate::transaction::{mail_transaction, SignedOnce, Transaction};

/// Credentials for the smarthost.
#[derive(Debug, Clone)]
pub struct RelayAuth {
    pub user: String,
    pub password: SecretString,
}

#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Name given in EHLO.
    pub helo: String,
    /// Send everything through this `host:port`.
    pub smarthost: Option<String>,
    /// Sent to the smarthost only, and only over TLS unless
    /// `allow_plaintext_auth`.
    pub smarthost_auth: Option<RelayAuth>,
    /// PEM CA certificates the smarthost's certificate must chain to,
    /// instead of the web PKI roots.
    pub smarthost_ca_file: Option<PathBuf>,
    /// Send AUTH to a smarthost that offers no STARTTLS.
    pub allow_plaintext_auth: bool,
    /// Per-domain routes, `domain → host:port`.
    pub transports: HashMap<String, String>,
    /// DNS servers for MX lookups; empty means the system's.
    pub nameservers: Vec<std::net::SocketAddr>,
    /// Port of MX hosts (25 on the Internet).
    pub mx_port: u16,
    /// Which addresses a domain's mail hosts may be at.
    pub mx_policy: tidings_types::address::AddressPolicy,
    /// Use STARTTLS when offered.
    pub starttls: bool,
    /// Connections at once to one destination domain.
    pub per_destination: usize,
    /// Deliveries at once overall.
    pub max_parallel: usize,
    pub timeout: Duration,
    /// How long temporary failures are retried before a soft bounce.
    pub max_age: Duration,
    /// VERP return paths (one SMTP transaction per recipient) when set.
    pub verp: Option<Arc<tidings_mail::verp::VerpCodec>>,
    /// DKIM signers by (account, From domain).
    pub dkim: Option<Arc<dyn DkimSigners>>,
    /// Per-recipient rewriting (engagement tracking) before signing.
    pub rewriter: Option<Arc<dyn Rewriter>>,
    /// Make leased deliveries due again at start: correct only when this
    /// process is the store's only user (embedded SQLite).
    pub release_leases_on_start: bool,
}

/// Rewrites a message for one recipient (tracking links, pixel,
/// unsubscribe headers); `None` leaves it as it is.
pub trait Rewriter: Send + Sync + std::fmt::Debug {
    fn rewrite(&self, job: &OutboundJob) -> Option<Vec<u8>>;
}

/// Finds the DKIM signer for a message's From domain.
pub trait DkimSigners: Send + Sync + std::fmt::Debug {
    /// Sign `raw` for `account` sending as `domain`; `None` when the
    /// domain has no key.
    fn sign(&self, account: tidings_types::AccountId, domain: &str, raw: &[u8]) -> Option<Vec<u8>>;
}

impl Default for OutboundConfig {
    fn default() -> Self {
        Self {
            helo: "localhost".into(),
            smarthost: None,
            smarthost_auth: None,
            smarthost_ca_file: None,
            allow_plaintext_auth: false,
            transports: HashMap::new(),
            nameservers: Vec::new(),
            mx_port: 25,
            mx_policy: Default::default(),
            starttls: true,
            per_destination: 4,
            max_parallel: 64,
            timeout: Duration::from_secs(60),
            max_age: Duration::from_secs(3 * 86_400),
            verp: None,
            dkim: None,
            rewriter: None,
            release_leases_on_start: false,
        }
    }
}

/// Delays before retrying a deferred recipient, by attempts made; the last
/// repeats until `max_age`.
const BACKOFF: [u64; 7] = [60, 300, 900, 1800, 3600, 7200, 14_400];

pub struct Worker {
    store: Arc<dyn MessageStore>,
    /// Whether soft bounces suppress an address: the domain's rule, which
    /// the store applies in the transaction that counts them.
    soft_bounce_rule: Arc<dyn SoftBounceRule>,
    clock: Arc<dyn Clock>,
    config: Arc<OutboundConfig>,
    router: Arc<Router>,
    pool: Arc<Pool>,
    signed: Arc<SignedOnce>,
    tls: Arc<Policies>,
}

impl Worker {
    pub fn new(
        store: Arc<dyn MessageStore>,
        soft_bounce_rule: Arc<dyn SoftBounceRule>,
        clock: Arc<dyn Clock>,
        config: OutboundConfig,
    ) -> std::io::Result<Self> {
        let config_per_dest = config.per_destination;
        let smarthost = TlsPolicy::verified(config.smarthost_ca_file.as_deref())
            .map_err(std::io::Error::other)?;
        let tls = Policies {
            smarthost,
            mx: TlsPolicy::opportunistic(),
        };
        let router = Router::new(
            config.smarthost.clone(),
            config.transports.clone(),
            &config.nameservers,
            config.mx_port,
            config.mx_policy,
        )?;
        Ok(Self {
            store,
            soft_bounce_rule,
            clock,
            config: Arc::new(config),
            router: Arc::new(router),
            pool: Arc::new(Pool::new(config_per_dest, Duration::from_secs(30))),
            signed: Arc::new(SignedOnce::default()),
            tls: Arc::new(tls),
        })
    }

    /// Deliver until `shutdown`; deliveries in progress finish first.
    pub async fn run(self, shutdown: CancellationToken) {
        if self.config.release_leases_on_start {
            match self.store.release_outbound_leases(self.clock.now()).await {
                Ok(n) if n > 0 => {
                    tracing::info!(deliveries = n, "released leases of a previous run")
                }
                Ok(_) => {}
                Err(e) => tracing::error!(error = %e, "cannot release old outbound leases"),
            }
        }
        let notify = self.store.outbound_notify();
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
            let now = self.clock.now();
            let until = now + chrono::Duration::from_std(lease_for).unwrap_or_default();
            let room = all.available_permits().max(1) as u32;
            let jobs = match self.store.lease_outbound(now, until, room.min(200)).await {
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
                let next = self.store.next_outbound_due().await.ok().flatten();
                if next.is_some_and(|t| t <= now) {
                    tokio::task::yield_now().await;
                    continue;
                }
                let wake = next.map(|t| self.clock.sleep_until(t));
                tokio::select! {
                    _ = notify.notified() => {}
                    _ = async { match wake { Some(w) => w.await, None => std::future::pending().await } } => {}
                    _ = tokio::time::sleep(Duration::from_secs(60)) => {}
                    _ = shutdown.cancelled() => {}
                }
                continue;
            }
            // One SMTP transaction per (message, domain).
            // With VERP or tracking, one per recipient: each has its own
            // return path and its own links.
            let per_rcpt = self.config.verp.is_some() || self.config.rewriter.is_some();
            let mut groups: HashMap<(String, String, i64), Vec<OutboundJob>> = HashMap::new();
            for j in jobs {
                let domain = j
                    .email
                    .rsplit_once('@')
                    .map(|(_, d)| d.to_string())
                    .unwrap_or_default();
                let rcpt = if per_rcpt { j.recipient_id } else { 0 };
                groups
                    .entry((j.message.id.to_string(), domain, rcpt))
                    .or_default()
                    .push(j);
            }
            for ((_, domain, _), group) in groups {
                let permit = all.clone().acquire_owned().await.expect("semaphore open");
                let dsem = per_domain
                    .entry(domain.clone())
                    .or_insert_with(|| Arc::new(Semaphore::new(self.config.per_destination)))
                    .clone();
                let (store, clock, config, router, pool, signed, tls, finished) = (
                    self.store.clone(),
                    self.clock.clone(),
                    self.config.clone(),
                    self.router.clone(),
                    self.pool.clone(),
                    self.signed.clone(),
                    self.tls.clone(),
                    finished.clone(),
                );
                let rule = self.soft_bounce_rule.clone();
                tasks.spawn(async move {
                    let d = dsem.acquire_owned().await.expect("semaphore open");
                    let conn = Conn {
                        router: &router,
                        pool: &pool,
                        signed: &signed,
                        config: &config,
                        tls: &tls,
                    };
                    let results = deliver(conn, &*clock, &domain, group).await;
                    // The connection is free for the next delivery while
                    // this one's results are committed.
                    drop(d);
                    if let Err(e) = store.complete_outbound(results, rule).await {
                        tracing::error!(error = %e, "recording outbound results failed; they will be retried");
                    }
                    drop(permit);
                    finished.notify_one();
                });
            }
        }
        tasks.close();
        tasks.wait().await;
    }
}

/// What one recipient got.
struct RcptOutcome {
    reply: Reply,
    remote: String,
    tls: bool,
}

/// What a delivery uses besides its jobs.
#[derive(Clone, Copy)]
pub(crate) struct Conn<'a> {
    pub router: &'a Router,
    pub pool: &'a Pool,
    pub signed: &'a SignedOnce,
    pub config: &'a OutboundConfig,
    pub tls: &'a Policies,
}

async fn deliver(
    conn: Conn<'_>,
    clock: &dyn Clock,
    domain: &str,
    jobs: Vec<OutboundJob>,
) -> Vec<OutboundResult> {
    let config = conn.config;
    let outcomes: Vec<RcptOutcome> = match conn.router.destinations(domain).await {
        Err(RouteError::Permanent(text)) => jobs
            .iter()
            .map(|_| RcptOutcome {
                reply: Reply {
                    code: 550,
                    text: format!("5.1.2 {text}"),
                },
                remote: String::new(),
                tls: false,
            })
            .collect(),
        Err(RouteError::Temporary(text)) => jobs
            .iter()
            .map(|_| RcptOutcome {
                reply: Reply {
                    code: 451,
                    text: format!("4.4.3 {text}"),
                },
                remote: String::new(),
                tls: false,
            })
            .collect(),
        Ok(dests) => {
            let peer = if conn.router.is_smarthost(domain) {
                Peer::Smarthost
            } else {
                Peer::Mx
            };
            transact(peer, conn, &dests, &jobs).await
        }
    };
    let now = clock.now();
    jobs.into_iter()
        .zip(outcomes)
        .map(|(job, o)| result_for(config, now, job, o))
        .collect()
}

/// Try destinations in order until one gives an answer; reuse a pooled
/// session when there is one, and return the session to the pool after.
async fn transact(
    peer: Peer,
    conn: Conn<'_>,
    dests: &[Destination],
    jobs: &[OutboundJob],
) -> Vec<RcptOutcome> {
    let mut last_error = no_answer("no destination");
    for dest in dests {
        let remote = dest.host.clone();
        let outcomes = |replies: Vec<Reply>, tls: bool| {
            replies
                .into_iter()
                .map(|reply| RcptOutcome {
                    reply,
                    remote: remote.clone(),
                    tls,
                })
                .collect::<Vec<_>>()
        };
        // A pooled session first; if it turns out stale, a fresh one.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let pooled = if attempt == 1 {
                conn.pool.take(dest.addr, peer)
            } else {
                None
            };
            let fresh = pooled.is_none();
            let mut s = match pooled {
                Some(s) => s,
                None => match open(peer, conn.config, conn.tls, dest).await {
                    Ok(s) => s,
                    Err(Open::Refused(reply, tls)) => {
                        return outcomes(jobs.iter().map(|_| reply.clone()).collect(), tls)
                    }
                    Err(Open::Next(e)) => {
                        last_error = e;
                        break;
                    }
                },
            };
            match mail_transaction(&mut s, conn, jobs).await {
                Ok(Transaction { replies, closed }) => {
                    let tls = s.tls;
                    // After a message was sent the session is ready for
                    // the next MAIL; otherwise RSET ends what is open.
                    let healthy = replies.iter().all(|r| r.code != 421)
                        && (closed || matches!(s.command("RSET").await, Ok(r) if r.is_ok()));
                    if healthy {
                        conn.pool.put(dest.addr, peer, s);
                    } else {
                        s.quit().await;
                    }
                    return outcomes(replies, tls);
                }
                Err(e) if fresh => {
                    last_error = no_answer(e);
                    break;
                }
                Err(_) => continue,
            }
        }
    }
    jobs.iter()
        .map(|_| RcptOutcome {
            reply: last_error.clone(),
            remote: String::new(),
            tls: false,
        })
        .collect()
}

fn result_for(
    config: &OutboundConfig,
    now: Timestamp,
    job: OutboundJob,
    o: RcptOutcome,
) -> OutboundResult {
    let c = classify(o.reply.code, &o.reply.text);
    let attempt = job.attempts + 1;
    let first = job.first_attempt_at.unwrap_or(now);
    let mut data = job.message.event_data(&job.email);
    let remote = (!o.remote.is_empty()).then(|| o.remote.clone());
    let line = o.reply.line();
    let mut put = |k: &str, v: serde_json::Value| {
        if !v.is_null() {
            data.insert(k.into(), v);
        }
    };
    let (status, event_type, retry_at, suppress, soft) = match c.kind {
        Kind::Sent => {
            put("remote_mta", json!(remote));
            put("smtp_response", json!(line));
            put("tls", json!(o.tls));
            put("attempt", json!(attempt));
            (RecipientStatus::Sent, EventType::Sent, None, None, false)
        }
        Kind::Deferred => {
            let delay = BACKOFF[(job.attempts as usize).min(BACKOFF.len() - 1)];
            let next = now + chrono::Duration::seconds(delay as i64);
            let deadline = first + chrono::Duration::from_std(config.max_age).unwrap_or_default();
            if next > deadline {
                put("bounce_type", json!("soft"));
                put(
                    "status",
                    json!(if c.status.starts_with('4') {
                        "4.4.7".to_string()
                    } else {
                        c.status.clone()
                    }),
                );
                put("reason", json!("expired"));
                put("diagnostic", json!(line));
                put("remote_mta", json!(remote));
                put("source", json!("smtp"));
                (
                    RecipientStatus::Bounced,
                    EventType::Bounce,
                    None,
                    None,
                    true,
                )
            } else {
                put("remote_mta", json!(remote));
                put("smtp_response", json!(line));
                put("attempt", json!(attempt));
                put("next_attempt_at", json!(tidings_types::time::rfc3339(next)));
                (
                    RecipientStatus::Deferred,
                    EventType::Deferred,
                    Some(next),
                    None,
                    false,
                )
            }
        }
        Kind::Bounce => {
            put("bounce_type", json!("hard"));
            put("status", json!(c.status));
            put("reason", json!(c.reason));
            put("diagnostic", json!(line));
            put("remote_mta", json!(remote));
            put("source", json!("smtp"));
            (
                RecipientStatus::Bounced,
                EventType::Bounce,
                None,
                Some("hard_bounce".to_string()),
                false,
            )
        }
        Kind::Block => {
            put("status", json!(c.status));
            put("reason", json!(c.reason));
            put("diagnostic", json!(line));
            put("remote_mta", json!(remote));
            (
                RecipientStatus::Blocked,
                EventType::Block,
                None,
                None,
                false,
            )
        }
    };
    let event = NewEvent::new(job.message.account_id, event_type, now, data)
        .expect("outbound events use catalogue fields only");
    OutboundResult {
        recipient_id: job.recipient_id,
        account_id: job.message.account_id,
        email: job.email,
        status,
        retry_at,
        response: line,
        event,
        suppress,
        soft_failure: soft,
    }
}
