//! Greeting, EHLO, the simple commands, garbage and pipelining.

use tidings_smtp::SessionEnd;

use super::support::*;

#[tokio::test]
async fn ehlo_before_tls_offers_starttls_not_auth() {
    let h = harness(config());
    let (mut c, _task) = h.connect().await;
    let r = c.cmd("EHLO client.test", 250).await;
    assert_eq!(r.lines[0], "smtp.test greets client.test");
    for ext in [
        "PIPELINING",
        "SIZE 26214400",
        "8BITMIME",
        "SMTPUTF8",
        "ENHANCEDSTATUSCODES",
        "STARTTLS",
    ] {
        assert!(r.lines.iter().any(|l| l == ext), "{ext} missing in {r:?}");
    }
    assert!(!r.lines.iter().any(|l| l.starts_with("AUTH")), "{r:?}");
}

#[tokio::test]
async fn ehlo_after_tls_offers_auth_not_starttls() {
    let h = harness(config());
    let (mut c, _task) = h.connect_tls().await;
    let r = c.cmd("EHLO again.test", 250).await;
    assert!(r.lines.iter().any(|l| l == "AUTH PLAIN LOGIN"), "{r:?}");
    assert!(!r.lines.iter().any(|l| l == "STARTTLS"), "{r:?}");
    c.cmd("STARTTLS", 503).await;
}

#[tokio::test]
async fn helo_offers_nothing() {
    let h = harness(config());
    let (mut c, _task) = h.connect().await;
    let r = c.cmd("HELO client.test", 250).await;
    assert_eq!(r.lines.len(), 1);
    // STARTTLS and AUTH need EHLO.
    c.cmd("STARTTLS", 503).await;
}

#[tokio::test]
async fn simple_commands() {
    let h = harness(config());
    let (mut c, task) = h.connect().await;
    assert_eq!(c.cmd("NOOP", 250).await.text(), "2.0.0 OK");
    c.cmd("RSET", 250).await;
    assert!(c.cmd("HELP", 214).await.text().contains("EHLO"));
    assert!(c
        .cmd("VRFY someone@example.com", 252)
        .await
        .text()
        .starts_with("2.1.5"));
    c.cmd("EXPN list", 502).await;
    c.cmd("BDAT 10 LAST", 502).await;
    c.cmd("QUIT", 221).await;
    c.closed().await;
    assert_eq!(ended(task).await, SessionEnd::Quit);
}

#[tokio::test]
async fn garbage_gets_500_and_the_session_stays_usable() {
    let h = harness(config());
    let (mut c, _task) = h.connect().await;
    let r = c.cmd("HELLO WORLD", 500).await;
    assert_eq!(r.text(), "5.5.1 Unrecognized command");
    c.send(b"\x00\xff\xfe binary junk\r\n").await;
    c.expect(500).await;
    c.cmd("", 500).await;
    c.cmd("MAIL FROM:missing-brackets", 501).await;
    c.cmd("NOOP", 250).await;
}

#[tokio::test]
async fn pipelined_commands_are_answered_in_order() {
    let h = harness(config());
    let (mut c, _task) = h.connect_authed().await;
    c.send(
        "MAIL FROM:<app@example.com>\r\nRCPT TO:<a@example.org>\r\nRCPT TO:<reject@example.org>\r\nFOO\r\nRCPT TO:<b@example.org>\r\nDATA\r\n",
    )
    .await;
    assert_eq!(c.expect(250).await.text(), "2.1.0 Sender OK");
    assert_eq!(c.expect(250).await.text(), "2.1.5 Recipient OK");
    assert_eq!(c.expect(550).await.text(), "5.1.1 Recipient rejected");
    c.expect(500).await;
    c.expect(250).await;
    c.expect(354).await;
    c.send(format!("{SIMPLE}.\r\nNOOP\r\nQUIT\r\n")).await;
    assert_eq!(c.expect(250).await.text(), "2.0.0 OK queued as msg_1");
    c.expect(250).await;
    c.expect(221).await;
    let subs = h.handler.submissions();
    assert_eq!(subs[0].rcpt_to, ["a@example.org", "b@example.org"]);
}
