//! The command line as an operator meets it: help with examples, PKI files and modes,
//! refusals to overwrite, config errors that name the key (or the line and column),
//! identity binding, a second `run` on a data directory in use, `gen`, and the national
//! demo.

#![allow(clippy::unwrap_used)]

mod common;

use common::{Network, lmsync, lmsync_ok};

#[test]
fn every_verb_has_help_with_an_example() {
    let verbs: &[&[&str]] = &[
        &["pki", "init"],
        &["pki", "issue"],
        &["init"],
        &["run"],
        &["status"],
        &["import"],
        &["changes"],
        &["gen"],
        &["config", "check"],
        &["figures"],
    ];
    for verb in verbs {
        let mut args = verb.to_vec();
        args.push("--help");
        let out = lmsync_ok(&args);
        assert!(
            out.contains("Example"),
            "`lmsync {}` has no example:\n{out}",
            verb.join(" ")
        );
    }
    assert!(lmsync_ok(&["--help"]).contains("lmsync pki init"));
}

#[test]
fn pki_writes_private_keys_0600_and_never_overwrites() {
    let net = Network::new();
    let ca = net.path().join("ca");
    let again = lmsync(&["pki", "init", "--dir", ca.to_str().unwrap()]);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
    let files = net.init("440100", None);
    use std::os::unix::fs::PermissionsExt;
    for key in [
        ca.join("ca.key"),
        net.path().join("pki-440100/node.key"),
        net.path().join("440100.token"),
        net.path().join("440100.pidkey"),
    ] {
        let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", key.display());
    }
    assert!(!net.path().join("pki-440100/ca.key").exists());
    let text = std::fs::read_to_string(&files.config).unwrap();
    assert!(
        text.contains("code = \"440100\"") && text.contains("[privacy]"),
        "{text}"
    );
    let out = lmsync_ok(&[
        "config",
        "check",
        "--config",
        files.config.to_str().unwrap(),
    ]);
    assert!(out.contains("✓ configuration is valid"), "{out}");
}

