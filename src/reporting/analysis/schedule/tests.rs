//! Known answers for reporting schedules, M10 and F03, worked out by hand.
//!
//! The schedule: 2024Q1 reports are due 45 days after 31 March, on 15 May 2024.
//! - 440100 first submits on 10 May (day 40): on time.
//! - 440300 first submits on 20 May (day 50): late.
//! - 440400 submits nothing: on 1 June it is missing; on 12 May it is not yet due.

use chrono::NaiveDate;

use crate::core::model::kinds::{Bytes, CountBasis, RecordData, SupplyDemandReport};
use crate::core::model::standards::Standards;
use crate::core::model::{MINISTRY, Record, Status as RecordStatus};
use crate::reporting::analysis::schedule::{
    Quarters, ReportingSchedule, SubmissionState, classify, parse_schedule, schedule_for,
};
use crate::reporting::analysis::tests::{code, record, record_as};
use crate::reporting::analysis::*;

const A: &str = "440100";
const B: &str = "440300";
const C: &str = "440400";

fn q1() -> Period {
    "2024Q1".parse().unwrap()
}

/// Noon UTC of `day`, ms since the epoch.
fn noon(day: &str) -> i64 {
    let d: NaiveDate = day.parse().unwrap();
    d.and_hms_opt(12, 0, 0)
        .unwrap()
        .and_utc()
        .timestamp_millis()
}

fn national(due_offset_days: u32) -> ReportingSchedule {
    parse_schedule(
        MINISTRY,
        "rs-2024",
        &format!(
            r#"{{"report_kind": "supply_demand_report", "periods": ["2024Q1"], "due_offset_days": {due_offset_days}}}"#
        ),
    )
    .unwrap()
}

/// `city`'s report for 2024Q1, first submitted on `first`, this version on `this`.
fn report(city: &str, first: &str, this: &str, version: u64) -> Record {
    let data = RecordData::SupplyDemandReport(SupplyDemandReport {
        period: "2024Q1".into(),
        count_basis: CountBasis::ValidInPeriod,
        suppress_below: 5,
        submitted_at_ms: noon(this),
        first_submitted_at_ms: noon(first),
        tables: "{}".into(),
        certificate: Bytes(vec![1]),
        signature: Bytes(vec![1]),
    });
    let mut r = record(code(city), "2024Q1", data);
    r.envelope.version = version;
    r
}

fn counts(city: &str, records: &[Record]) -> CityCounts {
    let standards = Standards::builtin();
    let mut m = CityMetrics::new(code(city), q1(), &standards);
    run_two_passes(&mut m, || records.iter());
    m.finish()
}

fn eval_at(today: &str, schedules: &[ReportingSchedule], agg: &MetricAggregate) -> MetricSet {
    let targets = builtin_targets();
    let cx = EvalContext {
        targets: &targets,
        pilots: None,
        limits: EngineLimits {
            now_ms: noon(today),
            staleness_threshold_s: 3600,
        },
        schedules,
    };
    agg.evaluate(&cx)
}

/// `(numerator, denominator, status)` of a variant.
fn reading(set: &MetricSet, m: MetricId, variant: &str) -> (u64, u64, Status) {
    let v = set.get(m, variant).unwrap();
    (v.numerator, v.denominator, v.status)
}

/// The three cities' counts: A on time, B late, C nothing.
fn three() -> [CityCounts; 3] {
    [
        counts(A, &[report(A, "2024-05-10", "2024-05-10", 1)]),
        counts(B, &[report(B, "2024-05-20", "2024-05-20", 1)]),
        counts(C, &[]),
    ]
}

