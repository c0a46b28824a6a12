//! The metrics agree with the event log after real traffic: mail sent,
//! deferred, bounced (by the SMTP reply, by expiry and by DSN), blocked
//! and dropped through a real MX; a pixel loaded by a machine and by a
//! person, a link followed; a DSN fed to the inbound MX, a complaint and an
//! auto-reply posted to `/v1/inbound`; a submission over SMTP after a wrong
//! password. Then every event counter scraped from `/metrics` equals the
//! count of its events in `/v1/events`, and the other counters equal what
//! the test did.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{json, Value};
use tidings_testkit::mx::Mx;
use tidings_testkit::{wait_until, InProcess, DEADLINE};

use crate::inbound::{arf, dsn, smtp_send};
use crate::tracking::find_url;

/// Samples of a scrape, keyed by series as printed (`name{labels}`).
type Samples = BTreeMap<String, f64>;

/// Parse the text exposition format: every sample line is
/// `name{labels} value` (labels optional); comments start with `#`.
fn parse(text: &str) -> Samples {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap_or_else(|| panic!("sample: {l}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value: {l}"));
            (series.to_string(), value)
        })
        .collect()
}

async fn scrape(t: &InProcess) -> Samples {
    let r = reqwest::get(format!("{}/metrics", t.api.base))
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    parse(&r.text().await.unwrap())
}

/// Every event of the account, following the polling cursor.
async fn log(t: &InProcess) -> Vec<Value> {
    let mut out = Vec::new();
    let mut after = "0".to_string();
    loop {
        let r = t
            .api
            .get(&format!("/v1/events?after={after}&limit=1000"))
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        out.extend(r.body["data"].as_array().unwrap().iter().cloned());
        after = r.body["next_cursor"].as_str().unwrap().to_string();
        if r.body["has_more"] != true {
            return out;
        }
    }
}

async fn log_of(t: &InProcess, n: usize, what: &str) -> Vec<Value> {
    wait_until(what, DEADLINE, || async {
        let events = log(t).await;
        (events.len() >= n).then_some(events)
    })
    .await
}

/// What the event counters must read, counted from the log: each event
/// by type, the recipient outcomes, the opens and clicks by agent.
fn counted(events: &[Value]) -> Samples {
    let mut m = Samples::new();
    let types = [
        "sent",
        "open",
        "click",
        "unsubscribe",
        "bounce",
        "complaint",
        "block",
        "deferred",
        "dropped",
    ];
    let outcomes = [
        "sent",
        "deferred",
        "bounced_hard",
        "bounced_soft",
        "blocked",
        "dropped",
    ];
    let ev = |ty: &str| format!("tidings_events_recorded_total{{type=\"{ty}\"}}");
    let rcpt = |o: &str| format!("tidings_recipients_total{{outcome=\"{o}\"}}");
    let eng = |ty: &str, agent: &str| {
        format!("tidings_engagements_total{{type=\"{ty}\",agent=\"{agent}\"}}")
    };
    for ty in types {
        m.insert(ev(ty), 0.0);
    }
    for o in outcomes {
        m.insert(rcpt(o), 0.0);
    }
    for ty in ["open", "click"] {
        for agent in ["human", "machine"] {
            m.insert(eng(ty, agent), 0.0);
        }
    }
    for e in events {
        let ty = e["type"].as_str().unwrap();
        *m.get_mut(&ev(ty)).unwrap() += 1.0;
        let outcome = match ty {
            "sent" => Some("sent"),
            "deferred" => Some("deferred"),
            "bounce" if e["data"]["bounce_type"] == "hard" => Some("bounced_hard"),
            "bounce" => Some("bounced_soft"),
            "block" => Some("blocked"),
            "dropped" => Some("dropped"),
            _ => None,
        };
        if let Some(o) = outcome {
            *m.get_mut(&rcpt(o)).unwrap() += 1.0;
        }
        let software = match ty {
            "open" => Some(e["data"]["machine"] == true),
            "click" => Some(e["data"]["bot"] == true),
            _ => None,
        };
        if let Some(machine) = software {
            let agent = if machine { "machine" } else { "human" };
            *m.get_mut(&eng(ty, agent)).unwrap() += 1.0;
        }
    }
    m
}