#[test]
fn init_refuses_to_overwrite_and_checks_the_certificate() {
    let net = Network::new();
    let files = net.init("440100", None);
    let p = net.path();
    let out = lmsync(&[
        "init",
        "--node",
        "440100",
        "--pki",
        p.join("pki-440100").to_str().unwrap(),
        "--data",
        p.join("other").to_str().unwrap(),
        "--config",
        files.config.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let out = lmsync(&[
        "init",
        "--node",
        "440300",
        "--pki",
        p.join("pki-440100").to_str().unwrap(),
        "--data",
        p.join("d2").to_str().unwrap(),
        "--config",
        p.join("x.toml").to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is for node 440100, not 440300"));
    let out = lmsync(&[
        "init",
        "--node",
        "440100",
        "--pki",
        p.join("pki-440100").to_str().unwrap(),
        "--data",
        p.join("d3").to_str().unwrap(),
        "--config",
        p.join("y.toml").to_str().unwrap(),
        "--parent",
        "210000@h:1",
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("not the parent of 440100"));
}

#[test]
fn config_check_names_the_bad_key() {
    let net = Network::new();
    let files = net.init("440100", None);
    let text = std::fs::read_to_string(&files.config).unwrap();
    let broken = files.config.with_file_name("broken.toml");
    std::fs::write(
        &broken,
        text.replace("body_limit = \"16MiB\"", "body_limit = \"16 furlongs\""),
    )
    .unwrap();
    let out = lmsync(&["config", "check", "--config", broken.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("api.body_limit") && stdout.contains("furlongs"),
        "{stdout}"
    );
    std::fs::write(&broken, text.replace("[api]", "[api]\ntypo = 1")).unwrap();
    let stdout = String::from_utf8_lossy(
        &lmsync(&["config", "check", "--config", broken.to_str().unwrap()]).stdout,
    )
    .into_owned();
    assert!(stdout.contains("api.typo"), "{stdout}");
    // A TOML syntax error says where it is (the file ends with a newline, then a blank
    // line, the table, and the broken key).
    let line = text.lines().count() + 3;
    std::fs::write(&broken, format!("{text}\n[extra]\nbroken = \n")).unwrap();
    let stdout = String::from_utf8_lossy(
        &lmsync(&["config", "check", "--config", broken.to_str().unwrap()]).stdout,
    )
    .into_owned();
    assert!(
        stdout.contains(&format!("line {line}, column ")),
        "{stdout}"
    );
}

/// A second `lmsync run` on a data directory a running node holds says so plainly, exits
/// 1, and leaves the running node alone.
#[test]
fn a_second_run_on_the_same_data_directory_says_so() {
    let net = Network::new();
    let files = net.init("440100", None);
    let node = common::RunningNode::start(&files);
    let out = lmsync(&["run", "--config", files.config.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is in use by another process"), "{err}");
    assert!(!err.contains("Os {"), "no Rust debug text: {err}");
    assert_eq!(common::Http::new().get(&node.url("/v1/status")).0, 200);
    assert_eq!(node.terminate(), Some(0));
}

#[test]
fn a_node_refuses_another_nodes_data_directory() {
    let net = Network::new();
    let a = net.init("440100", None);
    let b = net.init("440300", None);
    let text = std::fs::read_to_string(&b.config).unwrap();
    let hijack = text.replace(b.data.to_str().unwrap(), a.data.to_str().unwrap());
    std::fs::write(&b.config, hijack).unwrap();
    let out = lmsync(&["run", "--config", b.config.to_str().unwrap()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("belongs to node 440100, not 440300"), "{err}");
    let check = String::from_utf8_lossy(
        &lmsync(&["config", "check", "--config", b.config.to_str().unwrap()]).stdout,
    )
    .into_owned();
    assert!(check.contains("node.data_dir"), "{check}");
}

#[test]
fn gen_is_deterministic_per_seed() {
    let a = lmsync_ok(&["gen", "--node", "440100", "--records", "300", "--seed", "7"]);
    let b = lmsync_ok(&["gen", "--node", "440100", "--records", "300", "--seed", "7"]);
    let c = lmsync_ok(&["gen", "--node", "440100", "--records", "300", "--seed", "8"]);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.lines().count(), 300);
    let out = lmsync(&["gen", "--node", "440000", "--records", "1"]);
    assert!(!out.status.success(), "provinces own no office records");
}

#[test]
fn shipped_example_configs_are_valid() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    for name in [
        "node.example.toml",
        "city.toml",
        "province.toml",
        "ministry.toml",
    ] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let raw = lmsync::node::config::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let config = lmsync::node::config::Config::from_raw(raw, &dir)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(config.data_dir.is_absolute(), "{name}");
    }
}

#[test]
fn the_national_demo_converges_in_every_province() {
    let dir = tempfile::tempdir().unwrap();
    let net = dir.path().join("net");
    let out = lmsync_ok(&[
        "demo",
        "--national",
        "--records",
        "10",
        "--exit-when-converged",
        "--timeout",
        "3m",
        "--dir",
        net.to_str().unwrap(),
    ]);
    assert!(
        out.contains("the ministry, 31 provinces and 100 cities"),
        "{out}"
    );
    assert!(
        out.contains("31 provinces, 100 of 100 cities converged"),
        "{out}"
    );
    let rows: Vec<&str> = out
        .lines()
        .filter(|l| l.len() > 6 && l[..6].ends_with("0000") && l.trim_end().ends_with("yes"))
        .collect();
    assert_eq!(rows.len(), 31, "a converged row per province:\n{out}");
    // Every node kept its files under --dir: the CA, the ministry, a filler city.
    for node in ["ca", "100000", "110100", "440100"] {
        assert!(net.join(node).exists(), "{node}");
    }
    let both = lmsync(&["demo", "--national", "--cities", "5"]);
    assert!(!both.status.success(), "--national picks the cities itself");
}
