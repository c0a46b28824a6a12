//! Engagement tracking for outgoing mail, without I/O.
//!
//! Three concerns, one module each:
//!
//! - [`token`]: what a tracking URL carries. A token names an account, a
//!   message, a recipient and a kind (open, the n-th click, unsubscribe),
//!   signed with a truncated HMAC-SHA256 under a rotating key. It carries no
//!   redirect target: the original URLs are stored at send time (the
//!   [`rewrite`] result lists them by link index), so a tracking link can
//!   only ever lead where the sender wrote, and a forged or altered token
//!   leads nowhere (the endpoints answer 404).
//! - [`rewrite`]: the message on its way out. It walks the MIME tree on the
//!   raw bytes and rewrites only the text/html and text/plain bodies: links
//!   become click links, the open pixel goes before `</body>`, the
//!   unsubscribe placeholder becomes the unsubscribe URL, and the
//!   `List-Unsubscribe`/`List-Unsubscribe-Post` (RFC 8058) headers are
//!   added. HTML goes through `lol_html`, a streaming rewriter, so every byte
//!   that is not a tracked link stays as the sender wrote it; everything
//!   outside the rewritten bodies (attachments, other parts, header
//!   folding) is copied verbatim.
//! - [`classify`]: was an open or a click a person, or a machine (Apple Mail
//!   Privacy Protection, image proxies, link scanners, prefetchers)? Pure
//!   functions of the request and the times, with every rule's source in
//!   the code; the `machine`/`bot` fields of open and click events.
//!
//! The HTTP endpoints that serve the pixel, redirect and unsubscribe are
//! the web layer's; they call [`token::TokenKeys::verify`] and
//! [`classify`], and find the URL layout in [`rewrite::tracking_url`].

pub mod classify;
pub mod rewrite;
pub mod token;

pub use classify::{classify_click, classify_open, ClickVerdict, OpenVerdict, RecentClick, Why};
pub use rewrite::{
    rewrite, tracking_url, Limits, Note, RecipientTokens, RewriteError, RewriteOptions, Rewritten,
    Tokens,
};
pub use token::{Claims, TokenError, TokenKeys, TokenKind};
