//! Tests of the record-based and engine metrics, their aggregation and evaluation.

use crate::core::model::kinds::{
    ContractTerm, Fee, PidLink, RecordData, ServiceEvent, ServiceType, TrainingEnrolment,
};
use crate::core::model::standards::Standards;
use crate::core::model::values::{Pid, PidEpoch};
use crate::core::model::{NodeCode, Record, Status as RecordStatus};
use crate::reporting::analysis::tests::{
    code, day, episode, event, pid, q3, record, record_as, vacancy,
};
use crate::reporting::analysis::*;

pub(super) const GZ: &str = "440100";

pub(super) fn limits() -> EngineLimits {
    EngineLimits {
        now_ms: 1_727_740_800_000, // 2024-10-01 00:00 UTC
        staleness_threshold_s: 3600,
    }
}

/// Counts `records` of `city` in 2024Q3.
pub(super) fn counts(city: NodeCode, records: &[Record]) -> CityCounts {
    let standards = Standards::builtin();
    let mut m = CityMetrics::new(city, q3(), &standards);
    run_two_passes(&mut m, || records.iter());
    m.finish()
}

/// Evaluates one pilot city's counts against the built-in targets.
pub(super) fn evaluate(city: &str, records: &[Record]) -> MetricSet {
    let c = counts(code(city), records);
    let targets = builtin_targets();
    let cx = EvalContext {
        targets: &targets,
        pilots: None,
        limits: limits(),
        schedules: &[],
    };
    MetricAggregate::for_city(&c, true, None).evaluate(&cx)
}

pub(super) fn get<'a>(set: &'a MetricSet, m: MetricId, variant: &str) -> &'a MetricValue {
    set.get(m, variant).unwrap()
}

/// `n` one-year-plus vacancies, the first `online` of them published in the period.
pub(super) fn vacancies(city: &str, n: usize, online: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let mut v = vacancy();
            v.headcount = 2;
            v.published_online_on = (i < online).then(|| day("2024-08-01"));
            record(code(city), &format!("V-{i}"), RecordData::Vacancy(v))
        })
        .collect()
}

#[test]
fn m01_online_rate_at_the_threshold() {
    let mut records = vacancies(GZ, 10, 6);
    // None of these enter the denominator or the numerator.
    let mut short = vacancy();
    short.contract_term = ContractTerm::UpTo1Year;
    short.term_months = Some(6);
    records.push(record(code(GZ), "short", RecordData::Vacancy(short)));
    let mut expired = vacancy();
    expired.valid_until = day("2024-06-30");
    expired.valid_from = day("2024-01-01");
    records.push(record(code(GZ), "expired", RecordData::Vacancy(expired)));
    records.push(record_as(
        code(GZ),
        "voided",
        RecordStatus::Voided,
        RecordData::Vacancy(vacancy()),
    ));
    let set = evaluate(GZ, &records);
    let v = get(&set, MetricId::M01, "by_reports");
    assert_eq!((v.numerator, v.denominator, v.value), (6, 10, Some(0.6)));
    assert_eq!(v.status, Status::Pass);
    assert_eq!(
        v.target.as_ref().unwrap().comparator,
        Comparator::AtLeast(0.6)
    );
    let h = get(&set, MetricId::M01, "by_headcount");
    assert_eq!(
        (h.numerator, h.denominator, h.status),
        (12, 20, Status::Pass)
    );
}

#[test]
fn m01_below_the_threshold_fails() {
    let mut records = vacancies(GZ, 10, 5);
    // Published after the period end: not online by the end.
    if let RecordData::Vacancy(v) = &mut records[9].data {
        v.published_online_on = Some(day("2024-10-02"));
    }
    let set = evaluate(GZ, &records);
    let v = get(&set, MetricId::M01, "by_reports");
    assert_eq!(
        (v.numerator, v.denominator, v.status),
        (5, 10, Status::Fail)
    );
}

fn provisions(person: u16, n: usize) -> Vec<Record> {
    (0..n)
        .map(|i| {
            let refs = [format!("V-{i}")];
            let refs: Vec<&str> = refs.iter().map(String::as_str).collect();
            let e = event(
                person,
                "2024-08-01",
                ServiceType::JobInfoProvision,
                &refs,
                Fee::Free,
            );
            record(
                code(GZ),
                &format!("S-{person}-{i}"),
                RecordData::ServiceEvent(e),
            )
        })
        .collect()
}

