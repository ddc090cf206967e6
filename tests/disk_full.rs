//! A full disk: a city whose data directory sits on a small tmpfs fills it while its
//! offices keep posting. It must refuse (never acknowledge) what it cannot store, report
//! the full disk in status and metrics, keep running (no crash loop), let its province
//! carry on, and — once space returns — reopen its store by restarting in place (same
//! process id) and catch up: every record it acknowledged is kept and reaches the
//! ministry.
//!
//! Needs root (to mount the tmpfs); elsewhere it says it is skipped and passes.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Http, Network, RunningNode, digest, eventually, free_tcp_port, vacancy};
use serde_json::{Value, json};

/// The mounted tmpfs; unmounted on drop (also after a failed assertion).
struct Tmpfs(std::path::PathBuf);

impl Tmpfs {
    fn mount(at: &std::path::Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(at).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .status()
            .is_ok_and(|s| s.success());
        ok.then(|| Tmpfs(at.to_path_buf()))
    }

    /// Bytes free on the file system.
    fn available(&self) -> u64 {
        let out = Command::new("df")
            .args(["--output=avail", "-B1"])
            .arg(&self.0)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        text.lines().nth(1).unwrap().trim().parse().unwrap()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| o.stdout.starts_with(b"0"))
}

#[test]
fn a_full_disk_refuses_writes_stays_up_and_catches_up_after_space_returns() {
    if !is_root() {
        println!("disk_full: skipped (not root: cannot mount a tmpfs); CI runs it as root");
        return;
    }
    let net = Network::new();
    let http = Http::new();
    let m = net.init("100000", None);
    let ministry = RunningNode::start(&m);
    let p = net.init(
        "440000",
        Some(&format!("100000@{}", ministry.quic.clone().unwrap())),
    );
    let province = RunningNode::start(&p);
    // The city's data directory is a 24 MiB tmpfs; its API keeps one port across the
    // restart in place.
    let Some(disk) = Tmpfs::mount(&net.path().join("data-440100"), "24m") else {
        println!("disk_full: skipped (mount failed)");
        return;
    };
    let api = format!("127.0.0.1:{}", free_tcp_port());
    let c = net.init_full(
        "440100",
        Some(&format!("440000@{}", province.quic.clone().unwrap())),
        "127.0.0.1:0",
        &api,
    );
    let mut city = RunningNode::start(&c);
    let pid = city.child.id();
    // Leave about 4 MiB free beyond the reserve the store keeps.
    let filler = disk.0.join("filler");
    let reserve = lmsync::node::storage::FREE_SPACE_RESERVE;
    let fill = disk.available().saturating_sub(reserve + (4 << 20));
    std::fs::write(&filler, vec![0u8; usize::try_from(fill).unwrap()]).unwrap();

    // Post until the disk refuses; every acknowledged id is remembered.
    let mut acked = Vec::new();
    let mut refused = None;
    for batch in 0..500 {
        let records: Vec<Value> = (0..200)
            .map(|i| vacancy(&format!("V-{batch}-{i}"), 1))
            .collect();
        let (status, body) = http.post(&city.url("/v1/records"), &c.token, &json!(records));
        if status == 200 {
            acked.extend(
                body["accepted"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["id"].clone()),
            );
        } else {
            refused = Some((status, body));
            break;
        }
    }
    let (status, body) = refused.expect("the disk filled within 100,000 records");
    assert_eq!(
        (status, body["error"].as_str()),
        (507, Some("storage_full")),
        "{body}"
    );
    // Further writes are refused too; nothing new is acknowledged.
    let (again, body) = http.post(
        &city.url("/v1/records"),
        &c.token,
        &json!([vacancy("V-after", 1)]),
    );
    assert_eq!(
        (again, body["error"].as_str()),
        (507, Some("storage_full")),
        "a store stopped by a full disk keeps saying so: {body}"
    );

    // Reads keep working while writes are refused: every acknowledged record reads back.
    let unreadable: Vec<(String, u16)> = acked
        .iter()
        .filter_map(|id| {
            let id = id.as_str().unwrap();
            let (status, _) = http.get(&city.url(&format!("/v1/records/440100/vacancy/{id}")));
            (status != 200).then(|| (id.to_string(), status))
        })
        .collect();
    assert!(
        unreadable.is_empty(),
        "{} of {} acknowledged records unreadable while the disk is full, e.g. {:?}",
        unreadable.len(),
        acked.len(),
        unreadable.iter().take(5).collect::<Vec<_>>()
    );

    // It reports the full disk, and keeps running.
    let status = http.get(&city.url("/v1/status")).1;
    assert_eq!(status["store"]["healthy"], false, "{status}");
    assert!(
        status["store"]["fault"]
            .as_str()
            .unwrap()
            .contains("storage full"),
        "{status}"
    );
    // The dashboard is still the page, naming the fault at the top.
    let (code, page) = http.get_text(&city.url("/"));
    assert_eq!(code, 200, "{page}");
    assert!(
        page.contains("<p id=\"health\" class=\"dot bad\">store fault: storage full"),
        "{page}"
    );
    let (_, metrics) = http.get_text(&city.url("/metrics"));
    assert!(
        metrics.lines().any(|l| l == "store_full 1"),
        "store_full in /metrics"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        city.child.try_wait().unwrap().is_none(),
        "the node stays up: no crash loop"
    );
    assert_eq!(
        http.get(&province.url("/v1/status")).1["store"]["healthy"],
        true
    );

    // Space returns: the node restarts in place, reopens its store and catches up.
    let freed = Instant::now();
    std::fs::remove_file(&filler).unwrap();
    eventually(
        "the store reopened after space returned",
        Duration::from_secs(60),
        || {
            http.try_get(&city.url("/v1/status"))
                .is_some_and(|(_, s)| s["store"]["healthy"] == true)
        },
    );
    let reopened_ms = freed.elapsed().as_millis();
    assert!(
        city.child.try_wait().unwrap().is_none(),
        "still the same process"
    );
    assert_eq!(city.child.id(), pid);
    let (status, body) = http.post(
        &city.url("/v1/records"),
        &c.token,
        &json!([vacancy("V-after", 1)]),
    );
    assert_eq!(status, 200, "writes are accepted again: {body}");
    for id in &acked {
        let (status, _) = http.get(&city.url(&format!(
            "/v1/records/440100/vacancy/{}",
            id.as_str().unwrap()
        )));
        assert_eq!(status, 200, "acknowledged record {id} kept");
    }
    eventually("the ministry caught up", Duration::from_secs(60), || {
        digest(&http, &ministry, "440100") == digest(&http, &city, "440100")
    });
    println!(
        "disk_full: tmpfs=24MiB acked={} then refused (507 storage_full); reopened {reopened_ms} ms after space returned, same pid {pid}; lost=0",
        acked.len()
    );
    city.child.kill().unwrap();
}
