//! Focused examples: one behaviour each.

use tidings_bounce::{parse, Action, BounceType, Reason, Report};

const DSN: &str = "Return-Path: <>
From: Mail Delivery System <MAILER-DAEMON@mx.example.net>
To: bounces+msg_1=a.example@tidings.example
Subject: Undelivered Mail Returned to Sender
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary=\"BOUND\"

--BOUND
Content-Type: text/plain

This is the mail system at host mx.example.net.

<alice@example.org>: host mx.example.org[192.0.2.1] said: 550 5.1.1
    <alice@example.org>: Recipient address rejected: User unknown (in reply to
    RCPT TO command)

--BOUND
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net
Arrival-Date: Thu, 29 Apr 2021 23:34:45 +0900

Final-Recipient: rfc822; alice@example.org
Action: failed
Status: 5.1.1
Remote-MTA: dns; mx.example.org
Diagnostic-Code: smtp; 550 5.1.1 <alice@example.org>: Recipient address
    rejected: User unknown in local recipient table

Final-Recipient: rfc822; Bob@Example.org
Action: failed
Status: 5.2.2
Diagnostic-Code: smtp; 552 5.2.2 <bob@example.org>: mailbox full

Final-Recipient: rfc822; carol@example.com
Action: delayed
Status: 4.4.7
Diagnostic-Code: smtp; 451 4.4.7 retry timeout exceeded

--BOUND
Content-Type: text/rfc822-headers

From: App <app@tidings.example>
To: alice@example.org
Subject: Your receipt
Message-ID: <msg_1@tidings.example>
X-Tidings-Custom-ID: order-42

--BOUND--
";

fn with_endings(text: &str, eol: &str) -> Vec<u8> {
    text.replace('\n', eol).into_bytes()
}

#[test]
fn lf_crlf_and_cr_only_give_the_same_report() {
    let lf = parse(&with_endings(DSN, "\n"));
    assert_eq!(lf, parse(&with_endings(DSN, "\r\n")));
    assert_eq!(lf, parse(&with_endings(DSN, "\r")));
    assert!(matches!(lf, Report::Bounce(_)));
}

#[test]
fn dsn_with_several_recipients() {
    let Report::Bounce(b) = parse(DSN.as_bytes()) else {
        panic!("not a bounce");
    };
    let r = &b.recipients;
    assert_eq!(r.len(), 3);
    assert_eq!(r[0].email, "alice@example.org");
    assert_eq!(r[0].reason, Reason::UserUnknown);
    assert_eq!(r[0].bounce_type, BounceType::Hard);
    assert_eq!(r[0].status.to_string(), "5.1.1");
    assert_eq!(r[0].smtp_reply_code, Some(550));
    assert_eq!(r[0].remote_mta.as_deref(), Some("mx.example.org"));
    assert_eq!(r[1].email, "bob@example.org");
    assert_eq!(r[1].reason, Reason::MailboxFull);
    assert_eq!(r[1].bounce_type, BounceType::Soft);
    assert_eq!(r[2].action, Action::Delayed);
    assert_eq!(r[2].reason, Reason::Expired);
    assert_eq!(b.reporting_mta.as_deref(), Some("mx.example.net"));
    assert_eq!(
        b.original.message_id.as_deref(),
        Some("msg_1@tidings.example")
    );
    assert_eq!(
        b.original.tidings_headers,
        vec![("X-Tidings-Custom-ID".to_string(), "order-42".to_string())]
    );
}

#[test]
fn arf_report_is_a_complaint() {
    let arf = "From: feedback@arf.example.net
To: fbl@tidings.example
Subject: FW: Your receipt
MIME-Version: 1.0
Content-Type: multipart/report; report-type=feedback-report; boundary=\"B\"

--B
Content-Type: text/plain

This is an email abuse report.

--B
Content-Type: message/feedback-report

Feedback-Type: abuse
User-Agent: ExampleFBL/1.0
Version: 1
Source-IP: 192.0.2.7
Original-Rcpt-To: <Dave@Example.org>
Arrival-Date: Thu, 29 Apr 2021 23:34:45 +0000

--B
Content-Type: message/rfc822

From: App <app@tidings.example>
To: dave@example.org
Subject: Your receipt
Message-ID: <msg_2@tidings.example>

Hello
--B--
";
    let Report::Complaint(c) = parse(arf.as_bytes()) else {
        panic!("not a complaint");
    };
    assert_eq!(c.feedback_type, "abuse");
    assert_eq!(c.email.as_deref(), Some("dave@example.org"));
    assert_eq!(c.reporter.as_deref(), Some("ExampleFBL/1.0"));
    assert_eq!(c.source_ip.as_deref(), Some("192.0.2.7"));
    assert_eq!(
        c.original.message_id.as_deref(),
        Some("msg_2@tidings.example")
    );
}

