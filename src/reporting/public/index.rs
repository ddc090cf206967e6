//! The board's indexes: for everything a search narrows by — occupation, area, posting
//! date, validity, wage, words of the title, employer — the set of board slots that have
//! it, as compressed bitmaps kept up to date vacancy by vacancy. A search intersects and
//! counts these sets and reads only the vacancies of the page it shows, so what it costs
//! follows the sets it touches, never the size of the board.

use std::cmp::Reverse;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use chrono::NaiveDate;
use roaring::{MultiOps, RoaringBitmap};

use super::{Key, PublicVacancy, Slot};

/// A set of board slots.
pub(super) type Slots = RoaringBitmap;

/// One character of lower-cased title text, or two adjacent ones: a title holds a word
/// of one or two characters exactly when it holds that gram, and a longer word only if
/// it holds every pair of the word's adjacent characters.
type Gram = (char, Option<char>);

/// The slot sets of every listed vacancy.
#[derive(Debug, Default)]
pub(super) struct Index {
    listed: Slots,
    by_occupation: BTreeMap<String, Slots>,
    by_area: BTreeMap<String, Slots>,
    /// Newest first, as the board lists by default.
    by_posted: BTreeMap<Reverse<NaiveDate>, Slots>,
    valid_from: BTreeMap<NaiveDate, Slots>,
    valid_until: BTreeMap<NaiveDate, Slots>,
    /// By the top of the wage range (its upper bound, else its lower).
    by_top_wage: BTreeMap<u32, Slots>,
    /// By the bottom of the wage range (its lower bound, else its upper).
    by_low_wage: BTreeMap<u32, Slots>,
    /// Vacancies that state no wage.
    unpaid: Slots,
    by_employer: HashMap<Key, Slots>,
    grams: HashMap<Gram, Slots>,
}

/// Every gram of `text`: each character, and each pair of adjacent characters.
fn grams(text: &str) -> Vec<Gram> {
    let chars: Vec<char> = text.chars().collect();
    let singles = chars.iter().map(|c| (*c, None));
    let pairs = chars.windows(2).map(|w| (w[0], Some(w[1])));
    singles.chain(pairs).collect()
}

fn add<K: Ord>(index: &mut BTreeMap<K, Slots>, key: K, slot: Slot) {
    index.entry(key).or_default().insert(slot);
}

fn take<K: Ord>(index: &mut BTreeMap<K, Slots>, key: &K, slot: Slot) {
    if let Some(set) = index.get_mut(key) {
        set.remove(slot);
        if set.is_empty() {
            index.remove(key);
        }
    }
}

fn take_hashed<K: Hash + Eq>(index: &mut HashMap<K, Slots>, key: &K, slot: Slot) {
    if let Some(set) = index.get_mut(key) {
        set.remove(slot);
        if set.is_empty() {
            index.remove(key);
        }
    }
}

/// The top and the bottom of `v`'s wage range, if it states one.
fn wage_bounds(v: &PublicVacancy) -> Option<(u32, u32)> {
    let top = v.wage_max.or(v.wage_min)?;
    let low = v.wage_min.or(v.wage_max)?;
    Some((top, low))
}

/// The union of the sets under every key of `range` of `index`.
fn union_over<'a, K: Ord + 'a>(sets: impl Iterator<Item = (&'a K, &'a Slots)>) -> Slots {
    sets.map(|(_, s)| s).union()
}

impl Index {
    /// Indexes `v` in `slot`.
    pub(super) fn insert(&mut self, slot: Slot, v: &PublicVacancy) {
        self.listed.insert(slot);
        add(&mut self.by_occupation, v.occupation.clone(), slot);
        add(&mut self.by_area, v.area.clone(), slot);
        add(&mut self.by_posted, Reverse(v.posted_on), slot);
        add(&mut self.valid_from, v.valid_from, slot);
        add(&mut self.valid_until, v.valid_until, slot);
        match wage_bounds(v) {
            Some((top, low)) => {
                add(&mut self.by_top_wage, top, slot);
                add(&mut self.by_low_wage, low, slot);
            }
            None => {
                self.unpaid.insert(slot);
            }
        }
        self.by_employer
            .entry((v.owner, v.employer_id.clone()))
            .or_default()
            .insert(slot);
        for gram in grams(&v.title_lower) {
            self.grams.entry(gram).or_default().insert(slot);
        }
    }

    /// Forgets `v`, indexed in `slot`.
    pub(super) fn remove(&mut self, slot: Slot, v: &PublicVacancy) {
        self.listed.remove(slot);
        take(&mut self.by_occupation, &v.occupation, slot);
        take(&mut self.by_area, &v.area, slot);
        take(&mut self.by_posted, &Reverse(v.posted_on), slot);
        take(&mut self.valid_from, &v.valid_from, slot);
        take(&mut self.valid_until, &v.valid_until, slot);
        if let Some((top, low)) = wage_bounds(v) {
            take(&mut self.by_top_wage, &top, slot);
            take(&mut self.by_low_wage, &low, slot);
        }
        self.unpaid.remove(slot);
        take_hashed(
            &mut self.by_employer,
            &(v.owner, v.employer_id.clone()),
            slot,
        );
        for gram in grams(&v.title_lower) {
            take_hashed(&mut self.grams, &gram, slot);
        }
    }

