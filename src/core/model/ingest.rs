//! Turning one JSON record (`docs/reference/records.md`) into validated, pseudonymised content.
//!
//! Identifying fields are handled here and only here: a `citizen_id` is checked and
//! replaced by the city's keyed pid; names, phones and addresses are dropped. What leaves
//! this module is safe to store and replicate.

use serde_json::{Map, Value};

use super::NodeCode;
use super::kinds::{PidLink, RecordData};
use super::person::{self, Pseudonymiser};
use super::record::{Kind, Status, validate_id};
use super::standards::Standards;
use super::validate::{Checker, ErrorCode, FieldError};

/// Fields that identify a person or a contact and never enter a stored record.
pub const DROPPED_IDENTIFYING: &[&str] = &[
    "name_of_person",
    "person_name",
    "phone",
    "address",
    "hukou_address",
    "contact_name",
    "contact_phone",
    "bank_account",
];

/// True when ingest drops `field` of a `kind` record's data before it is parsed: an
/// identifying field the record never stores (a mapping that fills one is refused, so an
/// office's file does not send what the node throws away).
pub fn dropped_at_ingest(kind: Kind, field: &str) -> bool {
    DROPPED_IDENTIFYING.contains(&field) || (kind == Kind::JobSeeker && field == "name")
}

/// Kinds whose `data` names a person by `pid` (or `citizen_id` at ingest).
pub fn has_person(kind: Kind) -> bool {
    matches!(
        kind,
        Kind::JobSeeker
            | Kind::LaidOffEpisode
            | Kind::UnemploymentRegistration
            | Kind::ServiceEvent
            | Kind::Placement
            | Kind::UiBenefitPayment
            | Kind::TrainingEnrolment
    )
}

/// A validated record as its owner wrote it, before version and seq are assigned.
#[derive(Debug, Clone, PartialEq)]
pub struct Draft {
    /// The owner's local id.
    pub id: String,
    /// Lifecycle status.
    pub status: Status,
    /// Typed, validated, pseudonymised fields.
    pub data: RecordData,
}

/// What ingest needs besides the JSON: who writes and how persons are pseudonymised.
#[derive(Debug, Clone, Copy)]
pub struct IngestContext<'a> {
    /// Validation against the owner and the standards in force.
    pub checker: Checker<'a>,
    /// The city's key; `None` at nodes that hold no citizen IDs.
    pub pseudonymiser: Option<&'a Pseudonymiser>,
    /// The city's previous key during a rotation's overlap: each person ingested with a
    /// citizen ID also gets a [`PidLink`] from their pid under it to the current one.
    pub previous: Option<&'a Pseudonymiser>,
}

impl<'a> IngestContext<'a> {
    /// Ingest at `owner` under `standards`, pseudonymising with `pseudonymiser`.
    pub fn new(
        owner: NodeCode,
        standards: &'a Standards,
        pseudonymiser: Option<&'a Pseudonymiser>,
    ) -> Self {
        IngestContext {
            checker: Checker { owner, standards },
            pseudonymiser,
            previous: None,
        }
    }

    /// The same context, also linking persons' pids under `previous` (the key of an
    /// earlier epoch kept for a rotation's overlap) to the current ones.
    pub fn with_previous(self, previous: Option<&'a Pseudonymiser>) -> Self {
        IngestContext { previous, ..self }
    }

    /// Parses and validates one element of a `POST /v1/records` array.
    pub fn draft(&self, element: Value) -> Result<Draft, FieldError> {
        self.drafts(element).map(|(draft, _)| draft)
    }

    /// [`IngestContext::draft`], and the `pid_link` record to write in the same commit
    /// when the record names a person by citizen ID during a key overlap.
    pub fn drafts(&self, element: Value) -> Result<(Draft, Option<Draft>), FieldError> {
        let Value::Object(mut obj) = element else {
            return Err(FieldError::new(
                "",
                ErrorCode::Malformed,
                "a record must be a JSON object with kind, id and data",
            ));
        };
        let kind = take_kind(&mut obj)?;
        let id = take_string(&mut obj, "id")?;
        validate_id(&id).map_err(|e| FieldError::new("id", ErrorCode::InvalidId, e.to_string()))?;
        let status = take_status(&mut obj)?;
        let data = match obj.remove("data") {
            Some(Value::Object(d)) => d,
            Some(_) => {
                return Err(FieldError::new(
                    "data",
                    ErrorCode::WrongType,
                    "data must be an object",
                ));
            }
            None => {
                return Err(FieldError::new(
                    "data",
                    ErrorCode::MissingField,
                    "data is required",
                ));
            }
        };
        if let Some(extra) = obj.keys().next() {
            return Err(FieldError::new(
                extra.clone(),
                ErrorCode::UnknownField,
                format!("unknown field {extra:?}; a record has kind, id, status and data"),
            ));
        }
        let (data, link) = self.pseudonymise(kind, data)?;
        let data = RecordData::from_json(kind, Value::Object(data)).map_err(serde_error)?;
        data.validate(&self.checker)?;
        let link = match link {
            Some(l) => {
                let id = PidLink::id_of(l.from_epoch, l.to_epoch, l.to_pid);
                let data = RecordData::PidLink(l);
                data.validate(&self.checker)?;
                Some(Draft {
                    id,
                    status: Status::Active,
                    data,
                })
            }
            None => None,
        };
        Ok((Draft { id, status, data }, link))
    }

