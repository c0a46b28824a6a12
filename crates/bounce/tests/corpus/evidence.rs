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

/// Sentences from the MTAs' and providers' own documentation or source
/// (the same sources the phrase tables cite), each read as its reason.
#[test]
fn documented_sentences_are_read_as_documented() {
    let cases = [
        // qmail-smtpd.c
        (
            "5.7.1",
            "553 sorry, that domain isn't in my list of allowed rcpthosts (#5.7.1)",
            Reason::NoRelaying,
        ),
        (
            "5.3.4",
            "552 sorry, that message size exceeds my databytes limit (#5.3.4)",
            Reason::EmailTooLarge,
        ),
        // qmail-remote.c
        (
            "5.6.2",
            "SMTP cannot transfer messages with partial final lines. (#5.6.2)",
            Reason::ContentError,
        ),
        // Postfix smtp_addr.c: a temporary DNS failure is not a bad domain.
        (
            "4.4.3",
            "Host or domain name not found. Name service error for name=example.org type=MX: Host not found, try again",
            Reason::NetworkError,
        ),
        // Gmail
        (
            "5.7.1",
            "550-5.7.1 [192.0.2.1] The IP you're using to send mail is not authorized to send email directly to our servers. Please use the SMTP relay at your service provider instead.",
            Reason::Blocked,
        ),
        (
            "5.7.1",
            "550-5.7.1 Messages missing a valid messageId header are not accepted.",
            Reason::NotCompliantRfc,
        ),
        // Yahoo
        (
            "5.7.9",
            "554 5.7.9 Message not accepted for policy reasons.",
            Reason::PolicyViolation,
        ),
        (
            "4.7.0",
            "421 4.7.0 [TSS09] All messages from 192.0.2.1 will be permanently deferred; Retrying will NOT succeed.",
            Reason::Blocked,
        ),
        // Outlook.com
        (
            "5.7.1",
            "550 5.7.1 Unfortunately, messages from [192.0.2.1] weren't sent. Please contact your Internet service provider since part of their network is on our block list (S3140).",
            Reason::Blocked,
        ),
        (
            "4.7.0",
            "421 RP-001 Unfortunately, some messages from 192.0.2.1 weren't sent. Please try again. We have limits for how many messages can be sent per hour and per day.",
            Reason::RateLimited,
        ),
        // RFC 7372
        (
            "5.7.10",
            "530 5.7.10 Encryption needed",
            Reason::FailedStarttls,
        ),
    ];
    let mut wrong = Vec::new();
    for (status, text, want) in cases {
        let action = if status.starts_with('4') {
            "delayed"
        } else {
            "failed"
        };
        let got = only(&dsn(action, status, text)).reason;
        if got != want {
            wrong.push(format!("{text:?}: {got:?}, want {want:?}"));
        }
    }
    assert!(wrong.is_empty(), "{wrong:#?}");
}
