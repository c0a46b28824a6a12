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

    let events: Vec<Value> = rx.wait_for_json(3, DEADLINE).await;
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

/// Quoted-printable soft breaks and `=3D` undone, so URLs can be searched.
fn unfold(msg: &str) -> String {
    msg.replace("=\r\n", "").replace("=3D", "=")
}

/// An app whose mail for `example.test` goes to a test MX.
async fn with_mx(unsubscribe: bool) -> (InProcess, Mx) {
    let mx = Mx::start();
    let port = mx.port;
    let t = InProcess::start(move |c| {
        c.outbound
            .transports
            .insert("example.test".into(), format!("127.0.0.1:{port}"));
        c.tracking.unsubscribe = unsubscribe;
    })
    .await;
    (t, mx)
}

/// Send `body` and wait for the `n`-th message to reach the MX.
async fn send_and_receive(t: &InProcess, mx: &Mx, body: Value, n: usize) -> (String, String) {
    let r = t.api.post("/v1/messages", &body).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let msg = wait_until("the message at the MX", DEADLINE, || async {
        mx.messages().get(n - 1).cloned()
    })
    .await;
    (id, msg)
}

fn html_message(to: &str, subject: &str) -> Value {
    json!({
        "from": "app@sender.test", "to": to, "subject": subject,
        "html": "<html><body><p><a href=\"https://example.com/offer\">offer</a></p></body></html>",
    })
}

#[tokio::test]
async fn account_defaults_apply_to_messages_that_do_not_say() {
    let (t, mx) = with_mx(true).await;
    let base = t.api.base.clone();
    let r = t.api.get("/v1/tracking").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body,
        json!({"opens": true, "clicks": true, "unsubscribe": true, "domain": null, "base_url": base}),
        "the defaults: everything on, unsubscribe as the operator configured"
    );
    let r = t
        .api
        .patch(
            "/v1/tracking",
            &json!({"opens": false, "unsubscribe": false}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        (&r.body["opens"], &r.body["clicks"], &r.body["unsubscribe"]),
        (&json!(false), &json!(true), &json!(false))
    );

    // No `track` in the request: the account's settings.
    let (id, msg) = send_and_receive(&t, &mx, html_message("a@example.test", "one"), 1).await;
    let text = unfold(&msg);
    assert!(!text.contains(&format!("{base}/o/")), "no pixel:\n{text}");
    assert!(
        text.contains(&format!("{base}/c/")),
        "tracked links:\n{text}"
    );
    assert!(
        !text.contains("List-Unsubscribe"),
        "no unsubscribe:\n{text}"
    );
    assert!(!text.contains("https://example.com/offer"), "{text}");
    let m = t.api.get(&format!("/v1/messages/{id}")).await;
    assert_eq!(
        m.body["track"],
        json!({"opens": false, "clicks": true, "unsubscribe": false})
    );

    // The message's own options still win.
    let mut body = html_message("b@example.test", "two");
    body["track"] = json!({"opens": true, "clicks": false});
    let (_, msg) = send_and_receive(&t, &mx, body, 2).await;
    let text = unfold(&msg);
    assert!(text.contains(&format!("{base}/o/")), "a pixel:\n{text}");
    assert!(!text.contains(&format!("{base}/c/")), "{text}");
    assert!(text.contains("https://example.com/offer"), "{text}");
    t.stop().await;
}

