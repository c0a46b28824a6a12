//! Outbound delivery.
//!
//! The [`worker`] leases due recipient deliveries from the store, groups
//! them by message and destination domain, finds where to send them — a
//! configured transport (smarthost, or a per-domain route) or the domain's
//! MX records in preference order, falling back to its A/AAAA record — and
//! speaks SMTP with the [`client`]: STARTTLS, verified for the smarthost
//! and opportunistic for MX hosts ([`tls`]); AUTH at the smarthost when
//! credentials are configured, never in clear unless allowed
//! ([`connect`]); replies read as bytes ([`reply`]); one RCPT per
//! recipient with each reply recorded, MAIL, RCPTs and DATA in one write
//! where the server offers PIPELINING, and sessions kept open for the
//! next message (no RSET after one sent).
//! The worker is a front end of `tidings-core`: what goes out (the VERP
//! return path, the bytes rewritten for tracking and DKIM-signed) and what
//! each reply means (event, recipient state, suppression, retry; see
//! `tidings_core::outcomes`) are decided there, and each outcome and its
//! event commit together.

pub mod client;
pub mod connect;
pub mod reply;
pub mod route;
pub mod tls;
mod transaction;
pub mod worker;

pub use worker::{OutboundConfig, Worker};
