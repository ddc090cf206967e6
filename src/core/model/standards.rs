//! The classification standards in force at a node, against which coded fields are checked.
//!
//! A node starts from the built-in initial standards (occupation classification 1999,
//! industry GB/T 4754-1994, employer types, GB/T 2260 provinces and pilot cities);
//! classification versions published by the ministry replace them as they arrive.

use std::collections::BTreeMap;

use super::builtin;
use super::record::CodeRef;

/// Scheme id of the occupation classification (职业分类大典).
pub const OCCUPATION: &str = "CN-OCC";
/// Scheme id of the industry classification (GB/T 4754).
pub const INDUSTRY: &str = "CN-IND";
/// Scheme id of employer types (用人单位性质).
pub const EMPLOYER_TYPE: &str = "CN-EMPLOYER-TYPE";
/// Scheme id of administrative divisions (GB/T 2260).
pub const DIVISION: &str = "CN-DIV";

/// One version of one classification scheme: a set of codes with names and levels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Classification {
    /// Scheme id, e.g. `CN-OCC`.
    pub scheme: String,
    /// Version id, e.g. `1999`.
    pub version: String,
    /// Code → name.
    pub codes: BTreeMap<String, String>,
}

impl Classification {
    fn from_pairs(scheme: &str, version: &str, pairs: &[(&str, &str)]) -> Self {
        Classification {
            scheme: scheme.to_string(),
            version: version.to_string(),
            codes: pairs
                .iter()
                .map(|(c, n)| ((*c).to_string(), (*n).to_string()))
                .collect(),
        }
    }

    /// True when `code` exists in this version.
    pub fn contains(&self, code: &str) -> bool {
        self.codes.contains_key(code)
    }

    /// `scheme@version`, as error messages name it.
    pub fn label(&self) -> String {
        format!("{}@{}", self.scheme, self.version)
    }

    /// This classification's reference for a record's envelope.
    pub fn code_ref(&self) -> CodeRef {
        CodeRef {
            scheme: self.scheme.clone(),
            version: self.version.clone(),
        }
    }
}

/// Level of an occupation code in the `M-mm-nn-dd` hierarchy: 1 major … 4 detail.
pub fn occupation_level(code: &str) -> usize {
    code.split('-').count()
}

/// The major group (first digit) of an occupation code.
pub fn occupation_major(code: &str) -> &str {
    code.split('-').next().unwrap_or(code)
}

/// Every classification a node validates against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standards {
    /// Occupations (CN-OCC).
    pub occupation: Classification,
    /// Industries (CN-IND).
    pub industry: Classification,
    /// Employer types (CN-EMPLOYER-TYPE).
    pub employer_type: Classification,
    /// Revision of GB/T 2260 whose structure division codes are checked against.
    pub division_revision: String,
}

impl Standards {
    /// The initial standards every node ships with.
    pub fn builtin() -> Self {
        let industries: Vec<(&str, &str)> = builtin::INDUSTRIES_1994
            .iter()
            .map(|(c, n, _)| (*c, *n))
            .collect();
        Standards {
            occupation: Classification::from_pairs(OCCUPATION, "1999", builtin::OCCUPATIONS_1999),
            industry: Classification::from_pairs(INDUSTRY, "1994", &industries),
            employer_type: Classification::from_pairs(
                EMPLOYER_TYPE,
                "1998",
                builtin::EMPLOYER_TYPES,
            ),
            division_revision: "199912".to_string(),
        }
    }

