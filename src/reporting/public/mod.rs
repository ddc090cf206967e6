//! The public information service's data: what of the records may ever be shown to the
//! public, and the board that holds it, kept up to date record by record.
//!
//! Only three kinds have a public face (the flow matrix): a vacancy whose employer allowed
//! publication (its job fields, never its internal references), the employer's name
//! through such a vacancy, and an office's name, address, channels and services. Nothing
//! of a person, of an employer's registration or of a non-publishable vacancy enters the
//! board, so nothing rendered from it can show one. Pure: the node feeds it records as
//! they commit and asks it queries ([`search`]).

mod index;
pub mod search;
#[cfg(test)]
mod search_tests;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::Serialize;

use crate::core::model::kinds::{
    ChannelType, ContractTerm, EmploymentType, FillState, Office, OfficeService, OfficeType,
    RecordData, Vacancy,
};
use crate::core::model::{NodeCode, Record, Status};

/// A record's identity on the board.
pub type Key = (NodeCode, String);

/// The public fields of a vacancy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicVacancy {
    /// The city that holds it.
    pub owner: NodeCode,
    /// Its id at that city.
    pub id: String,
    /// Job title.
    pub title: String,
    /// Occupation code (CN-OCC).
    pub occupation: String,
    /// Industry code (CN-IND).
    pub industry: String,
    /// Where the work is (a district or county code).
    pub area: String,
    /// People wanted, and still wanted.
    pub headcount: u32,
    /// Places still open.
    pub open_places: u32,
    /// Contract term class.
    pub contract_term: ContractTerm,
    /// Employment type.
    pub employment_type: EmploymentType,
    /// Monthly wage range, yuan.
    pub wage_min: Option<u32>,
    /// Monthly wage range, yuan.
    pub wage_max: Option<u32>,
    /// Minimum education code.
    pub education_min: Option<String>,
    /// Years of experience asked for.
    pub experience_years: Option<u8>,
    /// When it was posted: published online, else reported.
    pub posted_on: NaiveDate,
    /// First day it is valid.
    pub valid_from: NaiveDate,
    /// Last day it is valid.
    pub valid_until: NaiveDate,
    /// The employer's registered name (public only through a publishable vacancy).
    pub employer: Option<String>,
    /// The office that took the report: the one to contact.
    pub office: Option<PublicOffice>,
    #[serde(skip)]
    employer_id: String,
    #[serde(skip)]
    office_id: String,
    /// The title in lower case, for word search.
    #[serde(skip)]
    title_lower: String,
}

impl PublicVacancy {
    /// The public projection of `v`, or none when it may not be shown (its employer did
    /// not allow publication, or it is no longer open).
    fn of(owner: NodeCode, id: &str, status: Status, v: &Vacancy) -> Option<PublicVacancy> {
        let open = matches!(v.fill_state, FillState::Open | FillState::PartlyFilled);
        if !v.publish_allowed || status != Status::Active || !open {
            return None;
        }
        Some(PublicVacancy {
            owner,
            id: id.to_string(),
            title: v.title.clone(),
            occupation: v.occupation.clone(),
            industry: v.industry.clone(),
            area: v.work_location.clone(),
            headcount: v.headcount,
            open_places: v.headcount.saturating_sub(v.filled_count),
            contract_term: v.contract_term,
            employment_type: v.employment_type,
            wage_min: v.wage_min,
            wage_max: v.wage_max,
            education_min: v.education_min.clone(),
            experience_years: v.experience_years,
            posted_on: v.published_online_on.unwrap_or(v.reported_on),
            valid_from: v.valid_from,
            valid_until: v.valid_until,
            employer: None,
            office: None,
            employer_id: v.employer_id.clone(),
            office_id: v.receiving_office_id.clone(),
            title_lower: v.title.to_lowercase(),
        })
    }

    /// True when it is listed on `date`: within its validity.
    pub fn open_on(&self, date: NaiveDate) -> bool {
        self.valid_from <= date && date <= self.valid_until
    }

    fn key(&self) -> Key {
        (self.owner, self.id.clone())
    }
}

/// The public fields of an office.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublicOffice {
    /// The city that holds it.
    pub owner: NodeCode,
    /// Its id.
    pub id: String,
    /// Public name.
    pub name: String,
    /// What it is.
    pub office_type: OfficeType,
    /// District or county.
    pub area: String,
    /// Public address.
    pub address: Option<String>,
    /// Channels it releases information on.
    pub channels: Vec<ChannelType>,
    /// Services it offers (free of charge at public offices).
    pub services: Vec<OfficeService>,
}

