//! Test helpers for the analysis tests (records with valid envelopes, default record
//! fields), and tests of periods, scopes, targets and pilot designations.

use chrono::NaiveDate;

use super::*;
use crate::core::model::MINISTRY;
use crate::core::model::Status as RecordStatus;
use crate::core::model::kinds::{
    ContractTerm, Employer, EmploymentType, Fee, FillState, HukouClass, JobSeeker, LaidOffEpisode,
    RecordData, ReportChannel, SeekerCategory, ServiceEvent, ServiceMode, ServiceType, Sex,
    SizeBand, Vacancy,
};
use crate::core::model::record::{Envelope, content_hash};
use crate::core::model::standards::Standards;
use crate::core::model::values::{Pid, PidEpoch};

pub(crate) fn code(s: &str) -> NodeCode {
    s.parse().unwrap()
}

pub(crate) fn day(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

pub(crate) fn q3() -> Period {
    "2024Q3".parse().unwrap()
}

pub(crate) fn pid(n: u16) -> Pid {
    let mut b = [0u8; 16];
    b[..2].copy_from_slice(&n.to_be_bytes());
    Pid(b)
}

/// 2024-08-15 noon UTC: inside 2024Q3.
pub(crate) const AUG_15_MS: i64 = 1_723_723_200_000;

/// A record with a valid envelope (hash computed, built-in code refs).
pub(crate) fn record_as(
    owner: NodeCode,
    id: &str,
    status: RecordStatus,
    data: RecordData,
) -> Record {
    let hash = content_hash(owner, id, status, &data).unwrap();
    Record {
        envelope: Envelope {
            owner,
            kind: data.kind(),
            id: id.to_string(),
            version: 1,
            seq: 1,
            status,
            recorded_at_ms: AUG_15_MS,
            code_refs: Standards::builtin().code_refs(),
            hash,
        },
        data,
    }
}

/// An active record.
pub(crate) fn record(owner: NodeCode, id: &str, data: RecordData) -> Record {
    record_as(owner, id, RecordStatus::Active, data)
}

/// A one-year-plus vacancy for 1 person, valid all of 2024Q3, not published online.
pub(crate) fn vacancy() -> Vacancy {
    Vacancy {
        receiving_office_id: "O-1".into(),
        employer_id: "E-1".into(),
        reported_on: day("2024-06-20"),
        report_channel: ReportChannel::OnSite,
        title: "钳工".into(),
        occupation: "6-04-01".into(),
        industry: "C".into(),
        headcount: 1,
        contract_term: ContractTerm::OneYearOrMore,
        term_months: Some(12),
        employment_type: EmploymentType::FullTime,
        wage_min: None,
        wage_max: None,
        education_min: None,
        experience_years: None,
        work_location: "440103".into(),
        valid_from: day("2024-07-01"),
        valid_until: day("2024-12-31"),
        publish_allowed: true,
        published_online_on: None,
        published_channels: Vec::new(),
        fill_state: FillState::Open,
        filled_count: 0,
        skill_level_min: None,
        sex_requirement: None,
        age_min: None,
        age_max: None,
    }
}

/// A job seeker registered in 2024Q3 wanting `desired`.
pub(crate) fn seeker(n: u16, desired: &[&str], category: SeekerCategory) -> JobSeeker {
    JobSeeker {
        pid: pid(n),
        pid_epoch: 1,
        sex: Sex::Female,
        birth_year: 1970,
        residence_division: "440103".into(),
        hukou_class: HukouClass::LocalUrban,
        education: None,
        desired_occupations: desired.iter().map(|s| (*s).to_string()).collect(),
        desired_wage_min: None,
        category,
        registered_on: day("2024-07-10"),
        valid_until: day("2024-12-31"),
        hardship: None,
        consent_publish_profile: false,
        skill_level: None,
        tech_title: None,
    }
}

/// An employer of `ownership_type` in industry C.
pub(crate) fn employer(ownership_type: &str) -> Employer {
    Employer {
        org_code: None,
        uscc: None,
        name: "某厂".into(),
        division_code: "440103".into(),
        industry: "C".into(),
        ownership_type: ownership_type.into(),
        size_band: SizeBand::Medium,
        ui_participant: true,
    }
}

/// A laid-off episode with an RSC stay from `entry` to `exit`.
pub(crate) fn episode(n: u16, entry: &str, exit: Option<&str>) -> LaidOffEpisode {
    LaidOffEpisode {
        pid: pid(n),
        pid_epoch: PidEpoch::default(),
        employer_id: "E-1".into(),
        laid_off_on: day("2023-12-01"),
        rsc_entry_on: Some(day(entry)),
        rsc_office_id: Some("O-RSC".into()),
        agreement_signed: true,
        living_allowance_fen: None,
        rsc_exit_on: exit.map(day),
        exit_reason: None,
    }
}

/// A service event for person `n`.
pub(crate) fn event(
    n: u16,
    on: &str,
    event_type: ServiceType,
    refs: &[&str],
    fee: Fee,
) -> ServiceEvent {
    ServiceEvent {
        pid: pid(n),
        pid_epoch: PidEpoch::default(),
        office_id: "O-1".into(),
        occurred_on: day(on),
        event_type,
        vacancy_refs: refs.iter().map(|s| (*s).to_string()).collect(),
        course_ref: None,
        fee,
        mode: ServiceMode::InPerson,
        outcome: None,
    }
}

#[test]
fn test_records_have_valid_hashes() {
    let r = record(code("440100"), "V-1", RecordData::Vacancy(vacancy()));
    assert!(r.verify_hash().unwrap());
}

#[test]
fn periods_parse_and_step() {
    let p = q3();
    assert_eq!(p.to_string(), "2024Q3");
    assert_eq!(
        (p.first_day(), p.last_day()),
        (day("2024-07-01"), day("2024-09-30"))
    );
    assert!(p.contains(day("2024-09-30")) && !p.contains(day("2024-10-01")));
    let q1: Period = "2024Q1".parse().unwrap();
    assert_eq!(q1.previous().unwrap().to_string(), "2023Q4");
    assert_eq!(q1.last_day(), day("2024-03-31"));
    assert_eq!(
        "2024q4".parse::<Period>().unwrap().last_day(),
        day("2024-12-31")
    );
    assert_eq!(Period::of_date(day("2024-08-15")).unwrap(), p);
    assert_eq!(p.month_index(day("2024-09-02")), Some(2));
    assert_eq!(serde_json::to_string(&p).unwrap(), "\"2024Q3\"");
    assert_eq!(serde_json::from_str::<Period>("\"2024Q3\"").unwrap(), p);
    assert!(Period::new(1000, 1).unwrap().previous().is_none());
}

#[test]
fn bad_periods_are_rejected_clearly() {
    assert_eq!("2024Q5".parse::<Period>(), Err(PeriodError::Quarter(5)));
    assert_eq!("2024Q0".parse::<Period>(), Err(PeriodError::Quarter(0)));
    assert_eq!("0999Q1".parse::<Period>(), Err(PeriodError::Year(999)));
    for bad in [
        "",
        "2024",
        "2024-Q3",
        "24Q3",
        "2024Q",
        "2024Q12",
        "２０２４Q3",
        "2024Q+1",
    ] {
        assert!(
            matches!(bad.parse::<Period>(), Err(PeriodError::Format(_))),
            "{bad:?}"
        );
    }
    let msg = "2024-3".parse::<Period>().unwrap_err().to_string();
    assert!(msg.contains("2024Q3"), "{msg}");
    assert!(serde_json::from_str::<Period>("\"2024Q9\"").is_err());
}

#[test]
fn scopes_nest_and_parse() {
    let city = Scope::of(code("440100"));
    assert_eq!(city, Scope::City(code("440100")));
    let chain: Vec<String> = city.chain().map(|s| s.to_string()).collect();
    assert_eq!(chain, ["440100", "440000", "national"]);
    assert!(Scope::Province(code("440000")).contains(code("440100")));
    assert!(!Scope::Province(code("210000")).contains(code("440100")));
    assert_eq!("national".parse::<Scope>().unwrap(), Scope::National);
    assert_eq!("100000".parse::<Scope>().unwrap(), Scope::National);
    assert!("44".parse::<Scope>().is_err());
}

const DEMO_BODY: &str = r#"{"metric": "M01", "comparator": ">=", "threshold": 0.6, "unit": "share of reports",
    "period": "quarter", "scope": "national", "applies_to": "pilot cities",
    "source_doc": "劳社部发〔1999〕1号"}"#;