#[test]
fn m03_needs_three_job_information_provisions() {
    // Person 1: in the centre since March (mature), two provisions. Person 2: three.
    let mut records = vec![
        record(
            code(GZ),
            "L-1",
            RecordData::LaidOffEpisode(episode(1, "2024-03-01", None)),
        ),
        record(
            code(GZ),
            "L-2",
            RecordData::LaidOffEpisode(episode(2, "2024-03-01", None)),
        ),
    ];
    records.extend(provisions(1, 2));
    records.extend(provisions(2, 3));
    // Neither an event without a vacancy nor one before the stay counts.
    let bare = event(
        1,
        "2024-08-02",
        ServiceType::JobInfoProvision,
        &[],
        Fee::Free,
    );
    records.push(record(code(GZ), "S-bare", RecordData::ServiceEvent(bare)));
    let early = event(
        1,
        "2024-02-01",
        ServiceType::JobInfoProvision,
        &["V-9"],
        Fee::Free,
    );
    records.push(record(code(GZ), "S-early", RecordData::ServiceEvent(early)));
    let set = evaluate(GZ, &records);
    let m03 = get(&set, MetricId::M03, "cohort");
    assert_eq!(
        (m03.numerator, m03.denominator),
        (1, 2),
        "only person 2 passes"
    );
    assert_eq!(m03.status, Status::Fail);
    let strict = get(&set, MetricId::M03, "distinct_vacancies");
    assert_eq!(
        (strict.numerator, strict.denominator, strict.status),
        (1, 2, Status::NoTarget)
    );

    let passing: Vec<Record> = records
        .iter()
        .filter(|r| r.envelope.id != "L-1")
        .cloned()
        .collect();
    let m03 = evaluate(GZ, &passing)
        .get(MetricId::M03, "cohort")
        .cloned()
        .unwrap();
    assert_eq!(
        (m03.numerator, m03.denominator, m03.status),
        (1, 1, Status::Pass)
    );
}

#[test]
fn immature_entrants_are_excluded_and_counted() {
    let records = vec![
        // 2024-08-01 to 2024-09-30 is 60 days: immature.
        record(
            code(GZ),
            "L-new",
            RecordData::LaidOffEpisode(episode(1, "2024-08-01", None)),
        ),
        // Left after 30 days, before the period end: mature.
        record(
            code(GZ),
            "L-left",
            RecordData::LaidOffEpisode(episode(2, "2024-07-01", Some("2024-07-31"))),
        ),
        // 2024-07-02 to 2024-09-30 is exactly 90 days: mature.
        record(
            code(GZ),
            "L-90",
            RecordData::LaidOffEpisode(episode(3, "2024-07-02", None)),
        ),
        record(
            code(GZ),
            "G-1",
            RecordData::ServiceEvent(event(
                1,
                "2024-08-02",
                ServiceType::CareerGuidance,
                &[],
                Fee::Free,
            )),
        ),
        record(
            code(GZ),
            "G-2",
            RecordData::ServiceEvent(event(
                2,
                "2024-07-15",
                ServiceType::CareerGuidance,
                &[],
                Fee::Free,
            )),
        ),
        // After person 2 left: outside the stay.
        record(
            code(GZ),
            "G-2b",
            RecordData::ServiceEvent(event(
                2,
                "2024-08-15",
                ServiceType::CareerGuidance,
                &[],
                Fee::Free,
            )),
        ),
    ];
    let set = evaluate(GZ, &records);
    assert_eq!((set.cohort.evaluated, set.cohort.immature), (2, 1));
    let m02 = get(&set, MetricId::M02, "cohort");
    assert_eq!(
        (m02.numerator, m02.denominator, m02.status),
        (1, 2, Status::Fail)
    );
    let total: u64 = set.histogram.iter().map(|b| b.persons).sum();
    assert_eq!(total, 2);
    assert!(
        set.histogram
            .iter()
            .any(|b| b.guidance == "1" && b.job_info == "0" && b.training == "0")
    );
}

