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

/// A list manager refusing a post (ezmlm through qmail, Mailman 2 and 3):
/// a bounce of the list's address, rejected, never a hard bounce.
#[test]
fn list_managers_refusing_a_post_are_bounces_of_the_list() {
    let ezmlm = "From: MAILER-DAEMON@lists.example.org
To: bounces+msg_1=a.example@tidings.example
Subject: failure notice

Hi. This is the qmail-send program at lists.example.org.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<announce@lists.example.org>:
Sorry, only subscribers may post. If you are a subscriber, please forward this message to announce-owner@lists.example.org to get your new address included (#5.7.2)

--- Below this line is a copy of the message.

From: App <app@tidings.example>
To: announce@lists.example.org
Subject: hello
";
    let mailman2 = "From: talk-owner@lists.example.org
To: bounces+msg_1=a.example@tidings.example
Subject: Request to mailing list Talk rejected
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=\"M\"

--M
Content-Type: text/plain

Your request to the Talk mailing list

    Posting of your message titled \"hello\"

has been rejected by the list moderator.  The moderator gave the
following reason for rejecting your request:

\"You are not allowed to post to this mailing list, and your message has
been automatically rejected.  If you think that your messages are being
rejected in error, contact the mailing list owner at
talk-owner@lists.example.org.\"

--M
Content-Type: message/rfc822

From: App <app@tidings.example>
To: talk@lists.example.org
Subject: hello

hi
--M--
";
    let mailman3 = "From: talk-owner@lists.example.org
To: bounces+msg_1=a.example@tidings.example
Subject: Your message to Talk rejected
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary=\"M\"

--M
Content-Type: text/plain

Your message to the Talk mailing-list was rejected for the following
reasons:

The message is not from a list member

The original message as received by Mailman is attached.

--M
Content-Type: message/rfc822

From: App <app@tidings.example>
To: talk@lists.example.org
Subject: hello

hi
--M--
";
    for (name, raw, list) in [
        ("ezmlm", ezmlm, "announce@lists.example.org"),
        ("mailman2", mailman2, "talk@lists.example.org"),
        ("mailman3", mailman3, "talk@lists.example.org"),
    ] {
        let Report::Bounce(b) = parse(raw.as_bytes()) else {
            panic!("{name}: not a bounce");
        };
        assert_eq!(b.recipients.len(), 1, "{name}: {:?}", b.recipients);
        let r = &b.recipients[0];
        assert_eq!(r.email, list, "{name}");
        assert_eq!(r.reason, Reason::Rejected, "{name}");
        assert_eq!(r.bounce_type, BounceType::Soft, "{name}");
    }
}

/// qmail-send's bounce, even from a sender and subject that say nothing.
#[test]
fn a_qmail_bounce_is_recognised_by_its_own_words() {
    let raw = "From: root@mail.example.org
To: bounces+msg_1=a.example@tidings.example
Subject: Re: hello

Hi. This is the qmail-send program at mail.example.org.
I'm afraid I wasn't able to deliver your message to the following addresses.
This is a permanent error; I've given up. Sorry it didn't work out.

<kim@example.org>:
Sorry, no mailbox here by that name. (#5.1.1)

--- Below this line is a copy of the message.

From: App <app@tidings.example>
To: kim@example.org
Subject: hello
";
    let r = only(raw);
    assert_eq!(r.email, "kim@example.org");
    assert_eq!(r.reason, Reason::UserUnknown);
    assert_eq!(r.bounce_type, BounceType::Hard);
}
