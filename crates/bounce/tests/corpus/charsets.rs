//! Bounces written in legacy charsets are decoded before they are read.
//! The samples in `fixtures/charsets` were encoded with Python's codecs
//! (`make.py` there).

use tidings_bounce::{parse, Reason, Report};

fn read(charset: &str, domain: &str, words: &str) {
    let path = crate::fixtures().join(format!("charsets/{charset}.eml"));
    let raw = std::fs::read(&path).expect("sample");
    let Report::Bounce(b) = parse(&raw) else {
        panic!("{charset}: not a bounce");
    };
    let r = &b.recipients[0];
    assert_eq!(r.email, format!("alice@{domain}"), "{charset}");
    assert_eq!(r.reason, Reason::UserUnknown, "{charset}");
    assert!(
        r.diagnostic.contains(words),
        "{charset}: {:?} does not contain {words:?}",
        r.diagnostic
    );
}

#[test]
fn iso_2022_jp() {
    read(
        "iso-2022-jp",
        "example.jp",
        "宛先のメールアドレスが見つかりません",
    );
}

#[test]
fn shift_jis() {
    read(
        "shift_jis",
        "example.jp",
        "宛先のメールアドレスが見つかりません",
    );
}

#[test]
fn euc_kr() {
    read("euc-kr", "example.kr", "받는 사람 주소를 찾을 수 없습니다");
}

#[test]
fn gb2312() {
    read("gb2312", "example.cn", "收件人地址不存在");
}

#[test]
fn koi8_r() {
    read("koi8-r", "example.ru", "пользователь не найден");
}