#[test]
fn m04_counts_free_or_partly_free_training_offers_only() {
    let offer = |n, fee| {
        let e = event(n, "2024-08-01", ServiceType::TrainingOffer, &[], fee);
        record(code(GZ), &format!("T-{n}"), RecordData::ServiceEvent(e))
    };
    let records = vec![
        record(
            code(GZ),
            "L-1",
            RecordData::LaidOffEpisode(episode(1, "2024-01-01", None)),
        ),
        record(
            code(GZ),
            "L-2",
            RecordData::LaidOffEpisode(episode(2, "2024-01-01", None)),
        ),
        record(
            code(GZ),
            "L-3",
            RecordData::LaidOffEpisode(episode(3, "2024-01-01", None)),
        ),
        offer(1, Fee::Paid),
        offer(2, Fee::Free),
        offer(3, Fee::PartlyFree),
        record(
            code(GZ),
            "EN-2",
            RecordData::TrainingEnrolment(TrainingEnrolment {
                course_id: "C-1".into(),
                pid: crate::reporting::analysis::tests::pid(2),
                pid_epoch: PidEpoch::default(),
                offered_on: Some(day("2024-08-01")),
                enrolled_on: day("2024-08-05"),
                completed_on: Some(day("2024-09-20")),
                certified: true,
            }),
        ),
    ];
    let set = evaluate(GZ, &records);
    let m04 = get(&set, MetricId::M04, "cohort");
    assert_eq!(
        (m04.numerator, m04.denominator),
        (2, 3),
        "the paid offer does not count"
    );
    assert_eq!(get(&set, MetricId::M04, "enrolled").numerator, 1);
    assert_eq!(get(&set, MetricId::M04, "completed").numerator, 1);
    // M12: all three persons were laid off during the period; one of three services paid.
    let m12 = get(&set, MetricId::M12, "free_services");
    assert_eq!(
        (m12.numerator, m12.denominator, m12.status),
        (2, 3, Status::Fail)
    );
    assert_eq!(get(&set, MetricId::M05, "cohort").numerator, 0);
}

#[test]
fn province_values_sum_numerators_and_denominators() {
    let a = counts(code("440100"), &vacancies("440100", 10, 6));
    let b = counts(code("440300"), &vacancies("440300", 5, 1));
    let mut province = MetricAggregate::new(Scope::Province(code("440000")), q3());
    province.add_city(&a, true, None).unwrap();
    province.add_city(&b, true, None).unwrap();
    let targets = builtin_targets();
    let cx = EvalContext {
        targets: &targets,
        pilots: None,
        limits: limits(),
        schedules: &[],
    };
    let set = province.evaluate(&cx);
    let v = get(&set, MetricId::M01, "by_reports");
    // 7/15, not the mean of 0.6 and 0.2.
    assert_eq!((v.numerator, v.denominator), (7, 15));
    assert_eq!(v.value, Some(7.0 / 15.0));
    assert_eq!(v.status, Status::Fail);
    // Merging refuses a city twice, a city outside the scope, another period.
    assert_eq!(
        province.add_city(&a, true, None),
        Err(MergeError::Duplicate(code("440100")))
    );
    let outside = counts(code("420100"), &[]);
    assert!(matches!(
        province.add_city(&outside, true, None),
        Err(MergeError::OutOfScope { .. })
    ));
    let mut nation = MetricAggregate::new(Scope::National, q3());
    nation.merge(&province).unwrap();
    nation.add_city(&outside, false, None).unwrap();
    let set = nation.evaluate(&cx);
    assert_eq!(get(&set, MetricId::M01, "by_reports").denominator, 15);
    assert!(
        get(&set, MetricId::M01, "by_reports")
            .note
            .contains("pilot cities only (2 of 3)")
    );
}

#[test]
fn pilot_only_targets_do_not_apply_to_other_cities() {
    let c = counts(code(GZ), &vacancies(GZ, 10, 6));
    let targets = builtin_targets();
    let cx = EvalContext {
        targets: &targets,
        pilots: None,
        limits: limits(),
        schedules: &[],
    };
    let set = MetricAggregate::for_city(&c, false, None).evaluate(&cx);
    let v = get(&set, MetricId::M01, "by_reports");
    assert_eq!((v.value, v.status), (Some(0.6), Status::NotApplicable));
    assert_eq!(
        get(&set, MetricId::M02, "cohort").status,
        Status::NotApplicable
    );
}

#[test]
fn non_record_metrics_are_marked() {
    let set = evaluate(GZ, &[]);
    // Without a schedule nothing is due: no report to judge.
    for (m, variant) in [(MetricId::M10, "submitted"), (MetricId::F03, "on_time")] {
        let v = get(&set, m, variant);
        assert_eq!((v.status, v.denominator), (Status::NoData, 0), "{m}");
    }
    assert_eq!(
        get(&set, MetricId::M11, "active_pilots").status,
        Status::NotApplicable
    );
    assert_eq!(get(&set, MetricId::M02, "cohort").status, Status::NoData);
    assert_eq!(
        get(&set, MetricId::F02, "staleness_s").status,
        Status::NoData
    );
    // Every metric appears, in order.
    let ids: Vec<MetricId> = set.values.iter().map(|v| v.id).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    assert!(MetricId::ALL.iter().all(|m| ids.contains(m)));
}