#[test]
fn target_documents_parse() {
    let t = parse_target("M01-online-rate", MINISTRY, DEMO_BODY).unwrap();
    assert_eq!(t.target_id, "M01-online-rate");
    assert_eq!(t.metric, MetricId::M01);
    assert_eq!(t.comparator, Comparator::AtLeast(0.6));
    assert_eq!(
        (t.scope, t.applies_to),
        (Scope::National, AppliesTo::Pilots)
    );
    assert_eq!(t.origin, TargetOrigin::Published(MINISTRY));
    let between = r#"{"target_id":"m11-gd","metric":"M11","comparator":"between","threshold":[2,4],"scope":"440000","applies_to":"all"}"#;
    let t = parse_target("doc", code("440000"), between).unwrap();
    assert_eq!(t.target_id, "m11-gd");
    assert_eq!(t.comparator, Comparator::Between(2.0, 4.0));
    assert!(t.comparator.holds(4.0) && !t.comparator.holds(5.0));
}

#[test]
fn bad_target_documents_are_rejected() {
    let body = |extra: &str| {
        format!(
            r#"{{"metric":"M01","comparator":">=","threshold":0.6,"scope":"national","applies_to":"all"{extra}}}"#
        )
    };
    assert!(parse_target("t", MINISTRY, &body("")).is_ok());
    let unknown = parse_target("t", MINISTRY, &body(r#","colour":"red""#)).unwrap_err();
    assert!(
        matches!(&unknown, TargetError::Body(m) if m.contains("colour")),
        "{unknown}"
    );
    let bad_metric = DEMO_BODY.replace("M01", "M13");
    assert!(matches!(
        parse_target("t", MINISTRY, &bad_metric),
        Err(TargetError::Body(_))
    ));
    let shape = DEMO_BODY.replace(">=", "between");
    assert!(matches!(
        parse_target("t", MINISTRY, &shape),
        Err(TargetError::Threshold { .. })
    ));
    let op = DEMO_BODY.replace(">=", ">");
    assert_eq!(
        parse_target("t", MINISTRY, &op),
        Err(TargetError::Comparator(">".into()))
    );
    let reversed = r#"{"metric":"M11","comparator":"between","threshold":[5,1],"scope":"national","applies_to":"all"}"#;
    assert_eq!(
        parse_target("t", MINISTRY, reversed),
        Err(TargetError::Range)
    );
    // A province sets targets for itself and its cities only.
    let gd_city = DEMO_BODY.replace("\"national\"", "\"440100\"");
    assert!(parse_target("t", code("440000"), &gd_city).is_ok());
    assert!(matches!(
        parse_target("t", code("210000"), &gd_city),
        Err(TargetError::OutOfScope { .. })
    ));
    assert!(matches!(
        parse_target("t", code("440000"), DEMO_BODY),
        Err(TargetError::OutOfScope { .. })
    ));
}

#[test]
fn builtin_targets_follow_the_notice() {
    let all = builtin_targets();
    let at = |m, s| resolve_target(&all, m, s).map(|t| t.comparator);
    assert_eq!(
        at(MetricId::M01, Scope::City(code("440100"))),
        Some(Comparator::AtLeast(0.6))
    );
    for m in [
        MetricId::M02,
        MetricId::M03,
        MetricId::M04,
        MetricId::M05,
        MetricId::M12,
    ] {
        assert_eq!(
            at(m, Scope::National),
            Some(Comparator::AtLeast(1.0)),
            "{m}"
        );
    }
    assert_eq!(
        at(MetricId::M07, Scope::National),
        Some(Comparator::Equal(1.0))
    );
    assert_eq!(
        at(MetricId::M11, Scope::National),
        Some(Comparator::Between(80.0, 100.0))
    );
    assert_eq!(
        at(MetricId::M11, Scope::Province(code("440000"))),
        Some(Comparator::Between(1.0, 5.0))
    );
    assert_eq!(
        at(MetricId::M11, Scope::Province(code("110000"))),
        Some(Comparator::AtLeast(0.0))
    );
    assert_eq!(
        at(MetricId::M06, Scope::National),
        None,
        "ministry-set, no default"
    );
}

#[test]
fn the_most_specific_target_wins() {
    let t = |scope: &str, threshold: f64| {
        let body = format!(
            r#"{{"metric":"M01","comparator":">=","threshold":{threshold},"scope":"{scope}","applies_to":"pilots"}}"#
        );
        parse_target(scope, MINISTRY, &body).unwrap()
    };
    let targets = effective_targets([t("440000", 0.7), t("440100", 0.8), t("national", 0.65)]);
    let at = |s: &str| resolve_target(&targets, MetricId::M01, Scope::of(code(s))).unwrap();
    assert_eq!(
        at("440100").comparator,
        Comparator::AtLeast(0.8),
        "city beats province"
    );
    assert_eq!(
        at("440300").comparator,
        Comparator::AtLeast(0.7),
        "province beats national"
    );
    assert_eq!(
        at("210100").comparator,
        Comparator::AtLeast(0.65),
        "published replaces builtin"
    );
    let national: Vec<_> = targets
        .iter()
        .filter(|t| t.metric == MetricId::M01 && t.scope == Scope::National)
        .collect();
    assert_eq!(national.len(), 1);
    // Of two published targets for one metric and scope, the later wins.
    let twice = effective_targets([t("440000", 0.7), t("440000", 0.9)]);
    assert_eq!(
        resolve_target(&twice, MetricId::M01, Scope::Province(code("440000")))
            .unwrap()
            .comparator,
        Comparator::AtLeast(0.9)
    );
}

fn designation(city: &str, status: &str, extra: &str) -> String {
    let province = format!("{}0000", &city[..2]);
    format!(
        r#"{{"city":"{city}","province":"{province}","designated_on":"1999-07-01","batch":1,"status":"{status}"{extra}}}"#
    )
}

fn overview(docs: &[(NodeCode, String)]) -> PilotOverview {
    let targets = builtin_targets();
    pilot_overview(
        docs.iter().map(|(i, b)| (*i, b.as_str())),
        day("2024-09-30"),
        &targets,
        std::collections::BTreeMap::new(),
    )
}

#[test]
fn a_retired_city_is_no_pilot_whatever_its_designation() {
    let gd = code("440000");
    let docs = [
        (gd, designation("440100", "active", "")),
        (gd, designation("440300", "active", "")),
    ];
    let retired = [(code("440300"), day("2000-01-01"))].into_iter().collect();
    let o = pilot_overview(
        docs.iter().map(|(i, b)| (*i, b.as_str())),
        day("2024-09-30"),
        &builtin_targets(),
        retired,
    );
    assert!(o.is_active(code("440100")) && !o.is_active(code("440300")));
    assert_eq!(o.provinces[&gd].m11.numerator, 1);
    assert_eq!(o.retired_since(code("440300")), Some(day("2000-01-01")));
}

#[test]
fn m11_counts_active_pilots_per_province() {
    let gd = code("440000");
    let hb = code("420000");
    let mut docs: Vec<(NodeCode, String)> =
        ["440100", "440300", "440500", "440600", "440700", "440800"]
            .iter()
            .map(|c| (gd, designation(c, "active", "")))
            .collect();
    docs.extend(
        ["420100", "420200", "420500"]
            .iter()
            .map(|c| (hb, designation(c, "active", ""))),
    );
    let o = overview(&docs);
    let status = |p: &str| o.provinces[&code(p)].m11.status;
    assert_eq!(o.provinces[&gd].m11.numerator, 6);
    assert_eq!(status("440000"), Status::Fail, "6 > 5");
    assert_eq!(status("420000"), Status::Pass, "3 in [1, 5]");
    assert_eq!(
        status("110000"),
        Status::Pass,
        "a municipality may have none"
    );
    assert_eq!(status("210000"), Status::Fail, "a province needs one");
    assert_eq!(o.national.numerator, 9);
    assert_eq!(o.national.status, Status::Fail, "9 nationally is below 80");
    assert!(o.is_active(code("440100")) && !o.is_active(code("440200")));
}

#[test]
fn designations_are_confirmed_withdrawn_and_checked() {
    let gd = code("440000");
    let docs = vec![
        (
            MINISTRY,
            designation("440100", "active", r#","confirms":true"#),
        ),
        (gd, designation("440100", "active", "")),
        (gd, designation("440300", "active", "")),
        (
            gd,
            designation("440300", "withdrawn", r#","status_on":"2001-01-01""#),
        ),
        (
            gd,
            designation("440500", "active", r#","status_on":"2030-01-01""#),
        ),
        (code("210000"), designation("440600", "active", "")),
        (MINISTRY, designation("440600", "active", "")),
        (gd, designation("440700", "active", r#","rank":1"#)),
    ];
    let o = overview(&docs);
    let p = &o.provinces[&gd];
    assert_eq!(
        p.active.iter().map(|c| c.to_string()).collect::<Vec<_>>(),
        ["440100"]
    );
    assert_eq!(p.confirmed.len(), 1, "the ministry confirmed 440100");
    let rejected: Vec<usize> = o.rejected.iter().map(|(i, _)| *i).collect();
    assert_eq!(rejected, [5, 6, 7]);
    assert!(matches!(o.rejected[0].1, PilotError::Issuer { .. }));
    assert!(matches!(&o.rejected[2].1, PilotError::Body(m) if m.contains("rank")));
    let wrong_province = r#"{"city":"440100","province":"420000","designated_on":"1999-07-01","batch":1,"status":"active"}"#;
    assert!(matches!(
        parse_pilot(code("420000"), wrong_province),
        Err(PilotError::NotInProvince { .. })
    ));
}