#[test]
fn each_city_against_the_schedule() {
    let schedules = [national(45)];
    let [a, b, c] = three();
    let one = |counts: &CityCounts| MetricAggregate::for_city(counts, true, None);

    let set = eval_at("2024-06-01", &schedules, &one(&a));
    assert_eq!(
        reading(&set, MetricId::M10, "submitted"),
        (1, 1, Status::Pass)
    );
    assert_eq!(
        reading(&set, MetricId::F03, "on_time"),
        (1, 1, Status::Pass)
    );
    assert_eq!(reading(&set, MetricId::F03, "late").0, 0);
    assert_eq!(
        reading(&set, MetricId::F03, "days_after_quarter"),
        (40, 1, Status::NoTarget)
    );

    let set = eval_at("2024-06-01", &schedules, &one(&b));
    assert_eq!(
        reading(&set, MetricId::M10, "submitted"),
        (1, 1, Status::Pass)
    );
    assert_eq!(
        reading(&set, MetricId::F03, "on_time"),
        (0, 1, Status::Fail)
    );
    assert_eq!(reading(&set, MetricId::F03, "late").0, 1);
    assert_eq!(reading(&set, MetricId::F03, "days_after_quarter").0, 50);

    let set = eval_at("2024-06-01", &schedules, &one(&c));
    assert_eq!(
        reading(&set, MetricId::M10, "submitted"),
        (0, 1, Status::Fail)
    );
    assert_eq!(
        reading(&set, MetricId::F03, "on_time"),
        (0, 1, Status::Fail)
    );
    assert_eq!(reading(&set, MetricId::F03, "missing").0, 1);
    assert_eq!(
        reading(&set, MetricId::F03, "days_after_quarter").2,
        Status::NoData
    );

    // On 12 May nothing is due yet: C is neither submitted nor missing.
    let set = eval_at("2024-05-12", &schedules, &one(&c));
    assert_eq!(
        reading(&set, MetricId::M10, "submitted"),
        (0, 0, Status::NoData)
    );
    assert_eq!(
        reading(&set, MetricId::F03, "on_time"),
        (0, 0, Status::NoData)
    );
    assert_eq!(reading(&set, MetricId::F03, "not_yet_due").0, 1);

    // The states themselves, and the due day (31 March + 45 days).
    let s = classify(
        code(B),
        q1(),
        b.submission(),
        &schedules,
        "2024-06-01".parse().unwrap(),
    );
    assert_eq!(s.state, SubmissionState::Late);
    assert_eq!(s.due_on, Some("2024-05-15".parse().unwrap()));
    assert_eq!(s.days_after_quarter, Some(50));
    assert_eq!(s.schedule.as_deref(), Some("100000/rs-2024"));
    // Submitted on the due day itself is on time.
    let on_the_day = counts(B, &[report(B, "2024-05-15", "2024-05-15", 1)]);
    let s = classify(
        code(B),
        q1(),
        on_the_day.submission(),
        &schedules,
        "2024-06-01".parse().unwrap(),
    );
    assert_eq!(
        (s.state, s.days_after_quarter),
        (SubmissionState::OnTime, Some(45))
    );
}

#[test]
fn a_province_sums_its_cities() {
    let schedules = [national(45)];
    let [a, b, c] = three();
    let mut two = MetricAggregate::new(Scope::Province(code("440000")), q1());
    two.add_city(&a, true, None).unwrap();
    two.add_city(&b, true, None).unwrap();
    let set = eval_at("2024-06-01", &schedules, &two);
    assert_eq!(
        reading(&set, MetricId::M10, "submitted"),
        (2, 2, Status::Pass)
    );
    assert_eq!(
        reading(&set, MetricId::F03, "on_time"),
        (1, 2, Status::Fail)
    );
    assert_eq!(reading(&set, MetricId::F03, "late").0, 1);
    assert_eq!(reading(&set, MetricId::F03, "missing").0, 0);
    // The latest city's days, not a sum.
    assert_eq!(reading(&set, MetricId::F03, "days_after_quarter").0, 50);

    // The same province merged from the cities' own aggregates gives the same figures.
    let mut merged = MetricAggregate::new(Scope::Province(code("440000")), q1());
    merged
        .merge(&MetricAggregate::for_city(&a, true, None))
        .unwrap();
    merged
        .merge(&MetricAggregate::for_city(&b, true, None))
        .unwrap();
    assert_eq!(eval_at("2024-06-01", &schedules, &merged), set);

    // With the silent third city: 2 of 3 submitted, 1 of 3 on time.
    two.add_city(&c, true, None).unwrap();
    let set = eval_at("2024-06-01", &schedules, &two);
    assert_eq!(
        reading(&set, MetricId::M10, "submitted"),
        (2, 3, Status::Fail)
    );
    assert_eq!(
        reading(&set, MetricId::F03, "on_time"),
        (1, 3, Status::Fail)
    );
    assert_eq!(reading(&set, MetricId::F03, "missing").0, 1);

    // M10's target is for pilots: with A the only pilot, only A is judged; F03's is for all.
    let mut mixed = MetricAggregate::new(Scope::Province(code("440000")), q1());
    mixed.add_city(&a, true, None).unwrap();
    mixed.add_city(&c, false, None).unwrap();
    let set = eval_at("2024-06-01", &schedules, &mixed);
    assert_eq!(
        reading(&set, MetricId::M10, "submitted"),
        (1, 1, Status::Pass)
    );
    assert!(
        set.get(MetricId::M10, "submitted")
            .unwrap()
            .note
            .contains("pilot cities only (1 of 2)")
    );
    assert_eq!(
        reading(&set, MetricId::F03, "on_time"),
        (1, 2, Status::Fail)
    );
}

