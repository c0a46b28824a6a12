//! Throughput of the tracking rewriter and of tokens, on one core.
//!
//! `cargo run -p tidings-tracking --release --bin rewrite-bench [seconds]`
//!
//! Builds a realistic transactional email (a responsive table template of
//! about 50 KB of HTML with 30 links, Outlook conditional comments, inline
//! styles, a text alternative) and rewrites it for one recipient at a time,
//! as the sender does: links, pixel, unsubscribe headers, fresh tokens.
//! Reports MB/s of HTML (best of five rounds, to see past the noise of a
//! shared machine) for an 8bit HTML part (the rewriter itself) and for a
//! quoted-printable one (plus decoding and encoding), and tokens issued and
//! verified per second.

use std::hint::black_box;
use std::time::{Duration, Instant};

use tidings_tracking::rewrite::{rewrite, RecipientTokens, RewriteOptions};
use tidings_tracking::{Claims, TokenKeys, TokenKind};

const ROUNDS: usize = 5;

fn main() {
    let seconds: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let round = Duration::from_secs_f64(seconds / ROUNDS as f64);
    let html = template();
    let links = html.matches("<a href=\"https").count();
    println!("HTML: {} bytes, {links} links", html.len());

    let keys = TokenKeys::new((1, [7u8; 32]), vec![(0, [3u8; 32])]).expect("distinct key ids");
    let opts = RewriteOptions::new("https://t.example.com".parse().expect("a URL"));
    for (name, cte) in [
        ("8bit HTML part", "8bit"),
        ("quoted-printable HTML part", "quoted-printable"),
    ] {
        let msg = message(&html, cte);
        let mut recipient = 0i64;
        let best = best_rate(round, || {
            recipient += 1;
            let tokens = RecipientTokens {
                keys: &keys,
                account_id: 1,
                message_id: 1_000_000,
                recipient_id: recipient,
            };
            let r = rewrite(black_box(&msg), &opts, &tokens).expect("rewrite");
            assert_eq!(r.links.len(), links + 1, "30 in the HTML, 1 in the text");
            black_box(r);
        });
        println!(
            "{name}: {}",
            best.show(html.len() as f64 / 1e6, "MB of HTML")
        );
        println!("  = {}", best.show(1.0, "messages"));
    }

    let mut n = 0i64;
    let best = best_rate(round, || {
        n += 1;
        let c = Claims {
            account_id: 12,
            message_id: 3_400_000 + n,
            recipient_id: n,
            kind: TokenKind::Click {
                link_index: (n % 30) as u32,
            },
        };
        let t = keys.issue(&c);
        assert_eq!(keys.verify(black_box(&t)), Ok(c));
    });
    println!("tokens issued and verified: {}", best.show(1.0, "tokens"));
}

/// Calls per second of `f`, the best of [`ROUNDS`] rounds of `round`
/// each: by the wall clock, and by the CPU time this thread was given
/// (`/proc/thread-self/schedstat`, Linux), which is the one-core figure
/// when other processes share the machine.
fn best_rate(round: Duration, mut f: impl FnMut()) -> Rate {
    f(); // warm up
    let mut best = Rate {
        wall: 0.0,
        cpu: None,
    };
    for _ in 0..ROUNDS {
        let start = Instant::now();
        let cpu_start = cpu_ns();
        let mut calls = 0u64;
        while start.elapsed() < round {
            for _ in 0..16 {
                f();
            }
            calls += 16;
        }
        let wall = calls as f64 / start.elapsed().as_secs_f64();
        let cpu = cpu_start
            .zip(cpu_ns())
            .map(|(a, b)| calls as f64 / ((b - a) as f64 / 1e9));
        best.wall = best.wall.max(wall);
        best.cpu = match (best.cpu, cpu) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
    }
    best
}

struct Rate {
    wall: f64,
    cpu: Option<f64>,
}

impl Rate {
    /// `per_call` units of work per call, scaled by `scale`, as
    /// "wall (cpu on-CPU)".
    fn show(&self, per_call: f64, unit: &str) -> String {
        let cpu = self.cpu.map_or(String::new(), |c| {
            format!(", {:.0} {unit} per second on CPU", c * per_call)
        });
        format!(
            "{:.0} {unit} per second wall clock{cpu}",
            self.wall * per_call
        )
    }
}

