//! The order of evidence: the enhanced status code, then the SMTP reply,
//! then the remote MTA's words, then the report's own prose.

use tidings_bounce::{parse, Action, BounceType, Reason, Report};

/// A one-recipient RFC 3464 DSN.
pub fn dsn(action: &str, status: &str, diagnostic: &str) -> String {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: bounces+msg_1=a.example@tidings.example
Subject: Delivery Status Notification
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=\"B\"

--B
Content-Type: text/plain

This is the mail system at host mx.example.net.

--B
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; alice@example.org
Action: {action}
Status: {status}
Diagnostic-Code: smtp; {diagnostic}

--B--
"
    )
}

fn only(raw: &str) -> tidings_bounce::BouncedRecipient {
    match parse(raw.as_bytes()) {
        Report::Bounce(mut b) => b.recipients.remove(0),
        other => panic!("not a bounce: {other:?}"),
    }
}

#[test]
fn a_code_that_names_the_cause_beats_the_words() {
    // 5.1.6 is "mailbox has moved, no forwarding address" (RFC 3463),
    // although "account closed" alone would read as a suspended account.
    let r = only(&dsn(
        "failed",
        "5.1.6",
        "550 5.1.6 Account closed, no forwarding address",
    ));
    assert_eq!(r.reason, Reason::HasMoved);
    assert_eq!(r.bounce_type, BounceType::Hard);
}

#[test]
fn microsoft_5_1_10_is_an_unknown_recipient_not_a_null_mx() {
    let r = only(&dsn(
        "failed",
        "5.1.10",
        "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup",
    ));
    assert_eq!(r.reason, Reason::UserUnknown);
    assert_eq!(r.action, Action::Failed);
}
