//! The columns of each record kind's fields (`docs/reference/records.md`) and the cells a
//! record fills them with, in the same order. Enums are their snake_case names, codes and
//! ids text, dates dates, money yuan with two decimals (fen fields are renamed `_yuan`),
//! nested objects flattened with their name as prefix (`hardship_basis`,
//! `entitlement_max_months`), lists typed lists.

use chrono::NaiveDate;
use serde::Serialize;

use super::{Cell, ChannelCell, Column, ColumnType};
use crate::core::model::Kind;
use crate::core::model::kinds::RecordData;
use crate::core::model::values::YearMonth;

const fn col(name: &'static str, ty: ColumnType, nullable: bool) -> Column {
    Column { name, ty, nullable }
}

/// A required text column.
pub(super) const fn text(name: &'static str) -> Column {
    col(name, ColumnType::Text, false)
}

/// A required integer column.
pub(super) const fn int(name: &'static str) -> Column {
    col(name, ColumnType::Int, false)
}

/// A list-of-texts column.
pub(super) const fn list(name: &'static str) -> Column {
    col(name, ColumnType::TextList, false)
}

const fn opt_text(name: &'static str) -> Column {
    col(name, ColumnType::Text, true)
}

const fn opt_int(name: &'static str) -> Column {
    col(name, ColumnType::Int, true)
}

const fn boolean(name: &'static str) -> Column {
    col(name, ColumnType::Bool, false)
}

const fn date(name: &'static str) -> Column {
    col(name, ColumnType::Date, false)
}

const fn opt_date(name: &'static str) -> Column {
    col(name, ColumnType::Date, true)
}

const fn money(name: &'static str) -> Column {
    col(name, ColumnType::Money, false)
}

const fn opt_money(name: &'static str) -> Column {
    col(name, ColumnType::Money, true)
}

const OFFICE: &[Column] = &[
    text("division_code"),
    text("office_type"),
    opt_text("parent_office_id"),
    opt_text("employer_id"),
    text("name"),
    opt_text("public_address"),
    date("opened_on"),
    opt_date("closed_on"),
    boolean("networked"),
    opt_date("networked_since"),
    col("public_channels", ColumnType::Channels, false),
    list("services"),
    int("staff_count"),
];

const EMPLOYER: &[Column] = &[
    opt_text("org_code"),
    opt_text("uscc"),
    text("name"),
    text("division_code"),
    text("industry"),
    text("ownership_type"),
    text("size_band"),
    boolean("ui_participant"),
];

const VACANCY: &[Column] = &[
    text("receiving_office_id"),
    text("employer_id"),
    date("reported_on"),
    text("report_channel"),
    text("title"),
    text("occupation"),
    text("industry"),
    int("headcount"),
    text("contract_term"),
    opt_int("term_months"),
    text("employment_type"),
    opt_money("wage_min"),
    opt_money("wage_max"),
    opt_text("education_min"),
    opt_int("experience_years"),
    text("work_location"),
    date("valid_from"),
    date("valid_until"),
    boolean("publish_allowed"),
    opt_date("published_online_on"),
    list("published_channels"),
    text("fill_state"),
    int("filled_count"),
    opt_text("skill_level_min"),
    opt_text("sex_requirement"),
    opt_int("age_min"),
    opt_int("age_max"),
];

const JOB_SEEKER: &[Column] = &[
    text("pid"),
    int("pid_epoch"),
    text("sex"),
    int("birth_year"),
    text("residence_division"),
    text("hukou_class"),
    opt_text("education"),
    list("desired_occupations"),
    opt_money("desired_wage_min"),
    text("category"),
    date("registered_on"),
    date("valid_until"),
    opt_text("hardship_basis"),
    opt_date("hardship_since"),
    boolean("consent_publish_profile"),
    opt_text("skill_level"),
    opt_text("tech_title"),
];

const LAID_OFF_EPISODE: &[Column] = &[
    text("pid"),
    int("pid_epoch"),
    text("employer_id"),
    date("laid_off_on"),
    opt_date("rsc_entry_on"),
    opt_text("rsc_office_id"),
    boolean("agreement_signed"),
    opt_money("living_allowance_yuan"),
    opt_date("rsc_exit_on"),
    opt_text("exit_reason"),
];

