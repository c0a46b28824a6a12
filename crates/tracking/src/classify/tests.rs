use super::*;
use chrono::{Duration, TimeZone, Utc};

const CHROME: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
const IPHONE_MAIL: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148";
const OUTLOOK_DESKTOP: &str = "Mozilla/4.0 (compatible; ms-office; MSOffice 16)";
const GMAIL: &str =
    "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";
const YAHOO: &str = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html";

const HOME: &str = "203.0.113.7";
const APPLE: &str = "17.58.101.12";
const EOP: &str = "40.107.22.51";
const EOP6: &str = "2a01:111:f400:fe1e::3";

fn t0() -> Timestamp {
    Utc.with_ymd_and_hms(2026, 11, 20, 9, 0, 0).unwrap()
}

fn secs(s: f64) -> Timestamp {
    t0() + Duration::milliseconds((s * 1000.0) as i64)
}

/// A pixel fetch from a home address, with no delivery time known.
fn open_at_home(method: &Method, ua: &str) -> OpenVerdict {
    classify_open(method, HOME.parse().unwrap(), Some(ua), None, t0())
}

#[test]
fn opens() {
    // (ip, user agent, seconds after delivery, machine, reason code)
    let cases: &[(&str, Option<&str>, f64, bool, &str)] = &[
        (HOME, Some(CHROME), 300.0, false, "person"),
        (HOME, Some(IPHONE_MAIL), 45.0, false, "person"),
        (HOME, Some(OUTLOOK_DESKTOP), 3.0, false, "person"),
        // A person waiting for a password reset opens it within seconds.
        (HOME, Some(CHROME), 2.5, false, "person"),
        (HOME, Some(CHROME), 1.0, true, "too_soon"),
        (HOME, Some(CHROME), -0.5, true, "too_soon"),
        (HOME, None, 300.0, true, "no_user_agent"),
        (HOME, Some("   "), 300.0, true, "no_user_agent"),
        // Apple Mail Privacy Protection: bare agent, or Apple's network.
        ("104.28.40.12", Some("Mozilla/5.0"), 0.8, true, "apple_mail_privacy"),
        (HOME, Some(" Mozilla/5.0 "), 7200.0, true, "apple_mail_privacy"),
        (APPLE, Some(IPHONE_MAIL), 30.0, true, "apple_mail_privacy"),
        ("::ffff:17.1.2.3", Some(CHROME), 30.0, true, "apple_mail_privacy"),
        // Image proxies: a person's open, unless it is a prefetch.
        ("66.102.8.35", Some(GMAIL), 120.0, false, "image_proxy"),
        ("66.102.8.35", Some(GMAIL), 0.3, true, "too_soon"),
        ("98.136.1.1", Some(YAHOO), 60.0, false, "image_proxy"),
        (HOME, Some("Mozilla/5.0 (compatible; OutlookImageProxy)"), 60.0, false, "image_proxy"),
        // Scanners and programs.
        (HOME, Some("python-requests/2.31.0"), 600.0, true, "http_library"),
        (HOME, Some("curl/8.5.0"), 600.0, true, "http_library"),
        (HOME, Some("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/120.0.0.0 Safari/537.36"), 600.0, true, "headless_browser"),
        (HOME, Some("Mozilla/5.0 (compatible; Barracuda Sentinel)"), 600.0, true, "security_scanner"),
        (EOP, Some(CHROME), 600.0, true, "mail_network"),
        (EOP6, Some(CHROME), 600.0, true, "mail_network"),
    ];
    for &(ip, ua, after, machine, code) in cases {
        let v = classify_open(
            &Method::GET,
            ip.parse().unwrap(),
            ua,
            Some(t0()),
            secs(after),
        );
        assert_eq!(
            (v.machine, v.why.code()),
            (machine, code),
            "{ip} {ua:?} +{after}s: {v:?}"
        );
    }
    // Without a delivery time the timing rule cannot apply.
    let v = open_at_home(&Method::GET, CHROME);
    assert_eq!(v.why, Why::Person);
    // A HEAD fetches no image: a link checker's, whoever it claims to be.
    let v = open_at_home(&Method::HEAD, CHROME);
    assert_eq!((v.machine, v.why), (true, Why::HeadRequest));
}

/// (method, ip, user agent, seconds after delivery, recent clicks, bot, reason code)
type ClickCase<'a> = (
    Method,
    &'a str,
    Option<&'a str>,
    f64,
    &'a [RecentClick],
    bool,
    &'a str,
);

