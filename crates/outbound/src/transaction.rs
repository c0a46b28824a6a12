//! One mail transaction on an open session: MAIL, one RCPT per recipient,
//! DATA, with PIPELINING when the server offers it, and the bytes sent —
//! rewritten per recipient, DKIM-signed once for a message sent unchanged.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tidings_store::OutboundJob;
use tidings_types::MessageId;

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
pub(crate) struct SignedOnce {
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