const UNEMPLOYMENT_REGISTRATION: &[Column] = &[
    text("pid"),
    int("pid_epoch"),
    date("registered_on"),
    text("category"),
    boolean("ui_eligible"),
    opt_date("ended_on"),
    opt_text("end_reason"),
];

const SERVICE_EVENT: &[Column] = &[
    text("pid"),
    int("pid_epoch"),
    text("office_id"),
    date("occurred_on"),
    text("event_type"),
    list("vacancy_refs"),
    opt_text("course_ref"),
    text("fee"),
    text("mode"),
    opt_text("outcome"),
];

const PLACEMENT: &[Column] = &[
    text("pid"),
    int("pid_epoch"),
    opt_text("employer_id"),
    opt_text("vacancy_id"),
    date("start_on"),
    text("occupation"),
    opt_int("contract_term_months"),
    text("route"),
    text("evidence"),
    opt_date("ended_on"),
];

const UI_BENEFIT_PAYMENT: &[Column] = &[
    text("pid"),
    int("pid_epoch"),
    text("claim_id"),
    text("benefit_type"),
    date("benefit_month"),
    money("amount_yuan"),
    date("paid_on"),
    text("method"),
    int("entitlement_contribution_years"),
    int("entitlement_max_months"),
    int("entitlement_months_used"),
];

const UI_FUND_ENTRY: &[Column] = &[
    text("fund_area"),
    date("entry_date"),
    date("period"),
    text("direction"),
    text("category"),
    money("amount_yuan"),
    opt_text("counterparty"),
    opt_text("reverses"),
    opt_text("prev_entry_hash"),
];

const TRAINING_COURSE: &[Column] = &[
    text("provider_office_id"),
    text("title"),
    text("occupation"),
    text("level"),
    date("start_on"),
    date("end_on"),
    int("seats"),
    text("fee"),
    text("funding"),
    opt_text("certificate"),
];

const TRAINING_ENROLMENT: &[Column] = &[
    text("course_id"),
    text("pid"),
    int("pid_epoch"),
    opt_date("offered_on"),
    date("enrolled_on"),
    opt_date("completed_on"),
    boolean("certified"),
];

/// A city's submitted report: its declared basis and times, the tables as the JSON text it
/// froze (the certificate and signature stay with the record: they prove, they are not
/// analysed).
const SUPPLY_DEMAND_REPORT: &[Column] = &[
    text("period"),
    text("count_basis"),
    int("suppress_below"),
    int("submitted_at_ms"),
    int("first_submitted_at_ms"),
    text("tables"),
];

/// The tally's quarter is the partition's (`quarter=`), so it is no column of its own.
const INGEST_TALLY: &[Column] = &[
    int("refused"),
    text("refused_by_kind"),
    text("refused_by_error"),
];

/// One person's pids under two key epochs of the city.
const PID_LINK: &[Column] = &[
    int("from_epoch"),
    text("from_pid"),
    int("to_epoch"),
    text("to_pid"),
];

/// The columns of `kind`'s fields.
pub(super) fn fields(kind: Kind) -> &'static [Column] {
    match kind {
        Kind::Office => OFFICE,
        Kind::Employer => EMPLOYER,
        Kind::Vacancy => VACANCY,
        Kind::JobSeeker => JOB_SEEKER,
        Kind::LaidOffEpisode => LAID_OFF_EPISODE,
        Kind::UnemploymentRegistration => UNEMPLOYMENT_REGISTRATION,
        Kind::ServiceEvent => SERVICE_EVENT,
        Kind::Placement => PLACEMENT,
        Kind::UiBenefitPayment => UI_BENEFIT_PAYMENT,
        Kind::UiFundEntry => UI_FUND_ENTRY,
        Kind::TrainingCourse => TRAINING_COURSE,
        Kind::TrainingEnrolment => TRAINING_ENROLMENT,
        Kind::SupplyDemandReport => SUPPLY_DEMAND_REPORT,
        Kind::IngestTally => INGEST_TALLY,
        Kind::PidLink => PID_LINK,
    }
}