    /// The versions in force, for a record's envelope and for `status`.
    pub fn code_refs(&self) -> Vec<CodeRef> {
        vec![
            self.occupation.code_ref(),
            self.industry.code_ref(),
            self.employer_type.code_ref(),
            CodeRef {
                scheme: DIVISION.to_string(),
                version: self.division_revision.clone(),
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_occupations_form_a_tree() {
        let s = Standards::builtin();
        let occ = &s.occupation;
        let majors = occ
            .codes
            .keys()
            .filter(|c| occupation_level(c) == 1)
            .count();
        let mediums = occ
            .codes
            .keys()
            .filter(|c| occupation_level(c) == 2)
            .count();
        assert_eq!(majors, 8);
        assert_eq!(mediums, 66, "the 1999 edition has 66 medium groups");
        for code in occ.codes.keys() {
            if let Some((parent, _)) = code.rsplit_once('-') {
                assert!(occ.contains(parent), "{code} has no parent {parent}");
            }
        }
        assert!(
            occ.codes
                .keys()
                .filter(|c| occupation_level(c) == 3)
                .count()
                >= 30
        );
    }

    #[test]
    fn builtin_industries_are_the_sixteen_template_rows() {
        assert_eq!(Standards::builtin().industry.codes.len(), 16);
    }
}

/// Why a classification document cannot take effect.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("classification document: {0}")]
pub struct ClassificationError(pub String);

/// The body of a `classification_version` document: a new version of one scheme, either a
/// full list of codes or additions to the version it supersedes (a 增补本 / 新职业 delta).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ClassificationBody {
    /// `CN-OCC`, `CN-IND` or `CN-EMPLOYER-TYPE`.
    pub scheme: String,
    /// The new version id.
    pub version: String,
    /// The version this one replaces (must be the one in force).
    pub supersedes: String,
    /// Codes added to the superseded version: `[code, name]`.
    #[serde(default)]
    pub add: Vec<(String, String)>,
    /// A complete list replacing the superseded version's codes.
    #[serde(default)]
    pub codes: Option<Vec<(String, String)>>,
}

impl Standards {
    fn scheme_mut(&mut self, scheme: &str) -> Option<&mut Classification> {
        match scheme {
            OCCUPATION => Some(&mut self.occupation),
            INDUSTRY => Some(&mut self.industry),
            EMPLOYER_TYPE => Some(&mut self.employer_type),
            _ => None,
        }
    }

    /// The standards with one classification version applied.
    pub fn apply(&self, body: &ClassificationBody) -> Result<Standards, ClassificationError> {
        let mut next = self.clone();
        let class = next
            .scheme_mut(&body.scheme)
            .ok_or_else(|| ClassificationError(format!("unknown scheme {:?}", body.scheme)))?;
        if class.version != body.supersedes {
            return Err(ClassificationError(format!(
                "{} supersedes {}@{}, but {} is in force",
                body.version, body.scheme, body.supersedes, class.version
            )));
        }
        if let Some(codes) = &body.codes {
            class.codes = codes.iter().cloned().collect();
        }
        class.codes.extend(body.add.iter().cloned());
        class.version = body.version.clone();
        Ok(next)
    }

    /// The built-in standards with every applicable classification document applied, each
    /// in the order its `supersedes` chain gives (bodies that do not parse or do not
    /// chain are skipped).
    pub fn with_documents<'a>(bodies: impl IntoIterator<Item = &'a str>) -> Standards {
        let parsed: Vec<ClassificationBody> = bodies
            .into_iter()
            .filter_map(|b| serde_json::from_str(b).ok())
            .collect();
        let mut standards = Standards::builtin();
        while let Some(next) = parsed.iter().find_map(|b| standards.apply(b).ok()) {
            standards = next;
        }
        standards
    }
}

/// The standards in force at a node, replaced as classification documents arrive.
#[derive(Debug)]
pub struct StandardsCell(std::sync::RwLock<std::sync::Arc<Standards>>);

impl StandardsCell {
    /// A cell holding `standards`.
    pub fn new(standards: Standards) -> Self {
        StandardsCell(std::sync::RwLock::new(std::sync::Arc::new(standards)))
    }

    /// The standards in force now.
    pub fn current(&self) -> std::sync::Arc<Standards> {
        self.0.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts new standards in force.
    pub fn replace(&self, standards: Standards) {
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(standards);
    }
}

#[cfg(test)]
mod document_tests {
    use super::*;

    #[test]
    fn a_delta_adds_codes_and_chains_by_supersedes() {
        let first = r#"{"scheme":"CN-OCC","version":"1999+2005","supersedes":"1999","add":[["6-24-99","网约配送员"]]}"#;
        let second = r#"{"scheme":"CN-OCC","version":"1999+2006","supersedes":"1999+2005","add":[["4-07-99","养老护理员"]]}"#;
        // Order of arrival does not matter; the chain does.
        let s = Standards::with_documents([second, first]);
        assert_eq!(s.occupation.version, "1999+2006");
        assert!(s.occupation.contains("6-24-99") && s.occupation.contains("4-07-99"));
        let broken = r#"{"scheme":"CN-OCC","version":"x","supersedes":"2015"}"#;
        assert_eq!(
            Standards::with_documents([broken]).occupation.version,
            "1999"
        );
    }
}