#[test]
fn auto_reply_is_not_a_bounce() {
    let msg = "From: Erin <erin@example.org>
To: bounces+msg_3=erin.example.org@tidings.example
Subject: Out of Office: Your receipt
Auto-Submitted: auto-replied
X-Autoreply: yes

I am away until Monday; for urgent matters write to frank@example.org.
";
    let r = parse(msg.as_bytes());
    assert!(matches!(r, Report::AutoReply(_)), "{r:?}");
    assert!(r.bounced().is_empty());
}

#[test]
fn success_dsn_is_not_a_bounce() {
    let msg = "From: MAILER-DAEMON@mx.example.net
To: bounces@tidings.example
Subject: Successful Mail Delivery Report
Content-Type: multipart/report; report-type=delivery-status; boundary=\"S\"

--S
Content-Type: text/plain

Your message was successfully delivered to the destination(s) listed below.

--S
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; gina@example.org
Action: delivered
Status: 2.0.0
Diagnostic-Code: smtp; 250 2.0.0 Ok: queued

--S--
";
    let r = parse(msg.as_bytes());
    let Report::DeliverySuccess(d) = &r else {
        panic!("not a success: {r:?}");
    };
    assert_eq!(d.recipients, vec!["gina@example.org".to_string()]);
    assert!(r.bounced().is_empty());
}

#[test]
fn human_mail_is_unrecognised() {
    let msg = "From: Hal <hal@example.org>\nTo: app@tidings.example\nSubject: Thanks\n\nThanks for the receipt, see you soon. ivy@example.org\n";
    assert_eq!(parse(msg.as_bytes()), Report::Unrecognised);
}

#[test]
fn human_reply_about_delivery_is_not_a_bounce() {
    let msg = "From: Jo <jo@example.org>\nTo: shop@tidings.example\nSubject: Re: Your order has shipped\n\nThe parcel could not be delivered yesterday; please call Kim, kim@example.org.\n";
    assert!(parse(msg.as_bytes()).bounced().is_empty());
}

#[test]
fn plain_text_bounce_with_x_failed_recipients() {
    let msg = "From: Mail Delivery System <Mailer-Daemon@mx.example.net>
To: bounces@tidings.example
Subject: Mail delivery failed: returning message to sender
X-Failed-Recipients: lee@example.org
Auto-Submitted: auto-replied

This message was created automatically by mail delivery software.

A message that you sent could not be delivered to one or more of its
recipients. This is a permanent error. The following address(es) failed:

  lee@example.org
    SMTP error from remote mail server after RCPT TO:<lee@example.org>:
    host mx.example.org [192.0.2.9]: 550 5.1.1 <lee@example.org>: Recipient address rejected: User unknown

------ This is a copy of the message, including all the headers. ------

Return-path: <bounces@tidings.example>
Message-ID: <msg_9@tidings.example>
From: App <app@tidings.example>
To: lee@example.org
Subject: Welcome

Hi
";
    let Report::Bounce(b) = parse(msg.as_bytes()) else {
        panic!("not a bounce");
    };
    assert_eq!(b.recipients.len(), 1);
    assert_eq!(b.recipients[0].email, "lee@example.org");
    assert_eq!(b.recipients[0].reason, Reason::UserUnknown);
    assert_eq!(b.recipients[0].bounce_type, BounceType::Hard);
    assert_eq!(b.recipients[0].smtp_reply_code, Some(550));
    assert_eq!(
        b.original.message_id.as_deref(),
        Some("msg_9@tidings.example")
    );
}

#[test]
fn reasons_serialise_snake_case() {
    assert_eq!(
        serde_json::to_string(&Reason::UserUnknown).unwrap(),
        "\"user_unknown\""
    );
    assert_eq!(
        serde_json::to_string(&Reason::EmailTooLarge).unwrap(),
        "\"email_too_large\""
    );
    // Names used before are still read.
    for (old, new) in [
        ("message_too_large", Reason::EmailTooLarge),
        ("too_many_connections", Reason::RateLimited),
    ] {
        assert_eq!(
            serde_json::from_str::<Reason>(&format!("\"{old}\"")).unwrap(),
            new
        );
        assert_eq!(Reason::from_name(old), Some(new));
    }
    for r in Reason::ALL {
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            format!("\"{}\"", r.as_str())
        );
    }
}