#[test]
fn what_counts_as_a_submission() {
    let schedules = [national(45)];
    // A correction after the due day keeps the first submission's time: still on time.
    let corrected = counts(A, &[report(A, "2024-05-10", "2024-06-10", 2)]);
    let sub = corrected.submission().unwrap();
    assert_eq!(
        (sub.version, sub.first_submitted_at_ms),
        (2, noon("2024-05-10"))
    );
    let s = classify(
        code(A),
        q1(),
        Some(sub),
        &schedules,
        "2024-07-01".parse().unwrap(),
    );
    assert_eq!(s.state, SubmissionState::OnTime);
    // A voided report, another quarter's report or another city's is none.
    let mut voided = report(A, "2024-05-10", "2024-05-10", 1);
    voided = record_as(code(A), "2024Q1", RecordStatus::Voided, voided.data);
    assert_eq!(counts(A, &[voided]).submission(), None);
    assert_eq!(
        counts(B, &[report(A, "2024-05-10", "2024-05-10", 1)]).submission(),
        None
    );
    let q2: Period = "2024Q2".parse().unwrap();
    let standards = Standards::builtin();
    let mut m = CityMetrics::new(code(A), q2, &standards);
    let records = [report(A, "2024-05-10", "2024-05-10", 1)];
    run_two_passes(&mut m, || records.iter());
    assert_eq!(m.finish().submission(), None);
    // Without a schedule a submission is just submitted, and nothing is due.
    let s = classify(
        code(A),
        q1(),
        corrected.submission(),
        &[],
        "2024-07-01".parse().unwrap(),
    );
    assert_eq!((s.state, s.due_on), (SubmissionState::Submitted, None));
    let s = classify(code(C), q1(), None, &[], "2024-07-01".parse().unwrap());
    assert_eq!(s.state, SubmissionState::Unscheduled);
    // The stored form keeps the submission.
    let stored = StoredCityCounts::from(&corrected);
    assert_eq!(stored.counts().as_ref(), Some(&corrected));
}

fn schedule(issuer: &str, id: &str, body: &str) -> Result<ReportingSchedule, ScheduleError> {
    parse_schedule(code(issuer), id, body)
}

#[test]
fn the_most_specific_schedule_applies() {
    let n = national(45);
    let guangdong = schedule(
        "440000",
        "gd",
        r#"{"report_kind": "supply_demand_report", "from": "2023Q1", "due_offset_days": 30}"#,
    )
    .unwrap();
    assert_eq!(guangdong.scope, Scope::Province(code("440000")));
    assert_eq!(guangdong.recipients, vec![code("440000")]);
    let all = [n.clone(), guangdong.clone()];
    let at = |city: &str, p: &str| {
        schedule_for(&all, code(city), p.parse().unwrap()).map(|s| s.id.clone())
    };
    assert_eq!(
        at(A, "2024Q1").as_deref(),
        Some("gd"),
        "the province's, for its city"
    );
    assert_eq!(
        at("210100", "2024Q1").as_deref(),
        Some("rs-2024"),
        "another province's city"
    );
    assert_eq!(
        at("210100", "2024Q2"),
        None,
        "the national one lists 2024Q1 only"
    );
    assert_eq!(
        at(A, "2030Q4").as_deref(),
        Some("gd"),
        "from 2023Q1 on, open-ended"
    );
    assert_eq!(at(A, "2022Q4"), None);
    // Two at the same scope: the earlier due day.
    let stricter = national(20);
    let both = [
        n,
        ReportingSchedule {
            id: "strict".into(),
            ..stricter
        },
    ];
    assert_eq!(schedule_for(&both, code(A), q1()).unwrap().id, "strict");
    assert!(matches!(
        guangdong.quarters,
        Quarters::Every { until: None, .. }
    ));
}