/// The samples of `want` that `got` does not show as they are.
fn differences(want: &Samples, got: &Samples) -> Vec<String> {
    want.iter()
        .filter(|(k, v)| got.get(*k) != Some(v))
        .map(|(k, v)| format!("{k}: want {v}, scraped {:?}", got.get(k)))
        .collect()
}

/// Log in with a wrong key (refused), then the right one, and submit one
/// message to `to`.
async fn submit_over_smtp(t: &InProcess, to: &str) {
    let smtp = t.running.as_ref().unwrap().smtp_addr.unwrap();
    let script = format!(
        r#"
import smtplib, ssl
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
s = smtplib.SMTP("127.0.0.1", {port})
s.ehlo(); s.starttls(context=ctx); s.ehlo()
# One mechanism, so that a refused login is one failed AUTH (smtplib
# would go on to try every mechanism offered).
s.esmtp_features["auth"] = "PLAIN"
try:
    s.login("apikey", "tk_wrong")
    raise SystemExit("a wrong key was accepted")
except smtplib.SMTPAuthenticationError:
    pass
s.login("apikey", "{key}")
msg = "From: app@sender.test\r\nTo: {to}\r\nSubject: via smtp\r\n\r\nhi\r\n"
assert s.sendmail("app@sender.test", ["{to}"], msg) == {{}}
s.quit()
"#,
        port = smtp.port(),
        key = t.api.key
    );
    let out = tokio::process::Command::new("python3")
        .args(["-c", &script])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn counters_equal_the_event_log_after_real_traffic() {
    let mx = Mx::start();
    let t = mx
        .app(|c| {
            c.inbound.feedback_addresses = vec!["fbl@tidings.test".into()];
        })
        .await;
    t.api.add_domain("sender.test").await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let browser = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0 Safari/537.36";

    // The MX accepts ok@, defers defer@, bounces unknown@, blocks blocked@.
    let r = t
        .api
        .post(
            "/v1/messages",
            &json!({
                "from": "app@sender.test",
                "to": ["ok@example.test", "defer@example.test", "unknown@example.test", "blocked@example.test"],
                "subject": "metrics",
                "html": "<html><body><p><a href=\"https://example.com/offer\">offer</a></p></body></html>",
                "track": {"opens": true, "clicks": true},
            }),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let smtp_id = r.body["smtp_message_id"].as_str().unwrap().to_string();
    log_of(&t, 4, "sent, deferred, bounce and block").await;
    submit_over_smtp(&t, "ok2@example.test").await;
    log_of(&t, 5, "the submitted message sent").await;
    // unknown@ bounced hard, so it is suppressed now.
    let r = t
        .api
        .post(
            "/v1/messages",
            &json!({"from": "app@sender.test", "to": "unknown@example.test", "subject": "again", "text": "hi"}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    assert_eq!(r.body["recipients"][0]["status"], "dropped");

    // A HEAD on the pixel is a machine's open; half a minute later, a
    // browser's GET is a person's, and so is its click.
    let msg = wait_until("ok@'s message at the MX", DEADLINE, || async {
        mx.messages()
            .into_iter()
            .find(|m| m.contains("X-Envelope-To: ok@example.test\r\n"))
    })
    .await;
    let (open, click) = (
        find_url(&msg, &t.api.base, "o"),
        find_url(&msg, &t.api.base, "c"),
    );
    let head = http.head(&open).header("user-agent", browser).send().await;
    assert_eq!(head.unwrap().status(), 200);
    t.clock.advance(Duration::from_secs(30));
    let get = http.get(&open).header("user-agent", browser).send().await;
    assert_eq!(get.unwrap().status(), 200);
    let followed = http.get(&click).header("user-agent", browser).send().await;
    assert_eq!(followed.unwrap().status(), 303);
    log_of(&t, 9, "the dropped recipient, two opens and a click").await;
    // Only defer@ waits, since its message was accepted 30 s ago (on the
    // test's clock).
    let s = scrape(&t).await;
    assert_eq!(s["tidings_outbound_queue_depth"], 1.0);
    assert_eq!(s["tidings_outbound_queue_oldest_age_seconds"], 30.0);

    // Reports: a DSN for ok@ to its VERP address over the inbound MX; a
    // complaint and an auto-reply posted over HTTP.
    let verp = msg
        .lines()
        .find_map(|l| l.strip_prefix("X-Envelope-From: "))
        .unwrap()
        .to_string();
    let inbound = t.running.as_ref().unwrap().inbound_addr.unwrap().port();
    smtp_send(inbound, "", &verp, &dsn("ok@example.test", &smtp_id)).await;
    let post = |raw: String| t.api.post_raw("/v1/inbound", raw);
    let r = post(arf("ok@example.test", &smtp_id)).await;
    assert_eq!((r.status, &r.body["kind"]), (202, &json!("complaint")));
    let vacation = "From: ok@example.test\r\nTo: app@sender.test\r\nAuto-Submitted: auto-replied\r\nSubject: Out of office\r\n\r\nI am away.\r\n";
    let r = post(vacation.to_string()).await;
    assert_eq!((r.status, &r.body["kind"]), (202, &json!("auto_reply")));
    log_of(&t, 11, "the DSN's bounce and the complaint").await;

    // Three days on, defer@ is deferred once more and expires: a soft
    // bounce.
    t.clock.advance(Duration::from_secs(4 * 86_400));
    let events = log_of(&t, 12, "defer@'s soft bounce").await;

    let by_type = |ty: &str| events.iter().filter(|e| e["type"] == ty).count();
    assert_eq!(
        [
            "sent",
            "deferred",
            "bounce",
            "block",
            "dropped",
            "open",
            "click",
            "complaint"
        ]
        .map(by_type),
        [2, 1, 3, 1, 1, 2, 1, 1],
        "the traffic made the events it should: {events:#?}"
    );
    let mut want = counted(&events);
    for (series, n) in [
        ("tidings_messages_accepted_total{interface=\"http\"}", 2.0),
        ("tidings_messages_accepted_total{interface=\"smtp\"}", 1.0),
        ("tidings_inbound_reports_total{kind=\"bounce\"}", 1.0),
        ("tidings_inbound_reports_total{kind=\"complaint\"}", 1.0),
        ("tidings_inbound_reports_total{kind=\"auto_reply\"}", 1.0),
        ("tidings_inbound_reports_total{kind=\"unrecognised\"}", 0.0),
        ("tidings_smtp_sessions_total{listener=\"submission\"}", 1.0),
        ("tidings_smtp_sessions_total{listener=\"inbound\"}", 1.0),
        ("tidings_smtp_auth_failures_total", 1.0),
        ("tidings_outbound_queue_depth", 0.0),
        ("tidings_outbound_queue_oldest_age_seconds", 0.0),
    ] {
        want.insert(series.to_string(), n);
    }
    assert_eq!(
        want["tidings_recipients_total{outcome=\"bounced_soft\"}"],
        1.0
    );
    assert_eq!(
        want["tidings_engagements_total{type=\"open\",agent=\"machine\"}"],
        1.0
    );
    assert_eq!(
        want["tidings_engagements_total{type=\"open\",agent=\"human\"}"],
        1.0
    );
    // A counter is bumped once its event is durable, a moment after the
    // event can be read: wait for them to agree.
    let end = tokio::time::Instant::now() + DEADLINE;
    loop {
        let diff = differences(&want, &scrape(&t).await);
        if diff.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < end,
            "the metrics disagree with the log:\n{}",
            diff.join("\n")
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.stop().await;
}