#[test]
fn clicks() {
    let click = |s: f64, link_index| RecentClick {
        at: secs(s),
        link_index,
    };
    let none: &[RecentClick] = &[];
    let one_other = [click(59.5, 1)];
    let same_link_twice = [click(59.2, 0), click(59.6, 0)];
    let two_others = [click(59.4, 1), click(59.8, 2)];
    let old_burst = [click(20.0, 1), click(20.5, 2), click(21.0, 3)];
    let hammering = [click(59.0, 0), click(59.3, 0), click(59.6, 0)];
    let cases: &[ClickCase<'_>] = &[
        (Method::GET, HOME, Some(CHROME), 60.0, none, false, "person"),
        (Method::GET, HOME, Some(IPHONE_MAIL), 8.0, none, false, "person"),
        (Method::GET, HOME, Some(CHROME), 60.0, &one_other, false, "person"),
        (Method::GET, HOME, Some(CHROME), 60.0, &same_link_twice, false, "person"),
        (Method::GET, HOME, Some(CHROME), 60.0, &old_burst, false, "person"),
        (Method::GET, HOME, Some(CHROME), 60.0, &two_others, true, "burst"),
        (Method::GET, HOME, Some(CHROME), 60.0, &hammering, true, "burst"),
        (Method::HEAD, HOME, Some(CHROME), 60.0, none, true, "head_request"),
        (Method::GET, HOME, None, 60.0, none, true, "no_user_agent"),
        (Method::GET, HOME, Some(CHROME), 1.5, none, true, "too_soon"),
        (Method::GET, HOME, Some(CHROME), -3.0, none, true, "too_soon"),
        (Method::GET, HOME, Some("Mozilla/5.0"), 60.0, none, true, "http_library"),
        (Method::GET, HOME, Some("python-requests/2.31.0"), 60.0, none, true, "http_library"),
        (Method::GET, HOME, Some("curl/7.88.1"), 60.0, none, true, "http_library"),
        (Method::GET, HOME, Some("Go-http-client/1.1"), 60.0, none, true, "http_library"),
        (Method::GET, HOME, Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/121.0.6167.85 Safari/537.36"), 60.0, none, true, "headless_browser"),
        (Method::GET, HOME, Some("Mozilla/5.0 (Windows NT 6.1; WOW64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/41.0.2272.96 Safari/537.36 Proofpoint"), 60.0, none, true, "security_scanner"),
        (Method::GET, HOME, Some("Mimecast URL Protect"), 60.0, none, true, "security_scanner"),
        (Method::GET, HOME, Some("Mozilla/4.0 (compatible; ms-office; MSOffice 16) Microsoft Office Existence Discovery"), 60.0, none, true, "security_scanner"),
        (Method::GET, HOME, Some("Mozilla/5.0 (compatible; Google-Safety)"), 60.0, none, true, "security_scanner"),
        (Method::GET, HOME, Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) BingPreview/1.0b"), 60.0, none, true, "link_preview"),
        (Method::GET, HOME, Some("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)"), 60.0, none, true, "link_preview"),
        (Method::GET, HOME, Some(GMAIL), 60.0, none, true, "link_preview"),
        (Method::GET, HOME, Some("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"), 60.0, none, true, "crawler"),
        // Safe Links detonates from Exchange Online's network with a
        // browser's agent.
        (Method::GET, EOP, Some(CHROME), 60.0, none, true, "mail_network"),
        (Method::POST, HOME, Some(CHROME), 60.0, none, false, "person"),
    ];
    for (method, ip, ua, after, recent, bot, code) in cases {
        let v = classify_click(
            method,
            ip.parse().unwrap(),
            *ua,
            Some(t0()),
            secs(*after),
            recent,
        );
        assert_eq!(
            (v.bot, v.why.code()),
            (*bot, *code),
            "{method} {ip} {ua:?} +{after}s: {v:?}"
        );
    }
}

#[test]
fn reasons_say_who() {
    let v = classify_click(
        &Method::GET,
        HOME.parse().unwrap(),
        Some("curl/8.0"),
        None,
        t0(),
        &[],
    );
    assert_eq!(
        v.why,
        Why::Agent(Agent {
            kind: AgentKind::HttpLibrary,
            name: "curl"
        })
    );
    let v = open_at_home(&Method::GET, GMAIL);
    assert_eq!(v.why, Why::ImageProxy(Proxy::Gmail));
}

#[test]
fn long_user_agents_are_cut_on_a_character_boundary() {
    let ua = format!("{}é curl/8", "a".repeat(MAX_UA - 1));
    let v = open_at_home(&Method::GET, &ua);
    assert_eq!(v.why, Why::Person);
}
