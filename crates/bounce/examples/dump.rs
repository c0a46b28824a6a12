//! Prints the report of each file given, as JSON: `cargo run --example dump -- FILE...`

fn main() {
    for path in std::env::args().skip(1) {
        match std::fs::read(&path) {
            Ok(bytes) => {
                if std::env::var_os("DEBUG").is_some() {
                    println!("{}", tidings_bounce::debug_stages(&bytes));
                }
                let report = tidings_bounce::parse(&bytes);
                let json = serde_json::to_string_pretty(&report).unwrap_or_default();
                println!("== {path}\n{json}");
            }
            Err(e) => eprintln!("{path}: {e}"),
        }
    }
}
