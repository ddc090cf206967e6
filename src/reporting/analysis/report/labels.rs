//! Row and table labels in Chinese and English. Chinese names come from the built-in
//! tables; English ones are ours, for the fixed rows only (minor occupation groups and
//! codes outside the built-in tables carry no English label).

use serde::{Deserialize, Serialize};

use crate::core::model::Sector;
use crate::core::model::kinds::{SeekerCategory, SkillLevel};
use crate::core::model::tables::{EMPLOYER_TYPES, INDUSTRIES_1994, OCCUPATIONS_1999};

/// A label in Chinese, and in English where we have one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Label {
    /// Chinese.
    pub zh: String,
    /// English.
    pub en: Option<String>,
}

impl Label {
    pub(crate) fn new(zh: &str, en: &str) -> Label {
        Label {
            zh: zh.to_string(),
            en: Some(en.to_string()),
        }
    }

    /// A label without a known name: the code itself.
    pub(crate) fn code(code: &str) -> Label {
        Label {
            zh: code.to_string(),
            en: None,
        }
    }

    pub(crate) fn zh_only(zh: &str) -> Label {
        Label {
            zh: zh.to_string(),
            en: None,
        }
    }
}

const INDUSTRY_EN: [(&str, &str); 16] = [
    ("A", "Farming, forestry, animal husbandry and fishery"),
    ("B", "Mining and quarrying"),
    ("C", "Manufacturing"),
    ("D", "Production and supply of electricity, gas and water"),
    ("E", "Construction"),
    ("F", "Geological prospecting and water conservancy"),
    ("G", "Transport, storage, post and telecommunications"),
    ("H", "Wholesale and retail trade, catering"),
    ("I", "Finance and insurance"),
    ("J", "Real estate"),
    ("K", "Social services"),
    ("L", "Health care, sports and social welfare"),
    (
        "M",
        "Education, culture and arts, radio, film and television",
    ),
    ("N", "Scientific research and polytechnical services"),
    ("O", "Government, party agencies and social organisations"),
    ("P", "Other industries"),
];

const EMPLOYER_TYPE_EN: [(&str, &str); 15] = [
    ("110", "State-owned enterprise"),
    ("120", "Collective enterprise"),
    ("130", "Joint-stock cooperative enterprise"),
    ("140", "Joint-operation enterprise"),
    ("150", "Limited liability company"),
    ("160", "Company limited by shares"),
    ("170", "Private enterprise"),
    ("190", "Other enterprise"),
    ("200", "Hong Kong, Macao or Taiwan-invested enterprise"),
    ("300", "Foreign-invested enterprise"),
    ("410", "Public institution"),
    ("420", "Government agency"),
    ("430", "Social organisation"),
    ("500", "Individual business"),
    ("900", "Other"),
];

const MAJOR_EN: [(&str, &str); 8] = [
    (
        "1",
        "Heads of state organs, party and mass organisations, enterprises and institutions",
    ),
    ("2", "Professional and technical personnel"),
    ("3", "Clerks and related personnel"),
    ("4", "Commercial and service personnel"),
    (
        "5",
        "Agriculture, forestry, animal husbandry, fishery and water conservancy workers",
    ),
    (
        "6",
        "Production and transport equipment operators and related workers",
    ),
    ("7", "Military personnel"),
    ("8", "Other workers not classifiable"),
];

fn english(table: &[(&str, &str)], code: &str) -> Option<String> {
    table
        .iter()
        .find(|(c, _)| *c == code)
        .map(|(_, en)| (*en).to_string())
}

fn from_table(names: &[(&str, &str)], english_names: &[(&str, &str)], code: &str) -> Label {
    match names.iter().find(|(c, _)| *c == code) {
        Some((_, zh)) => Label {
            zh: (*zh).to_string(),
            en: english(english_names, code),
        },
        None => Label::code(code),
    }
}

