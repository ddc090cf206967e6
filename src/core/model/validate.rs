//! Per-record validation: one clear error naming the field, an error code and the reason.

use std::fmt;

use chrono::NaiveDate;

use super::standards::{Classification, Standards};
use super::tree::NodeCode;

/// A machine-readable reason a record was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    /// The request element is not a JSON object of the record shape.
    Malformed,
    /// `kind` names no record kind.
    UnknownKind,
    /// `kind` names a kind the node writes itself (a submitted report), not a client.
    DerivedKind,
    /// The id is empty, too long or not printable.
    InvalidId,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong JSON type or format.
    WrongType,
    /// A field this kind does not have.
    UnknownField,
    /// A coded field's code is not in the classification in force.
    UnknownCode,
    /// A citizen ID fails GB 11643 (length, date or check digit).
    InvalidCitizenId,
    /// A value is out of range or inconsistent with another field.
    InvalidValue,
    /// The encoded record exceeds the size limit.
    TooLarge,
}

impl ErrorCode {
    /// The snake_case name used in API responses.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Malformed => "malformed",
            ErrorCode::UnknownKind => "unknown_kind",
            ErrorCode::DerivedKind => "derived_kind",
            ErrorCode::InvalidId => "invalid_id",
            ErrorCode::MissingField => "missing_field",
            ErrorCode::WrongType => "wrong_type",
            ErrorCode::UnknownField => "unknown_field",
            ErrorCode::UnknownCode => "unknown_code",
            ErrorCode::InvalidCitizenId => "invalid_citizen_id",
            ErrorCode::InvalidValue => "invalid_value",
            ErrorCode::TooLarge => "too_large",
        }
    }
}

/// Why one record was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    /// JSON path of the offending field, e.g. `data.occupation` (empty for the whole record).
    pub field: String,
    /// What kind of problem it is.
    pub code: ErrorCode,
    /// A sentence for a person.
    pub message: String,
}

impl FieldError {
    /// A new error for `field`.
    pub fn new(field: impl Into<String>, code: ErrorCode, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.field.is_empty() {
            write!(f, "{}: {}", self.code.as_str(), self.message)
        } else {
            write!(
                f,
                "{} ({}): {}",
                self.field,
                self.code.as_str(),
                self.message
            )
        }
    }
}

/// The outcome of checking one field.
pub type Check = Result<(), FieldError>;

/// What validation of a record may consult: the writing node and the standards in force.
#[derive(Debug, Clone, Copy)]
pub struct Checker<'a> {
    /// The node that accepts the write (the record's owner).
    pub owner: NodeCode,
    /// The classifications in force.
    pub standards: &'a Standards,
}

fn data_field(name: &str) -> String {
    format!("data.{name}")
}

impl Checker<'_> {
    /// Fails with `InvalidValue` on `field` unless `ok`.
    pub fn ensure(&self, ok: bool, field: &str, message: impl FnOnce() -> String) -> Check {
        if ok {
            Ok(())
        } else {
            Err(FieldError::new(
                data_field(field),
                ErrorCode::InvalidValue,
                message(),
            ))
        }
    }

    fn coded(&self, class: &Classification, field: &str, what: &str, code: &str) -> Check {
        if class.contains(code) {
            Ok(())
        } else {
            Err(FieldError::new(
                data_field(field),
                ErrorCode::UnknownCode,
                format!("unknown {what} code {code:?} in {}", class.label()),
            ))
        }
    }

    /// An occupation code in the classification in force.
    pub fn occupation(&self, field: &str, code: &str) -> Check {
        self.coded(&self.standards.occupation, field, "occupation", code)
    }

    /// An industry code in the classification in force.
    pub fn industry(&self, field: &str, code: &str) -> Check {
        self.coded(&self.standards.industry, field, "industry", code)
    }

    /// An employer-type code in the classification in force.
    pub fn employer_type(&self, field: &str, code: &str) -> Check {
        self.coded(&self.standards.employer_type, field, "employer type", code)
    }

    /// Any structurally valid GB/T 2260 division code.
    pub fn division(&self, field: &str, code: &str) -> Result<NodeCode, FieldError> {
        code.parse::<NodeCode>().map_err(|e| {
            FieldError::new(
                data_field(field),
                ErrorCode::UnknownCode,
                format!("{e} (CN-DIV@{})", self.standards.division_revision),
            )
        })
    }

    /// A division code inside the owner's own area (its offices, its vacancies' locations).
    pub fn division_in_owner(&self, field: &str, code: &str) -> Check {
        let division = self.division(field, code)?;
        self.ensure(self.owner.contains_division(division), field, || {
            format!("division {code} is outside this node's area {}", self.owner)
        })
    }

    /// `later` is not before `earlier` when both are present.
    pub fn date_order(&self, field: &str, earlier: NaiveDate, later: Option<NaiveDate>) -> Check {
        match later {
            Some(l) if l < earlier => {
                self.ensure(false, field, || format!("{l} is before {earlier}"))
            }
            _ => Ok(()),
        }
    }

    /// A non-empty text of at most `max` characters.
    pub fn text(&self, field: &str, value: &str, max: usize) -> Check {
        let n = value.chars().count();
        self.ensure(n > 0 && n <= max, field, || {
            format!("must be 1 to {max} characters, got {n}")
        })
    }

    /// A reference to another record's id (1–128 printable characters).
    pub fn reference(&self, field: &str, id: &str) -> Check {
        super::record::validate_id(id)
            .map_err(|e| FieldError::new(data_field(field), ErrorCode::InvalidValue, e.to_string()))
    }
}