#[test]
fn m07_needs_all_four_categories() {
    let records = vacancies(GZ, 1, 1);
    let set = evaluate(GZ, &records);
    let v = get(&set, MetricId::M07, "all_four");
    assert_eq!(
        (v.numerator, v.denominator, v.status),
        (0, 4, Status::Fail),
        "no seekers"
    );
}

#[test]
fn engine_facts_are_judged() {
    let c = counts(code(GZ), &[]);
    let fresh = EngineFacts {
        last_received_ms: Some(limits().now_ms - 600_000),
        lag_p50_ms: Some(120),
        lag_p95_ms: Some(900),
        seq_gaps: 0,
        accepted: 99,
        rejected: 1,
        quarantined: 0,
        retired: false,
    };
    let targets = builtin_targets();
    let cx = EvalContext {
        targets: &targets,
        pilots: None,
        limits: limits(),
        schedules: &[],
    };
    let set = MetricAggregate::for_city(&c, true, Some(&fresh)).evaluate(&cx);
    let s = get(&set, MetricId::F02, "staleness_s");
    assert_eq!((s.numerator, s.status), (600, Status::Pass));
    assert_eq!(get(&set, MetricId::F01, "lag_p95_ms").numerator, 900);
    let r = get(&set, MetricId::F06, "sync_rejection_rate");
    assert_eq!((r.numerator, r.denominator, r.value), (1, 100, Some(0.01)));
    let stale = EngineFacts {
        last_received_ms: Some(limits().now_ms - 7_200_000),
        ..fresh
    };
    let set = MetricAggregate::for_city(&c, true, Some(&stale)).evaluate(&cx);
    let s = get(&set, MetricId::F02, "staleness_s");
    assert_eq!((s.numerator, s.status), (7200, Status::Fail));
    assert_eq!(get(&set, MetricId::F02, "stale_cities").numerator, 1);
    // A retired city is expected to be silent.
    let retired = EngineFacts {
        retired: true,
        ..stale.clone()
    };
    let set = MetricAggregate::for_city(&c, true, Some(&retired)).evaluate(&cx);
    assert_eq!(
        get(&set, MetricId::F02, "stale_cities").status,
        Status::NoData
    );
    let mut total = MetricAggregate::new(Scope::Province(code("440000")), q3());
    total.add_city(&c, true, Some(&retired)).unwrap();
    total
        .add_city(&counts(code("440300"), &[]), true, Some(&stale))
        .unwrap();
    let set = total.evaluate(&cx);
    assert_eq!(get(&set, MetricId::F02, "stale_cities").numerator, 1);
}

#[test]
fn classification_currency_counts_records_written_in_the_period() {
    let mut records = vacancies(GZ, 2, 0);
    let mut bad = vacancy();
    bad.occupation = "9-99-99".into();
    records.push(record(code(GZ), "bad", RecordData::Vacancy(bad)));
    records[0].envelope.code_refs[0].version = "1999+2005".into();
    let set = evaluate(GZ, &records);
    let cur = get(&set, MetricId::F05, "current_version");
    assert_eq!((cur.numerator, cur.denominator), (2, 3));
    assert_eq!(get(&set, MetricId::F05, "unresolvable_codes").numerator, 1);
}

#[test]
fn other_owners_records_are_ignored() {
    let mut records = vacancies(GZ, 3, 3);
    records.extend(vacancies("440300", 4, 0));
    let set = evaluate(GZ, &records);
    assert_eq!(get(&set, MetricId::M01, "by_reports").denominator, 3);
}

/// Person `n`'s pid under key epoch 2 (epoch 1 is [`pid`]`(n)`).
fn in_epoch_2(n: u16) -> (Pid, PidEpoch) {
    (pid(1000 + n), PidEpoch(2))
}

fn service_in_epoch_2(n: u16, on: &str, event_type: ServiceType, refs: &[&str]) -> ServiceEvent {
    let mut e = event(n, on, event_type, refs, Fee::Free);
    (e.pid, e.pid_epoch) = in_epoch_2(n);
    e
}

fn link(n: u16) -> RecordData {
    RecordData::PidLink(PidLink {
        from_epoch: 1,
        from_pid: pid(n),
        to_epoch: 2,
        to_pid: in_epoch_2(n).0,
    })
}

