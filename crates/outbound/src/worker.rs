//! The outbound worker loop.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::json;
use tidings_mail::reply::{classify, Kind};
use tidings_store::{MessageStore, OutboundJob, OutboundResult, RecipientStatus};
use tidings_types::{Clock, EventType, MessageId, NewEvent, SecretString, Timestamp};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::client::{Reply, Session};
use crate::route::{Destination, RouteError, Router};

/// Credentials for a smarthost or transport.
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
    pub smarthost_auth: Option<RelayAuth>,
    /// Per-domain routes, `domain → host:port`.
    pub transports: HashMap<String, String>,
    /// DNS servers for MX lookups; empty means the system's.
    pub nameservers: Vec<std::net::SocketAddr>,
    /// Port of MX hosts (25 on the Internet).
    pub mx_port: u16,
    /// Try STARTTLS when offered.
    pub starttls: bool,
    /// Connections at once to one destination domain.
    pub per_destination: usize,
    /// Deliveries at once overall.
    pub max_parallel: usize,
    pub timeout: Duration,
    /// How long temporary failures are retried before a soft bounce.
    pub max_age: Duration,
    /// Consecutive soft bounces that suppress an address.
    pub soft_bounce_limit: u32,
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
            transports: HashMap::new(),
            nameservers: Vec::new(),
            mx_port: 25,
            starttls: true,
            per_destination: 4,
            max_parallel: 64,
            timeout: Duration::from_secs(60),
            max_age: Duration::from_secs(3 * 86_400),
            soft_bounce_limit: 3,
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
    clock: Arc<dyn Clock>,
    config: Arc<OutboundConfig>,
    router: Arc<Router>,
    pool: Arc<Pool>,
    signed: Arc<SignedOnce>,
}

