//! Email itself, without I/O.
//!
//! - [`message`]: what the accept path does to a submitted message before
//!   it is stored: read and strip the `X-Tidings-*` control headers, add a
//!   `Message-ID` when there is none, and pull out the headers events
//!   carry (From, Subject, Message-ID). It edits the header block as bytes,
//!   so the body is stored exactly as it was submitted.
//! - [`build`]: a MIME message from the JSON of `POST /v1/messages`.
//! - [`address`]: an email address, parsed once; [`mailbox`]: an address
//!   with its display name, read from any form a sender writes, refusing
//!   line breaks, second addresses and groups.
//! - [`reply`]: what an SMTP reply means for a recipient — sent, deferred,
//!   bounced or blocked — with an RFC 3463 status and a reason.
//! - [`dkim`]: DKIM keys per sending domain (generation, import, the DNS
//!   record to publish) and a [`dkim::Signer`] that holds the parsed key for
//!   the outbound hot path; relaxed/relaxed, From oversigned.
//! - [`verp`]: VERP return paths whose case-insensitive token carries the
//!   message and recipient ids under a truncated HMAC, with key rotation.

pub mod address;
pub mod build;
pub mod dkim;
pub mod mailbox;
pub mod message;
pub mod reply;
pub mod verp;

pub use address::{Address, AddressError};
pub use mail_parser as parser;
pub use mailbox::{Mailbox, MailboxError};
pub use message::{prepare, MessageError, Prepared};
