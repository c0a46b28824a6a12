//! Integration tests of the rewriter on real-world-like messages, checked
//! byte for byte and with an independent MIME parser (Python's `email`).

#[path = "it/edges.rs"]
mod edges;
#[path = "it/fixtures.rs"]
mod fixtures;
#[path = "it/support.rs"]
mod support;
