//! AUTH PLAIN and LOGIN (RFC 4954), only over TLS. Failures are delayed,
//! counted per session and per client IP, and end the session past the
//! limits; a throttled IP is refused before its credentials are read.
//! An inbound MX does not offer AUTH: there it is `502`.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use smtp_proto::{AUTH_LOGIN, AUTH_PLAIN};
use tokio::io::{AsyncRead, AsyncWrite};

use super::io::Line;
use super::{Session, SessionEnd, Step};
use crate::handler::Mode;
use crate::reply::{Common, Reply};

/// The result of the SASL exchange.
enum Creds {
    Given {
        user: String,
        pass: String,
    },
    /// Asked to act as someone else (a PLAIN authzid): never allowed.
    Refused {
        user: String,
    },
    /// The exchange was cancelled or malformed, and that was answered.
    Answered,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Session<S> {
    pub(super) async fn auth(&mut self, mechanism: u64, initial: String) -> Step {
        let handler = match &self.shared.mode {
            Mode::Submission(h) => h.clone(),
            Mode::Inbound(_) => return self.error(Common::NotImplemented),
        };
        if !matches!(self.helo, Some((_, true))) {
            return self.error(Common::BadSequence("Send EHLO first"));
        }
        if !self.conn.is_tls() {
            return self.error(Common::EncryptionRequired);
        }
        if self.account.is_some() {
            return self.error(Common::BadSequence("Already authenticated"));
        }
        if self.tx.is_some() {
            return self.error(Common::BadSequence(
                "AUTH not allowed during a mail transaction",
            ));
        }
        if self.shared.throttle.blocked(self.client_ip) {
            tracing::info!(client = %self.client_ip, "smtp auth refused: IP throttled");
            self.shared.mode.auth_failed();
            return Err(SessionEnd::TooManyAuthFailures);
        }
        let creds = match mechanism {
            AUTH_PLAIN => self.plain(initial).await?,
            AUTH_LOGIN => self.login(initial).await?,
            _ => return self.error(Common::UnsupportedMechanism),
        };
        let user = match creds {
            Creds::Answered => return Ok(()),
            Creds::Refused { user } => user,
            Creds::Given { user, pass } => match handler.authenticate(&user, &pass).await {
                Some(account) => {
                    tracing::info!(client = %self.client_ip, user = ?user, %account, "smtp auth succeeded");
                    self.account = Some(account);
                    self.setup_done();
                    self.reply(Common::AuthSucceeded);
                    return Ok(());
                }
                None => user,
            },
        };
        self.failed(&user).await
    }

    /// `AUTH PLAIN [initial]`: one message `authzid NUL authcid NUL passwd`.
    async fn plain(&mut self, initial: String) -> Result<Creds, SessionEnd> {
        let msg = if initial.is_empty() {
            self.challenge("").await?
        } else {
            self.decode(initial.as_bytes())?
        };
        let Some(msg) = msg else {
            return Ok(Creds::Answered);
        };
        let parts: Vec<&[u8]> = msg.split(|&b| b == 0).collect();
        let [authzid, user, pass] = parts[..] else {
            self.error(Common::BadAuthResponse)?;
            return Ok(Creds::Answered);
        };
        let (Ok(authzid), Ok(user), Ok(pass)) = (
            std::str::from_utf8(authzid),
            std::str::from_utf8(user),
            std::str::from_utf8(pass),
        ) else {
            self.error(Common::BadAuthResponse)?;
            return Ok(Creds::Answered);
        };
        if !authzid.is_empty() && authzid != user {
            return Ok(Creds::Refused { user: user.into() });
        }
        Ok(Creds::Given {
            user: user.into(),
            pass: pass.into(),
        })
    }

    /// `AUTH LOGIN [user]`: the user, then the password, each base64.
    async fn login(&mut self, initial: String) -> Result<Creds, SessionEnd> {
        let user = if initial.is_empty() {
            self.challenge("VXNlcm5hbWU6").await? // "Username:"
        } else {
            self.decode(initial.as_bytes())?
        };
        let Some(user) = user else {
            return Ok(Creds::Answered);
        };
        let Some(pass) = self.challenge("UGFzc3dvcmQ6").await? else {
            return Ok(Creds::Answered); // "Password:"
        };
        match (String::from_utf8(user), String::from_utf8(pass)) {
            (Ok(user), Ok(pass)) => Ok(Creds::Given { user, pass }),
            _ => {
                self.error(Common::BadAuthResponse)?;
                Ok(Creds::Answered)
            }
        }
    }

    /// Send a 334 challenge and decode the answer; `None` when the answer
    /// was refused (and the refusal queued).
    async fn challenge(&mut self, prompt: &str) -> Result<Option<Vec<u8>>, SessionEnd> {
        self.reply(Reply::new(334, None, prompt));
        let max = self.shared.config.max_command_line;
        match self.conn.read_line(max).await? {
            Line::Complete(line) => self.decode(&line),
            Line::TooLong { .. } => {
                self.error(Common::LineTooLong)?;
                Ok(None)
            }
        }
    }

    fn decode(&mut self, text: &[u8]) -> Result<Option<Vec<u8>>, SessionEnd> {
        let text = text.trim_ascii();
        if text == b"*" {
            self.reply(Common::AuthCancelled);
            return Ok(None);
        }
        if text == b"=" {
            return Ok(Some(Vec::new()));
        }
        match STANDARD.decode(text) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(_) => {
                self.error(Common::BadAuthResponse)?;
                Ok(None)
            }
        }
    }

    /// A failed attempt: wait (longer for each failure from this IP), then
    /// `535`, or `421` and close past the per-session limit.
    async fn failed(&mut self, user: &str) -> Step {
        self.auth_failures += 1;
        self.shared.mode.auth_failed();
        let delay = self.shared.throttle.failed(self.client_ip);
        tracing::info!(client = %self.client_ip, user = ?user, failures = self.auth_failures, "smtp auth failed");
        self.conn.pause(delay).await?;
        if self.auth_failures >= self.shared.config.auth.max_failures_per_session {
            return Err(SessionEnd::TooManyAuthFailures);
        }
        self.reply(Common::AuthFailed);
        Ok(())
    }
}
