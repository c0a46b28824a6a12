//! The crate's one integration-test binary (one binary keeps link time
//! down): DKIM signatures checked by two independent verifiers, and
//! property tests of the VERP codec.

#[path = "mail/dkim.rs"]
mod dkim;
#[path = "mail/verp.rs"]
mod verp;
