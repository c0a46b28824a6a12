//! Opening a session to a destination, and keeping idle ones for reuse.
//!
//! Which trust a session gets depends on where it goes (see [`crate::tls`]):
//! the smarthost is verified and is the only destination that gets the
//! credentials, and only over TLS — a smarthost that offers no STARTTLS
//! (or an attacker who strips it) gets no AUTH unless the operator allows
//! plaintext AUTH; the attempt is deferred with the reason instead. MX
//! hosts and per-domain transports get opportunistic TLS and no AUTH.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::client::{ClientError, Reply, Session};
use crate::route::Destination;
use crate::tls::TlsPolicy;
use crate::worker::OutboundConfig;

/// What a destination is, for trust.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Peer {
    /// The configured smarthost: verified TLS, AUTH when configured.
    Smarthost,
    /// A recipient's MX or a per-domain transport: opportunistic TLS.
    Mx,
}

/// The TLS policies, built once.
#[derive(Debug, Clone)]
pub struct Policies {
    pub smarthost: TlsPolicy,
    pub mx: TlsPolicy,
}

/// Idle sessions by destination address and kind, each with the time it
/// went idle.
type Idle = HashMap<(SocketAddr, Peer), Vec<(Session, Instant)>>;

/// Idle, authenticated sessions kept per destination address and kind, so
/// a burst of mail to one place reuses connections instead of paying for
/// TCP, TLS and EHLO every time.
pub struct Pool {
    idle: Mutex<Idle>,
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

    pub(crate) fn take(&self, addr: SocketAddr, peer: Peer) -> Option<Session> {
        let mut idle = self.idle.lock().expect("pool lock");
        let list = idle.get_mut(&(addr, peer))?;
        while let Some((s, since)) = list.pop() {
            if since.elapsed() < self.keep_for {
                return Some(s);
            }
        }
        None
    }

    pub(crate) fn put(&self, addr: SocketAddr, peer: Peer, s: Session) {
        let mut idle = self.idle.lock().expect("pool lock");
        let list = idle.entry((addr, peer)).or_default();
        if list.len() < self.max_idle {
            list.push((s, Instant::now()));
        }
    }
}

/// Why a destination could not be used.
pub(crate) enum Open {
    /// The destination answered with a refusal for everyone, and whether
    /// the session was encrypted.
    Refused(Reply, bool),
    /// Try the next destination; the reply every recipient gets if none
    /// is left.
    Next(Reply),
}

/// A deferral for a destination that could not be reached or used.
pub(crate) fn no_answer(why: impl std::fmt::Display) -> Reply {
    Reply {
        code: 451,
        text: format!("4.4.1 no answer: {why}"),
    }
}

pub(crate) async fn open(
    peer: Peer,
    config: &OutboundConfig,
    tls: &Policies,
    dest: &Destination,
) -> Result<Session, Open> {
    let policy = match peer {
        Peer::Smarthost => &tls.smarthost,
        Peer::Mx => &tls.mx,
    };
    let (mut s, greeting) = Session::connect(
        dest.addr,
        &dest.host,
        &config.helo,
        config.starttls.then_some(policy),
        config.timeout,
    )
    .await
    .map_err(|e| {
        let at = format!("{} ({})", dest.host, dest.addr);
        Open::Next(match e {
            // RFC 3463 X.7.5: cryptographic failure.
            ClientError::Tls(why) => Reply {
                code: 451,
                text: format!("4.7.5 TLS with {at} failed: {why}"),
            },
            e => no_answer(format!("{at}: {e}")),
        })
    })?;
    if greeting.code != 220 {
        return Err(if greeting.code >= 500 {
            Open::Refused(greeting, s.tls)
        } else {
            Open::Next(no_answer(greeting.line()))
        });
    }
    if peer == Peer::Smarthost {
        if let Some(auth) = &config.smarthost_auth {
            if !s.tls && !config.allow_plaintext_auth {
                s.quit().await;
                // RFC 3463 X.7.10: encryption needed.
                let text = format!(
                    "4.7.10 {} ({}) offers no TLS; the credentials are not sent in clear \
                     (outbound.allow_plaintext_auth allows it)",
                    dest.host, dest.addr
                );
                return Err(Open::Next(Reply { code: 451, text }));
            }
            match s.auth_plain(&auth.user, auth.password.expose()).await {
                Ok(r) if r.code == 235 => {}
                Ok(r) => {
                    let text = format!("4.7.0 relay refused authentication: {}", r.line());
                    return Err(Open::Refused(Reply { code: 451, text }, s.tls));
                }
                Err(e) => return Err(Open::Next(no_answer(e))),
            }
        }
    }
    Ok(s)
}
