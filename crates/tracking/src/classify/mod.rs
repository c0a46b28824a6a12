//! Human or machine: the `machine` field of open events and the `bot`
//! field of click events.
//!
//! Every rule is a pure function of the request (method, IP, User-Agent),
//! the time the message was delivered, the time now, and for clicks the
//! other recent clicks on the same message. Rules are checked in a fixed
//! order and the first that matches gives the verdict and its reason
//! ([`Why`]), so a verdict can always be explained.
//!
//! What this can and cannot know: security gateways (Microsoft Defender
//! Safe Links, Proofpoint, Mimecast, Barracuda, Cisco) mostly fetch links
//! with ordinary browser User-Agents from cloud addresses, so a signature
//! catches only the ones that announce themselves; the timing rules (too
//! soon after delivery, many links within a second or two) catch the rest.
//! The first click of a scanner's burst cannot be known as part of the
//! burst when it arrives; the caller may re-label it when the burst shows.
//! The time thresholds are this crate's judgement, not published numbers:
//! no vendor documents how fast its scanner is, and transactional mail is
//! often opened within seconds by a person waiting for it, so the open
//! window is kept short.

use std::net::IpAddr;
use std::sync::LazyLock;

use http::Method;
use ipnet::IpNet;
use tidings_types::Timestamp;

/// Opens this soon after delivery (or before it was recorded) are
/// prefetches: the mail must still reach a client, be listed and be opened.
pub const OPEN_TOO_SOON_MS: i64 = 2_000;
/// Clicks this soon after delivery are scanners: a person must also read.
pub const CLICK_TOO_SOON_MS: i64 = 5_000;
/// Clicks on different links of one message this close together are a
/// scanner following every link.
pub const BURST_WINDOW_MS: i64 = 2_000;
/// Only this much of a User-Agent is examined.
const MAX_UA: usize = 512;

/// Was an open a person reading?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenVerdict {
    pub machine: bool,
    pub why: Why,
}

/// Was a click a person?
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClickVerdict {
    pub bot: bool,
    pub why: Why,
}

/// An earlier click on a link of the same message (same recipient).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecentClick {
    pub at: Timestamp,
    pub link_index: u32,
}

/// The rule that decided a verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    /// No rule matched: taken as a person.
    Person,
    /// A person's open, fetched through their mailbox provider's image
    /// proxy (so the IP and User-Agent are the proxy's).
    ImageProxy(Proxy),
    /// Apple Mail Privacy Protection fetched the pixel, whether or not the
    /// message was read.
    AppleMailPrivacy,
    /// The request had no User-Agent.
    NoUserAgent,
    /// A HEAD request (a link checker, not a browser following a link).
    HeadRequest,
    /// A User-Agent that names a machine.
    Agent(Agent),
    /// The request came from a mail provider's mail-flow network.
    MailNetwork(&'static str),
    /// Before delivery, or within the window after it (milliseconds
    /// after delivery; negative when before).
    TooSoon { after_ms: i64 },
    /// Several links of the message within [`BURST_WINDOW_MS`].
    Burst { links: usize, clicks: usize },
}

impl Why {
    /// A stable snake_case code for payloads and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Why::Person => "person",
            Why::ImageProxy(_) => "image_proxy",
            Why::AppleMailPrivacy => "apple_mail_privacy",
            Why::NoUserAgent => "no_user_agent",
            Why::HeadRequest => "head_request",
            Why::Agent(a) => a.kind.code(),
            Why::MailNetwork(_) => "mail_network",
            Why::TooSoon { .. } => "too_soon",
            Why::Burst { .. } => "burst",
        }
    }
}

/// A mailbox provider's image proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Proxy {
    Gmail,
    Yahoo,
    Outlook,
}

/// A machine that names itself in its User-Agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Agent {
    pub kind: AgentKind,
    /// Who, e.g. "Proofpoint", "curl".
    pub name: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AgentKind {
    /// A mail security gateway or URL-reputation service.
    SecurityScanner,
    /// A chat or mail app fetching a link to show a preview card.
    LinkPreview,
    /// An HTTP library or command-line client with its default User-Agent.
    HttpLibrary,
    /// A browser driven by a program.
    HeadlessBrowser,
    /// A web crawler.
    Crawler,
}

