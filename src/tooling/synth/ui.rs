//! Unemployment insurance: benefit claims paid monthly within the entitlement of the 1999
//! Regulations (12/18/24 months by contribution years), and the city fund's ledger with
//! monthly contributions, benefit totals, the centres' living-allowance share, transfers
//! to the provincial adjustment fund, quarterly interest and occasional reversals.
//!
//! Ledger entries are append-only and hash-chained (`prev_entry_hash`) in emission order.
//! Amounts are in fen and only roughly calibrated (`docs/reference/synthetic-data.md`); no fund balance is
//! kept or checked.

use chrono::{Datelike, Months, NaiveDate};

use super::dist::{Draw, round_u32};
use super::{Generator, Pending, Task, plus_days};
use crate::core::model::kinds::{
    BenefitType, Entitlement, FundCategory, FundDirection, PaymentMethod, RecordData,
    UiBenefitPayment, UiFundEntry, max_benefit_months,
};
use crate::core::model::values::{Pid, PidEpoch, YearMonth};

/// Running totals the month-end ledger entries report.
#[derive(Debug, Clone, Default)]
pub(super) struct Fund {
    /// Hex blake3 of the last ledger entry emitted.
    prev_hash: Option<String>,
    /// Benefits paid this month, fen.
    benefits_fen: i64,
    /// Medical subsidies paid this month, fen.
    medical_fen: i64,
    /// Training enrolments this month.
    pub(super) enrolments: u32,
    /// People in re-employment service centres (roughly; decays monthly).
    pub(super) rsc_stock: u32,
}

/// An open benefit claim.
#[derive(Debug, Clone)]
pub(super) struct Claim {
    person: String,
    claim_id: String,
    contribution_years: u8,
    max_months: u8,
    months_used: u8,
    amount_fen: i64,
    /// The claim ends before this day (re-employment or leaving).
    stop: Option<NaiveDate>,
}

/// A ledger entry due on its booking day.
#[derive(Debug, Clone)]
pub(super) struct FundItem {
    period: YearMonth,
    direction: FundDirection,
    category: FundCategory,
    amount: Amount,
    counterparty: Option<String>,
    reverses: Option<String>,
}

/// A fixed amount, or a total known only on the booking day.
#[derive(Debug, Clone, Copy)]
enum Amount {
    Fixed(i64),
    MonthBenefits,
    MonthMedical,
    MonthTraining,
    RscAllowance,
}

/// Contribution years of claimants: most between one and ten.
const CONTRIBUTION_YEARS: [(u8, u32); 8] = [
    (1, 15),
    (2, 14),
    (3, 12),
    (4, 10),
    (6, 16),
    (8, 12),
    (12, 12),
    (20, 9),
];

impl Generator {
    /// Opens a claim; the first payment comes within the month.
    pub(super) fn open_claim(&mut self, person: &str, stop: Option<NaiveDate>) {
        let contribution_years = *self.rng.weighted(&CONTRIBUTION_YEARS);
        let Some(max_months) = max_benefit_months(contribution_years) else {
            return;
        };
        let claim = Claim {
            person: person.to_string(),
            claim_id: format!("CL-{:07}", self.fund_claims()),
            contribution_years,
            max_months,
            months_used: 0,
            amount_fen: i64::from(self.rng.between(200, 350)) * 100,
            stop,
        };
        let first = self.soon(5, 20);
        self.schedule(first, Task::Pay(Box::new(claim)));
    }

    fn fund_claims(&mut self) -> u64 {
        self.claims += 1;
        self.claims
    }

