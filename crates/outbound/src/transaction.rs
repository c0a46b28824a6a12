//! One mail transaction on an open session: MAIL, one RCPT per recipient,
//! DATA, with PIPELINING when the server offers it. The return path and
//! the bytes sent are `tidings-core`'s (rewritten per recipient,
//! DKIM-signed), asked for only once a recipient was accepted.

use bytes::Bytes;
use tidings_core::work::OutboundJob;

use crate::client::{Reply, Session};
use crate::worker::Conn;

/// The replies of one mail transaction, one per recipient, and whether
/// the session is left between transactions (the message was sent, or no
/// transaction was opened) rather than needing an RSET first.
pub(crate) struct Transaction {
    pub replies: Vec<Reply>,
    pub closed: bool,
}

/// MAIL, one RCPT per recipient, DATA if any was accepted. With PIPELINING
/// (RFC 2920) MAIL, the RCPTs and DATA go in one write, so a message costs
/// two round trips instead of three plus one per recipient. `Err` means
/// the session broke before MAIL was answered (a stale pooled connection).
pub(crate) async fn mail_transaction(
    s: &mut Session,
    conn: Conn<'_>,
    jobs: &[OutboundJob],
) -> Result<Transaction, String> {
    let return_path = conn.app.return_path(jobs);
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
            Ok(r) if r.code == 354 => s.message(&conn.app.outbound_bytes(jobs)).await,
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
        conn.app.outbound_bytes(jobs)
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
