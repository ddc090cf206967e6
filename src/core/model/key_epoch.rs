//! Key epoch notices (`key_epoch_notice`): a city announces, signed with its node key,
//! the epoch of the pseudonym key its new pids are made under and from when. Never the
//! key. Notices are reported up to the province and the ministry, so that operators there
//! see each city's current epoch; a parent takes one only from the city it names.
//!
//! Pure: what a notice says, whether its issuer may say it, and the newest one of a city.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use super::document::{KEY_EPOCH, StoredDocument};
use super::tree::{NodeCode, Tier};

/// What a notice's body holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyEpochBody {
    /// The city whose key it is (the issuer).
    pub city: NodeCode,
    /// The key epoch.
    pub epoch: u16,
    /// The first day pids of this epoch are made.
    pub valid_from: NaiveDate,
}

/// The id of the notice of `epoch`: one document per epoch, so the newest epoch is the
/// highest, whatever the versions.
pub fn id_of(epoch: u16) -> String {
    format!("epoch-{epoch}")
}

/// Checks a notice issued by `issuer` under `id`: a city, for itself, the id naming the
/// epoch.
pub fn check_body(issuer: NodeCode, id: &str, body: &KeyEpochBody) -> Result<(), String> {
    if issuer.tier() != Tier::City {
        return Err(format!(
            "{issuer} ({}) may not issue a key epoch notice; only a city announces its own key epoch",
            issuer.tier()
        ));
    }
    if body.city != issuer {
        return Err(format!(
            "{issuer} may not announce the key epoch of {}: a city announces only its own",
            body.city
        ));
    }
    if id != id_of(body.epoch) {
        return Err(format!(
            "a key epoch notice's id is {:?}, not {id:?}",
            id_of(body.epoch)
        ));
    }
    Ok(())
}

/// The body of a stored notice, checked against its issuer and id.
pub fn parse(doc: &StoredDocument) -> Result<KeyEpochBody, String> {
    let body: KeyEpochBody =
        serde_json::from_str(&doc.body).map_err(|e| format!("a key_epoch_notice body: {e}"))?;
    check_body(doc.issuer, &doc.id, &body)?;
    Ok(body)
}

/// The newest (highest-epoch) valid notice `city` issued among `docs`.
pub fn newest<'a>(
    docs: impl IntoIterator<Item = &'a StoredDocument>,
    city: NodeCode,
) -> Option<KeyEpochBody> {
    docs.into_iter()
        .filter(|d| d.kind == KEY_EPOCH && d.issuer == city)
        .filter_map(|d| parse(d).ok())
        .max_by_key(|b| b.epoch)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(s: &str) -> NodeCode {
        s.parse().unwrap()
    }

    fn body(city: &str, epoch: u16) -> KeyEpochBody {
        KeyEpochBody {
            city: code(city),
            epoch,
            valid_from: NaiveDate::from_ymd_opt(2026, 10, 1).unwrap(),
        }
    }

    #[test]
    fn a_city_announces_only_its_own_epoch() {
        assert!(check_body(code("440100"), "epoch-2", &body("440100", 2)).is_ok());
        let other = check_body(code("440100"), "epoch-2", &body("440300", 2)).unwrap_err();
        assert!(other.contains("only its own"), "{other}");
        let province = check_body(code("440000"), "epoch-2", &body("440000", 2)).unwrap_err();
        assert!(province.contains("only a city"), "{province}");
        let id = check_body(code("440100"), "epoch-3", &body("440100", 2)).unwrap_err();
        assert!(id.contains("\"epoch-2\""), "{id}");
    }
}
