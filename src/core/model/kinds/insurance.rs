//! Unemployment insurance: benefit payments and the fund ledger.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::core::model::validate::{Check, Checker};
use crate::core::model::values::{Pid, PidEpoch, YearMonth};

/// Expenditure heads of the 1999 Unemployment Insurance Regulations, Art. 10.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BenefitType {
    UiBenefit,
    MedicalSubsidy,
    FuneralAndSurvivor,
    TrainingSubsidy,
    PlacementSubsidy,
}

/// Payment method (the bank account itself stays in the city).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaymentMethod {
    Bank,
    Cash,
}

/// Benefit entitlement by contribution years.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entitlement {
    /// Years of contributions.
    pub contribution_years: u8,
    /// Maximum months of benefit: 12, 18 or 24.
    pub max_months: u8,
    /// Months paid so far, this one included.
    pub months_used: u8,
}

/// An unemployment-insurance benefit payment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiBenefitPayment {
    /// The beneficiary.
    pub pid: Pid,
    /// Key epoch of the pid (1 when absent: records stored before epochs were stamped).
    #[serde(default)]
    pub pid_epoch: PidEpoch,
    /// The claim this payment belongs to.
    pub claim_id: String,
    /// Expenditure head.
    pub benefit_type: BenefitType,
    /// Month the benefit is for.
    pub benefit_month: YearMonth,
    /// Amount, fen.
    pub amount_fen: i64,
    /// Date paid.
    pub paid_on: NaiveDate,
    /// Payment method.
    pub method: PaymentMethod,
    /// Entitlement at the time of payment.
    pub entitlement: Entitlement,
}

/// The maximum benefit months the 1999 regulations allow for a contribution record:
/// 1 to under 5 years → 12, 5 to under 10 → 18, 10 or more → 24.
pub fn max_benefit_months(contribution_years: u8) -> Option<u8> {
    match contribution_years {
        0 => None,
        1..=4 => Some(12),
        5..=9 => Some(18),
        _ => Some(24),
    }
}

impl UiBenefitPayment {
    pub(super) fn validate(&self, cx: &Checker<'_>) -> Check {
        cx.reference("claim_id", &self.claim_id)?;
        cx.ensure(self.amount_fen > 0, "amount_fen", || {
            "must be positive (corrections are new versions)".into()
        })?;
        let e = &self.entitlement;
        let allowed = max_benefit_months(e.contribution_years);
        cx.ensure(
            allowed == Some(e.max_months),
            "entitlement.max_months",
            || match allowed {
                Some(m) => format!(
                    "{} contribution years allow {m} months, not {}",
                    e.contribution_years, e.max_months
                ),
                None => "at least one contribution year is needed".into(),
            },
        )?;
        cx.ensure(
            (1..=e.max_months).contains(&e.months_used),
            "entitlement.months_used",
            || format!("must be 1 to {}, got {}", e.max_months, e.months_used),
        )
    }
}

/// Direction of a fund ledger entry.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FundDirection {
    Income,
    Expenditure,
    TransferOut,
    TransferIn,
}

/// Category of a fund ledger entry (Regulations Arts 5, 6, 8, 10).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FundCategory {
    EmployerContribution,
    EmployeeContribution,
    Interest,
    FiscalSubsidy,
    UiBenefit,
    MedicalSubsidy,
    FuneralAndSurvivor,
    TrainingSubsidy,
    PlacementSubsidy,
    RscLivingAllowance,
    ProvincialAdjustmentFund,
    Other,
}

impl FundCategory {
    fn fits(self, direction: FundDirection) -> bool {
        use FundCategory as C;
        match direction {
            FundDirection::Income => matches!(
                self,
                C::EmployerContribution
                    | C::EmployeeContribution
                    | C::Interest
                    | C::FiscalSubsidy
                    | C::Other
            ),
            FundDirection::Expenditure => matches!(
                self,
                C::UiBenefit
                    | C::MedicalSubsidy
                    | C::FuneralAndSurvivor
                    | C::TrainingSubsidy
                    | C::PlacementSubsidy
                    | C::RscLivingAllowance
                    | C::Other
            ),
            FundDirection::TransferOut | FundDirection::TransferIn => {
                matches!(self, C::ProvincialAdjustmentFund | C::Other)
            }
        }
    }
}

/// An unemployment-insurance fund ledger entry: append-only, corrections reverse.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UiFundEntry {
    /// Pooling area (CN-DIV).
    pub fund_area: String,
    /// Booking date.
    pub entry_date: NaiveDate,
    /// Accounting month.
    pub period: YearMonth,
    /// Direction.
    pub direction: FundDirection,
    /// Category.
    pub category: FundCategory,
    /// Amount, fen, positive.
    pub amount_fen: i64,
    /// Counterparty (organisation code or "aggregated").
    #[serde(default)]
    pub counterparty: Option<String>,
    /// The entry this one reverses.
    #[serde(default)]
    pub reverses: Option<String>,
    /// Hex blake3 of the previous entry, for tamper evidence.
    #[serde(default)]
    pub prev_entry_hash: Option<String>,
}

impl UiFundEntry {
    pub(super) fn validate(&self, cx: &Checker<'_>) -> Check {
        cx.division_in_owner("fund_area", &self.fund_area)?;
        cx.ensure(self.amount_fen > 0, "amount_fen", || {
            "must be positive; record a reversal to correct".into()
        })?;
        cx.ensure(self.category.fits(self.direction), "category", || {
            format!("{:?} is not a {:?} category", self.category, self.direction)
        })?;
        if let Some(r) = &self.reverses {
            cx.reference("reverses", r)?;
        }
        if let Some(h) = &self.prev_entry_hash {
            cx.ensure(
                h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()),
                "prev_entry_hash",
                || "must be 64 hex digits".into(),
            )?;
        }
        Ok(())
    }
}