    /// Drops identifying fields and replaces a citizen ID by the pid and its epoch (and
    /// the link from the previous epoch's pid, during an overlap).
    fn pseudonymise(
        &self,
        kind: Kind,
        mut data: Map<String, Value>,
    ) -> Result<(Map<String, Value>, Option<PidLink>), FieldError> {
        for field in DROPPED_IDENTIFYING {
            data.remove(*field);
        }
        if kind == Kind::JobSeeker {
            data.remove("name");
        }
        let Some(raw) = data.remove("citizen_id") else {
            if has_person(kind) && data.contains_key("pid") && !data.contains_key("pid_epoch") {
                // A pid means nothing without the key it was made under: after a
                // rotation the same person has another pid, and only the epoch tells them
                // apart from a stranger.
                return Err(FieldError::new(
                    "data.pid_epoch",
                    ErrorCode::MissingField,
                    "a record given by pid must give pid_epoch, the key epoch the pid was made under",
                ));
            }
            return Ok((data, None));
        };
        let field = "data.citizen_id";
        if !has_person(kind) {
            return Err(FieldError::new(
                field,
                ErrorCode::UnknownField,
                format!("{kind} records name no person"),
            ));
        }
        if data.contains_key("pid") {
            return Err(FieldError::new(
                field,
                ErrorCode::InvalidValue,
                "give citizen_id or pid, not both",
            ));
        }
        let Value::String(raw) = raw else {
            return Err(FieldError::new(
                field,
                ErrorCode::WrongType,
                "citizen_id must be a string",
            ));
        };
        let canonical = person::normalise(&raw)
            .map_err(|e| FieldError::new(field, ErrorCode::InvalidCitizenId, e.to_string()))?;
        let Some(p) = self.pseudonymiser else {
            return Err(FieldError::new(
                field,
                ErrorCode::InvalidValue,
                "this node has no pseudonym key; citizen IDs are accepted only at city nodes",
            ));
        };
        if let Some(given) = data.get("pid_epoch")
            && given.as_u64() != Some(u64::from(p.epoch()))
        {
            return Err(FieldError::new(
                "data.pid_epoch",
                ErrorCode::InvalidValue,
                format!(
                    "pid_epoch {given} is not this node's key epoch {}; with citizen_id, \
                     leave pid_epoch out and the node stamps it",
                    p.epoch()
                ),
            ));
        }
        let pid = p.pid(&canonical);
        data.insert("pid".into(), Value::String(pid.to_string()));
        data.insert("pid_epoch".into(), Value::from(p.epoch()));
        let link = self
            .previous
            .filter(|old| old.epoch() < p.epoch())
            .map(|old| PidLink {
                from_epoch: old.epoch(),
                from_pid: old.pid(&canonical),
                to_epoch: p.epoch(),
                to_pid: pid,
            });
        Ok((data, link))
    }
}

fn take_kind(obj: &mut Map<String, Value>) -> Result<Kind, FieldError> {
    let name = take_string(obj, "kind")?;
    if let Some(kind) = Kind::parse(&name).filter(|k| !k.posted()) {
        let by = if kind == Kind::PidLink {
            "when it ingests a person by citizen_id while it keeps its previous pseudonym key"
        } else {
            "when it submits a quarter (POST /v1/reports/{period}/submit, lmsync report --submit)"
        };
        return Err(FieldError::new(
            "kind",
            ErrorCode::DerivedKind,
            format!("{kind} records are written by the city node {by}, not posted"),
        ));
    }
    Kind::parse(&name).ok_or_else(|| {
        let known: Vec<&str> = Kind::ALL
            .iter()
            .filter(|k| k.posted())
            .map(|k| k.as_str())
            .collect();
        FieldError::new(
            "kind",
            ErrorCode::UnknownKind,
            format!(
                "unknown kind {name:?}; expected one of {}",
                known.join(", ")
            ),
        )
    })
}

