//! Transacting: where a transaction's recipients are sent (the route's
//! destinations in order), on which session (a pooled one first, a fresh
//! one when it is stale), and the reply each recipient got. A route that
//! fails answers for every recipient as a server would (550 or 451).

use tidings_core::work::OutboundJob;

use super::Conn;
use crate::client::Reply;
use crate::connect::{no_answer, open, Open, Peer};
use crate::route::{Destination, RouteError};
use crate::transaction::{mail_transaction, Transaction};

/// What one recipient got.
pub(super) struct RcptOutcome {
    pub reply: Reply,
    /// The host that answered; empty when none did.
    pub remote: String,
    pub tls: bool,
}

/// Deliver `jobs` (one transaction's) to `domain`: the reply each
/// recipient got, in order.
pub(super) async fn deliver(
    conn: Conn<'_>,
    domain: &str,
    jobs: &[OutboundJob],
) -> Vec<RcptOutcome> {
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
            transact(peer, conn, &dests, jobs).await
        }
    };
    outcomes
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