/// Nanoseconds this thread has run, from the scheduler's accounting.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

fn message(html: &str, cte: &str) -> Vec<u8> {
    let body = if cte == "quoted-printable" {
        qp(html)
    } else {
        html.replace('\n', "\r\n")
    };
    format!(
        "From: Acme <shop@acme.example>\r\nTo: ana@example.org\r\nSubject: Your order has shipped\r\n\
         Message-ID: <bench@acme.example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/alternative; boundary=\"alt\"\r\n\r\n\
         --alt\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n\
         Your order has shipped: https://acme.example/orders/1042\r\n\
         --alt\r\nContent-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: {cte}\r\n\r\n\
         {body}\r\n--alt--\r\n"
    )
    .into_bytes()
}

/// Good-enough quoted-printable for building the input (soft breaks every
/// 72 characters, `=` escaped, text is ASCII apart from a few UTF-8 bytes).
fn qp(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 11 / 10);
    for line in s.lines() {
        let mut col = 0;
        for b in line.bytes() {
            let piece = if b == b'=' || !b.is_ascii() {
                format!("={b:02X}")
            } else {
                (b as char).to_string()
            };
            if col + piece.len() > 72 {
                out.push_str("=\r\n");
                col = 0;
            }
            col += piece.len();
            out.push_str(&piece);
        }
        out.push_str("\r\n");
    }
    out
}

const FAQ: [(&str, &str); 6] = [
    ("When will my parcel arrive?", "Most parcels arrive within two working days of dispatch in Germany and within three to five working days elsewhere in the EU. The estimate above comes from our delivery partner and is updated as soon as your parcel is scanned at the regional depot; bank holidays and peak seasons can add a day."),
    ("I won&rsquo;t be at home. What happens?", "The driver will try a neighbour first, unless you asked us not to, and otherwise leave the parcel at the nearest pick-up point. You will find a card in your letterbox and an email from the delivery partner with the address and opening hours; parcels wait there for seven days before they come back to us."),
    ("Can I change the address now?", "Once a parcel has left our warehouse we can no longer change the address ourselves, but the delivery partner can redirect it to a pick-up point or another day. Use the delivery options in your account, or reply to this email and our team will arrange it for you during opening hours."),
    ("Something is missing or damaged.", "Please keep all packaging and take a photo of the parcel and of the damaged item. Tell us within fourteen days and we will send a replacement or refund you, whichever you prefer; you never pay for return shipping on damaged goods, and in most cases you can simply keep the damaged piece."),
    ("How do returns work?", "You have sixty days to return anything unused in its original packaging. Print the prepaid label from your account, drop the parcel at any post office or pick-up point, and we refund you within five working days of receiving it, to the payment method you used for the order."),
    ("Is my payment information safe?", "We never see or store your full card number. Payments are processed by our payment provider under PCI DSS level 1, and your bank may ask you to confirm the payment in its app. If you notice a charge you do not recognise, contact us and your bank straight away."),
];

