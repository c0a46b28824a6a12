//! Any bytes: `parse` must not panic, and its output stays bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let report = tidings_bounce::parse(data);
    for r in report.bounced() {
        assert!(r.diagnostic.chars().count() <= 2000);
        assert!(tidings_bounce::is_valid_address(&r.email));
    }
});
