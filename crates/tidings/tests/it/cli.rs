//! The real binary's own files and one-shot commands: the data directory
//! and its keys are private, and `tidings inbound` runs under the same
//! configuration as `serve`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use tidings_testkit::Binary;

use crate::inbound::arf;

const EXE: &str = env!("CARGO_BIN_EXE_tidings");

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .permissions()
        .mode()
        & 0o777
}

/// The modes of the data directory and of the files in it.
fn modes(dir: &Path) -> Vec<(String, u32)> {
    let mut v = vec![(".".to_string(), mode(dir))];
    for e in std::fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        v.push((
            e.file_name().to_string_lossy().into_owned(),
            mode(&e.path()),
        ));
    }
    v.sort();
    v
}

fn assert_private(dir: &Path) {
    let m = modes(dir);
    for name in ["tidings.db", "tracking.key", "verp.key"] {
        assert!(m.iter().any(|(n, _)| n == name), "{name} missing: {m:?}");
    }
    for (name, mode) in &m {
        let want = if name == "." { 0o700 } else { 0o600 };
        assert_eq!(*mode, want, "{name} is {mode:o}: {m:?}");
    }
}

#[test]
fn the_data_directory_and_its_keys_are_private() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut bin = Binary::start(EXE, &data, &[]);
    assert_private(&data);
    assert!(bin.terminate().success());

    // Files an older version left readable are tightened at the next start.
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
    for e in std::fs::read_dir(&data).unwrap() {
        let p = e.unwrap().path();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o644)).unwrap();
    }
    bin.restart();
    assert_private(&data);
}

#[tokio::test]
async fn tidings_inbound_applies_the_configuration() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let config = tmp.path().join("tidings.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nhostname = \"tidings.test\"\n\n[inbound]\ncomplaint_unsubscribes = true\n\n\
             [outbound]\n# Nothing listens here: deliveries wait.\nsmarthost = \"127.0.0.1:1\"\n",
            data.to_str().unwrap()
        ),
    )
    .unwrap();
    let cfg = config.to_str().unwrap();
    let mut bin = Binary::start(EXE, &data, &[("TIDINGS_CONFIG", cfg)]);
    let api = bin.api();
    api.add_domain("sender.test").await;
    let r = api
        .post(
            "/v1/messages",
            &json!({"from": "app@sender.test", "to": "annoyed@example.test", "subject": "hello", "text": "hi"}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let (id, smtp_id) = (
        r.body["id"].as_str().unwrap().to_string(),
        r.body["smtp_message_id"].as_str().unwrap().to_string(),
    );
    assert!(bin.terminate().success());

    let report = arf("annoyed@example.test", &smtp_id);
    let out = {
        use std::io::Write;
        let mut child = Command::new(EXE)
            .args(["--config", cfg, "inbound"])
            .env("TIDINGS_LOG__LEVEL", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(report.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    };
    assert!(out.status.success());
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["kind"], "complaint", "{summary}");
    assert_eq!(
        summary["events"].as_array().unwrap().len(),
        2,
        "a complaint and, as configured, an unsubscribe: {summary}"
    );

    bin.restart();
    let events = bin.api().get("/v1/events").await.body["data"].clone();
    let unsub = events
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "unsubscribe")
        .unwrap_or_else(|| panic!("no unsubscribe: {events}"))
        .clone();
    assert_eq!(unsub["data"]["message_id"], id);
    assert_eq!(unsub["data"]["method"], "complaint");
}