/// A responsive order-confirmation email: header, hero, 10 product rows
/// with 2 links each, delivery FAQ, footer; ~50 KB, 30 links.
fn template() -> String {
    let mut h = String::from(
        r##"<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN" "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml" xmlns:v="urn:schemas-microsoft-com:vml" xmlns:o="urn:schemas-microsoft-com:office:office">
<head>
<meta http-equiv="Content-Type" content="text/html; charset=utf-8" />
<meta name="viewport" content="width=device-width, initial-scale=1.0" />
<title>Your order has shipped</title>
<!--[if mso]><noscript><xml><o:OfficeDocumentSettings><o:PixelsPerInch>96</o:PixelsPerInch></o:OfficeDocumentSettings></xml></noscript><![endif]-->
<style type="text/css">
body{margin:0;padding:0;-webkit-text-size-adjust:100%;-ms-text-size-adjust:100%}
table,td{border-collapse:collapse;mso-table-lspace:0pt;mso-table-rspace:0pt}
img{border:0;height:auto;line-height:100%;outline:none;text-decoration:none;-ms-interpolation-mode:bicubic}
a[x-apple-data-detectors]{color:inherit!important;text-decoration:none!important;font-size:inherit!important}
@media only screen and (max-width:620px){.container{width:100%!important}.stack{display:block!important;width:100%!important}.pad{padding:12px!important}}
</style>
</head>
<body style="margin:0;padding:0;background-color:#f4f4f7;">
<div style="display:none;max-height:0;overflow:hidden;mso-hide:all;">Your parcel is on its way &mdash; here is everything you need to know about your delivery.&nbsp;&zwnj;&nbsp;&zwnj;</div>
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" bgcolor="#f4f4f7"><tr><td align="center" style="padding:24px 12px;">
<!--[if mso]><table role="presentation" width="600" cellpadding="0" cellspacing="0" border="0"><tr><td><![endif]-->
<table role="presentation" class="container" width="600" cellpadding="0" cellspacing="0" border="0" style="max-width:600px;background:#ffffff;">
<tr><td class="pad" style="padding:24px;"><a href="https://acme.example/?utm_source=email&amp;utm_medium=transactional&amp;utm_campaign=shipped"><img src="https://cdn.acme.example/logo.png" width="120" height="40" alt="Acme" style="display:block;border:0;" /></a></td></tr>
<tr><td class="pad" style="padding:0 24px;font-family:Helvetica,Arial,sans-serif;font-size:16px;line-height:24px;color:#333333;">
<h1 style="margin:0 0 12px;font-size:24px;line-height:32px;color:#111111;">Good news, Ana &mdash; your order is on its way</h1>
<p style="margin:0 0 12px;">Order <strong>#1042</strong> left our warehouse in Leipzig this morning and is now with our delivery partner. You can follow every step of its journey, change the delivery day, or send it to a pick-up point near you.</p>
<!--[if mso]><v:roundrect xmlns:v="urn:schemas-microsoft-com:vml" href="https://acme.example/orders/1042/track?src=vml" style="height:44px;v-text-anchor:middle;width:220px;" arcsize="10%" stroke="f" fillcolor="#1a73e8"><w:anchorlock/><center style="color:#ffffff;font-family:sans-serif;font-size:16px;">Track your parcel</center></v:roundrect><![endif]-->
<!--[if !mso]><!--><a href="https://acme.example/orders/1042/track?src=email&amp;lang=en" style="background:#1a73e8;color:#ffffff;display:inline-block;padding:12px 24px;border-radius:4px;text-decoration:none;font-weight:bold;">Track your parcel</a><!--<![endif]-->
<p style="margin:12px 0;">Estimated delivery: <b>Tuesday, 24 November</b>, between 10:00 and 14:00. <a href="https://acme.example/orders/1042/delivery?utm_source=email&amp;utm_medium=transactional" style="color:#1a73e8;">Change delivery</a>.</p>
</td></tr>
"##,
    );
    for i in 0..12 {
        h.push_str(&format!(
            r##"<tr><td class="pad" style="padding:12px 24px;border-top:1px solid #eeeeee;">
<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0"><tr>
<td class="stack" width="140" valign="top" style="padding:8px;"><a href="https://acme.example/p/{i}/stoneware-item?ref=order&amp;utm_source=email&amp;utm_content=image"><img src="https://cdn.acme.example/p/{i}/thumb-280.jpg" width="120" height="120" alt="Product {i}" style="display:block;width:120px;height:120px;border-radius:4px;" /></a></td>
<td class="stack" valign="top" style="padding:8px;font-family:Helvetica,Arial,sans-serif;font-size:14px;line-height:20px;color:#333333;">
<p style="margin:0 0 4px;font-size:16px;font-weight:bold;"><a href="https://acme.example/p/{i}/stoneware-item?ref=order&amp;utm_source=email&amp;utm_content=title" style="color:#111111;text-decoration:none;">Handmade stoneware item no. {i}, glazed in sea-green</a></p>
<p style="margin:0 0 4px;color:#666666;">Colour: sea-green &middot; Size: M &middot; Quantity: 1 &middot; Article no. 55{i:03}-20</p>
<p style="margin:0 0 4px;color:#666666;">Each piece is thrown by hand in our partner workshop in Portugal, so small variations in colour and shape are part of its character. Dishwasher and microwave safe.</p>
<table role="presentation" cellpadding="0" cellspacing="0" border="0" style="margin:4px 0;font-size:12px;line-height:16px;color:#777777;">
<tr><td style="padding:2px 8px 2px 0;">Material</td><td style="padding:2px 0;">Stoneware, lead-free glaze, fired at 1,240&nbsp;&deg;C</td></tr>
<tr><td style="padding:2px 8px 2px 0;">Dimensions</td><td style="padding:2px 0;">&Oslash; 14&nbsp;cm &times; 9&nbsp;cm, 450&nbsp;ml, 520&nbsp;g</td></tr>
<tr><td style="padding:2px 8px 2px 0;">Care</td><td style="padding:2px 0;">Dishwasher safe up to 65&nbsp;&deg;C; avoid sudden temperature changes</td></tr>
<tr><td style="padding:2px 8px 2px 0;">Warehouse</td><td style="padding:2px 0;">Leipzig (DE) &middot; parcel 1 of 1 &middot; tracking DHL 00340434161094{i:03}</td></tr>
</table>
<p style="margin:4px 0;color:#666666;font-size:13px;line-height:19px;">Why we love it: the glaze pools in the grooves and turns almost black at the rim, while the body stays a soft sea-green. Every glaze batch is mixed by hand, so the piece you receive is unique &mdash; the photos show a typical example, not your exact item. If anything arrived damaged, keep the packaging and tell us within 14 days; we replace it free of charge, no return needed.</p>
<p style="margin:0;font-weight:bold;">&euro;{price}.00</p>
</td></tr></table>
<!-- product row {i} end -->
</td></tr>
"##,
            price = 20 + i * 3
        ));
    }
    h.push_str(
        r##"<tr><td class="pad" style="padding:24px;font-family:Helvetica,Arial,sans-serif;font-size:14px;line-height:21px;color:#444444;">
<h2 style="margin:0 0 12px;font-size:18px;line-height:24px;color:#111111;">Delivery questions, answered</h2>
"##,
    );
    for (q, a) in FAQ.iter().chain(FAQ.iter()) {
        h.push_str(&format!(
            "<p style=\"margin:12px 0 4px;font-weight:bold;color:#222222;\">{q}</p>\n<p style=\"margin:0 0 8px;\">{a} {a} {a}</p>\n"
        ));
    }
    h.push_str("</td></tr>\n");
    h.push_str(
        r##"<tr><td class="pad" style="padding:24px;font-family:Helvetica,Arial,sans-serif;font-size:14px;line-height:20px;color:#555555;">
<p style="margin:0 0 12px;">Subtotal &euro;474.00 &middot; Shipping &euro;0.00 &middot; VAT included &euro;75.68 &middot; <strong>Total &euro;474.00</strong></p>
<p style="margin:0 0 12px;">Questions? Reply to this email, write to <a href="mailto:support@acme.example">support@acme.example</a> or call <a href="tel:+4930123456">+49 30 123456</a>. Our <a href="https://acme.example/help/returns?utm_source=email">returns policy</a> gives you 60 days.</p>
</td></tr>
<tr><td align="center" style="padding:24px;font-family:Helvetica,Arial,sans-serif;font-size:12px;line-height:18px;color:#999999;">
Acme GmbH &middot; Beispielstra&szlig;e 1 &middot; 10115 Berlin &middot; Registered at Amtsgericht Charlottenburg HRB 000000<br />
<a href="https://acme.example/privacy" style="color:#999999;">Privacy</a> &middot; <a href="https://acme.example/terms" style="color:#999999;">Terms</a> &middot; <a href="{{tidings_unsubscribe_url}}" style="color:#999999;">Unsubscribe</a>
</td></tr>
</table>
<!--[if mso]></td></tr></table><![endif]-->
</td></tr></table>
</body>
</html>
"##,
    );
    h
}
