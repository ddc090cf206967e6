//! Records flow city → province → ministry between real processes over QUIC with mutual
//! TLS: the same digest per owner at every tier, receipts back down at the city, and
//! resumption after the province is killed mid-transfer.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{Http, Network, NodeFiles, RunningNode, Tree, digest, eventually, lmsync_ok, tree};

fn import(net: &Network, city: &NodeFiles, records: usize, seed: u64) {
    let text = lmsync_ok(&[
        "gen",
        "--node",
        &city.code,
        "--records",
        &records.to_string(),
        "--seed",
        &seed.to_string(),
    ]);
    let path = net.path().join(format!("{}-{seed}.jsonl", city.code));
    std::fs::write(&path, text).unwrap();
    lmsync_ok(&[
        "import",
        "--config",
        city.config.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
}

/// Replaces the city's lost disk: stops it, deletes its data directory and runs
/// `lmsync init` again under config `stem` (with `--restore` when asked), keeping the
/// backed-up pseudonym key.
fn reinit_city(t: &mut Tree, stem: &str, restore: bool) -> NodeFiles {
    let (old, run) = t.cities.pop().unwrap();
    assert_eq!(run.terminate(), Some(0));
    std::fs::remove_dir_all(&old.data).unwrap();
    let dir = t.net.path();
    let config = dir.join(format!("{stem}.toml"));
    let parent = format!("440000@{}", t.province.1.quic.clone().unwrap());
    let pki = dir.join("pki-440100");
    let mut args = vec![
        "init",
        "--node",
        "440100",
        "--pki",
        pki.to_str().unwrap(),
        "--data",
        old.data.to_str().unwrap(),
        "--parent",
        &parent,
        "--api",
        "127.0.0.1:0",
        "--config",
        config.to_str().unwrap(),
    ];
    if restore {
        args.push("--restore");
    }
    lmsync_ok(&args);
    std::fs::copy(
        dir.join("440100.pidkey"),
        dir.join(format!("{stem}.pidkey")),
    )
    .unwrap();
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("interval = \"5s\"", "interval = \"100ms\"");
    std::fs::write(&config, text).unwrap();
    let token = std::fs::read_to_string(dir.join(format!("{stem}.token")))
        .unwrap()
        .trim()
        .to_string();
    NodeFiles {
        code: "440100".into(),
        config,
        data: old.data.clone(),
        token,
    }
}

#[test]
fn records_reach_the_ministry_with_identical_digests() {
    let t = tree(&["440100", "440300"]);
    let http = Http::new();
    for (i, (files, _)) in t.cities.iter().enumerate() {
        import(&t.net, files, 3000, i as u64 + 1);
    }
    for (files, city) in &t.cities {
        let at_city = digest(&http, city, &files.code);
        assert!(at_city["records"].as_u64().unwrap() > 2000);
        eventually(
            &format!("{}'s records at the ministry", files.code),
            Duration::from_secs(60),
            || digest(&http, &t.ministry.1, &files.code) == at_city,
        );
        assert_eq!(
            digest(&http, &t.province.1, &files.code),
            at_city,
            "the province holds the same records"
        );
    }
    // Receipts flow down: each city learns that the ministry holds all its records.
    for (files, city) in &t.cities {
        eventually(
            "the ministry's receipt at the city",
            Duration::from_secs(30),
            || {
                let s = http.get(&city.url("/v1/status")).1;
                s["parent"]["connected"] == true
                    && s["parent"]["acked_by_ministry"] == s["parent"]["own_last_seq"]
            },
        );
        let out = lmsync_ok(&["status", "--config", files.config.to_str().unwrap()]);
        assert!(out.contains("connected"), "{out}");
    }
    let province = http.get(&t.province.1.url("/v1/status")).1;
    assert_eq!(
        province["children"].as_array().unwrap().len(),
        2,
        "{province}"
    );
    // Converged: each child's last offer names its own records and nothing is behind.
    for child in province["children"].as_array().unwrap() {
        let code = child["code"].as_str().unwrap();
        assert_eq!(child["lag_by_owner"][code], 0, "{child}");
        assert_eq!(child["lag_records"], 0, "{child}");
        assert!(child["lag_seconds"].as_i64().is_some(), "{child}");
    }
    let whole = digest(&http, &t.ministry.1, "440100");
    assert_eq!(whole, digest(&http, &t.cities[0].1, "440100"));
    let (_, province_run) = t.province;
    assert_eq!(province_run.terminate(), Some(0));
}

#[test]
fn a_repeatedly_killed_province_resumes_without_losing_or_restarting() {
    let mut t = tree(&["440100"]);
    let http = Http::new();
    import(&t.net, &t.cities[0].0, 20_000, 5);
    let at_city = digest(&http, &t.cities[0].1, "440100");
    let total = at_city["records"].as_u64().unwrap();
    let count = |node: &RunningNode| {
        digest(&http, node, "440100")["records"]
            .as_u64()
            .unwrap_or(0)
    };
    let mut received_after_kills = 0;
    let mut held_at_kill = 0;
    for round in 0..3 {
        // Kill the province as soon as it has made progress since the last kill.
        eventually("progress at the province", Duration::from_secs(60), || {
            count(&t.province.1) > held_at_kill || count(&t.province.1) == total
        });
        let (files, run) = t.province;
        let status = http.get(&run.url("/v1/status")).1;
        received_after_kills += status["children"][0]["records_received"]
            .as_u64()
            .unwrap_or(0);
        held_at_kill = count(&run);
        run.kill();
        let reopened = RunningNode::start(&files);
        let after = count(&reopened);
        println!("kill {round}: province held {held_at_kill} of {total}; {after} after restart");
        assert!(
            after >= held_at_kill,
            "records the province had committed were lost: {after} < {held_at_kill}"
        );
        t.province = (files, reopened);
    }
    eventually(
        "the city's records at the province again",
        Duration::from_secs(90),
        || digest(&http, &t.province.1, "440100") == at_city,
    );
    eventually(
        "the city's records at the ministry",
        Duration::from_secs(60),
        || digest(&http, &t.ministry.1, "440100") == at_city,
    );
    // Across all restarts the province received each record about once: transfers resumed
    // from the last ack instead of starting again (allowing the batches in flight at each
    // kill, 4 per kill).
    let status = http.get(&t.province.1.url("/v1/status")).1;
    received_after_kills += status["children"][0]["records_received"]
        .as_u64()
        .unwrap_or(0);
    println!("province received {received_after_kills} records in all for {total}");
    assert!(
        received_after_kills <= total + 3 * 4 * 1000,
        "a transfer restarted from zero: {received_after_kills} for {total}"
    );
}

#[test]
fn anti_entropy_repairs_a_record_corrupted_at_the_province() {
    let mut t = tree(&["440100"]);
    let http = Http::new();
    import(&t.net, &t.cities[0].0, 2000, 9);
    let at_city = digest(&http, &t.cities[0].1, "440100");
    eventually(
        "the records at the province",
        Duration::from_secs(60),
        || digest(&http, &t.province.1, "440100") == at_city,
    );
    // Stop the province and change one record's data on disk, keeping its envelope.
    let (files, run) = t.province;
    assert_eq!(run.terminate(), Some(0));
    let owner: lmsync::core::model::NodeCode = "440100".parse().unwrap();
    let victim = {
        let store = lmsync::node::storage::SledStore::open(
            &files.data,
            "440000".parse().unwrap(),
            lmsync::node::storage::sled_options(16 << 20),
        )
        .unwrap();
        let mut record = store.scan_owner(owner).next().unwrap().unwrap();
        if let lmsync::core::model::kinds::RecordData::Office(o) = &mut record.data {
            o.staff_count += 1;
        } else {
            record.envelope.status = lmsync::core::model::Status::Voided;
        }
        store.corrupt_record_for_test(owner, &record).unwrap();
        assert!(!record.verify_hash().unwrap());
        record.envelope
    };

    let restarted = RunningNode::start(&files);
    t.province = (files, restarted);
    // The scrub removes the bad copy; anti-entropy fetches a good one from the city.
    let url = format!("/v1/records/440100/{}/{}", victim.kind, victim.id);
    let (_, original) = http.get(&t.cities[0].1.url(&url));
    // (A committed record reads back a moment before the summaries move: await both.)
    eventually(
        "the repaired record at the province",
        Duration::from_secs(60),
        || {
            let (status, record) = http.get(&t.province.1.url(&url));
            status == 200
                && record["data"] == original["data"]
                && record["status"] == original["status"]
                && digest(&http, &t.province.1, "440100") == at_city
        },
    );
    let (_, record) = http.get(&t.province.1.url(&url));
    assert_eq!(record["hash"].as_str().unwrap(), victim.hash.to_string());
    assert_eq!(record["version"].as_u64().unwrap(), victim.version);
    assert_eq!(digest(&http, &t.province.1, "440100"), at_city);
    let status = http.get(&t.province.1.url("/v1/status")).1;
    let city = status["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "440100")
        .unwrap_or_else(|| panic!("{status}"));
    assert!(city["records_repaired"].as_u64().unwrap() >= 1, "{status}");
}

#[test]
fn a_city_that_lost_its_disk_rebuilds_from_its_province() {
    let mut t = tree(&["440100"]);
    let http = Http::new();
    import(&t.net, &t.cities[0].0, 3000, 4);
    let before = digest(&http, &t.cities[0].1, "440100");
    eventually(
        "the records at the province",
        Duration::from_secs(60),
        || digest(&http, &t.province.1, "440100") == before,
    );
    let last_seq = http.get(&t.cities[0].1.url("/v1/status")).1["parent"]["own_last_seq"]
        .as_u64()
        .unwrap();
    // The disk is gone: a new data directory, a new config, the backed-up pseudonym key.
    let files = reinit_city(&mut t, "440100-rebuilt", true);
    let city = RunningNode::start(&files);
    // Back when its records are and the restore is over (the last record and the end of
    // the restore are two commits).
    eventually(
        "the city's records back at the city and the restore over",
        Duration::from_secs(60),
        || {
            digest(&http, &city, "440100") == before
                && http.get(&city.url("/v1/status")).1["restoring"] == false
        },
    );
    assert_eq!(
        digest(&http, &t.province.1, "440100"),
        before,
        "the province was never overwritten"
    );
    // New writes continue the city's seq where the lost store stopped.
    let (status, answer) = http.post(
        &city.url("/v1/records"),
        &files.token,
        &serde_json::json!([common::vacancy("V-after-rebuild", 1)]),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"][0]["seq"].as_u64().unwrap(), last_seq + 1);
}

#[test]
fn a_city_with_a_new_store_that_does_not_restore_is_refused() {
    let mut t = tree(&["440100"]);
    let http = Http::new();
    import(&t.net, &t.cities[0].0, 500, 6);
    let before = digest(&http, &t.cities[0].1, "440100");
    eventually(
        "the records at the province",
        Duration::from_secs(60),
        || digest(&http, &t.province.1, "440100") == before,
    );
    // A new, empty store for the same node (say, a disk swapped without a restore).
    let files = reinit_city(&mut t, "440100-new", false);
    let city = RunningNode::start(&files);
    eventually("the refusal at the city", Duration::from_secs(30), || {
        let s = http.get(&city.url("/v1/status")).1;
        s["parent"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("store of 440100 changed"))
    });
    let province = http.get(&t.province.1.url("/v1/status")).1;
    let child = province["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["code"] == "440100")
        .unwrap();
    assert!(
        child["alerts"]
            .to_string()
            .contains("store identity changed"),
        "{province}"
    );
    assert_eq!(
        digest(&http, &t.province.1, "440100"),
        before,
        "the province kept the city's records"
    );
}

/// A province restarted on the same address answers its old connections with stateless
/// resets the city recognises (the reset key derives from the node key, not from the
/// process), so the city learns of the restart from the province itself instead of
/// waiting out its idle timeout, and reconnects.
#[test]
fn a_city_learns_of_a_restarted_province_from_its_reset() {
    let http = Http::new();
    let common::Tree {
        net: _net,
        ministry: _ministry,
        province: (province_files, province),
        cities,
    } = common::tree(&["440100"]);
    let city = &cities[0].1;
    let uplink = || http.get(&city.url("/v1/status")).1["parent"].clone();
    eventually("the city connected", Duration::from_secs(30), || {
        uplink()["connected"] == true
    });
    assert_eq!(uplink()["sessions_broken"], 0);

    province.kill();
    let _province = RunningNode::start(&province_files);
    eventually(
        "the city back after one broken session",
        Duration::from_secs(60),
        || {
            let link = uplink();
            link["connected"] == true && link["sessions_broken"] == 1
        },
    );
    let link = uplink();
    assert!(
        link["last_break"]
            .as_str()
            .is_some_and(|e| e.contains("reset")),
        "the old session should end by the province's reset, not a timeout: {link}"
    );
}