#[tokio::test]
async fn a_custom_tracking_domain_is_used_and_served() {
    let (t, mx) = with_mx(false).await;
    let addr = t.running.as_ref().unwrap().addr;
    let rx = Receiver::start().await;
    t.api
        .create_webhook(json!({"url": rx.url("/h"), "event_types": ["open", "click"]}))
        .await;
    let domain = format!("http://track.tidings.test:{}", addr.port());
    let r = t
        .api
        .patch(
            "/v1/tracking",
            &json!({"domain": format!("HTTP://Track.Tidings.TEST:{}/", addr.port())}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["domain"], domain.as_str(), "stored normalized");
    assert_eq!(r.body["base_url"], domain.as_str());

    let (id, msg) = send_and_receive(&t, &mx, html_message("c@example.test", "custom"), 1).await;
    let text = unfold(&msg);
    assert!(
        !text.contains(&t.api.base),
        "no link on the global base:\n{text}"
    );
    let click = find_url(&msg, &domain, "c");
    let open = find_url(&msg, &domain, "o");

    // Changing the domain later does not change what sent links mean.
    let r = t.api.patch("/v1/tracking", &json!({"domain": null})).await;
    assert_eq!((r.status, &r.body["domain"]), (200, &Value::Null));
    assert_eq!(r.body["base_url"], t.api.base.as_str());

    // The custom host resolves to tidings, as its CNAME would.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve("track.tidings.test", addr)
        .build()
        .unwrap();
    let ua = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0";
    let c = http
        .get(&click)
        .header("user-agent", ua)
        .send()
        .await
        .unwrap();
    assert_eq!(c.status(), 303, "{click}");
    assert_eq!(c.headers()["location"], "https://example.com/offer");
    let px = http
        .get(&open)
        .header("user-agent", ua)
        .send()
        .await
        .unwrap();
    assert_eq!(px.status(), 200);

    let events: Vec<Value> = rx.wait_for_json(2, DEADLINE).await;
    let click_event = events.iter().find(|e| e["type"] == "click").unwrap();
    assert_eq!(click_event["data"]["message_id"], id);
    assert_eq!(click_event["data"]["url"], "https://example.com/offer");
    assert_eq!(click_event["data"]["email"], "c@example.test");
    assert!(events.iter().any(|e| e["type"] == "open"));
    t.stop().await;
}

#[tokio::test]
async fn tracking_settings_are_validated_and_per_account() {
    let t = InProcess::start(|_| {}).await;
    let before = t.api.get("/v1/tracking").await.body;
    for (body, status, code) in [
        (json!({"opens": false, "pixel": true}), 422, "unknown_field"),
        (json!({"opens": "no"}), 422, "invalid_request"),
        (json!({"domain": "track.example.com"}), 422, "invalid_url"),
        (
            json!({"domain": "ftp://track.example.com"}),
            422,
            "invalid_url",
        ),
        (
            json!({"domain": "https://track.example.com/?a=1"}),
            422,
            "invalid_url",
        ),
        (
            json!({"domain": "https://track.example.com/#x"}),
            422,
            "invalid_url",
        ),
        (
            json!({"domain": "https://u:p@track.example.com"}),
            422,
            "invalid_url",
        ),
        (json!({"domain": ""}), 422, "invalid_url"),
        (
            json!({"opens": false, "domain": "javascript:alert(1)"}),
            422,
            "invalid_url",
        ),
    ] {
        let r = t.api.patch("/v1/tracking", &body).await;
        assert_eq!((r.status, r.code()), (status, code), "{body}: {:?}", r.body);
    }
    let r = t
        .api
        .raw(
            reqwest::Method::PATCH,
            "/v1/tracking",
            "application/json",
            b"{".to_vec(),
        )
        .await;
    assert_eq!((r.status, r.code()), (400, "invalid_json"));
    assert_eq!(
        t.api.get("/v1/tracking").await.body,
        before,
        "a refused update changes nothing"
    );
    for r in [
        t.api.with_key("tk_nope").get("/v1/tracking").await,
        t.api
            .with_key("tk_nope")
            .patch("/v1/tracking", &json!({"opens": false}))
            .await,
    ] {
        assert_eq!((r.status, r.code()), (401, "unauthorized"));
    }

    // Partial updates, and each account sees its own settings.
    let r = t
        .api
        .patch(
            "/v1/tracking",
            &json!({"clicks": false, "domain": "https://track.one.example"}),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = t.api.patch("/v1/tracking", &json!({"opens": false})).await;
    assert_eq!(
        r.body,
        json!({"opens": false, "clicks": false, "unsubscribe": false,
               "domain": "https://track.one.example", "base_url": "https://track.one.example"})
    );
    let acc = t.app().create_account("other", None).await.unwrap();
    let key = t.app().create_api_key(acc.id, "k").await.unwrap();
    let other = t.api.with_key(key.key.expose());
    assert_eq!(other.get("/v1/tracking").await.body, before);
    let r = other
        .patch(
            "/v1/tracking",
            &json!({"unsubscribe": true, "domain": "https://t.two.example"}),
        )
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        other.get("/v1/tracking").await.body,
        json!({"opens": true, "clicks": true, "unsubscribe": true,
               "domain": "https://t.two.example", "base_url": "https://t.two.example"})
    );
    let mine = t.api.get("/v1/tracking").await.body;
    assert_eq!(
        (&mine["opens"], &mine["unsubscribe"], &mine["domain"]),
        (
            &json!(false),
            &json!(false),
            &json!("https://track.one.example")
        )
    );
    // `null` goes back to the server's default.
    let r = other
        .patch(
            "/v1/tracking",
            &json!({"unsubscribe": null, "domain": null}),
        )
        .await;
    assert_eq!(r.body, before);
    t.stop().await;
}
