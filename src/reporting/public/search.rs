//! Searching the board: by occupation (a code, or words of its name in the
//! classification in force), area (a district or county, or a prefix of one), wage
//! range, posting date, employer name and words of the title; paged and sorted. Every
//! query is bounded (its text, its page size, how deep it pages), and answers from the
//! board's indexes: the occupation and area indexes narrow the candidates, the posting
//! order serves the default sort without sorting.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize};

use super::index::{Index, Slots};
use super::{Board, Key, PublicVacancy, Slot};
use crate::core::model::NodeCode;

/// Largest page.
pub const MAX_PER_PAGE: usize = 50;
/// Default page size.
pub const DEFAULT_PER_PAGE: usize = 20;
/// How deep one may page: `page × per_page` at most this.
pub const MAX_DEPTH: usize = 10_000;
/// Longest text a query term may be, in characters.
pub const MAX_TERM_CHARS: usize = 64;

/// How results are ordered.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sort {
    /// Newest posting first.
    #[default]
    Newest,
    /// Highest wage first (by its upper bound, else its lower).
    Wage,
}

impl std::str::FromStr for Sort {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "newest" => Ok(Sort::Newest),
            "wage" => Ok(Sort::Wage),
            other => Err(format!("sort {other:?}: expected newest or wage")),
        }
    }
}

/// A parameter left empty (a search form sends every field, filled or not) is absent.
fn blank_is_none<'de, D, T>(d: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr,
    T::Err: std::fmt::Display,
{
    let text: Option<String> = Option::deserialize(d)?;
    match text.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(t) => t.parse().map(Some).map_err(serde::de::Error::custom),
    }
}

/// Like [`blank_is_none`], the default when absent or empty.
fn blank_is_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: std::str::FromStr + Default,
    T::Err: std::fmt::Display,
{
    blank_is_none(d).map(Option::unwrap_or_default)
}

/// A search, as the public pages and API take it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Query {
    /// Words of the title, the employer's name or the occupation's name.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub q: Option<String>,
    /// An occupation code or its prefix (`4-07`), or words of its name.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub occupation: Option<String>,
    /// A division code or its prefix (`4401` for every district of 广州).
    #[serde(default, deserialize_with = "blank_is_none")]
    pub area: Option<String>,
    /// Lowest monthly wage wanted: vacancies paying at least this at their top.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub wage_min: Option<u32>,
    /// Highest: vacancies whose lowest pay is at most this.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub wage_max: Option<u32>,
    /// Posted on or after.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub posted_from: Option<NaiveDate>,
    /// Words of the employer's name.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub employer: Option<String>,
    /// Order.
    #[serde(default, deserialize_with = "blank_is_default")]
    pub sort: Sort,
    /// Page, from 1.
    #[serde(default, deserialize_with = "blank_is_none")]
    pub page: Option<usize>,
    /// Results per page, at most [`MAX_PER_PAGE`].
    #[serde(default, deserialize_with = "blank_is_none")]
    pub per_page: Option<usize>,
}

/// Why a query is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QueryError {
    /// A text term is too long.
    #[error("{0} is longer than {MAX_TERM_CHARS} characters")]
    TooLong(&'static str),
    /// A page size or depth out of bounds.
    #[error("pages hold 1 to {MAX_PER_PAGE} results and reach at most result {MAX_DEPTH}")]
    Paging,
}

impl Query {
    /// The page (from 1) and page size, checked against the bounds.
    pub fn paging(&self) -> Result<(usize, usize), QueryError> {
        let per_page = self.per_page.unwrap_or(DEFAULT_PER_PAGE);
        let page = self.page.unwrap_or(1);
        if per_page == 0 || per_page > MAX_PER_PAGE || page == 0 || page * per_page > MAX_DEPTH {
            return Err(QueryError::Paging);
        }
        Ok((page, per_page))
    }

    fn check(&self) -> Result<(), QueryError> {
        for (name, term) in [
            ("q", &self.q),
            ("occupation", &self.occupation),
            ("area", &self.area),
            ("employer", &self.employer),
        ] {
            if term
                .as_ref()
                .is_some_and(|t| t.chars().count() > MAX_TERM_CHARS)
            {
                return Err(QueryError::TooLong(name));
            }
        }
        self.paging().map(|_| ())
    }
}

/// One page of results.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Page {
    /// Vacancies matching, over every page.
    pub total: usize,
    /// The board's date the listing is for.
    pub date: NaiveDate,
    /// This page.
    pub items: Vec<PublicVacancy>,
}

/// The words of `text` (split on white space), lowercased; empty when there is none.
fn words(text: Option<&String>) -> Vec<String> {
    text.map(|t| t.split_whitespace().map(str::to_lowercase).collect())
        .unwrap_or_default()
}

fn contains_all(haystack: &str, words: &[String]) -> bool {
    let haystack = haystack.to_lowercase();
    words.iter().all(|w| haystack.contains(w.as_str()))
}

/// The intersection of `sets`, smallest first; none when there is no set.
fn all_of(mut sets: Vec<Slots>) -> Option<Slots> {
    sets.sort_by_key(Slots::len);
    let mut sets = sets.into_iter();
    let first = sets.next()?;
    Some(sets.fold(first, |acc, s| acc & s))
}

