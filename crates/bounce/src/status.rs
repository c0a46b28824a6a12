//! RFC 3463 enhanced status codes.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// An RFC 3463 status `class.subject.detail`, e.g. `5.1.1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Status {
    class: u8,
    subject: u16,
    detail: u16,
}

impl Status {
    /// Builds a status; `class` is 2, 4 or 5 in valid codes.
    pub const fn new(class: u8, subject: u16, detail: u16) -> Status {
        Status {
            class,
            subject,
            detail,
        }
    }

    /// Parses exactly `c.s.d` (surrounding whitespace allowed).
    pub fn parse(s: &str) -> Option<Status> {
        let mut it = s.trim().split('.');
        let class: u8 = num(it.next()?, 1)?;
        let subject: u16 = num(it.next()?, 3)?;
        let detail: u16 = num(it.next()?, 3)?;
        if it.next().is_some() || !matches!(class, 2 | 4 | 5) {
            return None;
        }
        Some(Status::new(class, subject, detail))
    }

    /// Finds the first status code standing as a word in free text
    /// ("550 5.1.1 <x>... User unknown" gives 5.1.1).
    pub fn find_in(text: &str) -> Option<Status> {
        Status::find_all(text).next()
    }

    /// Every status code standing as a word in free text, in order.
    pub fn find_all(text: &str) -> impl Iterator<Item = Status> + '_ {
        let mut i = 0;
        std::iter::from_fn(move || Status::next_in(text, &mut i))
    }

    fn next_in(text: &str, pos: &mut usize) -> Option<Status> {
        let b = text.as_bytes();
        let mut i = *pos;
        while i < b.len() {
            let c = b[i];
            let boundary = i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.');
            if matches!(c, b'2' | b'4' | b'5') && boundary && b.get(i + 1) == Some(&b'.') {
                let end = b[i..]
                    .iter()
                    .position(|c| !(c.is_ascii_digit() || *c == b'.'))
                    .map_or(b.len(), |p| i + p);
                let cand = text[i..end].trim_end_matches('.');
                let next_ok = b.get(end).is_none_or(|c| !c.is_ascii_alphanumeric());
                if next_ok {
                    if let Some(s) = Status::parse(cand) {
                        *pos = end.max(i + 1);
                        return Some(s);
                    }
                }
                i = end.max(i + 1);
                continue;
            }
            i += 1;
        }
        *pos = b.len();
        None
    }

    /// 2, 4 or 5.
    pub fn class(&self) -> u8 {
        self.class
    }

    /// The subject digit(s): 1 address, 2 mailbox, 3 system, 4 network, ...
    pub fn subject(&self) -> u16 {
        self.subject
    }

    /// The detail number.
    pub fn detail(&self) -> u16 {
        self.detail
    }

    /// True for 5.x.x.
    pub fn is_permanent(&self) -> bool {
        self.class == 5
    }

    /// True for x.0.0, which says nothing beyond the class.
    pub fn is_generic(&self) -> bool {
        self.subject == 0 && self.detail == 0
    }
}

fn num<T: std::str::FromStr>(s: &str, max_len: usize) -> Option<T> {
    if s.is_empty() || s.len() > max_len || !s.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

impl std::fmt::Display for Status {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.class, self.subject, self.detail)
    }
}

impl Serialize for Status {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Status {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Status, D::Error> {
        let s = String::deserialize(d)?;
        Status::parse(&s).ok_or_else(|| serde::de::Error::custom("not an RFC 3463 status"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_status_in_text() {
        let s = Status::find_in("550 5.1.1 <a@b.c>... User unknown").unwrap();
        assert_eq!(s.to_string(), "5.1.1");
        assert_eq!(Status::find_in("#5.7.26 ok").unwrap().to_string(), "5.7.26");
        assert!(Status::find_in("version 1.5.2.3 and ip 10.5.1.1").is_none());
        assert!(Status::find_in("nothing").is_none());
    }

    #[test]
    fn parses_and_prints() {
        assert_eq!(Status::parse(" 4.4.7 ").unwrap().to_string(), "4.4.7");
        assert!(Status::parse("6.1.1").is_none());
        assert!(Status::parse("5.1").is_none());
    }
}
