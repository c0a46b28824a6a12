//! Webhook delivery: the primitives that make one delivery attempt well
//! and decide what follows it, and the dispatcher that runs them.
//!
//! The primitives are six small modules, split along the line between pure
//! policy and I/O, so that everything that decides can be tested without a
//! network, a clock or luck:
//!
//! - Pure, deterministic, no clock or RNG of their own (time and randomness
//!   are arguments, so tests pin them):
//!   - [`payload`]: the HTTP request for an event or a batch in the
//!     webhook's format (`json`, `form`, `get`) and field selection, and
//!     the exact bytes the signature covers.
//!   - [`sign`]: Standard Webhooks signatures, verified in tests with the
//!     official `standardwebhooks` library, including during rotation.
//!   - [`retry`]: the outcome of an attempt ([`Verdict`]), the retry
//!     schedule with jitter, and `Retry-After`.
//!   - [`guard`]: which destinations are allowed (SSRF protection), as a
//!     pure classifier plus the DNS resolver that applies it.
//! - I/O, each behind a small type:
//!   - [`client`]: one shared, SSRF-guarded HTTP client that turns every
//!     attempt, success or failure, into an [`AttemptResult`] for the call
//!     log; it never follows redirects and never reads an unbounded body.
//!   - [`limits`]: per-webhook in-flight and per-second limits, on tokio's
//!     clock.
//!
//! The guarded resolver and the client also implement the ports of
//! `tidings-core` ([`tidings_core::ports`]) for the save-time host check
//! and webhook tests.
//!
//! None of them touches the database. The dispatcher ([`dispatch`]) owns
//! the loop, a front end of `tidings-core`: it reads the live streams,
//! leases jobs and commits outcomes through the use cases
//! ([`Tidings`](tidings_core::Tidings)), whose types it uses as the store
//! made them ([`tidings_core::work`]), and composes the pieces for each
//! due delivery: [`Limiter::acquire`] → [`payload::build`] → sign with
//! [`Webhook::signing_secrets`] ([`OutgoingRequest::new`]) →
//! [`WebhookClient::send`] → [`retry::classify`] →
//! [`RetryPolicy::next_delay`], then commits the attempt and the next due
//! time.
//!
//! [`Webhook::signing_secrets`]: tidings_types::Webhook::signing_secrets

pub mod client;
pub mod dispatch;
pub mod guard;
pub mod limits;
pub mod payload;
mod ports;
pub mod retry;
pub mod sign;

pub use client::{
    check_custom_headers, AttemptResult, ClientConfig, ClientError, ErrorClass, HeaderError,
    OutgoingRequest, WebhookClient,
};
pub use guard::{
    check_url, classify_ip, AddressClass, AddressPolicy, BlockedAddress, GuardedResolver,
    ResolveError, UrlError,
};
pub use limits::{LimitPermit, Limiter};
pub use payload::{build, Payload, PayloadError};
pub use retry::{classify, RetryAfter, RetryPolicy, Verdict, MAX_ATTEMPTS, SCHEDULE};
pub use sign::{signature_header, SignatureHeaders};