/// An industry row of GB/T 4754-1994.
pub(crate) fn industry(code: &str) -> Label {
    match INDUSTRIES_1994.iter().find(|(c, _, _)| *c == code) {
        Some((_, zh, _)) => Label {
            zh: (*zh).to_string(),
            en: english(&INDUSTRY_EN, code),
        },
        None => Label::code(code),
    }
}

/// An employer type.
pub(crate) fn employer_type(code: &str) -> Label {
    from_table(EMPLOYER_TYPES, &EMPLOYER_TYPE_EN, code)
}

/// An occupation group (major groups carry English, finer ones Chinese only).
pub(crate) fn occupation(code: &str) -> Label {
    match OCCUPATIONS_1999.iter().find(|(c, _)| *c == code) {
        Some((_, zh)) => match english(&MAJOR_EN, code) {
            Some(en) => Label::new(zh, &en),
            None => Label::zh_only(zh),
        },
        None => Label::code(code),
    }
}

/// A sector (产业).
pub(crate) fn sector(s: Sector) -> (&'static str, Label) {
    match s {
        Sector::Primary => ("primary", Label::new("第一产业", "Primary industry")),
        Sector::Secondary => ("secondary", Label::new("第二产业", "Secondary industry")),
        Sector::Tertiary => ("tertiary", Label::new("第三产业", "Tertiary industry")),
    }
}

/// The rows of table 9 in report order: key and label, the skill levels lowest first,
/// then the row of vacancies asking no level and seekers holding none.
pub(crate) fn skill_levels() -> Vec<(&'static str, Label)> {
    let level = |l: SkillLevel| {
        let (zh, en) = match l {
            SkillLevel::Junior => ("初级（五级）", "Junior (level 5)"),
            SkillLevel::Intermediate => ("中级（四级）", "Intermediate (level 4)"),
            SkillLevel::Senior => ("高级（三级）", "Senior (level 3)"),
            SkillLevel::Technician => ("技师（二级）", "Technician (level 2)"),
            SkillLevel::SeniorTechnician => ("高级技师（一级）", "Senior technician (level 1)"),
        };
        (l.as_str(), Label::new(zh, en))
    };
    let mut rows: Vec<(&'static str, Label)> = SkillLevel::ALL.into_iter().map(level).collect();
    rows.push((
        NO_SKILL_LEVEL,
        Label::new("无技术等级要求或无技术等级", "No level asked or held"),
    ));
    rows
}

/// The key of table 9's row of vacancies asking no skill level and seekers holding none.
pub(crate) const NO_SKILL_LEVEL: &str = "none";

/// Every seeker category in report order: key, label.
pub(crate) fn seeker_categories() -> [(SeekerCategory, &'static str, Label); 10] {
    use SeekerCategory as C;
    [
        (
            C::NewYouth,
            "new_youth",
            Label::new(
                "新成长失业青年（不含应届高校毕业生）",
                "New entrants, excluding new graduates",
            ),
        ),
        (
            C::NewGraduate,
            "new_graduate",
            Label::new("应届高校毕业生", "New university graduates"),
        ),
        (
            C::FormerlyEmployed,
            "formerly_employed",
            Label::new("就业转失业人员", "Unemployed after employment"),
        ),
        (
            C::OtherUnemployed,
            "other_unemployed",
            Label::new("其他失业人员", "Other unemployed"),
        ),
        (C::Employed, "employed", Label::new("在业人员", "Employed")),
        (
            C::LaidOff,
            "laid_off",
            Label::new("下岗职工", "Laid-off workers"),
        ),
        (C::Retired, "retired", Label::new("退休人员", "Retirees")),
        (C::Student, "student", Label::new("在学人员", "Students")),
        (
            C::LocalRural,
            "local_rural",
            Label::new("本市农村人员", "Local rural residents"),
        ),
        (
            C::NonLocal,
            "non_local",
            Label::new("外埠人员", "Non-local residents"),
        ),
    ]
}

/// The total row.
pub(crate) fn total() -> Label {
    Label::new("合计", "Total")
}