impl AgentKind {
    fn code(self) -> &'static str {
        match self {
            AgentKind::SecurityScanner => "security_scanner",
            AgentKind::LinkPreview => "link_preview",
            AgentKind::HttpLibrary => "http_library",
            AgentKind::HeadlessBrowser => "headless_browser",
            AgentKind::Crawler => "crawler",
        }
    }
}

use AgentKind::{Crawler, HeadlessBrowser, HttpLibrary, LinkPreview, SecurityScanner};

/// User-Agent substrings (matched lower-cased) and what they mean.
const AGENTS: &[(&str, AgentKind, &str)] = &[
    // Microsoft: Office apps probe hyperlinks with this agent before opening
    // them (Microsoft support, "Microsoft Office Existence Discovery"
    // requests); Bing's preview fetchers serve Outlook.com/Teams link cards
    // (https://www.bing.com/webmasters/help/which-crawlers-does-bing-use-8c184ec0).
    (
        "microsoft office existence discovery",
        SecurityScanner,
        "Microsoft Office link check",
    ),
    ("bingpreview", LinkPreview, "BingPreview"),
    ("microsoftpreview", LinkPreview, "MicrosoftPreview"),
    ("skypeuripreview", LinkPreview, "Skype/Teams preview"),
    // Mail security gateways that rewrite and pre-scan links, when they say
    // so: Proofpoint URL Defense, Mimecast URL Protect, Barracuda Link
    // Protection, Cisco Secure Email (IronPort) URL filtering, and other
    // vendors' sandboxes. Their product documentation describes scanning at
    // delivery and at click time; the names are the vendors' own.
    ("proofpoint", SecurityScanner, "Proofpoint"),
    ("urldefense", SecurityScanner, "Proofpoint URL Defense"),
    ("mimecast", SecurityScanner, "Mimecast"),
    ("barracuda", SecurityScanner, "Barracuda"),
    ("ironport", SecurityScanner, "Cisco IronPort"),
    ("fortiguard", SecurityScanner, "Fortinet"),
    ("trendmicro", SecurityScanner, "Trend Micro"),
    ("sophos", SecurityScanner, "Sophos"),
    ("forcepoint", SecurityScanner, "Forcepoint"),
    ("symantec", SecurityScanner, "Symantec"),
    ("fireeye", SecurityScanner, "FireEye"),
    // Google's abuse crawler ("malware discovery for publicly posted links
    // on Google properties"):
    // https://developers.google.com/search/docs/crawling-indexing/google-special-case-crawlers
    ("google-safety", SecurityScanner, "Google Safe Browsing"),
    // Chrome in headless mode says so (https://developer.chrome.com/docs/chromium/headless);
    // PhantomJS too.
    ("headlesschrome", HeadlessBrowser, "HeadlessChrome"),
    ("phantomjs", HeadlessBrowser, "PhantomJS"),
    // HTTP libraries' default User-Agents (each library's documentation
    // or source: requests.utils.default_user_agent, curl's --user-agent
    // default, Go's net/http, Java's HttpURLConnection, ...). OkHttp is left
    // out on purpose: Android mail apps load images with it, so on an open
    // it may well be a person.
    ("python-requests", HttpLibrary, "python-requests"),
    ("python-urllib", HttpLibrary, "Python urllib"),
    ("python-httpx", HttpLibrary, "httpx"),
    ("aiohttp", HttpLibrary, "aiohttp"),
    ("curl/", HttpLibrary, "curl"),
    ("wget/", HttpLibrary, "Wget"),
    ("go-http-client", HttpLibrary, "Go net/http"),
    ("java/", HttpLibrary, "Java"),
    ("apache-httpclient", HttpLibrary, "Apache HttpClient"),
    ("libwww-perl", HttpLibrary, "libwww-perl"),
    ("node-fetch", HttpLibrary, "node-fetch"),
    ("axios/", HttpLibrary, "axios"),
    ("undici", HttpLibrary, "undici"),
    ("scrapy", HttpLibrary, "Scrapy"),
    // Chat apps' link expanders (https://api.slack.com/robots, Meta's
    // https://developers.facebook.com/docs/sharing/webmasters/web-crawlers, ...).
    ("slackbot", LinkPreview, "Slack"),
    ("facebookexternalhit", LinkPreview, "Facebook"),
    ("whatsapp/", LinkPreview, "WhatsApp"),
    ("telegrambot", LinkPreview, "Telegram"),
    ("discordbot", LinkPreview, "Discord"),
    ("linkedinbot", LinkPreview, "LinkedIn"),
    ("twitterbot", LinkPreview, "X/Twitter"),
    // Search and SEO crawlers that self-identify (each documents its agent).
    ("googlebot", Crawler, "Googlebot"),
    ("bingbot", Crawler, "Bingbot"),
    ("applebot", Crawler, "Applebot"),
    ("yandexbot", Crawler, "YandexBot"),
    ("ahrefsbot", Crawler, "AhrefsBot"),
    ("semrushbot", Crawler, "SemrushBot"),
    ("crawler", Crawler, "a crawler"),
    ("spider", Crawler, "a spider"),
];

