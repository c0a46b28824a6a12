//! Integration tests of tidings through its public surfaces: the HTTP API,
//! webhooks arriving at a real receiver, and the real binary. One test
//! binary (one link) for all of them.

mod api;
mod cli;
mod delivery;
mod domain_proof;
mod durability;
mod flood;
mod hostile_input;
mod idempotency;
mod inbound;
mod metrics;
mod mx_routing;
mod ops;
mod outbound;
mod pausing;
mod polling;
mod postmaster;
mod retries;
mod senders;
mod sending;
mod smtp_peer;
mod tracking;
mod trust;
mod webhook_test;

use serde_json::{json, Value};
use tidings_testkit::InProcess;
use tidings_types::{AccountId, EventData, EventType};

/// Event data with the common fields filled in.
pub fn data(email: &str) -> EventData {
    let v = json!({
        "email": email,
        "message_id": "msg_01jd0000000000000000000000",
        "subject": "Hello",
        "from": "app@example.com",
        "tags": ["a", "b"],
    });
    match v {
        Value::Object(m) => m,
        _ => unreachable!(),
    }
}

/// The default account of an in-process app.
pub async fn account(t: &InProcess) -> AccountId {
    t.app().list_accounts().await.unwrap()[0].id
}

pub async fn record(t: &InProcess, ty: EventType, email: &str) -> tidings_types::Event {
    let acc = account(t).await;
    t.app().record_event(acc, ty, data(email)).await.unwrap()
}

/// Run a Python script with `input` on its standard input; what it
/// printed, and whether it exited successfully.
pub fn python(script: &str, input: &[u8]) -> (String, bool) {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new(tidings_testkit::python::interpreter())
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the peers' python");
    child.stdin.take().unwrap().write_all(input).unwrap();
    let out = child.wait_with_output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).trim().to_string(),
        out.status.success(),
    )
}
