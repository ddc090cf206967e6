//! The national tree: the ministry, all 31 provincial units and 100 cities, shared by
//! `lmsync demo --national` and `benches/national.rs`, and its scaled-down versions.
//!
//! Every built-in pilot city is in it; the other cities are real prefecture-level units
//! (GB/T 2260, 1999) of the provinces with the fewest cities, so that every province has
//! 1–5. The four municipalities have no pilot and no prefecture-level city: their
//! stand-ins are the municipality's district and county groups (`XX0100`, `XX0200`).

use super::OwnerDigests;
use crate::core::model::tables::{PILOT_CITIES, PROVINCES};
use crate::core::model::{NodeCode, Tier};

/// Cities of the national tree.
pub const NATIONAL_CITIES: usize = 100;

/// Most cities one province may have in the tree.
pub const MAX_PER_PROVINCE: usize = 5;

/// Other prefecture-level units, by province, in the order they are taken: (code, name).
const FILLERS: &[(u32, &str)] = &[
    (110100, "北京市市辖区"),
    (110200, "北京市县"),
    (120100, "天津市市辖区"),
    (120200, "天津市县"),
    (130300, "秦皇岛市"),
    (130500, "邢台市"),
    (140300, "阳泉市"),
    (140400, "长治市"),
    (150300, "乌海市"),
    (150400, "赤峰市"),
    (210500, "本溪市"),
    (220300, "四平市"),
    (220400, "辽源市"),
    (230300, "鸡西市"),
    (230400, "鹤岗市"),
    (310100, "上海市市辖区"),
    (310200, "上海市县"),
    (320300, "徐州市"),
    (330400, "嘉兴市"),
    (330500, "湖州市"),
    (340300, "蚌埠市"),
    (340400, "淮南市"),
    (350300, "莆田市"),
    (350500, "泉州市"),
    (360200, "景德镇市"),
    (360300, "萍乡市"),
    (370400, "枣庄市"),
    (410400, "平顶山市"),
    (410500, "安阳市"),
    (430400, "衡阳市"),
    (430500, "邵阳市"),
    (440200, "韶关市"),
    (450300, "桂林市"),
    (450400, "梧州市"),
    (460200, "三亚市"),
    (500100, "重庆市市辖区"),
    (500200, "重庆市县"),
    (510400, "攀枝花市"),
    (510500, "泸州市"),
    (520200, "六盘水市"),
    (522200, "铜仁地区"),
    (530400, "玉溪市"),
    (532300, "楚雄彝族自治州"),
    (542100, "昌都地区"),
    (542200, "山南地区"),
    (610200, "铜川市"),
    (610400, "咸阳市"),
    (620200, "嘉峪关市"),
    (620300, "金昌市"),
    (632100, "海东地区"),
    (632200, "海北藏族自治州"),
    (640300, "吴忠市"),
    (652100, "吐鲁番地区"),
    (652200, "哈密地区"),
];

/// Provinces a scaled-down tree takes first: those of the demo's first cities, so a small
/// run looks like the demo's.
const PREFERRED_PROVINCES: [u32; 5] = [440000, 320000, 210000, 220000, 420000];

/// One province and its cities.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    /// The province (or autonomous region or municipality).
    pub province: NodeCode,
    /// Its cities in the tree.
    pub cities: Vec<NodeCode>,
}

/// A display name: the built-in one, a filler's, else the code.
pub fn display_name(code: NodeCode) -> String {
    code.builtin_name()
        .or_else(|| filler_name(code))
        .map_or_else(|| code.to_string(), str::to_string)
}

fn filler_name(code: NodeCode) -> Option<&'static str> {
    FILLERS
        .iter()
        .find(|(c, _)| *c == code.get())
        .map(|(_, n)| *n)
}

/// The full national tree: 31 provinces and [`NATIONAL_CITIES`] cities, in code order.
pub fn national_tree() -> Vec<Branch> {
    let mut branches = pilot_branches();
    fill(&mut branches, NATIONAL_CITIES);
    branches
}