impl Board {
    /// Answers `query` on the board's `date`; `occupation_names` (code → name, the
    /// classification in force) lets words find an occupation.
    pub fn search(
        &self,
        query: &Query,
        date: NaiveDate,
        occupation_names: &BTreeMap<String, String>,
    ) -> Result<Page, QueryError> {
        query.check()?;
        let (page, per_page) = query.paging()?;
        let within = all_of(self.narrowing(query, date, occupation_names));
        let total = within
            .as_ref()
            .map_or(self.index.listed().len(), Slots::len);
        let skip = (page - 1) * per_page;
        let slots = match query.sort {
            Sort::Newest => self.index.newest_first(within.as_ref(), skip, per_page),
            Sort::Wage => self.by_pay(within.as_ref(), skip, per_page),
        };
        Ok(Page {
            total: usize::try_from(total).unwrap_or(usize::MAX),
            date,
            items: slots
                .into_iter()
                .filter_map(|slot| self.at(slot))
                .map(|v| self.dressed(v))
                .collect(),
        })
    }

    /// One set of slots for every term of `query` that narrows, and the vacancies open
    /// on `date` unless all are.
    fn narrowing(
        &self,
        query: &Query,
        date: NaiveDate,
        occupation_names: &BTreeMap<String, String>,
    ) -> Vec<Slots> {
        let index = &self.index;
        let mut sets = Vec::new();
        if let Some(term) = &query.occupation {
            sets.push(self.occupation_slots(term.trim(), occupation_names));
        }
        if let Some(area) = &query.area {
            sets.push(index.area_under(area.trim()));
        }
        if let Some(wage) = query.wage_min {
            sets.push(index.paying_at_least(wage));
        }
        if let Some(wage) = query.wage_max {
            sets.push(index.starting_at_most(wage));
        }
        if let Some(day) = query.posted_from {
            sets.push(index.posted_since(day));
        }
        let employer = words(query.employer.as_ref());
        if !employer.is_empty() {
            sets.push(index.of_employers(self.employers_named(&employer)));
        }
        for word in words(query.q.as_ref()) {
            sets.push(self.word_slots(&word, occupation_names));
        }
        sets.extend(index.open_on(date));
        sets
    }

    /// An occupation term: a code or its prefix, or words of a name (every code whose
    /// name holds them, and its sub-codes).
    fn occupation_slots(&self, term: &str, occupation_names: &BTreeMap<String, String>) -> Slots {
        if term.starts_with(|c: char| c.is_ascii_digit()) {
            return self.index.occupation_under(term);
        }
        let wanted = words(Some(&term.to_string()));
        occupation_names
            .iter()
            .filter(|(_, name)| contains_all(name, &wanted))
            .map(|(code, _)| self.index.occupation_under(code))
            .fold(Slots::new(), |acc, s| acc | s)
    }

    /// The keys of the employers whose name holds every one of `words`.
    fn employers_named<'a>(&'a self, words: &'a [String]) -> impl Iterator<Item = &'a Key> {
        self.employers_lower
            .iter()
            .filter(|(_, name)| words.iter().all(|w| name.contains(w.as_str())))
            .map(|(key, _)| key)
    }

    /// Vacancies holding `word` (lower-cased) in their title, their employer's name or
    /// their occupation's name.
    fn word_slots(&self, word: &str, occupation_names: &BTreeMap<String, String>) -> Slots {
        let mut titled = self.index.title_may_hold(word);
        if !Index::grams_decide(word) {
            titled.retain(|slot| self.at(slot).is_some_and(|v| v.title_lower.contains(word)));
        }
        let wanted = [word.to_string()];
        let employed = self.index.of_employers(self.employers_named(&wanted));
        let named = occupation_names
            .iter()
            .filter(|(_, name)| name.to_lowercase().contains(word))
            .filter_map(|(code, _)| self.index.occupation_exactly(code));
        named.fold(titled | employed, |acc, s| acc | s)
    }

    /// The page of `within` by pay, highest first; equal pay by city and id.
    fn by_pay(&self, within: Option<&Slots>, skip: usize, take: usize) -> Vec<Slot> {
        let mut skip = skip as u64;
        let mut page = Vec::with_capacity(take);
        for group in self.index.by_pay(within) {
            if page.len() >= take {
                break;
            }
            if skip >= group.len() {
                skip -= group.len();
                continue;
            }
            let mut members: Vec<(NodeCode, &str, Slot)> = group
                .iter()
                .filter_map(|slot| self.at(slot).map(|v| (v.owner, v.id.as_str(), slot)))
                .collect();
            members.sort_unstable();
            let from = usize::try_from(skip).unwrap_or(usize::MAX);
            skip = 0;
            page.extend(
                members
                    .iter()
                    .skip(from)
                    .take(take - page.len())
                    .map(|(_, _, s)| *s),
            );
        }
        page
    }

    /// The newest vacancies listed on `date`, at most `n`.
    pub fn newest(&self, date: NaiveDate, n: usize) -> Vec<PublicVacancy> {
        let open = self.index.open_on(date);
        self.index
            .newest_first(open.as_ref(), 0, n)
            .into_iter()
            .filter_map(|slot| self.at(slot))
            .map(|v| self.dressed(v))
            .collect()
    }
}