    /// Every listed vacancy, open or not.
    pub(super) fn listed(&self) -> &Slots {
        &self.listed
    }

    /// Vacancies whose occupation code starts with `prefix`.
    pub(super) fn occupation_under(&self, prefix: &str) -> Slots {
        union_over(
            self.by_occupation
                .range(prefix.to_string()..)
                .take_while(|(code, _)| code.starts_with(prefix)),
        )
    }

    /// Vacancies of exactly the occupation `code`.
    pub(super) fn occupation_exactly(&self, code: &str) -> Option<&Slots> {
        self.by_occupation.get(code)
    }

    /// Vacancies whose area code starts with `prefix`.
    pub(super) fn area_under(&self, prefix: &str) -> Slots {
        union_over(
            self.by_area
                .range(prefix.to_string()..)
                .take_while(|(code, _)| code.starts_with(prefix)),
        )
    }

    /// How many listed vacancies are open (within their validity) on `date`: counted
    /// from the validity sets' sizes, never by walking the vacancies.
    pub(super) fn open_count(&self, date: NaiveDate) -> u64 {
        let started: u64 = self.valid_from.range(..=date).map(|(_, s)| s.len()).sum();
        let ended: u64 = self.valid_until.range(..date).map(|(_, s)| s.len()).sum();
        started.saturating_sub(ended)
    }

    /// The vacancies open on `date`, or none when every listed vacancy is.
    pub(super) fn open_on(&self, date: NaiveDate) -> Option<Slots> {
        if self.open_count(date) == self.listed.len() {
            return None;
        }
        let started = union_over(self.valid_from.range(..=date));
        let ended = union_over(self.valid_until.range(..date));
        Some(started - ended)
    }

    /// Vacancies paying at least `wage` at the top of their range.
    pub(super) fn paying_at_least(&self, wage: u32) -> Slots {
        union_over(self.by_top_wage.range(wage..))
    }

    /// Vacancies whose range starts at or below `wage`.
    pub(super) fn starting_at_most(&self, wage: u32) -> Slots {
        union_over(self.by_low_wage.range(..=wage))
    }

    /// Vacancies posted on or after `date`.
    pub(super) fn posted_since(&self, date: NaiveDate) -> Slots {
        union_over(self.by_posted.range(..=Reverse(date)))
    }

    /// Vacancies of the employers `keys`.
    pub(super) fn of_employers<'a>(&self, keys: impl Iterator<Item = &'a Key>) -> Slots {
        keys.filter_map(|k| self.by_employer.get(k)).union()
    }

    /// Vacancies whose lower-cased title may hold `word` (lower-cased): exactly those
    /// for a word of one or two characters, a superset for a longer one, which the
    /// caller then checks against the title.
    pub(super) fn title_may_hold(&self, word: &str) -> Slots {
        let wanted = grams(word);
        let chars = word.chars().count();
        // The pairs when there are any (they narrow far more), else the one character.
        let narrowing: Vec<&Gram> = if chars >= 2 {
            wanted.iter().filter(|(_, b)| b.is_some()).collect()
        } else {
            wanted.iter().collect()
        };
        let mut sets = Vec::with_capacity(narrowing.len());
        for gram in narrowing {
            match self.grams.get(gram) {
                Some(set) => sets.push(set),
                None => return Slots::new(),
            }
        }
        if sets.is_empty() {
            return self.listed.clone();
        }
        sets.sort_by_key(|s| s.len());
        sets.into_iter().intersection()
    }

    /// Whether a title holding every gram of `word` surely holds the word itself.
    pub(super) fn grams_decide(word: &str) -> bool {
        word.chars().count() <= 2
    }

    /// The slots of `within` (every listed vacancy when none), newest posting first and
    /// by slot within a day, after skipping `skip`, at most `take` of them.
    pub(super) fn newest_first(
        &self,
        within: Option<&Slots>,
        skip: usize,
        take: usize,
    ) -> Vec<Slot> {
        let mut skip = skip as u64;
        let mut page = Vec::with_capacity(take);
        for day in self.by_posted.values() {
            if page.len() >= take {
                break;
            }
            let here = within.map_or(day.len(), |w| day.intersection_len(w));
            if skip >= here {
                skip -= here;
                continue;
            }
            let chosen = within.map_or_else(|| day.clone(), |w| day & w);
            let from = usize::try_from(skip).unwrap_or(usize::MAX);
            skip = 0;
            page.extend(chosen.iter().skip(from).take(take - page.len()));
        }
        page
    }

    /// The slots of `within` (every listed vacancy when none) in groups of equal pay,
    /// highest first, those stating no wage last (with any that pay 0).
    pub(super) fn by_pay<'a>(
        &'a self,
        within: Option<&'a Slots>,
    ) -> impl Iterator<Item = Slots> + 'a {
        let keep = move |set: &Slots| within.map_or_else(|| set.clone(), |w| set & w);
        let paid = self
            .by_top_wage
            .iter()
            .rev()
            .filter(|(top, _)| **top > 0)
            .map(move |(_, set)| keep(set));
        let zero = self
            .by_top_wage
            .get(&0)
            .map_or_else(|| keep(&self.unpaid), |set| keep(&(set | &self.unpaid)));
        paid.chain(std::iter::once(zero)).filter(|s| !s.is_empty())
    }
}