    /// Pays one month (sometimes with a medical subsidy) and schedules the next.
    pub(super) fn pay(&mut self, mut claim: Claim) {
        if claim.stop.is_some_and(|s| self.today >= s) || claim.months_used >= claim.max_months {
            return;
        }
        claim.months_used += 1;
        self.payment(&claim, BenefitType::UiBenefit, claim.amount_fen);
        self.fund.benefits_fen += claim.amount_fen;
        if self.rng.chance(0.04) {
            let amount = i64::from(self.rng.between(20, 80)) * 100;
            self.payment(&claim, BenefitType::MedicalSubsidy, amount);
            self.fund.medical_fen += amount;
        }
        if claim.months_used < claim.max_months {
            let next = self
                .today
                .checked_add_months(Months::new(1))
                .unwrap_or(self.today);
            self.schedule(next, Task::Pay(Box::new(claim)));
        }
    }

    fn payment(&mut self, claim: &Claim, benefit_type: BenefitType, amount_fen: i64) {
        let payment = UiBenefitPayment {
            pid: Pid([0; 16]),
            pid_epoch: PidEpoch::default(),
            claim_id: claim.claim_id.clone(),
            benefit_type,
            benefit_month: year_month(self.today),
            amount_fen,
            paid_on: self.today,
            method: if self.rng.chance(0.8) {
                PaymentMethod::Bank
            } else {
                PaymentMethod::Cash
            },
            entitlement: Entitlement {
                contribution_years: claim.contribution_years,
                max_months: claim.max_months,
                months_used: claim.months_used,
            },
        };
        self.emit(Pending::of(
            &claim.person,
            RecordData::UiBenefitPayment(payment),
        ));
    }

    /// First day of a month: the month's courses and ledger schedule.
    pub(super) fn open_month(&mut self) {
        use FundCategory as C;
        use FundDirection as D;
        self.new_courses();
        self.fund.rsc_stock = self.fund.rsc_stock * 97 / 100;
        let contributions = self.schedule_contributions();
        let today = self.today;
        let day = |n: u32| today.with_day(n).unwrap_or(today);
        let month_end = today
            .checked_add_months(Months::new(1))
            .map_or(today, |d| d.pred_opt().unwrap_or(d));
        let mut plan = vec![
            (
                day(15),
                D::Expenditure,
                C::RscLivingAllowance,
                Amount::RscAllowance,
            ),
            (
                day(25),
                D::TransferOut,
                C::ProvincialAdjustmentFund,
                Amount::Fixed(contributions / 12),
            ),
            (
                month_end,
                D::Expenditure,
                C::UiBenefit,
                Amount::MonthBenefits,
            ),
            (
                month_end,
                D::Expenditure,
                C::MedicalSubsidy,
                Amount::MonthMedical,
            ),
            (
                month_end,
                D::Expenditure,
                C::TrainingSubsidy,
                Amount::MonthTraining,
            ),
        ];
        if today.month().is_multiple_of(3) {
            plan.push((
                day(21),
                D::Income,
                C::Interest,
                Amount::Fixed(contributions / 20),
            ));
        }
        if self.rng.chance(0.15) {
            let amount = Amount::Fixed(i64::from(self.rng.between(50, 500)) * 100_000);
            plan.push((
                day(self.rng.between(1, 28)),
                D::Income,
                C::FiscalSubsidy,
                amount,
            ));
        }
        for (on, direction, category, amount) in plan {
            let item = FundItem::new(year_month(today), direction, category, amount);
            self.schedule(on, Task::Fund(Box::new(item)));
        }
    }

    /// Each insured employer's 2% and its staff's 1%, booked in the first twenty days;
    /// the many insured units that report no vacancies come in aggregated batches.
    fn schedule_contributions(&mut self) -> i64 {
        let named: Vec<(String, u32)> = self
            .employers
            .iter()
            .filter(|e| e.ui)
            .map(|e| (e.org_code.clone(), e.staff))
            .collect();
        let batches = self.city.sized(75.0, 10, 300);
        let others = (0..batches).map(|_| ("aggregated".to_string(), self.rng.between(200, 3000)));
        let payers: Vec<(String, u32)> = named
            .into_iter()
            .chain(others.collect::<Vec<_>>())
            .collect();
        let mut total = 0;
        for (counterparty, staff) in payers {
            total += self.contribution(counterparty, staff);
        }
        total
    }

