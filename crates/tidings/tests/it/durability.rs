//! Durability against the real binary: SIGKILL in the middle of delivering
//! thousands of events loses none of them.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tidings_testkit::{wait_until, Binary, Receiver};

const EXE: &str = env!("CARGO_BIN_EXE_tidings");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_delivering_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start().await;
    let mut bin = Binary::start(EXE, dir.path(), &[]);
    let api = bin.api();
    let wh = api
        .create_webhook(json!({"url": rx.url("/h"), "max_in_flight": 4}))
        .await;
    let id = wh["id"].as_str().unwrap().to_string();

    // 3,000 events, each acknowledged (202) only once it is durable.
    const N: usize = 3000;
    let types = ["sent", "open", "click", "bounce", "deferred"];
    let accepted: Vec<String> = futures::stream::iter(0..N)
        .map(|i| {
            let api = api.clone();
            let id = id.clone();
            async move {
                let r = api
                    .post(
                        &format!("/v1/webhooks/{id}/test"),
                        &json!({"type": types[i % types.len()]}),
                    )
                    .await;
                assert_eq!(r.status, 202, "{:?}", r.body);
                r.body["id"].as_str().unwrap().to_string()
            }
        })
        .buffer_unordered(16)
        .collect()
        .await;

    // Kill it in the middle of delivery.
    wait_until(
        "deliveries to be under way",
        Duration::from_secs(60),
        || async { (rx.count() >= 200).then_some(()) },
    )
    .await;
    bin.kill9();
    let at_kill = rx.count();
    assert!(
        at_kill < N,
        "the kill came too late to mean anything ({at_kill} delivered)"
    );

    bin.restart();
    let want: HashSet<String> = accepted.into_iter().collect();
    let got = wait_until("every accepted event", Duration::from_secs(120), || async {
        let ids: HashSet<String> = rx
            .requests()
            .iter()
            .filter_map(|r| r.header("webhook-id").map(str::to_string))
            .collect();
        want.is_subset(&ids).then_some(ids)
    })
    .await;
    assert_eq!(got.len(), N);
    // Signatures are still made with the same secret after the restart.
    let wh2 = bin.api().get(&format!("/v1/webhooks/{id}/secret")).await;
    assert_eq!(wh2.body["secret"], wh["secret"]);
    assert_eq!(
        bin.terminate().code(),
        Some(0),
        "graceful shutdown exits cleanly"
    );
}