#[test]
fn bad_schedules_are_rejected_clearly() {
    let bad = |issuer: &str, body: &str| schedule(issuer, "x", body).unwrap_err().to_string();
    let e = bad(
        "440000",
        r#"{"report_kind": "supply_demand_report", "scope": "210000", "from": "2024Q1", "due_offset_days": 30}"#,
    );
    assert!(e.contains("may not schedule"), "{e}");
    let e = bad(
        "100000",
        r#"{"report_kind": "supply_demand_report", "periods": ["2024Q1"], "from": "2024Q1", "due_offset_days": 30}"#,
    );
    assert!(e.contains("either periods, or from"), "{e}");
    let e = bad(
        "100000",
        r#"{"report_kind": "supply_demand_report", "from": "2024Q3", "until": "2024Q1", "due_offset_days": 30}"#,
    );
    assert!(e.contains("until is before from"), "{e}");
    let e = bad(
        "100000",
        r#"{"report_kind": "supply_demand_report", "periods": ["2024Q1"], "due_offset_days": 400}"#,
    );
    assert!(e.contains("0 to 366"), "{e}");
    let e = bad(
        "100000",
        r#"{"report_kind": "pilot_report", "periods": ["2024Q1"], "due_offset_days": 30}"#,
    );
    assert!(e.contains("report_kind"), "{e}");
    let e = bad(
        "100000",
        r#"{"report_kind": "supply_demand_report", "periods": ["2024Q5"], "due_offset_days": 30}"#,
    );
    assert!(e.contains("periods"), "{e}");
    let e = bad(
        "100000",
        r#"{"report_kind": "supply_demand_report", "periods": ["2024Q1"], "due_offset_days": 30, "recipients": ["440100"]}"#,
    );
    assert!(e.contains("recipients"), "{e}");
    let e = bad(
        "100000",
        r#"{"report_kind": "supply_demand_report", "periods": ["2024Q1"], "due": 30}"#,
    );
    assert!(e.contains("due"), "{e}");
}

#[test]
fn evaluations_and_their_confirmations() {
    use crate::reporting::analysis::evaluations::{
        EvaluationDoc, Verdict, evaluations, parse_evaluation,
    };
    let evaluation = r#"{"city": "440100", "period": "2024Q1", "verdict": "partly_meets",
        "evaluated_on": "2024-05-20", "figures": [{"metric": "M01", "variant": "by_reports",
        "numerator": 61, "denominator": 80, "value": 0.7625, "status": "pass"}], "notes": "M07 short"}"#;
    let gd = code("440000");
    assert!(matches!(
        parse_evaluation(gd, evaluation),
        Ok(EvaluationDoc::Evaluation(_))
    ));
    let e = parse_evaluation(code("210000"), evaluation)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a city of 210000"), "{e}");
    let e = parse_evaluation(code("440100"), evaluation)
        .unwrap_err()
        .to_string();
    assert!(e.contains("may not issue"), "{e}");
    let e = parse_evaluation(MINISTRY, evaluation)
        .unwrap_err()
        .to_string();
    assert!(e.contains("confirms"), "{e}");
    let bad_status = evaluation.replace("\"pass\"", "\"great\"");
    assert!(parse_evaluation(gd, &bad_status).is_err());
    let confirm = |version: u64| {
        format!(
            r#"{{"confirms": {{"issuer": "440000", "id": "ev-1", "version": {version}}}, "confirmed_on": "2024-06-10"}}"#
        )
    };
    assert!(matches!(
        parse_evaluation(MINISTRY, &confirm(1)),
        Ok(EvaluationDoc::Confirmation(_))
    ));
    assert!(
        parse_evaluation(gd, &confirm(1)).is_err(),
        "a province does not confirm"
    );

    // Version 2 of the evaluation, the ministry confirmed version 1: not this one.
    let c1 = confirm(1);
    let docs = [
        (gd, "ev-1", 2, evaluation),
        (MINISTRY, "conf-1", 1, c1.as_str()),
    ];
    let found = evaluations(docs, Scope::National, Some(q1()));
    assert_eq!(found.len(), 1);
    let (view, confirmation) = (&found[0], found[0].confirmation.as_ref().unwrap());
    assert_eq!((view.body.verdict, view.version), (Verdict::PartlyMeets, 2));
    assert!(!confirmation.current && !view.confirmed());
    assert_eq!(confirmation.confirms_version, 1);
    // Confirming version 2 confirms it.
    let c2 = confirm(2);
    let docs = [
        (gd, "ev-1", 2, evaluation),
        (MINISTRY, "conf-1", 2, c2.as_str()),
    ];
    assert!(evaluations(docs, Scope::National, Some(q1()))[0].confirmed());
    // Out of scope or of another quarter: not listed.
    let docs = [(gd, "ev-1", 1, evaluation)];
    assert!(evaluations(docs, Scope::Province(code("210000")), None).is_empty());
    assert!(evaluations(docs, Scope::City(code(A)), Some("2024Q2".parse().unwrap())).is_empty());
    assert_eq!(evaluations(docs, Scope::City(code(A)), None).len(), 1);
}