impl PublicOffice {
    fn of(owner: NodeCode, id: &str, status: Status, o: &Office) -> Option<PublicOffice> {
        if status != Status::Active || o.closed_on.is_some() {
            return None;
        }
        Some(PublicOffice {
            owner,
            id: id.to_string(),
            name: o.name.clone(),
            office_type: o.office_type,
            area: o.division_code.clone(),
            address: o.public_address.clone(),
            channels: o.public_channels.iter().map(|c| c.channel).collect(),
            services: o.services.clone(),
        })
    }
}

/// A listed vacancy's place on the board: indexes hold these, not keys.
type Slot = u32;

/// Everything the public service shows, indexed for search. Updated record by record;
/// `generation` moves with every change, so answers can be cached by it.
#[derive(Debug, Default)]
pub struct Board {
    slots: Vec<Option<PublicVacancy>>,
    free: Vec<Slot>,
    ids: HashMap<Key, Slot>,
    employers: HashMap<Key, String>,
    /// The same names in lower case, for word search.
    employers_lower: HashMap<Key, String>,
    offices: BTreeMap<Key, PublicOffice>,
    index: index::Index,
    /// Vacancy dates seen, to find the newest record's date (the board date of a
    /// historical data set).
    dates: BTreeMap<NaiveDate, u64>,
    generation: u64,
}

impl Board {
    /// Takes in one record version (any kind; only the public ones matter).
    pub fn apply(&mut self, record: &Record) {
        let e = &record.envelope;
        let key = (e.owner, e.id.clone());
        match &record.data {
            RecordData::Vacancy(v) => {
                self.remove_vacancy(&key);
                if e.status != Status::Voided {
                    *self.dates.entry(v.reported_on).or_default() += 1;
                }
                if let Some(p) = PublicVacancy::of(e.owner, &e.id, e.status, v) {
                    self.insert_vacancy(p);
                }
            }
            RecordData::Employer(emp) => {
                if e.status == Status::Voided {
                    self.employers.remove(&key);
                    self.employers_lower.remove(&key);
                } else {
                    self.employers_lower
                        .insert(key.clone(), emp.name.to_lowercase());
                    self.employers.insert(key, emp.name.clone());
                }
            }
            RecordData::Office(o) => match PublicOffice::of(e.owner, &e.id, e.status, o) {
                Some(p) => {
                    self.offices.insert(key, p);
                }
                None => {
                    self.offices.remove(&key);
                }
            },
            _ => return,
        }
        self.generation += 1;
    }

    fn insert_vacancy(&mut self, p: PublicVacancy) {
        let slot = match self.free.pop() {
            Some(slot) => slot,
            None => {
                self.slots.push(None);
                Slot::try_from(self.slots.len() - 1).unwrap_or(Slot::MAX)
            }
        };
        self.index.insert(slot, &p);
        self.ids.insert(p.key(), slot);
        if let Some(place) = self.slots.get_mut(slot as usize) {
            *place = Some(p);
        }
    }

    fn remove_vacancy(&mut self, key: &Key) {
        let Some(slot) = self.ids.remove(key) else {
            return;
        };
        let Some(old) = self.slots.get_mut(slot as usize).and_then(Option::take) else {
            return;
        };
        self.free.push(slot);
        self.index.remove(slot, &old);
    }

    /// The vacancy in `slot`.
    fn at(&self, slot: Slot) -> Option<&PublicVacancy> {
        self.slots.get(slot as usize).and_then(Option::as_ref)
    }

    /// Moves with every change to what the board holds.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Vacancies listed (before the date filter).
    pub fn listed(&self) -> usize {
        self.ids.len()
    }

    /// The board's date for `today`: today, or for a historical data set whose newest
    /// vacancy was reported before today, that day.
    pub fn board_date(&self, today: NaiveDate) -> NaiveDate {
        self.dates
            .keys()
            .next_back()
            .map_or(today, |newest| (*newest).min(today))
    }

    /// One vacancy with its employer's name and office, if it is listed.
    pub fn vacancy(&self, owner: NodeCode, id: &str) -> Option<PublicVacancy> {
        let slot = self.ids.get(&(owner, id.to_string()))?;
        self.at(*slot).map(|v| self.dressed(v))
    }

    /// `v` with its employer's name and its office filled in.
    fn dressed(&self, v: &PublicVacancy) -> PublicVacancy {
        let mut v = v.clone();
        v.employer = self
            .employers
            .get(&(v.owner, v.employer_id.clone()))
            .cloned();
        v.office = self.offices.get(&(v.owner, v.office_id.clone())).cloned();
        v
    }

    /// Every open office, by city and id.
    pub fn offices(&self) -> impl Iterator<Item = &PublicOffice> {
        self.offices.values()
    }
}
