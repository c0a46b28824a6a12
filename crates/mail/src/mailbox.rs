//! Mailboxes: an address with an optional display name, as a sender gives
//! them (`a@example.com`, `Name <a@example.com>`, `"Last, First"
//! <a@example.com>`, or the name and the address apart). Every field that
//! carries an address goes through [`Mailbox::parse`] or [`Mailbox::new`],
//! so none can smuggle a line break, a second address or a header into
//! the message: control characters are refused before anything is read,
//! the `Name <addr>` form is read by mail-parser's RFC 5322 address
//! parser, and the address itself by [`Address::parse`].

use crate::address::{Address, AddressError};
use mail_parser::{HeaderValue, MessageParser};

/// Longest display name, in bytes of UTF-8. Encoded as one RFC 2047 word
/// it stays well inside a 998-octet header line.
pub const MAX_NAME: usize = 256;

/// An address and its display name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    pub name: Option<String>,
    pub address: Address,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MailboxError {
    #[error(transparent)]
    Address(#[from] AddressError),
    #[error("the display name must be at most {MAX_NAME} bytes, without control characters")]
    Name,
    #[error("`{0}` must be exactly one address")]
    NotOne(String),
}

fn has_control(s: &str) -> bool {
    s.chars().any(char::is_control)
}

fn quoted(s: &str) -> String {
    s.chars().take(200).collect()
}

impl Mailbox {
    /// A mailbox from its parts, each checked: the name may hold any
    /// printable text (it is encoded when written), the address must
    /// parse on its own.
    pub fn new(name: Option<&str>, email: &str) -> Result<Self, MailboxError> {
        if has_control(email) {
            return Err(AddressError(quoted(email)).into());
        }
        let name = match name.map(str::trim) {
            None | Some("") => None,
            Some(n) if n.len() > MAX_NAME || has_control(n) => return Err(MailboxError::Name),
            Some(n) => Some(n.to_string()),
        };
        Ok(Self {
            name,
            address: Address::parse(email)?,
        })
    }

    /// One mailbox written as text: a bare address, or `Name <address>`
    /// with the name quoted or not.
    pub fn parse(text: &str) -> Result<Self, MailboxError> {
        if has_control(text) {
            return Err(AddressError(quoted(text)).into());
        }
        if !text.contains(['<', '"', '(', ',']) {
            return Ok(Self {
                name: None,
                address: Address::parse(text)?,
            });
        }
        let mut head = Vec::with_capacity(text.len() + 8);
        head.extend_from_slice(b"To: ");
        head.extend_from_slice(text.as_bytes());
        head.extend_from_slice(b"\r\n\r\n");
        let parsed = MessageParser::default()
            .parse_headers(&head[..])
            .ok_or_else(|| AddressError(quoted(text)))?;
        let one = match parsed.header("To") {
            Some(HeaderValue::Address(a)) => {
                let mut it = a.iter();
                match (it.next(), it.next(), a.as_group()) {
                    (Some(one), None, None) => one.clone(),
                    _ => return Err(MailboxError::NotOne(quoted(text))),
                }
            }
            _ => return Err(AddressError(quoted(text)).into()),
        };
        let email = one
            .address
            .as_deref()
            .ok_or_else(|| AddressError(quoted(text)))?;
        Self::new(one.name.as_deref(), email)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_forms_a_sender_writes() {
        let m = Mailbox::parse("Shop <shop@example.com>").unwrap();
        assert_eq!(m.name.as_deref(), Some("Shop"));
        assert_eq!(m.address.to_string(), "shop@example.com");
        let m = Mailbox::parse("\"Last, First\" <a@example.com>").unwrap();
        assert_eq!(m.name.as_deref(), Some("Last, First"));
        let m = Mailbox::parse("a@example.com").unwrap();
        assert_eq!(
            (m.name, m.address.to_string()),
            (None, "a@example.com".into())
        );
        assert!(Mailbox::parse("<a@example.com>").unwrap().name.is_none());
    }

    #[test]
    fn refuses_line_breaks_second_addresses_and_groups() {
        for bad in [
            "r@example.com\r\nSubject: INJECTED",
            "R <r@example.com>\r\nBcc: x@evil.example",
            "R <r@example.com>\nBcc: x@evil.example",
            "a@example.com, b@example.com",
            "A <a@example.com>, B <b@example.com>",
            "undisclosed-recipients:;",
            "Friends: a@example.com, b@example.com;",
            "R <r@example.com\0>",
            "R <not an address>",
        ] {
            assert!(Mailbox::parse(bad).is_err(), "{bad:?}");
        }
        assert!(Mailbox::new(Some("R\r\nBcc: x@evil.example"), "r@example.com").is_err());
        assert!(Mailbox::new(Some("R"), "r@example.com\r\nBcc: x@evil.example").is_err());
        assert!(Mailbox::new(Some(&"n".repeat(MAX_NAME + 1)), "r@example.com").is_err());
    }
}