/// Image proxies. Gmail serves every image through its proxy, fetched when
/// the message is opened (https://support.google.com/mail/answer/145919);
/// its agent ends in "(via ggpht.com GoogleImageProxy)". Yahoo's agent
/// names its help page (https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html).
/// Outlook.com's proxy runs as outlookimageproxy (the host in Microsoft's
/// own OWA code) and is listed under that agent in ESPs' detection rules.
const PROXIES: &[(&str, Proxy)] = &[
    ("googleimageproxy", Proxy::Gmail),
    ("ggpht.com", Proxy::Gmail),
    ("yahoomailproxy", Proxy::Yahoo),
    ("outlookimageproxy", Proxy::Outlook),
];

/// Apple's 17.0.0.0/8 (ARIN NET-17-0-0-0-1, Apple Inc.). MPP fetches go
/// through the iCloud Private Relay infrastructure (Word to the Wise,
/// https://wordtothewise.com/2021/09/apple-mpp-reporting-and-geolocation/),
/// whose full egress list Apple publishes
/// (https://developer.apple.com/support/prepare-your-network-for-icloud-private-relay/);
/// that list is large and changes, so only Apple's own block is built in.
const APPLE_NETS: &[&str] = &["17.0.0.0/8"];

/// Exchange Online Protection's mail-flow ranges ("Microsoft 365 URLs and
/// IP address ranges", Exchange Online, SMTP:
/// https://learn.microsoft.com/microsoft-365/enterprise/urls-and-ip-address-ranges).
/// Safe Links detonates URLs during mail flow; nobody browses from these.
const MAIL_NETS: &[(&str, &str)] = &[
    ("40.92.0.0/15", "Exchange Online Protection"),
    ("40.107.0.0/16", "Exchange Online Protection"),
    ("52.100.0.0/14", "Exchange Online Protection"),
    ("104.47.0.0/17", "Exchange Online Protection"),
    ("2a01:111:f400::/48", "Exchange Online Protection"),
    ("2a01:111:f403::/48", "Exchange Online Protection"),
];

static APPLE: LazyLock<Vec<IpNet>> =
    LazyLock::new(|| APPLE_NETS.iter().filter_map(|n| n.parse().ok()).collect());
static MAIL: LazyLock<Vec<(IpNet, &'static str)>> = LazyLock::new(|| {
    MAIL_NETS
        .iter()
        .filter_map(|(n, who)| Some((n.parse().ok()?, *who)))
        .collect()
});

/// IPv4-mapped IPv6 addresses (from dual-stack listeners) as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn apple_network(ip: IpAddr) -> bool {
    let ip = canonical(ip);
    APPLE.iter().any(|net| net.contains(&ip))
}

fn mail_network(ip: IpAddr) -> Option<&'static str> {
    let ip = canonical(ip);
    MAIL.iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|(_, who)| *who)
}

/// The User-Agent, trimmed and lower-cased, or `None` when there is none.
fn normalise(ua: Option<&str>) -> Option<String> {
    let ua = ua?.trim();
    if ua.is_empty() {
        return None;
    }
    let mut end = ua.len().min(MAX_UA);
    while !ua.is_char_boundary(end) {
        end -= 1;
    }
    Some(ua[..end].to_ascii_lowercase())
}

fn agent(ua: &str) -> Option<Agent> {
    AGENTS
        .iter()
        .find(|(needle, _, _)| ua.contains(needle))
        .map(|&(_, kind, name)| Agent { kind, name })
}

fn proxy(ua: &str) -> Option<Proxy> {
    PROXIES
        .iter()
        .find(|(needle, _)| ua.contains(needle))
        .map(|&(_, p)| p)
}

