//! Coded values the generator draws from: occupations by major group, industries and
//! employer types, with the shapes of `docs/reference/synthetic-data.md`, plus the name parts used to build
//! plausible office, employer and person names.
//!
//! Every code drawn here comes from the built-in tables (`model::tables`), so it is valid
//! in the initial standards; this module holds weights, not code lists of its own.

use rand::Rng;

use super::dist::Draw;
use crate::core::model::kinds::{SkillLevel, TechTitle};
use crate::core::model::tables::{EMPLOYER_TYPES, INDUSTRIES_1994, OCCUPATIONS_1999};

/// Vacancy demand by occupation major group, per mille (Wuxi shape, §6.3).
const DEMAND_SHAPE: [(&str, u32); 7] = [
    ("6", 394),
    ("4", 217),
    ("2", 152),
    ("3", 137),
    ("1", 30),
    ("5", 9),
    ("8", 59),
];

/// Job-seeker preference by major group, per mille; the remainder (8.9%) has none (无要求).
const SUPPLY_SHAPE: [(&str, u32); 7] = [
    ("6", 401),
    ("4", 168),
    ("2", 128),
    ("3", 134),
    ("1", 26),
    ("5", 11),
    ("8", 44),
];

/// Industry weights: manufacturing, trade and catering lead demand (§6.3).
const INDUSTRY_WEIGHTS: [(&str, u32); 16] = [
    ("A", 1),
    ("B", 2),
    ("C", 34),
    ("D", 2),
    ("E", 8),
    ("F", 1),
    ("G", 6),
    ("H", 26),
    ("I", 2),
    ("J", 3),
    ("K", 9),
    ("L", 2),
    ("M", 2),
    ("N", 1),
    ("O", 0),
    ("P", 1),
];

/// Employer-type weights: enterprises (codes below 400) make up about 95%.
const EMPLOYER_TYPE_WEIGHTS: [(&str, u32); 15] = [
    ("110", 260),
    ("120", 120),
    ("130", 40),
    ("140", 10),
    ("150", 150),
    ("160", 60),
    ("170", 140),
    ("190", 20),
    ("200", 60),
    ("300", 90),
    ("410", 20),
    ("420", 5),
    ("430", 5),
    ("500", 15),
    ("900", 5),
];

/// Education codes (GB/T 4658): graduate … primary.
/// Skill levels held by the job seekers who hold one, and asked for by the vacancies that
/// ask: mostly 初级 and 中级, few 技师.
pub(super) const SKILL_LEVELS: [(SkillLevel, u32); 5] = [
    (SkillLevel::Junior, 45),
    (SkillLevel::Intermediate, 35),
    (SkillLevel::Senior, 14),
    (SkillLevel::Technician, 5),
    (SkillLevel::SeniorTechnician, 1),
];

/// Technical titles of the job seekers who hold one.
pub(super) const TECH_TITLES: [(TechTitle, u32); 3] = [
    (TechTitle::Junior, 60),
    (TechTitle::Intermediate, 32),
    (TechTitle::Senior, 8),
];

pub(super) const EDUCATION: [(&str, u32); 8] = [
    ("10", 1),
    ("20", 6),
    ("30", 10),
    ("40", 14),
    ("50", 8),
    ("60", 25),
    ("70", 30),
    ("80", 6),
];

/// Common surnames, for person names (dropped at ingest) and employer names.
pub(super) const SURNAMES: [&str; 16] = [
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "林",
];

/// Given-name characters.
pub(super) const GIVEN: [&str; 16] = [
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟", "涛", "明",
];

/// Trade-name characters for employers.
pub(super) const TRADE: [&str; 12] = [
    "华", "兴", "东", "方", "新", "宏", "达", "昌", "永", "利", "金", "星",
];

/// Occupation codes grouped by major group, drawn with the demand or supply shape.
#[derive(Debug, Clone)]
pub(super) struct Occupations {
    groups: Vec<(&'static str, Vec<&'static str>)>,
}

impl Occupations {
    /// Groups the built-in occupation table: minor groups where the table has them,
    /// otherwise medium groups (heads of units: enterprise and institution heads only).
    pub(super) fn builtin() -> Occupations {
        let groups = ["1", "2", "3", "4", "5", "6", "8"]
            .into_iter()
            .map(|major| (major, codes_for(major)))
            .filter(|(_, codes)| !codes.is_empty())
            .collect();
        Occupations { groups }
    }

    /// An occupation for a vacancy.
    pub(super) fn demand<R: Rng>(&self, rng: &mut R) -> &'static str {
        self.draw(rng, &DEMAND_SHAPE)
    }

    /// An occupation a job seeker wants.
    pub(super) fn supply<R: Rng>(&self, rng: &mut R) -> &'static str {
        self.draw(rng, &SUPPLY_SHAPE)
    }

    /// An occupation for a re-employment course (production or service work).
    pub(super) fn training<R: Rng>(&self, rng: &mut R) -> &'static str {
        self.draw(rng, &[("6", 60), ("4", 40)])
    }

    fn draw<R: Rng>(&self, rng: &mut R, shape: &[(&str, u32)]) -> &'static str {
        let major = *rng.weighted(shape);
        let codes = self
            .groups
            .iter()
            .find(|(m, _)| *m == major)
            .or(self.groups.first())
            .map_or(&[][..], |(_, c)| c.as_slice());
        codes.get(rng.index(codes.len())).copied().unwrap_or("8-00")
    }
}

fn codes_for(major: &str) -> Vec<&'static str> {
    let prefix = format!("{major}-");
    let level = |depth: usize| -> Vec<&'static str> {
        OCCUPATIONS_1999
            .iter()
            .map(|(c, _)| *c)
            .filter(|c| c.starts_with(&prefix) && c.split('-').count() == depth)
            .collect()
    };
    if major == "1" {
        return level(2)
            .into_iter()
            .filter(|c| matches!(*c, "1-04" | "1-05"))
            .collect();
    }
    let minors = level(3);
    if minors.is_empty() { level(2) } else { minors }
}

/// The name of an occupation code.
pub(super) fn occupation_name(code: &str) -> &'static str {
    OCCUPATIONS_1999
        .iter()
        .find(|(c, _)| *c == code)
        .map_or("工作人员", |(_, n)| *n)
}

/// An industry section, weighted towards manufacturing and trade.
pub(super) fn industry<R: Rng>(rng: &mut R) -> &'static str {
    let code = *rng.weighted(&INDUSTRY_WEIGHTS);
    known(INDUSTRIES_1994.iter().map(|(c, _, _)| *c), code)
}

/// An employer type, about 95% enterprises.
pub(super) fn employer_type<R: Rng>(rng: &mut R) -> &'static str {
    let code = *rng.weighted(&EMPLOYER_TYPE_WEIGHTS);
    known(EMPLOYER_TYPES.iter().map(|(c, _)| *c), code)
}

/// `code` if the table has it, else the table's last code ("other").
fn known(table: impl Iterator<Item = &'static str>, code: &str) -> &'static str {
    let mut last = "";
    for c in table {
        if c == code {
            return c;
        }
        last = c;
    }
    last
}