/// The snake_case name of an enum value (its JSON form).
pub(super) fn name<T: Serialize>(value: &T) -> String {
    match serde_json::to_value(value) {
        Ok(serde_json::Value::String(s)) => s,
        Ok(other) => other.to_string(),
        Err(_) => String::new(),
    }
}

fn t(s: &str) -> Cell {
    Cell::Text(s.to_string())
}

fn ot(s: Option<&String>) -> Cell {
    s.map_or(Cell::Null, |s| t(s))
}

fn e<T: Serialize>(v: &T) -> Cell {
    Cell::Text(name(v))
}

fn oe<T: Serialize>(v: Option<&T>) -> Cell {
    v.map_or(Cell::Null, e)
}

fn i(n: impl Into<i64>) -> Cell {
    Cell::Int(n.into())
}

fn oi<N: Into<i64> + Copy>(n: Option<N>) -> Cell {
    n.map_or(Cell::Null, i)
}

fn b(v: bool) -> Cell {
    Cell::Bool(v)
}

fn d(v: NaiveDate) -> Cell {
    Cell::Date(v)
}

fn od(v: Option<NaiveDate>) -> Cell {
    v.map_or(Cell::Null, d)
}

/// Whole yuan as money.
fn oy(v: Option<u32>) -> Cell {
    v.map_or(Cell::Null, |y| Cell::Money(i64::from(y) * 100))
}

/// A month as its first day.
fn month(m: YearMonth) -> Cell {
    NaiveDate::from_ymd_opt(i32::from(m.year), u32::from(m.month), 1).map_or(Cell::Null, d)
}

fn texts(v: &[String]) -> Cell {
    Cell::TextList(v.to_vec())
}

fn names<T: Serialize>(v: &[T]) -> Cell {
    Cell::TextList(v.iter().map(name).collect())
}

