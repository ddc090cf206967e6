//! Unit tests of crosswalk bodies and chains.

use chrono::NaiveDate;

use super::crosswalk::*;
use super::standards::OCCUPATION;
use serde_json::json;

fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn div_1999_2000() -> String {
    json!({"scheme": "CN-DIV", "from_version": "199912", "to_version": "200012",
        "effective_date": "2000-12-31", "entries": [
            {"from": "142200", "to": "140900", "relation": "replacedBy", "name": "忻州市"},
            {"from": "142700", "to": "140800", "relation": "replacedBy", "name": "运城市"},
            {"from": "320800", "to": "320800", "relation": "exact", "name": "淮安市"}]})
    .to_string()
}

#[test]
fn a_division_crosswalk_maps_old_codes_and_renames_in_place() {
    let e = Editions::of([div_1999_2000().as_str()], day("2001-01-01"));
    let (code, t) = e.division_of("142200".parse().unwrap()).unwrap();
    assert_eq!(code.to_string(), "140900");
    assert_eq!(
        (t.relation, t.name.as_deref()),
        (Relation::ReplacedBy, Some("忻州市"))
    );
    let (same, renamed) = e.division_of("320800".parse().unwrap()).unwrap();
    assert_eq!(
        (same.to_string(), renamed.name.as_deref()),
        ("320800".into(), Some("淮安市"))
    );
    assert!(e.division_of("140100".parse().unwrap()).is_none());
    assert_eq!(e.division.edition(), Some("200012"));
    // Not yet in force the day before.
    assert!(
        Editions::of([div_1999_2000().as_str()], day("2000-12-30"))
            .division
            .is_empty()
    );
}

#[test]
fn a_chain_follows_edition_after_edition_in_any_order_of_arrival() {
    let first = json!({"scheme": "CN-DIV", "from_version": "199812", "to_version": "199912",
        "effective_date": "1999-12-31", "entries": [
            {"from": "142400", "to": "140700", "relation": "replacedBy"}]})
    .to_string();
    let later = json!({"scheme": "CN-DIV", "from_version": "199912", "to_version": "200112",
        "effective_date": "2001-12-31", "entries": [
            {"from": "140700", "to": "140701", "relation": "narrow"},
            {"from": "152700", "to": "150600", "relation": "replacedBy"}]})
    .to_string();
    let div = div_1999_2000();
    let bodies = [later.as_str(), div.as_str(), first.as_str()];
    // 199812 → 199912 → (200012 and 200112 both leave 199912: the earlier is followed).
    let e = Editions::of(bodies, day("2002-01-01"));
    assert_eq!(e.division.edition(), Some("200012"));
    assert_eq!(e.division.map("142400").unwrap().to, "140700");
    let e = Editions::of([first.as_str(), later.as_str()], day("2002-01-01"));
    assert_eq!(e.division.edition(), Some("200112"));
    let t = e.division.map("142400").unwrap();
    assert_eq!(
        (t.to.as_str(), t.relation),
        ("140701", Relation::ReplacedBy)
    );
    assert_eq!(e.division.map("152700").unwrap().to, "150600");
}

#[test]
fn merges_map_many_to_one_and_a_split_goes_to_its_primary_target() {
    let occ = json!({"scheme": "CN-OCC", "from_version": "1999", "to_version": "2015",
        "effective_date": "2015-07-29", "entries": [
            {"from": "6-04-01", "to": "6-18-01", "relation": "mergedInto", "name": "机械加工人员"},
            {"from": "6-04-02", "to": "6-18-01", "relation": "mergedInto"},
            {"from": "4-01-01", "to": "4-01-02", "relation": "splitInto"},
            {"from": "4-01-01", "to": "4-01-03", "relation": "splitInto"},
            {"from": "2-02-07", "to": "2-02-08", "relation": "splitInto", "share": 0.3},
            {"from": "2-02-07", "to": "2-02-09", "relation": "splitInto", "share": 0.7}]})
    .to_string();
    let body = parse_crosswalk(&occ).unwrap();
    let chain = Chain::of(OCCUPATION, &[body], day("2020-01-01"));
    assert_eq!(chain.map("6-04-01").unwrap().to, "6-18-01");
    assert_eq!(chain.map("6-04-02").unwrap().to, "6-18-01");
    assert_eq!(chain.map("4-01-01").unwrap().to, "4-01-02", "first listed");
    assert_eq!(chain.map("2-02-07").unwrap().to, "2-02-09", "largest share");
    assert_eq!(chain.map("6-04-03"), None);
    let mut sources = chain.sources_of(
        "6-18-01",
        ["6-04-01", "6-04-02", "6-04-03"].map(String::from),
    );
    sources.sort();
    assert_eq!(sources, ["6-04-01", "6-04-02"]);
}

