//! One test binary for the crate (link once): in-memory sessions over
//! `tokio::io::duplex`, and end-to-end runs over TCP with Python's smtplib.
mod suite;
