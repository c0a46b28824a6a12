//! Engagement tracking end to end: the message reaches the MX rewritten,
//! a real HTTP client follows its links, and `open`, `click` and
//! `unsubscribe` arrive at a webhook. Forged tokens get 404 and record
//! nothing; a GET on the unsubscribe link unsubscribes nobody.

use serde_json::{json, Value};
use tidings_testkit::mx::Mx;
use tidings_testkit::{wait_until, InProcess, Receiver, DEADLINE};

pub(crate) fn find_url(msg: &str, base: &str, path: &str) -> String {
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

/// An HTTP client that shows redirects instead of following them.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The tracking links of one delivered message.
struct Links {
    open: String,
    click: String,
    unsub: String,
}

impl Links {
    /// The first link of each kind in a delivered message.
    fn in_message(msg: &str, base: &str) -> Self {
        Self {
            open: find_url(msg, base, "o"),
            click: find_url(msg, base, "c"),
            unsub: find_url(msg, base, "u"),
        }
    }

    /// Follow them as `email`'s mail client and browser would: the pixel
    /// answers a GIF; the click redirects (returned: where to); a GET on
    /// the unsubscribe link shows a page naming the address and
    /// unsubscribes nobody; the RFC 8058 one-click POST unsubscribes.
    async fn follow(&self, api: &tidings_testkit::Api, ua: &str, email: &str) -> String {
        let http = client();
        let px = http
            .get(&self.open)
            .header("user-agent", ua)
            .send()
            .await
            .unwrap();
        assert_eq!(px.status(), 200);
        assert_eq!(px.headers()["content-type"], "image/gif");
        let c = http
            .get(&self.click)
            .header("user-agent", ua)
            .send()
            .await
            .unwrap();
        assert_eq!(c.status(), 303);
        let location = c.headers()["location"].to_str().unwrap().to_string();

        let page = http.get(&self.unsub).send().await.unwrap();
        assert_eq!(page.status(), 200);
        assert!(page.text().await.unwrap().contains(email));
        let suppression = format!("/v1/suppressions/{email}");
        assert_eq!(
            api.get(&suppression).await.status,
            404,
            "a GET unsubscribes nobody"
        );
        let post = http
            .post(&self.unsub)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("List-Unsubscribe=One-Click")
            .send()
            .await
            .unwrap();
        assert_eq!(post.status(), 200);
        assert_eq!(api.get(&suppression).await.body["reason"], "unsubscribe");
        location
    }
}

#[tokio::test]
async fn opens_clicks_and_unsubscribes_become_events() {
    let mx = Mx::start();
    let t = mx.app(|c| c.tracking.unsubscribe = true).await;
    t.api.add_domain("sender.test").await;
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
    let links = Links::in_message(&msg, &base);
    let click = links.click.clone();

    let ua = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15";
    let location = links.follow(&t.api, ua, "reader@example.test").await;
    assert!(
        [
            "https://example.com/welcome?a=1&b=2",
            "https://example.com/welcome"
        ]
        .contains(&location.as_str()),
        "redirects only where the sender linked: {location}"
    );

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

    // Forged, truncated and altered tokens: 404, no redirect, nothing recorded.
    let http = client();
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
    // A HEAD on the link is answered (a link checker learns where it
    // goes) but is no click; a second one-click POST unsubscribes no one
    // twice.
    let head = http
        .head(&click)
        .header("user-agent", ua)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 303);
    assert_eq!(head.headers()["location"].to_str().unwrap(), location);
    let again = http
        .post(&links.unsub)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    let second = http
        .get(&click)
        .header("user-agent", ua)
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), 303);
    // The message's timeline holds what was recorded, in order: once the
    // second click is there, so is anything before it.
    let kinds = wait_until("the second click in the timeline", DEADLINE, || async {
        let m = t.api.get(&format!("/v1/messages/{id}")).await;
        let kinds: Vec<String> = m.body["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap().to_string())
            .filter(|k| k == "click" || k == "unsubscribe")
            .collect();
        (kinds.iter().filter(|k| *k == "click").count() >= 2).then_some(kinds)
    })
    .await;
    assert_eq!(
        kinds,
        ["click", "unsubscribe", "click"],
        "one click per GET, one unsubscribe"
    );
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
    let t = mx.app(|c| c.tracking.unsubscribe = unsubscribe).await;
    t.api.add_domain("sender.test").await;
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
    // The operator's own domain is used at once; its proof record is shown.
    let record = r.body["domain_record"].clone();
    assert_eq!(record["name"], json!("_tidings.track.one.example"));
    assert_eq!(
        r.body,
        json!({"opens": false, "clicks": false, "unsubscribe": false,
               "domain": "https://track.one.example", "base_url": "https://track.one.example",
               "domain_status": "pending", "domain_record": record})
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
    // Another account's domain waits for its DNS proof: until then its
    // links stay on the global base URL.
    let got = other.get("/v1/tracking").await.body;
    assert_eq!(
        got,
        json!({"opens": true, "clicks": true, "unsubscribe": true,
               "domain": "https://t.two.example", "base_url": before["base_url"],
               "domain_status": "pending", "domain_record": got["domain_record"]})
    );
    assert_eq!(
        got["domain_record"]["name"],
        json!("_tidings.t.two.example")
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

/// Check the delivered message with Python's own MIME parser: it parses
/// without defects, the HTML part carries the pixel and a tracked link in
/// place of the original, and the text part's link is tracked too.
/// Prints the HTML part's click link.
fn python_reads_the_tracked_message(message: &str, base: &str) -> String {
    let script = format!(
        r#"
import email, email.policy, sys
msg = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
assert not msg.defects, msg.defects
html = msg.get_body(preferencelist=("html",)).get_content()
text = msg.get_body(preferencelist=("plain",)).get_content()
base = {base:?}
assert base + "/o/" in html, html
assert "https://example.com/welcome" not in html, html
assert base + "/c/" in text, text
assert "mailto:help@example.com" in html, html
start = html.index(base + "/c/")
print(html[start:html.index('"', start)])
"#
    );
    let (printed, ok) = crate::python(&script, message.as_bytes());
    assert!(ok, "Python's email parser refused it");
    printed
}

/// The whole path through the real `tidings serve` process: the message
/// leaves rewritten and DKIM-signed after the rewriting (dkimpy verifies
/// it as the MX received it; Python's email package parses it), a real
/// HTTP client follows its links, and `open`, `click` and `unsubscribe`
/// reach a webhook signed so that the official Standard Webhooks library
/// accepts them. A GET on the unsubscribe link unsubscribes nobody; the
/// RFC 8058 POST does. An altered click token gets 404 and no redirect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracked_mail_through_the_real_binary() {
    let mx = Mx::start();
    let dir = tempfile::tempdir().unwrap();
    let mut bin = mx.binary(
        env!("CARGO_BIN_EXE_tidings"),
        dir.path(),
        &[("TIDINGS_TRACKING__UNSUBSCRIBE", "true")],
    );
    let api = bin.api();
    let base = format!("http://{}", bin.addr);
    let domain = api
        .post("/v1/domains", &json!({"domain": "sender.test"}))
        .await;
    assert_eq!(domain.status, 201, "{:?}", domain.body);
    let dns = domain.body["dns"].clone();
    let rx = Receiver::start().await;
    let wh = api
        .create_webhook(
            json!({"url": rx.url("/h"), "event_types": ["open", "click", "unsubscribe"]}),
        )
        .await;
    let secret = wh["secret"].as_str().unwrap().to_string();
    let r = api
        .post(
            "/v1/messages",
            &json!({
                "from": "app@sender.test", "to": "reader@example.test", "subject": "real",
                "html": "<html><body><!--[if mso]><p>Outlook</p><![endif]-->\
                         <p>Caf&eacute; <a href=\"https://example.com/welcome?a=1&amp;b=2\">welcome</a> \
                         <a href=\"mailto:help@example.com\">mail us</a></p></body></html>",
                "text": "Caf\u{e9}: https://example.com/welcome",
            }),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let msg = wait_until("the message at the MX", DEADLINE, || async {
        mx.messages().pop()
    })
    .await;
    assert!(
        crate::outbound::dkimpy_verifies(
            &msg,
            dns["name"].as_str().unwrap(),
            dns["value"].as_str().unwrap()
        ),
        "dkimpy does not verify the rewritten message"
    );
    assert!(
        msg.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click"),
        "{msg}"
    );
    // The HTML part's link: the text part, first in the message, has its own.
    let click = python_reads_the_tracked_message(&msg, &base);
    let links = Links {
        click: click.clone(),
        ..Links::in_message(&msg, &base)
    };

    let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36";
    let location = links.follow(&api, ua, "reader@example.test").await;
    assert_eq!(location, "https://example.com/welcome?a=1&b=2");
    let mut altered = click;
    let last = altered.pop().unwrap();
    altered.push(if last == 'A' { 'B' } else { 'A' });
    let bad = client().get(&altered).send().await.unwrap();
    assert_eq!(bad.status(), 404);
    assert!(bad.headers().get("location").is_none());

    let got = rx.wait_for(3, DEADLINE).await;
    for req in &got {
        crate::delivery::verify(&secret, req);
    }
    let events: Vec<Value> = got.iter().map(|r| r.json()).collect();
    let by = |ty: &str| events.iter().find(|e| e["type"] == ty).unwrap().clone();
    let (o, c, u) = (by("open"), by("click"), by("unsubscribe"));
    for e in [&o, &c, &u] {
        assert_eq!(e["data"]["message_id"], id.as_str(), "{e}");
        assert_eq!(e["data"]["email"], "reader@example.test", "{e}");
    }
    // Opened within seconds of delivery: recorded, first, and flagged as
    // a machine's (a prefetch), as a person rarely reads that fast.
    assert_eq!(
        (&o["data"]["first"], &o["data"]["machine"]),
        (&json!(true), &json!(true))
    );
    assert_eq!(c["data"]["url"], "https://example.com/welcome?a=1&b=2");
    assert_eq!(u["data"]["method"], "one_click");
    // The log, read after the unsubscribe that came after the altered
    // click: one click only.
    let log = api.get("/v1/events?limit=1000").await;
    let clicks = log.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["type"] == "click")
        .count();
    assert_eq!(clicks, 1, "the altered token recorded nothing");
    bin.terminate();
}

/// Tokens of another account: on an account's own tracking domain, the
/// links of another account's mail get 404 (no redirect), the pixel
/// records nothing and the unsubscribe link unsubscribes nobody. The same
/// links work on the host they were issued under.
#[tokio::test]
async fn another_accounts_domain_honours_none_of_its_tokens() {
    let (t, mx) = with_mx(true).await;
    let addr = t.running.as_ref().unwrap().addr;
    // Account A has its own tracking domain; account B sends on the global one.
    let a_domain = format!("http://track.a.test:{}", addr.port());
    let r = t
        .api
        .patch("/v1/tracking", &json!({"domain": a_domain}))
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let b = t.app().create_account("b", None).await.unwrap();
    let b_key = t.app().create_api_key(b.id, "k").await.unwrap();
    let b_api = t.api.with_key(b_key.key.expose());
    // B is not the operator's account: its domain is used once proven.
    let added = b_api.add_domain("b-sender.test").await;
    t.dns.publish_txt(
        added["dns"]["name"].as_str().unwrap(),
        added["dns"]["value"].as_str().unwrap(),
    );
    let r = b_api
        .post("/v1/domains/b-sender.test/verify", &json!({}))
        .await;
    assert_eq!(r.body["status"], json!("verified"), "{:?}", r.body);
    let rx = Receiver::start().await;
    b_api
        .create_webhook(
            json!({"url": rx.url("/h"), "event_types": ["open", "click", "unsubscribe"]}),
        )
        .await;
    let mut b_message = html_message("d@example.test", "b's");
    b_message["from"] = json!("app@b-sender.test");
    let r = b_api.post("/v1/messages", &b_message).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let msg = wait_until("the message at the MX", DEADLINE, || async {
        mx.messages().pop()
    })
    .await;
    let base = t.api.base.clone();
    let Links { open, click, unsub } = Links::in_message(&msg, &base);
    let on_a = |url: &str| url.replace(&base, &a_domain);

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve("track.a.test", addr)
        .build()
        .unwrap();
    let c = http.get(on_a(&click)).send().await.unwrap();
    assert_eq!(c.status(), 404);
    assert!(c.headers().get("location").is_none());
    let px = http.get(on_a(&open)).send().await.unwrap();
    assert_eq!(px.status(), 200, "the pixel is served whatever the token");
    assert_eq!(http.get(on_a(&unsub)).send().await.unwrap().status(), 404);
    let post = http
        .post(on_a(&unsub))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 404);
    let suppressed = b_api.get("/v1/suppressions/d@example.test").await;
    assert_eq!(suppressed.status, 404, "nobody unsubscribed");

    // On the host they were issued under, the same links work; the click
    // is the first event the webhook sees, so nothing was recorded before.
    let c = http.get(&click).send().await.unwrap();
    assert_eq!(c.status(), 303);
    assert_eq!(c.headers()["location"], "https://example.com/offer");
    let got = rx.wait_for_json(1, DEADLINE).await;
    assert_eq!(got[0]["type"], "click", "{got:?}");
    t.stop().await;
}

/// Each tracked link of a message redirects to its own target, for every
/// recipient, however many clicks before it found the message's links
/// already worked out.
#[tokio::test]
async fn every_link_of_a_message_redirects_to_its_own_target() {
    let (t, mx) = with_mx(false).await;
    let targets = [
        "https://example.com/offer",
        "https://example.com/terms?x=1&y=2",
        "https://shop.example.net/",
    ];
    let html = targets
        .iter()
        .map(|u| format!("<a href=\"{}\">link</a>", u.replace('&', "&amp;")))
        .collect::<String>();
    let r = t
        .api
        .post(
            "/v1/messages",
            &json!({"from": "app@sender.test", "to": ["a@example.test", "b@example.test"],
                    "subject": "links", "html": html}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let msgs = wait_until("both copies at the MX", DEADLINE, || async {
        let m = mx.messages();
        (m.len() == 2).then_some(m)
    })
    .await;
    let http = client();
    for msg in &msgs {
        let text = unfold(msg);
        let prefix = format!("{}/c/", t.api.base);
        let clicks: Vec<&str> = text
            .match_indices(&prefix)
            .map(|(at, _)| text[at..].split('"').next().unwrap())
            .collect();
        assert_eq!(clicks.len(), 3, "{text}");
        // In reverse order, and twice: the order of the clicks does not matter.
        for (url, want) in clicks
            .iter()
            .zip(targets)
            .rev()
            .chain(clicks.iter().zip(targets))
        {
            let c = http.get(*url).send().await.unwrap();
            assert_eq!(c.status(), 303);
            assert_eq!(c.headers()["location"], want);
        }
    }
    t.stop().await;
}

/// A HEAD on the pixel fetches no image: it is answered like a GET, and
/// the open is recorded but flagged as a machine's, where the same client's
/// GET an hour after delivery is a person's.
#[tokio::test]
async fn a_head_on_the_pixel_is_a_machines_open() {
    let (t, mx) = with_mx(false).await;
    let rx = Receiver::start().await;
    t.api
        .create_webhook(json!({"url": rx.url("/h"), "event_types": ["open"]}))
        .await;
    let mut body = html_message("h@example.test", "head");
    body["track"] = json!({"opens": true});
    let (id, msg) = send_and_receive(&t, &mx, body, 1).await;
    wait_until("the delivery recorded", DEADLINE, || async {
        let m = t.api.get(&format!("/v1/messages/{id}")).await;
        (m.body["recipients"][0]["status"] == "sent").then_some(())
    })
    .await;
    t.clock.advance(std::time::Duration::from_secs(3600));
    let open = find_url(&msg, &t.api.base, "o");
    let ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36";
    let get = client()
        .get(&open)
        .header("user-agent", ua)
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 200);
    let got = rx.wait_for_json(1, DEADLINE).await;
    let head = client()
        .head(&open)
        .header("user-agent", ua)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-type"], "image/gif");
    let got2 = rx.wait_for_json(2, DEADLINE).await;
    let machine = |e: &Value| e["data"]["machine"].clone();
    assert_eq!(
        (machine(&got[0]), machine(&got2[1])),
        (json!(false), json!(true)),
        "the GET a person's, the HEAD a machine's"
    );
    t.stop().await;
}