    /// Schedules one payer's two contributions for this month; returns their sum.
    fn contribution(&mut self, counterparty: String, staff: u32) -> i64 {
        let period = year_month(self.today);
        let wage_bill = i64::from(staff) * i64::from(self.rng.between(500, 900)) * 100;
        let on = plus_days(self.today, self.rng.between(0, 19));
        let mut total = 0;
        for (category, rate) in [
            (FundCategory::EmployerContribution, 50),
            (FundCategory::EmployeeContribution, 100),
        ] {
            let amount = Amount::Fixed(wage_bill / rate);
            let item = FundItem {
                counterparty: Some(counterparty.clone()),
                ..FundItem::new(period, FundDirection::Income, category, amount)
            };
            total += wage_bill / rate;
            self.schedule(on, Task::Fund(Box::new(item)));
        }
        total
    }

    /// Books a ledger entry (skipping empty totals), chains its hash, and now and then
    /// corrects a contribution by a reversal and a new entry.
    pub(super) fn book(&mut self, item: FundItem) {
        let amount = self.resolve(item.amount);
        if amount <= 0 {
            return;
        }
        let entry = UiFundEntry {
            fund_area: self.city.code.clone(),
            entry_date: self.today,
            period: item.period,
            direction: item.direction,
            category: item.category,
            amount_fen: amount,
            counterparty: item.counterparty.clone(),
            reverses: item.reverses.clone(),
            prev_entry_hash: self.fund.prev_hash.clone(),
        };
        let id = self.emit(Pending::new(RecordData::UiFundEntry(entry)));
        self.fund.prev_hash = self.out.back().map(entry_hash);
        if item.reverses.is_none() && item.counterparty.is_some() && self.rng.chance(0.01) {
            self.schedule_correction(&id, item, amount);
        }
    }

    fn schedule_correction(&mut self, id: &str, item: FundItem, amount: i64) {
        let on = self.soon(2, 6);
        let reversal = FundItem {
            reverses: Some(id.to_string()),
            amount: Amount::Fixed(amount),
            ..item.clone()
        };
        let corrected = round_u32(self.rng.real(0.9, 1.1) * 100.0);
        let entry = FundItem {
            amount: Amount::Fixed(amount * i64::from(corrected) / 100),
            ..item
        };
        self.schedule(on, Task::Fund(Box::new(reversal)));
        self.schedule(on, Task::Fund(Box::new(entry)));
    }

    /// The amount of `amount` today; month totals are reset once booked.
    fn resolve(&mut self, amount: Amount) -> i64 {
        match amount {
            Amount::Fixed(fen) => fen,
            Amount::MonthBenefits => std::mem::take(&mut self.fund.benefits_fen),
            Amount::MonthMedical => std::mem::take(&mut self.fund.medical_fen),
            Amount::MonthTraining => i64::from(std::mem::take(&mut self.fund.enrolments)) * 30_000,
            Amount::RscAllowance => i64::from(self.fund.rsc_stock) * 8_000,
        }
    }
}

impl FundItem {
    fn new(
        period: YearMonth,
        direction: FundDirection,
        category: FundCategory,
        amount: Amount,
    ) -> FundItem {
        FundItem {
            period,
            direction,
            category,
            amount,
            counterparty: None,
            reverses: None,
        }
    }
}

/// Hex blake3 of a ledger record's JSON, for the next entry's `prev_entry_hash`.
fn entry_hash(record: &serde_json::Value) -> String {
    let bytes = serde_json::to_vec(record).unwrap_or_default();
    blake3::hash(&bytes).to_hex().to_string()
}

fn year_month(date: NaiveDate) -> YearMonth {
    YearMonth {
        year: u16::try_from(date.year()).unwrap_or(1999),
        month: u8::try_from(date.month()).unwrap_or(1),
    }
}
