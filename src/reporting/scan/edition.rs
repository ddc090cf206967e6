//! The crosswalks held here and what they do to coverage and to scopes: the chains in
//! force on a day, a city's code in the edition in force, and the node a code of the
//! edition in force names.

use chrono::NaiveDate;

use super::Coverage;
use crate::core::model::crosswalk::Editions;
use crate::core::model::document::CROSSWALK;
use crate::core::model::standards::DIVISION;
use crate::core::model::{MINISTRY, NodeCode};
use crate::core::store::{Store, StoreError};
use crate::reporting::analysis::Scope;
use crate::reporting::analysis::report::Cell;
use crate::reporting::analysis::report::{Edition, MappedLevel, PublishedMapping};

/// The crosswalk chains in force on `as_of`, from the ministry's crosswalks held here.
pub fn editions(store: &dyn Store, as_of: NaiveDate) -> Result<Editions, StoreError> {
    let docs = store.documents()?;
    Ok(Editions::of(
        docs.iter()
            .filter(|d| d.kind == CROSSWALK && d.issuer == MINISTRY)
            .map(|d| d.body.as_str()),
        as_of,
    ))
}

/// The node `code` names here: `code` itself when its records are held here or it is no
/// city's code in force; else the one city held here (within `within`) whose division
/// code maps to `code`. `Err` names the cities when several were merged into it.
pub fn resolve_alias(
    store: &dyn Store,
    editions: &Editions,
    code: NodeCode,
    within: NodeCode,
) -> Result<NodeCode, Vec<NodeCode>> {
    let held = store.owner_counts();
    if held.contains_key(&code) || editions.division.is_empty() {
        return Ok(code);
    }
    let sources: Vec<NodeCode> = held
        .into_keys()
        .filter(|c| *c != code && c.is_within(within))
        .filter(|c| editions.division_of(*c).is_some_and(|(to, _)| to == code))
        .collect();
    match sources.as_slice() {
        [] => Ok(code),
        [one] => Ok(*one),
        _ => Err(sources),
    }
}

/// `coverage` in the edition in force: each city whose division code changed is shown by
/// its code in force (its name from the crosswalk, the recorded code in `recorded_as`),
/// the scope likewise, and the mappings listed.
pub fn in_edition(coverage: &mut Coverage, editions: &Editions) {
    for c in &mut coverage.cities {
        let Some((code, t)) = editions.division_of(c.city) else {
            continue;
        };
        if let Some(name) = t
            .name
            .clone()
            .or_else(|| code.builtin_name().map(String::from))
        {
            c.name = Some(name);
        }
        if code != c.city {
            coverage.mapped.push(PublishedMapping {
                scheme: DIVISION.to_string(),
                level: MappedLevel::Division,
                from: c.city.to_string(),
                to: code.to_string(),
                relation: t.relation.as_str().to_string(),
                demand: Cell::Empty,
                seekers: Cell::Empty,
            });
            c.recorded_as = Some(c.city);
            c.city = code;
        }
    }
    if let Scope::City(city) = coverage.scope
        && let Some((code, _)) = editions.division_of(city)
    {
        coverage.scope = Scope::City(code);
    }
    coverage.edition = Some(Edition {
        occupation: editions.occupation.edition().map(String::from),
        division: editions.division.edition().map(String::from),
    });
}
