//! Durability against the real binary: SIGKILL in the middle of delivering
//! thousands of events loses none of them, and SIGKILL in the middle of a
//! stream of open-pixel loads loses none that was answered.

use std::collections::HashSet;
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tidings_testkit::{wait_until, Binary, Receiver, Reply};

const EXE: &str = env!("CARGO_BIN_EXE_tidings");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_delivering_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let rx = Receiver::start().await;
    // A receiver that takes 5 ms per request: at most 4 in flight, so
    // delivering the 3,000 takes seconds and the kill lands in the middle.
    rx.script(|_| Reply {
        delay: Duration::from_millis(5),
        ..Reply::status(200)
    });
    let mut bin = Binary::start(EXE, dir.path(), &[]);
    let api = bin.api();
    api.add_domain("sender.test").await;
    // 3,000 messages to a suppressed address: each is a `dropped` event,
    // committed with its message before the 202.
    let r = api
        .post("/v1/suppressions", &json!({"email": "gone@example.test"}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    const N: usize = 3000;
    futures::stream::iter(0..N)
        .for_each_concurrent(16, |i| {
            let api = api.clone();
            async move {
                let r = api
                    .post(
                        "/v1/messages",
                        &json!({"from": "app@sender.test", "to": "gone@example.test",
                                "subject": format!("m{i}"), "text": "hi"}),
                    )
                    .await;
                assert_eq!(r.status, 202, "{:?}", r.body);
                assert_eq!(r.body["recipients"][0]["status"], "dropped");
            }
        })
        .await;
    let mut accepted: Vec<String> = Vec::new();
    let mut after = String::new();
    while accepted.len() < N {
        let page = api.get(&format!("/v1/events?limit=1000{after}")).await;
        let data = page.body["data"].as_array().unwrap().clone();
        assert!(
            !data.is_empty(),
            "only {} events in the log",
            accepted.len()
        );
        accepted.extend(data.iter().map(|e| e["id"].as_str().unwrap().to_string()));
        after = format!("&after={}", page.body["next_cursor"].as_str().unwrap());
    }
    // A webhook made now is backfilled with all of them: 3,000 delivery
    // jobs, committed with the webhook.
    let wh = api
        .create_webhook(json!({"url": rx.url("/h"), "max_in_flight": 4}))
        .await;
    assert_eq!(wh["backfilled"], N);
    let id = wh["id"].as_str().unwrap().to_string();

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

/// Every pixel load answered before a SIGKILL is an `open` in the log
/// after the restart: the pixel is answered only once its open is
/// committed. (The pixel answers whatever the token; every token here is
/// valid, so every answer is a recorded open.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_while_recording_opens_loses_no_answered_open() {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    let mx = tidings_testkit::mx::Mx::start();
    let dir = tempfile::tempdir().unwrap();
    let mut bin = mx.binary(env!("CARGO_BIN_EXE_tidings"), dir.path(), &[]);
    let api = bin.api();
    api.add_domain("sender.test").await;
    const N: usize = 40;
    let to: Vec<String> = (0..N).map(|i| format!("r{i}@example.test")).collect();
    let r = api
        .post(
            "/v1/messages",
            &json!({"from": "app@sender.test", "to": to, "subject": "s", "html": "<p>hi</p>"}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let copies = wait_until("every copy at the MX", Duration::from_secs(60), || async {
        let m = mx.messages();
        (m.len() == N).then_some(m)
    })
    .await;
    let base = format!("http://{}", bin.addr);
    let pixels: Vec<(String, String)> = copies
        .iter()
        .map(|m| {
            let rcpt = m
                .lines()
                .find_map(|l| l.strip_prefix("X-Envelope-To: "))
                .unwrap()
                .trim()
                .to_string();
            (rcpt, crate::tracking::find_url(m, &base, "o"))
        })
        .collect();

    // Eight clients load the pixels round and round until the server dies.
    let answered: Arc<Mutex<HashMap<String, usize>>> = Default::default();
    let http = reqwest::Client::new();
    let loaders: Vec<_> = (0..8)
        .map(|k| {
            let (http, pixels, answered) = (http.clone(), pixels.clone(), answered.clone());
            tokio::spawn(async move {
                for i in (k..).step_by(8) {
                    let (rcpt, url) = &pixels[i % pixels.len()];
                    match http.get(url).send().await {
                        Ok(r) if r.status() == 200 => {
                            *answered.lock().unwrap().entry(rcpt.clone()).or_default() += 1;
                        }
                        _ => break,
                    }
                }
            })
        })
        .collect();
    let total = || answered.lock().unwrap().values().sum::<usize>();
    wait_until("opens under way", Duration::from_secs(60), || async {
        (total() >= 300).then_some(())
    })
    .await;
    bin.kill9();
    for l in loaders {
        l.await.unwrap();
    }
    let answered = answered.lock().unwrap().clone();

    bin.restart();
    let api = bin.api();
    let mut recorded: HashMap<String, usize> = HashMap::new();
    let mut after = String::new();
    loop {
        let page = api.get(&format!("/v1/events?limit=1000{after}")).await;
        let data = page.body["data"].as_array().unwrap().clone();
        if data.is_empty() {
            break;
        }
        for e in data.iter().filter(|e| e["type"] == "open") {
            let email = e["data"]["email"].as_str().unwrap().to_string();
            *recorded.entry(email).or_default() += 1;
        }
        after = format!("&after={}", page.body["next_cursor"].as_str().unwrap());
    }
    for (rcpt, n) in &answered {
        let got = recorded.get(rcpt).copied().unwrap_or(0);
        assert!(got >= *n, "{rcpt}: {n} opens answered, {got} recorded");
    }
    assert_eq!(bin.terminate().code(), Some(0));
}
