//! Searching the board: by occupation (a code, or words of its name in the
//! classification in force), area (a district or county, or a prefix of one), wage
//! range, posting date, employer name and words of the title; paged and sorted. Every
//! query is bounded (its text, its page size, how deep it pages), and answers from the
//! board's indexes: the occupation and area indexes narrow the candidates, the posting
//! order serves the default sort without sorting.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize};

use super::{Board, PublicVacancy, Slot};

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

/// A set of slots, one bit each.
#[derive(Debug, Clone)]
struct Bits(Vec<u64>);

impl Bits {
    fn empty(slots: usize) -> Bits {
        Bits(vec![0; slots.div_ceil(64)])
    }

    fn set(&mut self, slot: Slot) {
        let i = slot as usize;
        if let Some(word) = self.0.get_mut(i / 64) {
            *word |= 1 << (i % 64);
        }
    }

    fn has(&self, slot: Slot) -> bool {
        let i = slot as usize;
        self.0.get(i / 64).is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    fn and(mut self, other: &Bits) -> Bits {
        self.0.iter_mut().zip(&other.0).for_each(|(a, b)| *a &= b);
        self
    }
}

/// Marks in `bits` the slots under every code of `index` starting with `prefix`.
fn under_prefix(index: &BTreeMap<String, BTreeSet<Slot>>, prefix: &str, bits: &mut Bits) {
    index
        .range(prefix.to_string()..)
        .take_while(|(code, _)| code.starts_with(prefix))
        .flat_map(|(_, slots)| slots.iter())
        .for_each(|slot| bits.set(*slot));
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
        let candidates = self.candidates(query, occupation_names);
        let q = words(query.q.as_ref());
        let employer = words(query.employer.as_ref());
        let matches = |v: &PublicVacancy| {
            v.open_on(date)
                && query
                    .wage_min
                    .is_none_or(|w| v.wage_max.or(v.wage_min).is_some_and(|top| top >= w))
                && query
                    .wage_max
                    .is_none_or(|w| v.wage_min.or(v.wage_max).is_some_and(|low| low <= w))
                && query.posted_from.is_none_or(|d| v.posted_on >= d)
                && (employer.is_empty()
                    || self
                        .employer_name(v)
                        .is_some_and(|n| contains_all(n, &employer)))
                && (q.is_empty() || self.matches_words(v, &q, occupation_names))
        };
        let only_the_date = candidates.is_none()
            && query.sort == Sort::Newest
            && query.wage_min.is_none()
            && query.wage_max.is_none()
            && query.posted_from.is_none()
            && employer.is_empty()
            && q.is_empty();
        if only_the_date {
            // The whole board: counted by dates, its page read off the posting order.
            let items = self
                .by_posted
                .iter()
                .filter_map(|(_, slot)| self.at(*slot))
                .filter(|v| v.open_on(date))
                .skip((page - 1) * per_page)
                .take(per_page)
                .map(|v| self.dressed(v))
                .collect();
            return Ok(Page {
                total: self.open_count(date),
                date,
                items,
            });
        }
        // Walk the posting order (the default sort), keeping the slots the indexes allow.
        let walk = self
            .by_posted
            .iter()
            .filter(|(_, slot)| candidates.as_ref().is_none_or(|bits| bits.has(*slot)))
            .filter_map(|(_, slot)| self.at(*slot))
            .filter(|v| matches(v));
        let skip = (page - 1) * per_page;
        let (total, items) = match query.sort {
            // Counted and paged in the one walk, nothing sorted or kept but the page.
            Sort::Newest => {
                let mut total = 0;
                let mut items = Vec::with_capacity(per_page);
                for v in walk {
                    if total >= skip && items.len() < per_page {
                        items.push(self.dressed(v));
                    }
                    total += 1;
                }
                (total, items)
            }
            Sort::Wage => {
                let mut found: Vec<&PublicVacancy> = walk.collect();
                found.sort_by(|a, b| {
                    let pay = |v: &PublicVacancy| v.wage_max.or(v.wage_min).unwrap_or(0);
                    pay(b)
                        .cmp(&pay(a))
                        .then_with(|| (a.owner, &a.id).cmp(&(b.owner, &b.id)))
                });
                let items = found
                    .iter()
                    .skip(skip)
                    .take(per_page)
                    .map(|v| self.dressed(v))
                    .collect();
                (found.len(), items)
            }
        };
        Ok(Page { total, date, items })
    }

    /// The slots the occupation and area terms allow, or none when neither narrows.
    fn candidates(
        &self,
        query: &Query,
        occupation_names: &BTreeMap<String, String>,
    ) -> Option<Bits> {
        let size = self.slots.len();
        let by_occupation = query.occupation.as_ref().map(|term| {
            let term = term.trim();
            let mut bits = Bits::empty(size);
            if term.starts_with(|c: char| c.is_ascii_digit()) {
                under_prefix(&self.by_occupation, term, &mut bits);
            } else {
                // Words of a name: every code whose name holds them, and its sub-codes.
                let wanted = words(Some(&term.to_string()));
                occupation_names
                    .iter()
                    .filter(|(_, name)| contains_all(name, &wanted))
                    .for_each(|(code, _)| under_prefix(&self.by_occupation, code, &mut bits));
            }
            bits
        });
        let by_area = query.area.as_ref().map(|a| {
            let mut bits = Bits::empty(size);
            under_prefix(&self.by_area, a.trim(), &mut bits);
            bits
        });
        match (by_occupation, by_area) {
            (Some(o), Some(a)) => Some(o.and(&a)),
            (o, a) => o.or(a),
        }
    }

    fn employer_name(&self, v: &PublicVacancy) -> Option<&str> {
        self.employers
            .get(&(v.owner, v.employer_id.clone()))
            .map(String::as_str)
    }

    fn matches_words(
        &self,
        v: &PublicVacancy,
        words: &[String],
        occupation_names: &BTreeMap<String, String>,
    ) -> bool {
        let text = format!(
            "{} {} {}",
            v.title,
            self.employer_name(v).unwrap_or(""),
            occupation_names
                .get(&v.occupation)
                .map_or("", String::as_str)
        );
        contains_all(&text, words)
    }

    /// The newest vacancies listed on `date`, at most `n`.
    pub fn newest(&self, date: NaiveDate, n: usize) -> Vec<PublicVacancy> {
        self.by_posted
            .iter()
            .filter_map(|(_, slot)| self.at(*slot))
            .filter(|v| v.open_on(date))
            .take(n)
            .map(|v| self.dressed(v))
            .collect()
    }
}