/// Appends the cells of `data`'s fields, in the order of [`fields`].
pub(super) fn cells(data: &RecordData, out: &mut Vec<Cell>) {
    let row: Vec<Cell> = match data {
        RecordData::Office(o) => vec![
            t(&o.division_code),
            e(&o.office_type),
            ot(o.parent_office_id.as_ref()),
            ot(o.employer_id.as_ref()),
            t(&o.name),
            ot(o.public_address.as_ref()),
            d(o.opened_on),
            od(o.closed_on),
            b(o.networked),
            od(o.networked_since),
            Cell::Channels(
                o.public_channels
                    .iter()
                    .map(|c| ChannelCell {
                        channel: name(&c.channel),
                        since: c.since,
                        url: c.url.clone(),
                    })
                    .collect(),
            ),
            names(&o.services),
            i(o.staff_count),
        ],
        RecordData::Employer(m) => vec![
            ot(m.org_code.as_ref()),
            ot(m.uscc.as_ref()),
            t(&m.name),
            t(&m.division_code),
            t(&m.industry),
            t(&m.ownership_type),
            e(&m.size_band),
            b(m.ui_participant),
        ],
        RecordData::Vacancy(v) => vec![
            t(&v.receiving_office_id),
            t(&v.employer_id),
            d(v.reported_on),
            e(&v.report_channel),
            t(&v.title),
            t(&v.occupation),
            t(&v.industry),
            i(v.headcount),
            e(&v.contract_term),
            oi(v.term_months),
            e(&v.employment_type),
            oy(v.wage_min),
            oy(v.wage_max),
            ot(v.education_min.as_ref()),
            oi(v.experience_years),
            t(&v.work_location),
            d(v.valid_from),
            d(v.valid_until),
            b(v.publish_allowed),
            od(v.published_online_on),
            names(&v.published_channels),
            e(&v.fill_state),
            i(v.filled_count),
            oe(v.skill_level_min.as_ref()),
            oe(v.sex_requirement.as_ref()),
            oi(v.age_min),
            oi(v.age_max),
        ],
        RecordData::JobSeeker(s) => vec![
            t(&s.pid.to_string()),
            i(s.pid_epoch),
            e(&s.sex),
            i(s.birth_year),
            t(&s.residence_division),
            e(&s.hukou_class),
            ot(s.education.as_ref()),
            texts(&s.desired_occupations),
            oy(s.desired_wage_min),
            e(&s.category),
            d(s.registered_on),
            d(s.valid_until),
            oe(s.hardship.as_ref().map(|h| &h.basis)),
            od(s.hardship.as_ref().map(|h| h.since)),
            b(s.consent_publish_profile),
            oe(s.skill_level.as_ref()),
            oe(s.tech_title.as_ref()),
        ],
        RecordData::LaidOffEpisode(l) => vec![
            t(&l.pid.to_string()),
            i(l.pid_epoch.0),
            t(&l.employer_id),
            d(l.laid_off_on),
            od(l.rsc_entry_on),
            ot(l.rsc_office_id.as_ref()),
            b(l.agreement_signed),
            l.living_allowance_fen.map_or(Cell::Null, Cell::Money),
            od(l.rsc_exit_on),
            oe(l.exit_reason.as_ref()),
        ],
        RecordData::UnemploymentRegistration(u) => vec![
            t(&u.pid.to_string()),
            i(u.pid_epoch.0),
            d(u.registered_on),
            e(&u.category),
            b(u.ui_eligible),
            od(u.ended_on),
            oe(u.end_reason.as_ref()),
        ],
        RecordData::ServiceEvent(s) => vec![
            t(&s.pid.to_string()),
            i(s.pid_epoch.0),
            t(&s.office_id),
            d(s.occurred_on),
            e(&s.event_type),
            texts(&s.vacancy_refs),
            ot(s.course_ref.as_ref()),
            e(&s.fee),
            e(&s.mode),
            oe(s.outcome.as_ref()),
        ],
        RecordData::Placement(p) => vec![
            t(&p.pid.to_string()),
            i(p.pid_epoch.0),
            ot(p.employer_id.as_ref()),
            ot(p.vacancy_id.as_ref()),
            d(p.start_on),
            t(&p.occupation),
            oi(p.contract_term_months),
            e(&p.route),
            e(&p.evidence),
            od(p.ended_on),
        ],
        RecordData::UiBenefitPayment(p) => vec![
            t(&p.pid.to_string()),
            i(p.pid_epoch.0),
            t(&p.claim_id),
            e(&p.benefit_type),
            month(p.benefit_month),
            Cell::Money(p.amount_fen),
            d(p.paid_on),
            e(&p.method),
            i(p.entitlement.contribution_years),
            i(p.entitlement.max_months),
            i(p.entitlement.months_used),
        ],
        RecordData::UiFundEntry(f) => vec![
            t(&f.fund_area),
            d(f.entry_date),
            month(f.period),
            e(&f.direction),
            e(&f.category),
            Cell::Money(f.amount_fen),
            ot(f.counterparty.as_ref()),
            ot(f.reverses.as_ref()),
            ot(f.prev_entry_hash.as_ref()),
        ],
        RecordData::TrainingCourse(c) => vec![
            t(&c.provider_office_id),
            t(&c.title),
            t(&c.occupation),
            e(&c.level),
            d(c.start_on),
            d(c.end_on),
            i(c.seats),
            e(&c.fee),
            e(&c.funding),
            ot(c.certificate.as_ref()),
        ],
        RecordData::TrainingEnrolment(n) => vec![
            t(&n.course_id),
            t(&n.pid.to_string()),
            i(n.pid_epoch.0),
            od(n.offered_on),
            d(n.enrolled_on),
            od(n.completed_on),
            b(n.certified),
        ],
        RecordData::SupplyDemandReport(r) => vec![
            t(&r.period),
            e(&r.count_basis),
            i(i64::try_from(r.suppress_below).unwrap_or(i64::MAX)),
            i(r.submitted_at_ms),
            i(r.first_submitted_at_ms),
            t(&r.tables),
        ],
        RecordData::IngestTally(n) => vec![
            i(i64::try_from(n.refused).unwrap_or(i64::MAX)),
            t(&serde_json::to_string(&n.refused_by_kind).unwrap_or_default()),
            t(&serde_json::to_string(&n.refused_by_error).unwrap_or_default()),
        ],
        RecordData::PidLink(l) => vec![
            i(l.from_epoch),
            t(&l.from_pid.to_string()),
            i(l.to_epoch),
            t(&l.to_pid.to_string()),
        ],
    };
    out.extend(row);
}