/// A smaller tree: `provinces` provinces (the demo's first, then by code) sharing
/// `cities` cities of the national tree round-robin, so each has at least one when
/// `cities ≥ provinces`. Provinces left without a city are dropped; in code order.
pub fn scaled_tree(provinces: usize, cities: usize) -> Vec<Branch> {
    let mut full = national_tree();
    full.sort_by_key(|b| {
        let rank = PREFERRED_PROVINCES
            .iter()
            .position(|p| *p == b.province.get());
        (rank.unwrap_or(usize::MAX), b.province)
    });
    full.truncate(provinces);
    let mut out: Vec<Branch> = full
        .iter()
        .map(|b| Branch {
            province: b.province,
            cities: Vec::new(),
        })
        .collect();
    let mut taken = 0;
    for round in 0..MAX_PER_PROVINCE {
        for (from, to) in full.iter().zip(out.iter_mut()) {
            if let Some(city) = from.cities.get(round).filter(|_| taken < cities) {
                to.cities.push(*city);
                taken += 1;
            }
        }
    }
    out.retain(|b| !b.cities.is_empty());
    out.sort_by_key(|b| b.province);
    out
}

/// Every city of `tree`, province by province.
pub fn cities_of(tree: &[Branch]) -> Vec<NodeCode> {
    tree.iter().flat_map(|b| b.cities.iter().copied()).collect()
}

/// One province's standing in a running demo: how many of its cities hold the same
/// records at city, province and ministry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProvinceStanding {
    /// The province.
    pub province: NodeCode,
    /// Its name.
    pub name: String,
    /// Its cities in the demo.
    pub cities: usize,
    /// Those whose digest is equal (and not empty) at all three tiers.
    pub converged: usize,
    /// Records of its cities held at the cities, at the province and at the ministry.
    pub records: [u64; 3],
}

impl ProvinceStanding {
    /// True when every city of the province has converged.
    pub fn converged(&self) -> bool {
        self.converged == self.cities
    }
}

/// The cities' digests summed up per province, in province order.
pub fn by_province(digests: &[OwnerDigests]) -> Vec<ProvinceStanding> {
    let mut out: Vec<ProvinceStanding> = Vec::new();
    for d in digests {
        let Some(province) = d.city.province() else {
            continue;
        };
        let i = match out.iter().position(|s| s.province == province) {
            Some(i) => i,
            None => {
                out.push(ProvinceStanding {
                    province,
                    name: display_name(province),
                    cities: 0,
                    converged: 0,
                    records: [0; 3],
                });
                out.len() - 1
            }
        };
        let standing = &mut out[i];
        standing.cities += 1;
        standing.converged += usize::from(d.matches());
        for (sum, tier) in standing.records.iter_mut().zip(&d.tiers) {
            *sum += tier.0;
        }
    }
    out.sort_by_key(|s| s.province);
    out
}

/// Every province with its valid pilot cities.
fn pilot_branches() -> Vec<Branch> {
    PROVINCES
        .iter()
        .filter_map(|(p, _, _)| NodeCode::new(*p).ok())
        .map(|province| Branch {
            province,
            cities: PILOT_CITIES
                .iter()
                .filter_map(|(c, _, _, _)| city_of(*c, province))
                .take(MAX_PER_PROVINCE)
                .collect(),
        })
        .collect()
}

/// `code` as a city of `province`, if it is one.
fn city_of(code: u32, province: NodeCode) -> Option<NodeCode> {
    NodeCode::new(code)
        .ok()
        .filter(|c| c.tier() == Tier::City && c.province() == Some(province))
}

