//! Errors, line length, timeouts and shutdown.

use std::time::Duration;

use tidings_smtp::SessionEnd;

use super::support::*;

#[tokio::test]
async fn too_many_errors_close_the_session() {
    let mut cfg = config();
    cfg.max_errors = 3;
    let h = harness(cfg);
    let (mut c, task) = h.connect().await;
    for _ in 0..3 {
        c.cmd("GARBAGE", 500).await;
        c.cmd("NOOP", 250).await;
    }
    c.send("GARBAGE\r\n").await;
    c.expect(500).await;
    let r = c.expect(421).await;
    assert_eq!(r.text(), "4.7.0 Too many errors, closing connection");
    c.closed().await;
    assert_eq!(ended(task).await, SessionEnd::TooManyErrors);
}

#[tokio::test]
async fn command_line_too_long_gets_500_and_the_session_goes_on() {
    let mut cfg = config();
    cfg.max_command_line = 512;
    let h = harness(cfg);
    let (mut c, _task) = h.connect().await;
    let r = c.cmd(&format!("NOOP {}", "a".repeat(600)), 500).await;
    assert_eq!(r.text(), "5.5.2 Line too long");
    // Far longer than any buffer: discarded as it streams in.
    c.cmd(&format!("EHLO {}", "b".repeat(100_000)), 500).await;
    c.cmd(&format!("NOOP {}", "a".repeat(400)), 250).await;
}

#[tokio::test(start_paused = true)]
async fn idle_client_gets_421() {
    let mut cfg = config();
    cfg.idle_timeout = Duration::from_secs(5);
    let h = harness(cfg);
    let (mut c, task) = h.connect().await;
    c.cmd("EHLO client.test", 250).await;
    let start = tokio::time::Instant::now();
    let r = c.expect(421).await;
    assert_eq!(r.text(), "4.4.2 Idle timeout, closing connection");
    assert!(start.elapsed() >= Duration::from_secs(5));
    c.closed().await;
    assert_eq!(ended(task).await, SessionEnd::IdleTimeout);
}

#[tokio::test(start_paused = true)]
async fn idle_timeout_mid_data_accepts_nothing() {
    let mut cfg = config();
    cfg.idle_timeout = Duration::from_secs(5);
    let h = harness(cfg);
    let (mut c, task) = h.connect_authed().await;
    c.cmd("MAIL FROM:<app@example.com>", 250).await;
    c.cmd("RCPT TO:<a@example.org>", 250).await;
    c.cmd("DATA", 354).await;
    c.send("Subject: slow\r\n").await;
    c.expect(421).await;
    assert_eq!(ended(task).await, SessionEnd::IdleTimeout);
    assert_eq!(h.handler.accepted(), 0);
}

#[tokio::test(start_paused = true)]
async fn busy_session_still_ends_at_the_session_timeout() {
    let mut cfg = config();
    cfg.idle_timeout = Duration::from_secs(5);
    cfg.session_timeout = Duration::from_secs(60);
    // Not authenticated: the setup timeout must not come first.
    cfg.setup_timeout = Duration::from_secs(600);
    let h = harness(cfg);
    let start = tokio::time::Instant::now();
    let (mut c, task) = h.connect().await;
    let last = loop {
        // The server may have closed while we slept; its 421 is still
        // there to read.
        c.try_send("NOOP\r\n").await;
        let r = c.reply().await.expect("a reply");
        if r.code != 250 {
            break r;
        }
        // Virtual time: the runtime is paused.
        tokio::time::sleep(Duration::from_secs(3)).await;
    };
    assert_eq!(last.code, 421);
    assert_eq!(
        last.text(),
        "4.4.2 Session time limit exceeded, closing connection"
    );
    assert!(start.elapsed() >= Duration::from_secs(60));
    assert_eq!(ended(task).await, SessionEnd::SessionTimeout);
}

#[tokio::test]
async fn shutdown_says_421() {
    let h = harness(config());
    let (mut c, task) = h.connect_authed().await;
    c.cmd("MAIL FROM:<app@example.com>", 250).await;
    h.shutdown.cancel();
    let r = c.expect(421).await;
    assert_eq!(r.text(), "4.3.2 Service shutting down, closing connection");
    assert_eq!(ended(task).await, SessionEnd::Shutdown);
}