#[test]
fn a_person_split_across_two_key_epochs_counts_once() {
    let gz = code(GZ);
    // Person 7 entered the centre on 2024-05-01 (152 days by 2024-09-30: mature). Under
    // epoch 1: the episode and one guidance session. Under epoch 2: three job-information
    // provisions (three vacancies) and a free training offer. Together: guidance 1,
    // information 3, training 1, so M02, M03, M04 and M05 all pass, for one person. The
    // link comes last: the order records arrive in does not matter.
    let mut records = vec![
        record(
            gz,
            "L-1",
            RecordData::LaidOffEpisode(episode(7, "2024-05-01", None)),
        ),
        record(
            gz,
            "S-1",
            RecordData::ServiceEvent(event(
                7,
                "2024-07-01",
                ServiceType::CareerGuidance,
                &[],
                Fee::Free,
            )),
        ),
    ];
    for (i, v) in ["V-1", "V-2", "V-3"].iter().enumerate() {
        let e = service_in_epoch_2(7, "2024-08-01", ServiceType::JobInfoProvision, &[v]);
        records.push(record(
            gz,
            &format!("S-{}", i + 2),
            RecordData::ServiceEvent(e),
        ));
    }
    let training = service_in_epoch_2(7, "2024-08-02", ServiceType::TrainingOffer, &[]);
    records.push(record(gz, "S-5", RecordData::ServiceEvent(training)));
    let without_link = records.clone();
    records.push(record(gz, "1-2-7", link(7)));

    let set = evaluate(GZ, &records);
    assert_eq!((set.cohort.evaluated, set.cohort.immature), (1, 0));
    for m in [MetricId::M02, MetricId::M03, MetricId::M04, MetricId::M05] {
        let v = get(&set, m, "cohort");
        assert_eq!((v.numerator, v.denominator), (1, 1), "{m:?}");
    }
    for m in [MetricId::M02, MetricId::M03, MetricId::M04] {
        assert_eq!(get(&set, m, "cohort").status, Status::Pass, "{m:?}");
    }
    // Without the link the epoch-2 services are a stranger's: only the guidance counts.
    let set = evaluate(GZ, &without_link);
    let nd = |m| {
        let v = get(&set, m, "cohort");
        (v.numerator, v.denominator)
    };
    assert_eq!(
        [nd(MetricId::M02), nd(MetricId::M03), nd(MetricId::M04)],
        [(1, 1), (0, 1), (0, 1)]
    );

    // An episode under each epoch is still one person, evaluated on the latest entry
    // (2024-06-01: 121 days, mature).
    let mut e2 = episode(7, "2024-06-01", None);
    (e2.pid, e2.pid_epoch) = in_epoch_2(7);
    records.push(record(gz, "L-2", RecordData::LaidOffEpisode(e2)));
    let set = evaluate(GZ, &records);
    assert_eq!(set.cohort.evaluated, 1);
    assert_eq!(get(&set, MetricId::M05, "cohort").numerator, 1);
}

#[test]
fn hardship_tracking_follows_a_person_across_key_epochs() {
    let gz = code(GZ);
    // A hardship job seeker since before the quarter, registered under epoch 1, with a
    // tracking contact in July (epoch 1) and in August and September (epoch 2): tracked
    // every month, one person.
    let mut s = crate::reporting::analysis::tests::seeker(
        3,
        &[],
        crate::core::model::kinds::SeekerCategory::FormerlyEmployed,
    );
    s.hardship = Some(crate::core::model::kinds::Hardship {
        basis: crate::core::model::kinds::HardshipBasis::Older,
        since: day("2024-01-01"),
    });
    let mut records = vec![record(gz, "J-3", RecordData::JobSeeker(s))];
    let contact = |on| event(3, on, ServiceType::TrackingContact, &[], Fee::Free);
    records.push(record(
        gz,
        "T-1",
        RecordData::ServiceEvent(contact("2024-07-10")),
    ));
    for (id, on) in [("T-2", "2024-08-10"), ("T-3", "2024-09-10")] {
        let e = service_in_epoch_2(3, on, ServiceType::TrackingContact, &[]);
        records.push(record(gz, id, RecordData::ServiceEvent(e)));
    }
    records.push(record(gz, "1-2-3", link(3)));
    let c = counts(gz, &records);
    assert_eq!(c.tally(MetricId::M06, "monthly_tracking"), (1, 1));
    records.pop();
    let c = counts(gz, &records);
    assert_eq!(
        c.tally(MetricId::M06, "monthly_tracking"),
        (0, 1),
        "linkage resets"
    );
}
