//! Tests of config parsing and validation: defaults, key paths in errors, tree rules.

use super::*;

const CITY: &str = r#"
[node]
code = "440100"
data_dir = "data"

[network]
parent = "440000@province.example:7400"

[tls]
ca = "pki/ca.crt"
cert = "pki/node.crt"
key = "pki/node.key"

[api]
token_file = "api.token"
"#;

fn load(text: &str) -> Result<Config, ConfigError> {
    Config::from_raw(parse(text)?, Path::new("/etc/lmsync"))
}

#[test]
fn minimal_city_config_gets_defaults_and_resolved_paths() {
    let c = load(CITY).unwrap();
    assert_eq!(c.node.to_string(), "440100");
    assert_eq!(c.name, "广州市");
    assert_eq!(c.data_dir, Path::new("/etc/lmsync/data"));
    assert_eq!(c.api_listen.to_string(), "127.0.0.1:7401");
    assert_eq!(c.body_limit, 16 << 20);
    assert_eq!(c.parent.unwrap().address, "province.example:7400");
}

#[test]
fn unknown_keys_are_named() {
    let err = load(&CITY.replace("[api]", "[api]\nlisten_on = \"x\"")).unwrap_err();
    assert_eq!(err.key, "api.listen_on");
    assert!(err.message.contains("listen_on"), "{err}");
}

#[test]
fn a_wrong_parent_is_refused_with_the_expected_one() {
    let err = load(&CITY.replace("440000@", "210000@")).unwrap_err();
    assert_eq!(err.key, "network.parent");
    assert!(err.message.contains("expected 440000"), "{err}");
}

#[test]
fn bad_units_point_at_their_key() {
    let err = load(&CITY.replace("[api]", "[api]\nbody_limit = \"16 parsecs\"")).unwrap_err();
    assert_eq!(err.key, "api.body_limit");
    let err = load(&format!("{CITY}\n[sync]\ninterval = \"soon\"")).unwrap_err();
    assert_eq!(err.key, "sync.interval");
}

#[test]
fn children_must_be_one_tier_below() {
    let province = |children: &str| {
        CITY.replace("code = \"440100\"", "code = \"440000\"")
            .replace("440000@province.example:7400", "100000@m.example:7400")
            .replace(
                "[network]\n",
                &format!("[network]\nchildren = [{children}]\n"),
            )
    };
    let ok = load(&province("\"440100\", \"440300\"")).unwrap();
    assert_eq!(ok.children.unwrap().len(), 2);
    let bad = load(&province("\"440100\", \"210100\"")).unwrap_err();
    assert_eq!(bad.key, "network.children[1]");
}

#[test]
fn sizes_parse_with_binary_units() {
    assert_eq!(parse_size("64MiB"), Ok(64 << 20));
    assert_eq!(parse_size("1000"), Ok(1000));
    assert!(parse_size("1TiB").is_err());
}

#[test]
fn api_limits_have_defaults_and_point_at_their_key() {
    let c = load(CITY).unwrap();
    let limits = c.api_limits;
    assert_eq!(limits.header_read_timeout, Duration::from_secs(10));
    assert_eq!(limits.keep_alive_timeout, Duration::from_secs(60));
    assert_eq!(limits.body_read_timeout, Duration::from_secs(60));
    assert_eq!((limits.max_connections, limits.max_in_flight), (512, 64));
    let err = load(&CITY.replace("[api]", "[api]\nmax_in_flight = 0")).unwrap_err();
    assert_eq!(err.key, "api.max_in_flight");
    let err = load(&CITY.replace("[api]", "[api]\nmax_connections = 100000")).unwrap_err();
    assert_eq!(err.key, "api.max_connections");
    let err = load(&CITY.replace("[api]", "[api]\nheader_read_timeout = \"0s\"")).unwrap_err();
    assert_eq!(err.key, "api.header_read_timeout");
}

#[test]
fn the_example_config_shows_the_default_api_limits() {
    // node.example.toml documents every key with its default value.
    let text = include_str!("../../../config/node.example.toml");
    let example = Config::from_raw(parse(text).unwrap(), Path::new("/etc/lmsync")).unwrap();
    let minimal = load(CITY).unwrap();
    assert_eq!(example.api_limits, minimal.api_limits);
    assert_eq!(example.body_limit, minimal.body_limit);
    for key in [
        "header_read_timeout",
        "keep_alive_timeout",
        "body_read_timeout",
        "max_connections",
        "max_in_flight",
    ] {
        assert!(
            text.contains(&format!("\n{key} = ")),
            "{key} is not in the example"
        );
    }
}