#[test]
fn malformed_bodies_are_refused_with_the_reason() {
    let base = json!({"scheme": "CN-OCC", "from_version": "1999", "to_version": "2015",
        "effective_date": "2015-07-29", "entries": [{"from": "6-04-01", "to": "6-18-01", "relation": "exact"}]});
    assert!(parse_crosswalk(&base.to_string()).is_ok());
    let cases: Vec<(serde_json::Value, &str)> = vec![
        (json!({"scheme": "CN-IND"}), "scheme"),
        (json!({"to_version": "1999"}), "same edition"),
        (json!({"effective_date": "2015-13-01"}), "effective_date"),
        (json!({"entries": []}), "1 to"),
        (
            json!({"entries": [{"from": "6-04-01", "to": "6-18", "relation": "exact"}]}),
            "different levels",
        ),
        (
            json!({"entries": [{"from": "6-4-01", "to": "6-18-01", "relation": "exact"}]}),
            "not an occupation code",
        ),
        (
            json!({"entries": [{"from": "6-04-01", "to": "6-18-01", "relation": "sameAs"}]}),
            "unknown variant",
        ),
        (
            json!({"entries": [{"from": "6-04-01", "to": "6-18-01", "relation": "exact", "extra": 1}]}),
            "unknown field",
        ),
        (
            json!({"entries": [
            {"from": "6-04-01", "to": "6-18-01", "relation": "exact"},
            {"from": "6-04-01", "to": "6-18-02", "relation": "exact"}]}),
            "only a split",
        ),
        (
            json!({"entries": [{"from": "6-04-01", "to": "6-18-01", "relation": "splitInto"}]}),
            "split into one",
        ),
        (
            json!({"entries": [
            {"from": "6-04-01", "to": "6-18-01", "relation": "splitInto", "share": 0.8},
            {"from": "6-04-01", "to": "6-18-02", "relation": "splitInto", "share": 0.8}]}),
            "add up",
        ),
        (
            json!({"entries": [{"from": "6-04-01", "to": "6-18-01", "relation": "exact", "share": 0.5}]}),
            "only a splitInto",
        ),
        (
            json!({"entries": [
            {"from": "6-04-01", "to": "6-18-01", "relation": "mergedInto"},
            {"from": "6-04-01", "to": "6-18-01", "relation": "mergedInto"}]}),
            "listed twice",
        ),
        (
            json!({"scheme": "CN-DIV", "entries": [{"from": "142200", "to": "150600", "relation": "replacedBy"}]}),
            "different provinces",
        ),
        (
            json!({"scheme": "CN-DIV", "entries": [{"from": "100000", "to": "140900", "relation": "replacedBy"}]}),
            "national level",
        ),
        (
            json!({"scheme": "CN-DIV", "entries": [{"from": "14220", "to": "140900", "relation": "replacedBy"}]}),
            "six digits",
        ),
    ];
    for (patch, expected) in cases {
        let mut body = base.clone();
        for (k, v) in patch.as_object().unwrap() {
            body[k] = v.clone();
        }
        let err = parse_crosswalk(&body.to_string()).unwrap_err().to_string();
        assert!(err.contains(expected), "{patch}: {err}");
    }
}