/// Adds fillers, one at a time to the province with the fewest cities that still has one
/// (the first in code order on a tie), until the tree holds `target` cities.
fn fill(branches: &mut [Branch], target: usize) {
    let mut total: usize = branches.iter().map(|b| b.cities.len()).sum();
    while total < target {
        let next = branches
            .iter_mut()
            .filter(|b| b.cities.len() < MAX_PER_PROVINCE)
            .filter_map(|b| next_filler(b).map(|c| (b, c)))
            .min_by_key(|(b, _)| (b.cities.len(), b.province));
        let Some((branch, city)) = next else { return };
        branch.cities.push(city);
        total += 1;
    }
}

/// The first filler of `branch`'s province not yet in it.
fn next_filler(branch: &Branch) -> Option<NodeCode> {
    FILLERS
        .iter()
        .filter_map(|(c, _)| city_of(*c, branch.province))
        .find(|c| !branch.cities.contains(c))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_national_tree_has_every_province_and_a_hundred_distinct_cities() {
        let tree = national_tree();
        assert_eq!(tree.len(), 31);
        assert_eq!(tree.len(), PROVINCES.len());
        let cities = cities_of(&tree);
        assert_eq!(cities.len(), NATIONAL_CITIES);
        let distinct: BTreeSet<NodeCode> = cities.iter().copied().collect();
        assert_eq!(distinct.len(), NATIONAL_CITIES);
        for branch in &tree {
            assert_eq!(branch.province.tier(), Tier::Province);
            assert!(
                (1..=MAX_PER_PROVINCE).contains(&branch.cities.len()),
                "{} has {} cities",
                branch.province,
                branch.cities.len()
            );
            for city in &branch.cities {
                assert_eq!(city.tier(), Tier::City);
                assert_eq!(city.parent(), Some(branch.province), "{city}");
                assert_eq!(NodeCode::new(city.get()), Ok(*city));
            }
        }
    }

    #[test]
    fn the_national_tree_holds_every_pilot_city() {
        let cities: BTreeSet<u32> = cities_of(&national_tree())
            .iter()
            .map(|c| c.get())
            .collect();
        for (code, name, _, _) in PILOT_CITIES {
            assert!(cities.contains(code), "{code} {name}");
        }
    }

    #[test]
    fn every_filler_is_a_valid_city_not_a_pilot() {
        for (code, name) in FILLERS {
            let c = NodeCode::new(*code).unwrap();
            assert_eq!(c.tier(), Tier::City, "{code} {name}");
            assert!(PILOT_CITIES.iter().all(|p| p.0 != *code), "{code}");
            assert_eq!(display_name(c), *name);
        }
    }

    #[test]
    fn standings_count_converged_cities_per_province() {
        let digest = |city: u32, tiers: [u64; 3]| OwnerDigests {
            city: NodeCode::new(city).unwrap(),
            name: String::new(),
            tiers: tiers.map(|n| (n, format!("root-{n}"))),
        };
        let standings = by_province(&[
            digest(440300, [5, 5, 5]),
            digest(320100, [4, 4, 3]),
            digest(440100, [7, 7, 7]),
        ]);
        assert_eq!(standings.len(), 2);
        assert_eq!(standings[0].province.get(), 320000);
        assert_eq!((standings[0].cities, standings[0].converged), (1, 0));
        assert!(!standings[0].converged());
        assert_eq!(standings[1].records, [12, 12, 12]);
        assert!(standings[1].converged());
        assert_eq!(standings[1].name, "广东省");
    }

    #[test]
    fn a_scaled_tree_spreads_its_cities_over_its_provinces() {
        let tree = scaled_tree(2, 3);
        assert_eq!(tree.len(), 2);
        assert_eq!(cities_of(&tree).len(), 3);
        assert!(tree.iter().all(|b| !b.cities.is_empty()));
        assert!(tree.iter().any(|b| b.province.get() == 440000));
        let one = scaled_tree(5, 2);
        assert_eq!(one.len(), 2, "provinces without a city are dropped");
        assert_eq!(scaled_tree(31, 100), national_tree());
        assert_eq!(cities_of(&scaled_tree(31, 1000)).len(), NATIONAL_CITIES);
    }
}