fn take_string(obj: &mut Map<String, Value>, field: &str) -> Result<String, FieldError> {
    match obj.remove(field) {
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(FieldError::new(
            field,
            ErrorCode::WrongType,
            format!("{field} must be a string"),
        )),
        None => Err(FieldError::new(
            field,
            ErrorCode::MissingField,
            format!("{field} is required"),
        )),
    }
}

fn take_status(obj: &mut Map<String, Value>) -> Result<Status, FieldError> {
    match obj.remove("status") {
        None => Ok(Status::Active),
        Some(v) => serde_json::from_value(v).map_err(|_| {
            FieldError::new(
                "status",
                ErrorCode::WrongType,
                "status must be one of active, closed, withdrawn, voided",
            )
        }),
    }
}

/// Maps a serde error inside `data` to the field it concerns and a clear reason.
fn serde_error(err: serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let path = err.path().to_string();
    let message = err.inner().to_string();
    let named = backticked(&message);
    let under = |name: &str| {
        if path == "." || path.is_empty() {
            format!("data.{name}")
        } else {
            format!("data.{path}.{name}")
        }
    };
    let at_path = if path == "." {
        "data".to_string()
    } else {
        format!("data.{path}")
    };
    if message.starts_with("missing field") {
        let field = named.map_or(at_path, under);
        FieldError::new(
            field.clone(),
            ErrorCode::MissingField,
            format!("{field} is required"),
        )
    } else if message.starts_with("unknown field") {
        let field = named.map_or(at_path, under);
        FieldError::new(field, ErrorCode::UnknownField, message)
    } else {
        FieldError::new(at_path, ErrorCode::WrongType, message)
    }
}

fn backticked(message: &str) -> Option<&str> {
    let start = message.find('`')? + 1;
    let len = message[start..].find('`')?;
    Some(&message[start..start + len])
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::core::model::person::check_char;

    fn worker() -> String {
        let first17 = "44010419700101123";
        format!("{first17}{}", check_char(first17.as_bytes()))
    }

    fn service(data: Value) -> Value {
        let mut d = json!({"office_id": "O-1", "occurred_on": "1999-10-06",
            "event_type": "career_guidance", "fee": "free", "mode": "in_person"});
        if let (Value::Object(d), Value::Object(extra)) = (&mut d, data) {
            d.extend(extra);
        }
        json!({"kind": "service_event", "id": "S-1", "data": d})
    }

    #[test]
    fn ingest_stamps_the_epoch_and_links_during_an_overlap() {
        let standards = Standards::builtin();
        let (old, new) = (
            Pseudonymiser::new([1; 32], 1),
            Pseudonymiser::new([2; 32], 2),
        );
        let owner: NodeCode = "440100".parse().unwrap();
        let canonical = person::normalise(&worker()).unwrap();
        let cx = IngestContext::new(owner, &standards, Some(&new));
        let (draft, link) = cx.drafts(service(json!({"citizen_id": worker()}))).unwrap();
        assert_eq!(draft.data.person(), Some((new.pid(&canonical), 2)));
        assert!(link.is_none(), "no previous key, no link");

        let cx = cx.with_previous(Some(&old));
        let (_, link) = cx.drafts(service(json!({"citizen_id": worker()}))).unwrap();
        let link = link.unwrap();
        assert_eq!(link.id, format!("1-2-{}", new.pid(&canonical)));
        assert_eq!(
            link.data,
            RecordData::PidLink(PidLink {
                from_epoch: 1,
                from_pid: old.pid(&canonical),
                to_epoch: 2,
                to_pid: new.pid(&canonical),
            })
        );
    }

    #[test]
    fn a_pid_needs_its_epoch_and_a_citizen_id_the_nodes() {
        let standards = Standards::builtin();
        let key = Pseudonymiser::new([2; 32], 2);
        let cx = IngestContext::new("440100".parse().unwrap(), &standards, Some(&key));
        let pid = "ab".repeat(16);
        let e = cx.draft(service(json!({"pid": pid}))).unwrap_err();
        assert_eq!(
            (e.field.as_str(), e.code),
            ("data.pid_epoch", ErrorCode::MissingField)
        );
        let d = cx
            .draft(service(json!({"pid": pid, "pid_epoch": 3})))
            .unwrap();
        assert_eq!(
            d.data.person().map(|p| p.1),
            Some(3),
            "a given pid keeps its epoch"
        );
        let e = cx
            .draft(service(json!({"citizen_id": worker(), "pid_epoch": 1})))
            .unwrap_err();
        assert_eq!(e.field, "data.pid_epoch");
        let e = cx
            .draft(json!({"kind": "pid_link", "id": "x", "data": {}}))
            .unwrap_err();
        assert_eq!(e.code, ErrorCode::DerivedKind);
    }
}
