//! Engagement tracking end to end: the message reaches the MX rewritten,
//! a real HTTP client follows its links, and `open`, `click` and
//! `unsubscribe` arrive at a webhook. Forged tokens get 404 and record
//! nothing; a GET on the unsubscribe link unsubscribes nobody.

use serde_json::{json, Value};
use tidings_testkit::{wait_until, InProcess, Receiver, DEADLINE};

use crate::outbound::Mx;

fn find_url(msg: &str, base: &str, path: &str) -> String {
    // Undo quoted-printable soft breaks and =3D before searching.
    let text = msg.replace("=\r\n", "").replace("=3D", "=");
    let start = text
        .find(&format!("{base}/{path}/"))
        .unwrap_or_else(|| panic!("no /{path}/ link in:\n{text}"));
    text[start..]
        .split(|c: char| c == '"' || c == '>' || c == '<' || c.is_whitespace())
        .next()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn opens_clicks_and_unsubscribes_become_events() {
    let mx = Mx::start();
    let port = mx.port;
    let t = InProcess::start(move |c| {
        c.outbound
            .transports
            .insert("example.test".into(), format!("127.0.0.1:{port}"));
        c.tracking.unsubscribe = true;
    })
    .await;
    let rx = Receiver::start().await;
    t.api
        .create_webhook(
            json!({"url": rx.url("/h"), "event_types": ["open", "click", "unsubscribe"]}),
        )
        .await;
    let r = t
        .api
        .post(
            "/v1/messages",
            &json!({
                "from": "app@sender.test", "to": "reader@example.test", "subject": "news",
                "html": "<html><body><p>Hi <a href=\"https://example.com/welcome?a=1&amp;b=2\">welcome</a> \
                         <a href=\"mailto:help@example.com\">mail us</a></p></body></html>",
                "text": "Hi https://example.com/welcome",
            }),
        )
        .await;
    assert_eq!(r.status, 202);
    let id = r.body["id"].as_str().unwrap().to_string();
    let msg = wait_until("the message at the MX", DEADLINE, || async {
        mx.messages().pop()
    })
    .await;
    let base = t.api.base.clone();
    assert!(
        msg.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{msg}"
    );
    assert!(
        msg.contains("mailto:help@example.com"),
        "mailto links are left alone"
    );
    let click = find_url(&msg, &base, "c");
    let open = find_url(&msg, &base, "o");
    let unsub = find_url(&msg, &base, "u");

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15";
    let px = http
        .get(&open)
        .header("user-agent", ua)
        .send()
        .await
        .unwrap();
    assert_eq!(px.status(), 200);
    assert_eq!(px.headers()["content-type"], "image/gif");
    let c = http
        .get(&click)
        .header("user-agent", ua)
        .send()
        .await
        .unwrap();
    assert_eq!(c.status(), 303);
    let location = c.headers()["location"].to_str().unwrap().to_string();
    assert!(
        [
            "https://example.com/welcome?a=1&b=2",
            "https://example.com/welcome"
        ]
        .contains(&location.as_str()),
        "redirects only where the sender linked: {location}"
    );

    // A GET on the unsubscribe link shows a page and unsubscribes nobody.
    let page = http.get(&unsub).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("reader@example.test"));
    assert_eq!(
        t.api
            .get("/v1/suppressions/reader@example.test")
            .await
            .status,
        404
    );
    // The RFC 8058 one-click POST does.
    let post = http
        .post(&unsub)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);

    let events: Vec<Value> = wait_until("open, click, unsubscribe", DEADLINE, || async {
        let got: Vec<Value> = rx.requests().iter().map(|r| r.json()).collect();
        (got.len() >= 3).then_some(got)
    })
    .await;
    let by = |ty: &str| events.iter().find(|e| e["type"] == ty).unwrap().clone();
    let o = by("open");
    assert_eq!(o["data"]["message_id"], id);
    assert_eq!(o["data"]["email"], "reader@example.test");
    assert_eq!(o["data"]["first"], true);
    assert_eq!(o["data"]["ip"], "127.0.0.1");
    let c = by("click");
    assert_eq!(c["data"]["url"], location.as_str());
    assert_eq!(c["data"]["first"], true);
    assert!(c["data"]["bot"].is_boolean());
    let u = by("unsubscribe");
    assert_eq!(u["data"]["method"], "one_click");
    let s = t.api.get("/v1/suppressions/reader@example.test").await;
    assert_eq!(
        (s.status, s.body["reason"].as_str()),
        (200, Some("unsubscribe"))
    );

    // Forged, truncated and altered tokens: 404, no redirect, nothing recorded.
    let before = rx.count();
    let tok = click.rsplit('/').next().unwrap();
    let mut altered = tok.to_string();
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    for bad in [
        format!("{base}/c/{}", &tok[..tok.len() - 3]),
        format!("{base}/c/{altered}"),
        format!("{base}/c/https%3A%2F%2Fevil.example"),
        format!("{base}/u/{tok}"),
    ] {
        let r = http.get(&bad).send().await.unwrap();
        assert_eq!(r.status(), 404, "{bad}");
        assert!(r.headers().get("location").is_none());
    }
    let r = http
        .post(format!("{base}/u/{altered}"))
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    // The pixel always answers the image, but a bad token records nothing.
    let r = http
        .get(format!("{base}/o/{altered}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let second = http
        .get(&click)
        .header("user-agent", ua)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 303);
    let after: Vec<Value> = wait_until("the second click", DEADLINE, || async {
        let got: Vec<Value> = rx.requests()[before..].iter().map(|r| r.json()).collect();
        (!got.is_empty()).then_some(got)
    })
    .await;
    assert_eq!(
        after.len(),
        1,
        "only the genuine click was recorded: {after:?}"
    );
    assert_eq!(after[0]["data"]["first"], false);
    t.stop().await;
}
