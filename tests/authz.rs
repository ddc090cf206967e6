//! Unauthorised peers are refused and nothing they send is stored, asserted on the
//! receiving server: a foreign CA, a certificate for another code than the node claims, a
//! node of the wrong tier, and a city sending another city's records; no client
//! certificate, an expired certificate from the network CA, a certificate naming no lmsync
//! node, a province under another province and a city dialling the ministry directly
//! (with the server's log line where it writes one).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::{Http, Network, NodeFiles, RunningNode, lmsync_ok};
use serde_json::Value;

fn province(net: &Network) -> (NodeFiles, RunningNode) {
    let files = net.init("440000", None);
    let run = RunningNode::start(&files);
    (files, run)
}

fn parent_arg(p: &RunningNode) -> String {
    format!("440000@{}", p.quic.clone().unwrap())
}

/// Waits (bounded) until the node reports an error on its parent link, and returns it.
fn parent_error(http: &Http, node: &RunningNode) -> String {
    let start = Instant::now();
    loop {
        let s = http.get(&node.url("/v1/status")).1;
        if let Value::String(e) = &s["parent"]["last_error"] {
            return e.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no refusal reported: {s}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn records_at(http: &Http, node: &RunningNode, owner: &str) -> u64 {
    http.get(&node.url(&format!("/v1/digest?owner={owner}"))).1["records"]
        .as_u64()
        .unwrap()
}

fn feed(net: &Network, city: &NodeFiles, code: &str) {
    let text = lmsync_ok(&["gen", "--node", code, "--records", "50", "--seed", "1"]);
    let path = net.path().join(format!("{code}.jsonl"));
    std::fs::write(&path, text).unwrap();
    lmsync_ok(&[
        "import",
        "--config",
        city.config.to_str().unwrap(),
        path.to_str().unwrap(),
    ]);
}

#[test]
fn a_certificate_from_a_foreign_ca_is_refused() {
    let net = Network::new();
    let (_, p) = province(&net);
    let rogue = Network::new();
    let city = rogue.init("440100", Some(&parent_arg(&p)));
    let run = RunningNode::start(&city);
    feed(&rogue, &city, "440100");
    let http = Http::new();
    let error = parent_error(&http, &run);
    assert!(
        error.contains("TLS handshake refused here (UnknownCa)"),
        "{error}"
    );
    assert_eq!(
        records_at(&http, &p, "440100"),
        0,
        "nothing from a foreign CA is stored"
    );
    let status = http.get(&p.url("/v1/status")).1;
    assert_eq!(status["children"].as_array().unwrap().len(), 0, "{status}");
}

#[test]
fn a_node_presenting_another_codes_certificate_is_refused() {
    let net = Network::new();
    let (_, p) = province(&net);
    let city = net.init("440100", Some(&parent_arg(&p)));
    net.init("440300", None);
    // 440100's config now presents 440300's certificate and key.
    let text = std::fs::read_to_string(&city.config)
        .unwrap()
        .replace("pki-440100", "pki-440300");
    std::fs::write(&city.config, text).unwrap();
    let run = RunningNode::start(&city);
    feed(&net, &city, "440100");
    let http = Http::new();
    let error = parent_error(&http, &run);
    assert!(
        error.contains("Identity") && error.contains("the certificate is for 440300"),
        "{error}"
    );
    assert_eq!(records_at(&http, &p, "440100"), 0);
    assert_eq!(records_at(&http, &p, "440300"), 0);
}

/// Connects to the province with `code`'s certificate and returns why it was closed.
fn closed_by_province(net: &Network, code: &str, province: &RunningNode) -> String {
    net.init(code, None);
    let pki = net.path().join(format!("pki-{code}"));
    let files = lmsync::node::transport::tls::TlsFiles {
        ca: &pki.join("ca.crt"),
        cert: &pki.join("node.crt"),
        key: &pki.join("node.key"),
    };
    let material = lmsync::node::transport::tls::TlsMaterial::load(&files).unwrap();
    let config = lmsync::node::transport::tls::client_config(&material).unwrap();
    let addr: std::net::SocketAddr = province.quic.clone().unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        endpoint.set_default_client_config(config);
        let conn = endpoint
            .connect(addr, "n440000.lmsync")
            .unwrap()
            .await
            .unwrap();
        // The TLS handshake succeeds (the certificate is genuine); the tree says no.
        match conn.closed().await {
            quinn::ConnectionError::ApplicationClosed(c) => {
                String::from_utf8_lossy(&c.reason).into_owned()
            }
            other => panic!("expected an application close, got {other}"),
        }
    })
}

#[test]
fn nodes_outside_the_subtree_or_of_the_wrong_tier_are_refused() {
    let net = Network::new();
    let (_, p) = province(&net);
    let http = Http::new();
    let reason = closed_by_province(&net, "210100", &p);
    assert!(
        reason.contains("210100 (city) is not a child of 440000"),
        "{reason}"
    );
    let reason = closed_by_province(&net, "210000", &p);
    assert!(
        reason.contains("210000 (province) is not a child of 440000"),
        "{reason}"
    );
    let reason = closed_by_province(&net, "100000", &p);
    assert!(reason.contains("is not a child of 440000"), "{reason}");
    assert_eq!(
        http.get(&p.url("/v1/digest")).1["records"]
            .as_u64()
            .unwrap(),
        0
    );
    assert_eq!(
        http.get(&p.url("/v1/status")).1["children"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
    // The config refuses such a parent before anything is sent.
    let stranger = net.init("210200", None);
    let text = std::fs::read_to_string(&stranger.config).unwrap();
    let text = text.replace(
        "[network]\n",
        &format!("[network]\nparent = \"{}\"\n", parent_arg(&p)),
    );
    std::fs::write(&stranger.config, text).unwrap();
    let out = common::lmsync(&[
        "config",
        "check",
        "--config",
        stranger.config.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("network.parent"));
}

#[test]
fn a_city_sending_another_citys_records_is_cut_off_with_nothing_stored() {
    let net = Network::new();
    let (_, p) = province(&net);
    let city = net.init("440300", Some(&parent_arg(&p)));
    // Plant records owned by 440100 in 440300's store, as a compromised node might.
    {
        let owner: lmsync::core::model::NodeCode = "440100".parse().unwrap();
        let me: lmsync::core::model::NodeCode = "440300".parse().unwrap();
        let store = lmsync::node::storage::SledStore::open(
            &city.data,
            me,
            lmsync::node::storage::sled_options(16 << 20),
        )
        .unwrap();
        let standards = lmsync::core::model::standards::Standards::builtin();
        let key = lmsync::core::model::person::Pseudonymiser::new([3; 32], 1);
        let cx = lmsync::core::model::ingest::IngestContext::new(owner, &standards, Some(&key));
        let mut planner = lmsync::node::write::Planner::new(&store, owner);
        for v in lmsync::tooling::synth::generate(owner, 30, 2) {
            planner
                .plan(cx.draft(v).unwrap(), &standards.code_refs(), 0)
                .unwrap();
        }
        let batch = lmsync::core::store::WriteBatch {
            records: planner.into_writes(),
            ..Default::default()
        };
        lmsync::core::store::Store::commit(&store, batch).unwrap();
    }
    let run = RunningNode::start(&city);
    feed(&net, &city, "440300");
    let http = Http::new();
    let error = parent_error(&http, &run);
    assert!(
        error.contains("Unauthorised") && error.contains("outside its subtree"),
        "{error}"
    );
    assert_eq!(
        records_at(&http, &p, "440100"),
        0,
        "no foreign record stored"
    );
    assert_eq!(
        records_at(&http, &p, "440300"),
        0,
        "the session was cut before anything was stored"
    );
}

/// Starts `files` like [`RunningNode::start`], with info-level JSON logs written to `log`,
/// so that a test can assert on the server's own account of a refusal.
fn start_logged(files: &NodeFiles, log: &std::path::Path) -> RunningNode {
    let child = common::bin()
        .args(["run", "--config", files.config.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .unwrap();
    RunningNode::when_ready(child)
}

/// A province whose logs go to a file; returns the log's path.
fn logged_province(net: &Network) -> (RunningNode, std::path::PathBuf) {
    let files = net.init("440000", None);
    let log = net.path().join("440000.log");
    (start_logged(&files, &log), log)
}

/// Waits (bounded) for a line of `log` containing every one of `needles`, and returns it.
fn log_line(log: &std::path::Path, needles: &[&str]) -> String {
    let start = Instant::now();
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        if let Some(line) = text.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            return line.to_string();
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no log line with {needles:?} in:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The server holds no record at all and has no link to any child.
fn nothing_stored(http: &Http, server: &RunningNode) {
    assert_eq!(
        http.get(&server.url("/v1/digest")).1["records"],
        serde_json::json!(0)
    );
    let status = http.get(&server.url("/v1/status")).1;
    assert_eq!(status["children"], serde_json::json!([]), "{status}");
    assert_eq!(
        status["store"]["healthy"],
        serde_json::json!(true),
        "{status}"
    );
}

/// Dials `server` (node `server_code`) with `config`, says `Hello` as `code` if the
/// connection comes up, and returns how the server ended it: `Ok(reason)` for an
/// application close, `Err(error)` for a refused handshake or any other failure.
fn dial(
    config: quinn::ClientConfig,
    server: &RunningNode,
    server_code: &str,
    code: &str,
) -> Result<String, String> {
    let addr: std::net::SocketAddr = server.quic.clone().unwrap().parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut endpoint = quinn::Endpoint::client("127.0.0.1:0".parse().unwrap()).unwrap();
        endpoint.set_default_client_config(config);
        let connecting = endpoint
            .connect(addr, &format!("n{server_code}.lmsync"))
            .unwrap();
        let conn = tokio::time::timeout(Duration::from_secs(10), connecting)
            .await
            .expect("the handshake ends within 10 s")
            .map_err(|e| e.to_string())?;
        // The client may see its side of the handshake finish before the server has
        // checked its certificate: try to speak, then wait for the server's verdict.
        if let Ok((mut send, _recv)) = conn.open_bi().await {
            let hello = lmsync::core::wire::Message::Hello {
                protocol: (
                    lmsync::core::wire::PROTOCOL_VERSION,
                    lmsync::core::wire::PROTOCOL_VERSION,
                ),
                node: code.parse().unwrap(),
                store_id: [9; 16],
            };
            let frame = lmsync::core::wire::encode_frame(&hello).unwrap();
            let _ = send.write_all(&frame).await;
        }
        let closed = tokio::time::timeout(Duration::from_secs(10), conn.closed())
            .await
            .expect("the server closes the connection within 10 s");
        match closed {
            quinn::ConnectionError::ApplicationClosed(c) => {
                Ok(String::from_utf8_lossy(&c.reason).into_owned())
            }
            other => Err(other.to_string()),
        }
    })
}

/// A certificate for `code` signed by the network CA's own key (`ca/ca.key` from `lmsync
/// pki init`) with the names and key usages `pki::issue` gives, except that it may lack
/// the lmsync URI SAN and its validity is `not_before..not_after` (year, month, day).
/// Returns `(certificate PEM, key PEM)`.
fn forge(
    net: &Network,
    code: &str,
    with_uri: bool,
    not_before: (i32, u8, u8),
    not_after: (i32, u8, u8),
) -> (String, String) {
    let ca = net.path().join("ca");
    let ca_key =
        rcgen::KeyPair::from_pem(&std::fs::read_to_string(ca.join("ca.key")).unwrap()).unwrap();
    let ca_pem = std::fs::read_to_string(ca.join("ca.crt")).unwrap();
    let issuer = rcgen::Issuer::from_ca_cert_pem(&ca_pem, &ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![format!("n{code}.lmsync")]).unwrap();
    if with_uri {
        params.subject_alt_names.push(rcgen::SanType::URI(
            format!("urn:lmsync:node:{code}").try_into().unwrap(),
        ));
    }
    let mut dn = rcgen::DistinguishedName::new();
    dn.push(rcgen::DnType::CommonName, format!("lmsync node {code}"));
    params.distinguished_name = dn;
    params.key_usages = vec![rcgen::KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let ((y0, m0, d0), (y1, m1, d1)) = (not_before, not_after);
    params.not_before = rcgen::date_time_ymd(y0, m0, d0);
    params.not_after = rcgen::date_time_ymd(y1, m1, d1);
    let cert = params.signed_by(&key, &issuer).unwrap();
    (cert.pem(), key.serialize_pem())
}

/// An initialised city whose certificate and key are then replaced by `(cert, key)`
/// (`lmsync init` insists on a proper certificate; `lmsync run` presents whatever is
/// there, as a tampered or stale node would).
fn city_with_cert(net: &Network, code: &str, p: &RunningNode, cert: (String, String)) -> NodeFiles {
    let city = net.init(code, Some(&parent_arg(p)));
    let pki = net.path().join(format!("pki-{code}"));
    std::fs::write(pki.join("node.crt"), cert.0).unwrap();
    std::fs::write(pki.join("node.key"), cert.1).unwrap();
    city
}

#[test]
fn a_client_without_a_certificate_is_refused_in_the_handshake() {
    let net = Network::new();
    let (p, log) = logged_province(&net);
    // Trusts the network CA, presents nothing.
    let mut roots = rustls::RootCertStore::empty();
    let ca = std::fs::read(net.path().join("ca").join("ca.crt")).unwrap();
    for c in
        <rustls_pki_types::CertificateDer<'_> as rustls_pki_types::pem::PemObject>::pem_slice_iter(
            &ca,
        )
    {
        roots.add(c.unwrap()).unwrap();
    }
    let mut tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_protocol_versions(&[&rustls::version::TLS13])
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![lmsync::node::transport::tls::ALPN.to_vec()];
    let crypto = quinn::crypto::rustls::QuicClientConfig::try_from(tls).unwrap();
    let config = quinn::ClientConfig::new(std::sync::Arc::new(crypto));
    let error = dial(config, &p, "440000", "440100").unwrap_err();
    assert!(error.contains("certificate"), "{error}");
    let line = log_line(&log, &["Child handshake failed", "certificate"]);
    let http = Http::new();
    nothing_stored(&http, &p);
    println!("authz case=no_client_certificate client_saw={error:?} server_log={line}");
}

#[test]
fn an_expired_certificate_is_refused_and_nothing_is_stored() {
    let net = Network::new();
    let (p, log) = logged_province(&net);
    // A genuine certificate for the city, from the network CA, that expired in 2021.
    let expired = forge(&net, "440100", true, (2020, 1, 1), (2021, 1, 1));
    let city = city_with_cert(&net, "440100", &p, expired);
    let run = RunningNode::start(&city);
    feed(&net, &city, "440100");
    let http = Http::new();
    let error = parent_error(&http, &run);
    assert!(
        error.contains("TLS handshake refused by the peer (Expired)"),
        "{error}"
    );
    let line = log_line(&log, &["Child handshake failed", "xpired"]);
    assert_eq!(
        records_at(&http, &p, "440100"),
        0,
        "nothing from it is stored"
    );
    nothing_stored(&http, &p);
    println!("authz case=expired_certificate city_saw={error:?} server_log={line}");
}

#[test]
fn a_certificate_naming_no_lmsync_node_is_refused() {
    let net = Network::new();
    let (p, log) = logged_province(&net);
    // From the network CA and valid now, with the DNS name but no `urn:lmsync:node:` URI.
    let (y, m, d) = {
        use chrono::Datelike;
        let today = chrono::Utc::now().date_naive();
        (
            today.year(),
            u8::try_from(today.month()).unwrap(),
            u8::try_from(today.day()).unwrap().min(28),
        )
    };
    let nameless = forge(&net, "440100", false, (y - 1, m, d), (y + 1, m, d));
    let city = city_with_cert(&net, "440100", &p, nameless);
    let run = RunningNode::start(&city);
    feed(&net, &city, "440100");
    let http = Http::new();
    let error = parent_error(&http, &run);
    assert!(
        error.contains("certificate names no lmsync node"),
        "{error}"
    );
    assert_eq!(
        records_at(&http, &p, "440100"),
        0,
        "nothing from it is stored"
    );
    nothing_stored(&http, &p);
    // The province logs no line for this refusal (only the peer learns why).
    let logged = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .any(|l| l.contains("names no lmsync node"));
    println!("authz case=no_lmsync_uri city_saw={error:?} server_logged={logged}");
}

#[test]
fn nodes_posing_as_children_of_the_wrong_parent_are_refused_and_logged() {
    let net = Network::new();
    let http = Http::new();
    // A province posing as a child of another province.
    let (p, log) = logged_province(&net);
    let reason = closed_by_province(&net, "450000", &p);
    assert!(
        reason.contains("450000 (province) is not a child of 440000"),
        "{reason}"
    );
    let line = log_line(
        &log,
        &["Refusing connection", "450000 (province) is not a child"],
    );
    nothing_stored(&http, &p);
    println!("authz case=province_under_province reason={reason:?} server_log={line}");
    // A city skipping its province to dial the ministry.
    let m = net.init("100000", None);
    let mlog = net.path().join("100000.log");
    let ministry = start_logged(&m, &mlog);
    net.init("440100", None);
    let pki = net.path().join("pki-440100");
    let material =
        lmsync::node::transport::tls::TlsMaterial::load(&lmsync::node::transport::tls::TlsFiles {
            ca: &pki.join("ca.crt"),
            cert: &pki.join("node.crt"),
            key: &pki.join("node.key"),
        })
        .unwrap();
    let config = lmsync::node::transport::tls::client_config(&material).unwrap();
    let reason = dial(config, &ministry, "100000", "440100").unwrap();
    assert!(
        reason.contains("440100 (city) is not a child of 100000"),
        "{reason}"
    );
    let line = log_line(
        &mlog,
        &["Refusing connection", "440100 (city) is not a child"],
    );
    nothing_stored(&http, &ministry);
    println!("authz case=city_to_ministry reason={reason:?} server_log={line}");
}
