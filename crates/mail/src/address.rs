//! Email addresses, parsed once into a type.

use std::fmt;

/// An address `local@domain`. The domain is lowercased; the local part is
/// kept as written (it may be case-sensitive at the receiver).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Address {
    local: String,
    domain: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a valid email address")]
pub struct AddressError(pub String);

impl Address {
    /// Parse `local@domain` (optionally in angle brackets). Refuses spaces,
    /// control characters, empty parts, over-long parts, and domains that
    /// are not dot-separated labels.
    pub fn parse(s: &str) -> Result<Self, AddressError> {
        let err = || AddressError(s.chars().take(200).collect());
        let t = s.trim();
        let t = t
            .strip_prefix('<')
            .and_then(|x| x.strip_suffix('>'))
            .unwrap_or(t);
        if t.len() > 254 {
            return Err(err());
        }
        let (local, domain) = t.rsplit_once('@').ok_or_else(err)?;
        if local.is_empty()
            || local.len() > 64
            || local
                .chars()
                .any(|c| c.is_control() || c.is_whitespace() || "<>()[],;:\\\"@".contains(c))
        {
            return Err(err());
        }
        if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
            return Err(err());
        }
        let domain = domain.to_lowercase();
        let labels_ok = domain.split('.').count() >= 2
            && domain.split('.').all(|l| {
                !l.is_empty()
                    && l.len() <= 63
                    && !l.starts_with('-')
                    && !l.ends_with('-')
                    && l.chars().all(|c| c.is_alphanumeric() || c == '-')
            });
        if !labels_ok {
            return Err(err());
        }
        Ok(Self {
            local: local.to_string(),
            domain,
        })
    }

    pub fn local(&self) -> &str {
        &self.local
    }

    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// Whether it needs SMTPUTF8 to be transported.
    pub fn is_ascii(&self) -> bool {
        self.local.is_ascii() && self.domain.is_ascii()
    }

    /// The form used as a key (suppression list, events): lowercased.
    pub fn normalized(&self) -> String {
        format!("{}@{}", self.local.to_lowercase(), self.domain)
    }
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.local, self.domain)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_ordinary_addresses() {
        for a in [
            "a@example.com",
            "<First.Last+tag@Example.COM>",
            "用户@例子.广告",
            "x_y-z@sub.example.co.uk",
        ] {
            assert!(Address::parse(a).is_ok(), "{a}");
        }
        assert_eq!(
            Address::parse("Bob@Example.COM").unwrap().normalized(),
            "bob@example.com"
        );
    }

    #[test]
    fn refuses_malformed_addresses() {
        for a in [
            "",
            "a",
            "@example.com",
            "a@",
            "a b@example.com",
            "a@example",
            "a@-x.com",
            "a@@example.com",
            "a..b@example.com",
            "a@exa_mple.com",
            "a\r\n@example.com",
            &format!("{}@example.com", "x".repeat(65)),
        ] {
            assert!(Address::parse(a).is_err(), "{a:?}");
        }
    }
}
