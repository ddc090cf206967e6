//! Known answers for the counting rules of M06 (a tracking contact in each month of the
//! quarter) and F06 (refusals at ingest, from the cities' ingest tallies).

use super::tests::{GZ, counts, evaluate, get, limits, vacancies};
use crate::core::model::Status as RecordStatus;
use crate::core::model::kinds::{Fee, RecordData, ServiceType};
use crate::reporting::analysis::tests::{code, day, event, q3, record, record_as, vacancy};
use crate::reporting::analysis::*;

#[test]
fn m06_needs_a_tracking_contact_in_each_month_of_the_quarter() {
    use crate::core::model::kinds::{Hardship, HardshipBasis, SeekerCategory};
    use crate::reporting::analysis::tests::seeker;
    let flagged = |n: u16, since: &str| {
        let mut s = seeker(n, &[], SeekerCategory::LaidOff);
        s.hardship = Some(Hardship {
            basis: HardshipBasis::ZeroEmploymentFamily,
            since: day(since),
        });
        record(code(GZ), &format!("S-{n}"), RecordData::JobSeeker(s))
    };
    let contact = |n: u16, id: &str, on: &str| {
        let e = event(n, on, ServiceType::TrackingContact, &[], Fee::Free);
        record(code(GZ), id, RecordData::ServiceEvent(e))
    };
    let records = vec![
        // 1: flagged before the quarter, contacted in July, August and September: tracked.
        flagged(1, "2024-03-01"),
        contact(1, "C-1-7", "2024-07-03"),
        contact(1, "C-1-8", "2024-08-30"),
        contact(1, "C-1-9", "2024-09-12"),
        // 2: two contacts in July, none in August: not tracked.
        flagged(2, "2024-03-01"),
        contact(2, "C-2-7a", "2024-07-01"),
        contact(2, "C-2-7b", "2024-07-20"),
        contact(2, "C-2-9", "2024-09-01"),
        // 3: flagged in September, contacted only in September: not tracked for Q3.
        flagged(3, "2024-09-05"),
        contact(3, "C-3-9", "2024-09-06"),
        // 4: flagged after the quarter: not in the denominator.
        flagged(4, "2024-10-02"),
    ];
    let set = evaluate(GZ, &records);
    let m06 = get(&set, MetricId::M06, "monthly_tracking");
    // 1 tracked of 3 flagged in Q3.
    assert_eq!((m06.numerator, m06.denominator), (1, 3));
}

#[test]
fn f06_counts_refusals_at_ingest_from_the_tallies_and_adds_them_up() {
    use crate::core::model::kinds::IngestTally;
    let tally = |city: &str, quarter: &str, refused: u64| {
        let mut t = IngestTally::new(quarter.into());
        t.refused = refused;
        t.refused_by_error.insert("invalid_code".into(), refused);
        t.refused_by_kind.insert("vacancy".into(), refused);
        record(code(city), quarter, RecordData::IngestTally(t))
    };
    // Guangzhou holds 13 records (voided ones too, tallies not), and refused 2 in one
    // quarter and 1 in the next: 3 of 16, whatever the quarter evaluated.
    let mut gz = vacancies(GZ, 12, 0);
    let mut voided = vacancy();
    voided.headcount = 3;
    gz.push(record_as(
        code(GZ),
        "V-void",
        RecordStatus::Voided,
        RecordData::Vacancy(voided),
    ));
    gz.extend([tally(GZ, "2024Q2", 2), tally(GZ, "2024Q3", 1)]);
    let set = evaluate(GZ, &gz);
    let r = get(&set, MetricId::F06, "rejection_rate");
    assert_eq!((r.numerator, r.denominator), (3, 16));
    // Shenzhen: 2 records held, 3 refused: 3 of 5. The province: 3 + 3 of 16 + 5.
    let mut sz = vacancies("440300", 2, 0);
    sz.push(tally("440300", "2024Q3", 3));
    let mut total = MetricAggregate::new(Scope::Province(code("440000")), q3());
    total.add_city(&counts(code(GZ), &gz), true, None).unwrap();
    total
        .add_city(&counts(code("440300"), &sz), true, None)
        .unwrap();
    let targets = builtin_targets();
    let cx = EvalContext {
        targets: &targets,
        pilots: None,
        limits: limits(),
        schedules: &[],
    };
    let r = total.evaluate(&cx);
    let r = get(&r, MetricId::F06, "rejection_rate");
    assert_eq!((r.numerator, r.denominator), (6, 21));
}
