//! Rewriting an HTML part with `lol_html`.
//!
//! `lol_html` streams the document and re-serialises only the start tags a
//! handler changes (and in those, only the changed attributes; the others
//! keep their raw bytes and quoting). So text, comments, doctype, styles
//! and every tag without a tracked link come out byte for byte.
//!
//! Links inside comments are not rewritten. That includes Outlook's
//! conditional comments (`<!--[if mso]>…<![endif]-->`): to an HTML parser
//! their content is a comment, and rewriting it would mean parsing comment
//! text as HTML, which `lol_html` (rightly) does not do. Senders who put
//! VML buttons there get those links untracked; the non-Outlook version of
//! the same button, usually beside it in `<!--[if !mso]><!-->…<!--<![endif]-->`
//! (real markup between two comments), is tracked.
//!
//! Relative links are left alone even under a `<base href>`: mail clients
//! do not agree on honouring `<base>`, so there is no one URL to record.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::LazyLock;

use encoding_rs::Encoding;
use lol_html::html_content::{ContentType, DocumentEnd, Element, EndTag};
use lol_html::{
    AsciiCompatibleEncoding, DocumentContentHandlers, ElementContentHandlers, HandlerResult,
    HtmlRewriter, MemorySettings, Selector, Settings,
};

use super::entities::decode_attribute;
use super::text::placeholders;
use super::Ctx;

/// The sender's opt-out attribute, removed from the output.
const NOTRACK: &str = "data-tidings-notrack";
/// SendGrid's opt-out attribute (`clicktracking=off`), honoured and removed.
const CLICKTRACKING: &str = "clicktracking";

static LINKS: LazyLock<Selector> = LazyLock::new(|| "a, area".parse().expect("valid selector"));
static BODY: LazyLock<Selector> = LazyLock::new(|| "body".parse().expect("valid selector"));
static META: LazyLock<Selector> = LazyLock::new(|| "meta".parse().expect("valid selector"));

/// Rewrite links (and place the pixel when `want_pixel`); set `<meta>`
/// charsets to `meta_charset` when given. `Ok(None)`: nothing changed
/// (a `<meta>` alone does not count: the part then keeps its charset).
pub(crate) fn rewrite(
    ctx: &mut Ctx<'_>,
    input: &[u8],
    enc: &'static Encoding,
    meta_charset: Option<&str>,
    want_pixel: bool,
) -> Result<Option<Vec<u8>>, String> {
    // The placeholder is replaced on the way in: the rewriter is fed the
    // text around it and the URL in its place (no copy of the document).
    let spans = placeholders(input, enc);
    let unsubscribe = if spans.is_empty() {
        String::new()
    } else {
        escape(&ctx.unsubscribe_url())
    };
    let changed = Cell::new(!spans.is_empty());
    let pixel = want_pixel.then(|| pixel_tag(&ctx.open_url()));
    let placed = Rc::new(Cell::new(false));
    let ctx = RefCell::new(ctx);

    let link = |el: &mut Element<'_, '_>| -> HandlerResult {
        let mut skip = false;
        if el.has_attribute(NOTRACK) {
            el.remove_attribute(NOTRACK);
            changed.set(true);
            skip = true;
        }
        if let Some(v) = el.get_attribute(CLICKTRACKING) {
            el.remove_attribute(CLICKTRACKING);
            changed.set(true);
            skip |= v.trim().eq_ignore_ascii_case("off");
        }
        if skip {
            return Ok(());
        }
        let Some(href) = el.get_attribute("href") else {
            return Ok(());
        };
        let target = decode_attribute(&href);
        let target = target.trim_matches(|c: char| c <= ' ');
        let http = target.len() >= 7 && target.as_bytes()[..4].eq_ignore_ascii_case(b"http");
        if !http {
            return Ok(());
        }
        if let Some(tracked) = ctx.borrow_mut().click_url(target, enc) {
            el.set_attribute("href", &escape(&tracked))?;
            changed.set(true);
        }
        Ok(())
    };

    let body = |el: &mut Element<'_, '_>| -> HandlerResult {
        if let (Some(px), Some(handlers)) = (&pixel, el.end_tag_handlers()) {
            let (px, placed) = (px.clone(), placed.clone());
            handlers.push(Box::new(move |end: &mut EndTag<'_>| {
                if !placed.replace(true) {
                    end.before(&px, ContentType::Html);
                }
                Ok(())
            }));
        }
        Ok(())
    };

    // Without a `</body>` (or with one the parser closed implicitly), the
    // pixel goes at the very end.
    let end = |end: &mut DocumentEnd<'_>| -> HandlerResult {
        if let Some(px) = &pixel {
            if !placed.replace(true) {
                end.append(px, ContentType::Html);
            }
        }
        Ok(())
    };

    let meta = |el: &mut Element<'_, '_>| -> HandlerResult {
        let Some(cs) = meta_charset else {
            return Ok(());
        };
        if el.has_attribute("charset") {
            el.set_attribute("charset", cs)?;
        } else if el
            .get_attribute("http-equiv")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("content-type"))
        {
            el.set_attribute("content", &format!("text/html; charset={cs}"))?;
        }
        Ok(())
    };

    let mut settings = Settings::new()
        .with_encoding(AsciiCompatibleEncoding::new(enc).ok_or("not an ASCII-compatible charset")?)
        .with_memory_settings(MemorySettings::new().with_max_allowed_memory_usage(16 << 20))
        .append_element_content_handler((
            Cow::Borrowed(&*LINKS),
            ElementContentHandlers::default().element(link),
        ));
    if pixel.is_some() {
        settings = settings
            .append_element_content_handler((
                Cow::Borrowed(&*BODY),
                ElementContentHandlers::default().element(body),
            ))
            .append_document_content_handler(DocumentContentHandlers::default().end(end));
    }
    if meta_charset.is_some() {
        settings = settings.append_element_content_handler((
            Cow::Borrowed(&*META),
            ElementContentHandlers::default().element(meta),
        ));
    }

    let mut out = Vec::with_capacity(input.len() + input.len() / 4 + 512);
    let mut rewriter = HtmlRewriter::new(settings, |c: &[u8]| out.extend_from_slice(c));
    let mut last = 0;
    for s in &spans {
        rewriter
            .write(&input[last..s.start])
            .map_err(|e| e.to_string())?;
        rewriter
            .write(unsubscribe.as_bytes())
            .map_err(|e| e.to_string())?;
        last = s.end;
    }
    rewriter.write(&input[last..]).map_err(|e| e.to_string())?;
    rewriter.end().map_err(|e| e.to_string())?;

    let ctx = ctx.into_inner();
    if placed.get() {
        ctx.pixel_placed = true;
        changed.set(true);
    }
    Ok(changed.get().then_some(out))
}

/// The open pixel: 1×1, no border, no layout impact. Not `display:none`,
/// which some clients take as a reason not to load it.
fn pixel_tag(url: &str) -> String {
    format!(
        "<img src=\"{}\" width=\"1\" height=\"1\" alt=\"\" border=\"0\" \
         style=\"display:block;width:1px;height:1px;border:0;margin:0;padding:0\" />",
        escape(url)
    )
}

/// For an attribute value (`lol_html` escapes only `"` in values it sets).
fn escape(s: &str) -> String {
    if s.bytes().any(|b| matches!(b, b'&' | b'"' | b'<' | b'>')) {
        s.replace('&', "&amp;")
            .replace('"', "&quot;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    } else {
        s.to_string()
    }
}