/// MPP's fetcher sends `Mozilla/5.0` and nothing else (reported by ESPs
/// since iOS 15, e.g. https://help.socketlabs.com/docs/identifying-apple-mpp-opens-in-notification-api-events,
/// which also describes the prefetch on arrival). No browser sends a
/// product token without the platform comment.
fn bare_mozilla(ua: &str) -> bool {
    ua == "mozilla/5.0"
}

fn after_ms(delivered_at: Option<Timestamp>, now: Timestamp) -> Option<i64> {
    delivered_at.map(|d| (now - d).num_milliseconds())
}

/// Judge a fetch of the open pixel.
pub fn classify_open(
    method: &Method,
    ip: IpAddr,
    user_agent: Option<&str>,
    delivered_at: Option<Timestamp>,
    now: Timestamp,
) -> OpenVerdict {
    let machine = |why| OpenVerdict { machine: true, why };
    // A mail client showing the message GETs the image; a HEAD only checks
    // that it is there.
    if method == Method::HEAD {
        return machine(Why::HeadRequest);
    }
    let Some(ua) = normalise(user_agent) else {
        return machine(Why::NoUserAgent);
    };
    if bare_mozilla(&ua) || apple_network(ip) {
        return machine(Why::AppleMailPrivacy);
    }
    if let Some(a) = agent(&ua) {
        return machine(Why::Agent(a));
    }
    if let Some(who) = mail_network(ip) {
        return machine(Why::MailNetwork(who));
    }
    if let Some(ms) = after_ms(delivered_at, now).filter(|&ms| ms < OPEN_TOO_SOON_MS) {
        return machine(Why::TooSoon { after_ms: ms });
    }
    match proxy(&ua) {
        Some(p) => OpenVerdict {
            machine: false,
            why: Why::ImageProxy(p),
        },
        None => OpenVerdict {
            machine: false,
            why: Why::Person,
        },
    }
}

/// Judge a request on a click link. `recent_clicks_same_message` are the
/// earlier clicks on this message by this recipient (any age; only those
/// within [`BURST_WINDOW_MS`] count).
pub fn classify_click(
    method: &Method,
    ip: IpAddr,
    user_agent: Option<&str>,
    delivered_at: Option<Timestamp>,
    now: Timestamp,
    recent_clicks_same_message: &[RecentClick],
) -> ClickVerdict {
    let bot = |why| ClickVerdict { bot: true, why };
    // Browsers follow links with GET (RFC 9110 §9.3.1); HEAD (§9.3.2) is
    // for checking a link without following it.
    if method == Method::HEAD {
        return bot(Why::HeadRequest);
    }
    let Some(ua) = normalise(user_agent) else {
        return bot(Why::NoUserAgent);
    };
    if let Some(a) = agent(&ua) {
        return bot(Why::Agent(a));
    }
    if bare_mozilla(&ua) {
        // MPP fetches images, never links; a bare agent on a link is a
        // program that fills in the minimum.
        return bot(Why::Agent(Agent {
            kind: HttpLibrary,
            name: "bare Mozilla/5.0",
        }));
    }
    if proxy(&ua).is_some() {
        // Image proxies fetch images; one on a link is prefetching it.
        return bot(Why::Agent(Agent {
            kind: LinkPreview,
            name: "image proxy",
        }));
    }
    if let Some(who) = mail_network(ip) {
        return bot(Why::MailNetwork(who));
    }
    if let Some(ms) = after_ms(delivered_at, now).filter(|&ms| ms < CLICK_TOO_SOON_MS) {
        return bot(Why::TooSoon { after_ms: ms });
    }
    let mut links: Vec<u32> = recent_clicks_same_message
        .iter()
        .filter(|c| (now - c.at).num_milliseconds().abs() <= BURST_WINDOW_MS)
        .map(|c| c.link_index)
        .collect();
    let clicks = links.len();
    links.sort_unstable();
    links.dedup();
    // Two other links within two seconds, or a fourth click on anything:
    // a person opens one link and reads.
    if links.len() >= 2 || clicks >= 3 {
        return bot(Why::Burst {
            links: links.len(),
            clicks,
        });
    }
    ClickVerdict {
        bot: false,
        why: Why::Person,
    }
}

#[cfg(test)]
mod tests;