impl Worker {
    pub fn new(
        store: Arc<dyn MessageStore>,
        clock: Arc<dyn Clock>,
        config: OutboundConfig,
    ) -> std::io::Result<Self> {
        let config_per_dest = config.per_destination;
        let router = Router::new(
            config.smarthost.clone(),
            config.transports.clone(),
            &config.nameservers,
            config.mx_port,
        )?;
        Ok(Self {
            store,
            clock,
            config: Arc::new(config),
            router: Arc::new(router),
            pool: Arc::new(Pool::new(config_per_dest, Duration::from_secs(30))),
            signed: Arc::new(SignedOnce::default()),
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
                let (store, clock, config, router, pool, signed, finished) = (
                    self.store.clone(),
                    self.clock.clone(),
                    self.config.clone(),
                    self.router.clone(),
                    self.pool.clone(),
                    self.signed.clone(),
                    finished.clone(),
                );
                tasks.spawn(async move {
                    let d = dsem.acquire_owned().await.expect("semaphore open");
                    let conn = Conn {
                        router: &router,
                        pool: &pool,
                        signed: &signed,
                        config: &config,
                    };
                    let results = deliver(conn, &*clock, &domain, group).await;
                    // The connection is free for the next delivery while
                    // this one's results are committed.
                    drop(d);
                    if let Err(e) = store.complete_outbound(results, config.soft_bounce_limit).await {
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
struct Conn<'a> {
    router: &'a Router,
    pool: &'a Pool,
    signed: &'a SignedOnce,
    config: &'a OutboundConfig,
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
        Ok(dests) => transact(conn.router.is_relay(domain), conn, &dests, &jobs).await,
    };
    let now = clock.now();
    jobs.into_iter()
        .zip(outcomes)
        .map(|(job, o)| result_for(config, now, job, o))
        .collect()
}

/// Idle, authenticated sessions kept per destination address, so a burst
/// of mail to one place reuses connections instead of paying for TCP, TLS
/// and EHLO every time.
pub struct Pool {
    idle: Mutex<HashMap<SocketAddr, Vec<(Session, Instant)>>>,
    max_idle: usize,
    keep_for: Duration,
}

impl Pool {
    pub fn new(max_idle: usize, keep_for: Duration) -> Self {
        Self {
            idle: Mutex::new(HashMap::new()),
            max_idle,
            keep_for,
        }
    }

    fn take(&self, addr: SocketAddr) -> Option<Session> {
        let mut idle = self.idle.lock().expect("pool lock");
        let list = idle.get_mut(&addr)?;
        while let Some((s, since)) = list.pop() {
            if since.elapsed() < self.keep_for {
                return Some(s);
            }
        }
        None
    }

    fn put(&self, addr: SocketAddr, s: Session) {
        let mut idle = self.idle.lock().expect("pool lock");
        let list = idle.entry(addr).or_default();
        if list.len() < self.max_idle {
            list.push((s, Instant::now()));
        }
    }
}

/// Why a destination could not be used.
enum Open {
    /// The destination answered with a permanent refusal for everyone.
    Refused(Reply, bool),
    /// Try the next destination.
    Next(String),
}

async fn open(relay: bool, config: &OutboundConfig, dest: &Destination) -> Result<Session, Open> {
    let (mut s, greeting) = Session::connect(
        dest.addr,
        &dest.host,
        &config.helo,
        config.starttls,
        config.timeout,
    )
    .await
    .map_err(|e| Open::Next(format!("{} ({}): {e}", dest.host, dest.addr)))?;
    if greeting.code != 220 {
        return Err(if greeting.code >= 500 {
            Open::Refused(greeting, s.tls)
        } else {
            Open::Next(greeting.line())
        });
    }
    if relay {
        if let Some(auth) = &config.smarthost_auth {
            match s.auth_plain(&auth.user, auth.password.expose()).await {
                Ok(r) if r.code == 235 => {}
                Ok(r) => {
                    let text = format!("4.7.0 relay refused authentication: {}", r.line());
                    return Err(Open::Refused(Reply { code: 451, text }, s.tls));
                }
                Err(e) => return Err(Open::Next(e.to_string())),
            }
        }
    }
    Ok(s)
}

/// The replies of one mail transaction, one per recipient, and whether
/// the session is left between transactions (the message was sent, or no
/// transaction was opened) rather than needing an RSET first.
struct Transaction {
    replies: Vec<Reply>,
    closed: bool,
}

/// MAIL, one RCPT per recipient, DATA if any was accepted. With PIPELINING
/// (RFC 2920) MAIL, the RCPTs and DATA go in one write, so a message costs
/// two round trips instead of three plus one per recipient. `Err` means
/// the session broke before MAIL was answered (a stale pooled connection).
async fn mail_transaction(
    s: &mut Session,
    conn: Conn<'_>,
    jobs: &[OutboundJob],
) -> Result<Transaction, String> {
    let config = conn.config;
    let msg = &jobs[0].message;
    let return_path = match &config.verp {
        Some(codec) => codec.encode(msg.id, jobs[0].recipient_id),
        None => msg.mail_from.clone(),
    };
    let utf8 = !return_path.is_ascii() || jobs.iter().any(|j| !j.email.is_ascii());
    let params = if utf8 && s.has("SMTPUTF8") {
        " SMTPUTF8"
    } else {
        ""
    };
    let mail = format!("MAIL FROM:<{return_path}>{params}");
    let rcpts: Vec<String> = jobs
        .iter()
        .map(|j| format!("RCPT TO:<{}>", j.email))
        .collect();
    let lost = |e: &dyn std::fmt::Display| Reply {
        code: 451,
        text: format!("4.4.2 connection lost: {e}"),
    };
    if !s.has("PIPELINING") {
        let from = s.command(&mail).await.map_err(|e| e.to_string())?;
        if !from.is_ok() {
            return Ok(Transaction {
                replies: jobs.iter().map(|_| from.clone()).collect(),
                closed: true,
            });
        }
        let mut replies = Vec::with_capacity(jobs.len());
        for r in &rcpts {
            replies.push(s.command(r).await.unwrap_or_else(|e| lost(&e)));
        }
        if !replies.iter().any(Reply::is_ok) {
            return Ok(Transaction {
                replies,
                closed: false,
            });
        }
        let data = match s.command("DATA").await {
            Ok(r) if r.code == 354 => s.message(&payload(conn, jobs)).await,
            Ok(r) => {
                for ok in replies.iter_mut().filter(|r| r.is_ok()) {
                    *ok = r.clone();
                }
                return Ok(Transaction {
                    replies,
                    closed: false,
                });
            }
            Err(e) => Err(e),
        };
        let closed = data.is_ok();
        let data = data.unwrap_or_else(|e| Reply {
            code: 451,
            text: format!("4.4.2 connection lost during DATA: {e}"),
        });
        for r in replies.iter_mut().filter(|r| r.is_ok()) {
            *r = data.clone();
        }
        return Ok(Transaction { replies, closed });
    }
    let mut lines: Vec<&str> = Vec::with_capacity(rcpts.len() + 2);
    lines.push(&mail);
    lines.extend(rcpts.iter().map(String::as_str));
    lines.push("DATA");
    s.pipeline(&lines).await.map_err(|e| e.to_string())?;
    let from = s.reply().await.map_err(|e| e.to_string())?;
    let mut replies = Vec::with_capacity(jobs.len());
    for _ in jobs {
        match s.reply().await {
            // Refused MAIL: the RCPTs were answered 503, say why instead.
            Ok(_) if !from.is_ok() => replies.push(from.clone()),
            Ok(r) => replies.push(r),
            Err(e) => {
                // A server that refused MAIL (421, say) may close at once.
                let why = if from.is_ok() { lost(&e) } else { from.clone() };
                replies.resize(jobs.len(), why);
                return Ok(Transaction {
                    replies,
                    closed: false,
                });
            }
        }
    }
    let data = match s.reply().await {
        Ok(r) => r,
        Err(e) => {
            for r in replies.iter_mut().filter(|r| r.is_ok()) {
                *r = lost(&e);
            }
            return Ok(Transaction {
                replies,
                closed: false,
            });
        }
    };
    if data.code != 354 {
        // DATA refused (no recipient accepted, or a refusal of its own):
        // the accepted recipients get its reply.
        for r in replies.iter_mut().filter(|r| r.is_ok()) {
            *r = data.clone();
        }
        return Ok(Transaction {
            replies,
            closed: false,
        });
    }
    // A server that answers DATA with 354 although no RCPT was accepted
    // gets an empty message, which it must refuse (RFC 2920, 3.1).
    let any = replies.iter().any(Reply::is_ok);
    let body = if any {
        payload(conn, jobs)
    } else {
        Bytes::new()
    };
    let sent = match s.message(&body).await {
        Ok(r) => r,
        Err(e) => {
            for r in replies.iter_mut().filter(|r| r.is_ok()) {
                *r = Reply {
                    code: 451,
                    text: format!("4.4.2 connection lost during DATA: {e}"),
                };
            }
            return Ok(Transaction {
                replies,
                closed: false,
            });
        }
    };
    for r in replies.iter_mut().filter(|r| r.is_ok()) {
        *r = sent.clone();
    }
    Ok(Transaction {
        replies,
        closed: true,
    })
}

/// The bytes to send: rewritten for the recipient (tracking) when there is
/// one, then DKIM-signed.
fn payload(conn: Conn<'_>, jobs: &[OutboundJob]) -> Bytes {
    let config = conn.config;
    let msg = &jobs[0].message;
    let rewritten = match (&config.rewriter, jobs) {
        (Some(r), [one]) => r.rewrite(one),
        _ => None,
    };
    let Some(dkim) = &config.dkim else {
        return rewritten.map_or_else(|| jobs[0].raw.clone(), Bytes::from);
    };
    let sign = |body: &[u8]| {
        let domain = msg.from.rsplit_once('@')?.1.to_ascii_lowercase();
        dkim.sign(msg.account_id, &domain, body).map(Bytes::from)
    };
    match rewritten {
        Some(r) => sign(&r).unwrap_or_else(|| Bytes::from(r)),
        // The same bytes for every recipient: signed once, even though
        // VERP gives each recipient a transaction of its own.
        None => conn
            .signed
            .get_or_sign(msg.id, || sign(&jobs[0].raw))
            .unwrap_or_else(|| jobs[0].raw.clone()),
    }
}

/// Signed copies of the messages lately sent unchanged, for the other
/// recipients of the same message: an RSA signature costs more than the
/// rest of a delivery. A few, for a few minutes (`t=` stays recent).
#[derive(Default)]
struct SignedOnce {
    recent: Mutex<std::collections::VecDeque<(MessageId, Instant, Bytes)>>,
}

impl SignedOnce {
    const KEEP: usize = 32;
    const FRESH: Duration = Duration::from_secs(300);

    fn get_or_sign(&self, id: MessageId, sign: impl FnOnce() -> Option<Bytes>) -> Option<Bytes> {
        {
            let recent = self.recent.lock().expect("signed lock");
            if let Some((_, _, b)) = recent
                .iter()
                .find(|(m, at, _)| *m == id && at.elapsed() < Self::FRESH)
            {
                return Some(b.clone());
            }
        }
        // Signed outside the lock; two recipients of one message may both
        // sign at the same moment, which costs time, not correctness.
        let signed = sign()?;
        let mut recent = self.recent.lock().expect("signed lock");
        recent.retain(|(m, at, _)| *m != id && at.elapsed() < Self::FRESH);
        if recent.len() >= Self::KEEP {
            recent.pop_front();
        }
        recent.push_back((id, Instant::now(), signed.clone()));
        Some(signed)
    }
}

/// Try destinations in order until one gives an answer; reuse a pooled
/// session when there is one, and return the session to the pool after.
async fn transact(
    relay: bool,
    conn: Conn<'_>,
    dests: &[Destination],
    jobs: &[OutboundJob],
) -> Vec<RcptOutcome> {
    let mut last_error = String::from("no destination");
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
                conn.pool.take(dest.addr)
            } else {
                None
            };
            let fresh = pooled.is_none();
            let mut s = match pooled {
                Some(s) => s,
                None => match open(relay, conn.config, dest).await {
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
                        conn.pool.put(dest.addr, s);
                    } else {
                        s.quit().await;
                    }
                    return outcomes(replies, tls);
                }
                Err(e) if fresh => {
                    last_error = e;
                    break;
                }
                Err(_) => continue,
            }
        }
    }
    jobs.iter()
        .map(|_| RcptOutcome {
            reply: Reply {
                code: 451,
                text: format!("4.4.1 no answer: {last_error}"),
            },
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn a_message_sent_unchanged_is_signed_once() {
        let signed = SignedOnce::default();
        let (a, b) = (MessageId::new(), MessageId::new());
        let calls = Cell::new(0);
        let sign = |tag: &'static [u8]| {
            calls.set(calls.get() + 1);
            Some(Bytes::from_static(tag))
        };
        assert_eq!(signed.get_or_sign(a, || sign(b"a")).unwrap(), "a");
        assert_eq!(signed.get_or_sign(a, || sign(b"again")).unwrap(), "a");
        assert_eq!(signed.get_or_sign(b, || sign(b"b")).unwrap(), "b");
        assert_eq!(calls.get(), 2);
        // A message that could not be signed is tried again.
        assert!(signed.get_or_sign(MessageId::new(), || None).is_none());
        for _ in 0..SignedOnce::KEEP {
            signed.get_or_sign(MessageId::new(), || sign(b"x"));
        }
        assert_eq!(signed.get_or_sign(a, || sign(b"a2")).unwrap(), "a2");
    }
}
