//! The city's standing structure, emitted before any event: offices (city centre,
//! district centres, street stations, the UI agency, training centres), employers and the
//! enterprises' re-employment service centres, plus the monthly batch of training courses.
//!
//! Counts follow `docs/reference/synthetic-data.md` Offices not yet networked at the start get a later
//! version when they join the city network (the 0.3 → 0.9 ramp).

use chrono::NaiveDate;

use super::codes::{self, GIVEN, SURNAMES, TRADE};
use super::dist::Draw;
use super::{Generator, Pending, START, plus_days};
use crate::core::model::kinds::{
    ChannelType, CourseLevel, Employer, Fee, Funding, Office, OfficeService, OfficeType,
    PublicChannel, RecordData, SizeBand, TrainingCourse,
};

/// Ids of the city's offices, by role.
#[derive(Debug, Clone, Default)]
pub(super) struct Offices {
    pub(super) city_centre: String,
    /// District centres with their division codes.
    pub(super) districts: Vec<(String, String)>,
    pub(super) stations: Vec<String>,
    pub(super) ui_agency: String,
    pub(super) training: Vec<String>,
    /// Re-employment service centres with their enterprise's employer id.
    pub(super) rscs: Vec<(String, String)>,
}

/// What later records need to know about an employer.
#[derive(Debug, Clone)]
pub(super) struct EmployerRef {
    pub(super) id: String,
    pub(super) name: String,
    pub(super) industry: &'static str,
    pub(super) division: String,
    pub(super) org_code: String,
    pub(super) staff: u32,
    pub(super) ui: bool,
    /// State-owned or collective: the enterprises that ran re-employment centres.
    pub(super) public_sector: bool,
}

/// What later records need to know about a course.
#[derive(Debug, Clone)]
pub(super) struct CourseRef {
    pub(super) id: String,
    pub(super) start_on: NaiveDate,
    pub(super) end_on: NaiveDate,
    pub(super) fee: Fee,
}

/// How many recent courses stay available for offers.
const COURSES_KEPT: usize = 60;

/// The fields that differ between office types.
struct OfficeSpec {
    office_type: OfficeType,
    division: String,
    parent: Option<String>,
    employer: Option<String>,
    name: String,
}

impl Generator {
    /// Emits offices, employers and re-employment service centres.
    pub(super) fn set_up(&mut self) {
        self.city_offices();
        let employers = self.city.sized(50.0, 30, 200);
        for _ in 0..employers {
            self.new_employer();
        }
        self.rsc_offices();
    }

    fn city_offices(&mut self) {
        let centre_division = self.city.divisions[0].clone();
        let name = format!("{}劳动力市场", self.city.name);
        self.offices.city_centre = self.office(OfficeSpec::top(
            OfficeType::CityCentre,
            centre_division,
            name,
        ));
        let divisions = self.city.divisions.clone();
        for (n, division) in divisions.iter().enumerate() {
            self.district_offices(n, division);
        }
        let name = format!("{}社会保险经办中心", self.city.name);
        self.offices.ui_agency = self.office(OfficeSpec::top(
            OfficeType::UiAgency,
            divisions[0].clone(),
            name,
        ));
        for k in 1..=self.rng.between(1, 3) {
            let division = self.rng.one(&divisions).clone();
            let name = format!("{}第{k}就业训练中心", self.city.name);
            let id = self.office(OfficeSpec::top(OfficeType::TrainingCentre, division, name));
            self.offices.training.push(id);
        }
    }

    fn district_offices(&mut self, n: usize, division: &str) {
        let name = format!("{}第{}区职业介绍服务中心", self.city.name, n + 1);
        let mut spec = OfficeSpec::top(OfficeType::DistrictCentre, division.to_string(), name);
        spec.parent = Some(self.offices.city_centre.clone());
        let district = self.office(spec);
        self.offices
            .districts
            .push((district.clone(), division.to_string()));
        if n >= self.city.urban {
            return;
        }
        for k in 1..=self.rng.between(3, 7) {
            let name = format!("{}第{}区第{k}街道劳动保障服务站", self.city.name, n + 1);
            let mut spec = OfficeSpec::top(OfficeType::StreetStation, division.to_string(), name);
            spec.parent = Some(district.clone());
            let id = self.office(spec);
            self.offices.stations.push(id);
        }
    }

    /// One centre per state-owned or collective enterprise, up to the city's share.
    fn rsc_offices(&mut self) {
        let wanted = usize::try_from(self.city.sized(30.0, 8, 120)).unwrap_or(8);
        let mut hosts: Vec<EmployerRef> = self
            .employers
            .iter()
            .filter(|e| e.public_sector)
            .cloned()
            .collect();
        if hosts.is_empty() {
            hosts = self.employers.clone();
        }
        for host in hosts.into_iter().take(wanted) {
            let name = format!("{}再就业服务中心", host.name);
            let mut spec = OfficeSpec::top(
                OfficeType::ReemploymentServiceCentre,
                host.division.clone(),
                name,
            );
            spec.parent = Some(self.offices.city_centre.clone());
            spec.employer = Some(host.id.clone());
            let id = self.office(spec);
            self.offices.rscs.push((id, host.id));
        }
    }

    /// Emits one office, and schedules its networking if it is not networked yet.
    fn office(&mut self, spec: OfficeSpec) -> String {
        let opened_on = START - chrono::Days::new(u64::from(self.rng.between(60, 5000)));
        let networked = self.rng.chance(networked_share(spec.office_type));
        let networked_since = networked.then(|| self.day_between(opened_on, START));
        let office = Office {
            division_code: spec.division,
            office_type: spec.office_type,
            parent_office_id: spec.parent,
            employer_id: spec.employer,
            public_address: Some(format!("{}{}号", spec.name, self.rng.between(1, 300))),
            name: spec.name,
            opened_on,
            closed_on: None,
            networked,
            networked_since,
            public_channels: self.channels(spec.office_type, opened_on),
            services: services_of(spec.office_type),
            staff_count: staff_of(spec.office_type, &mut self.rng),
        };
        let id = self.emit(Pending::new(RecordData::Office(office.clone())));
        if !networked && self.rng.chance(0.85) {
            self.schedule_networking(&id, office);
        }
        id
    }

    fn schedule_networking(&mut self, id: &str, mut office: Office) {
        let on = plus_days(START, self.rng.between(20, 700));
        office.networked = true;
        office.networked_since = Some(on);
        self.schedule_emit(on, Pending::version(id, None, RecordData::Office(office)));
    }

    fn channels(&mut self, office_type: OfficeType, opened_on: NaiveDate) -> Vec<PublicChannel> {
        let wanted: &[(ChannelType, f64)] = match office_type {
            OfficeType::CityCentre => &[
                (ChannelType::DisplayScreen, 1.0),
                (ChannelType::BulletinBoard, 1.0),
                (ChannelType::FreeQueryTerminal, 1.0),
                (ChannelType::Website, 0.8),
                (ChannelType::Phone, 1.0),
            ],
            OfficeType::DistrictCentre => &[
                (ChannelType::DisplayScreen, 0.7),
                (ChannelType::BulletinBoard, 1.0),
                (ChannelType::FreeQueryTerminal, 0.4),
            ],
            OfficeType::StreetStation => &[(ChannelType::BulletinBoard, 0.9)],
            _ => &[(ChannelType::BulletinBoard, 0.5)],
        };
        let mut out = Vec::new();
        for (channel, p) in wanted {
            if self.rng.chance(*p) {
                let since = self.day_between(opened_on, START);
                let url = (*channel == ChannelType::Website)
                    .then(|| format!("http://www.ldsc{}.gov.cn/", self.city.code));
                out.push(PublicChannel {
                    channel: *channel,
                    since,
                    url,
                });
            }
        }
        out
    }

    fn new_employer(&mut self) {
        let ownership = codes::employer_type(&mut self.rng);
        let industry = codes::industry(&mut self.rng);
        let size_band = *self.rng.weighted(&[
            (SizeBand::Micro, 20),
            (SizeBand::Small, 40),
            (SizeBand::Medium, 28),
            (SizeBand::Large, 12),
        ]);
        let enterprise = ownership < "400";
        let ui = self.rng.chance(if enterprise { 0.85 } else { 0.5 });
        let employer = Employer {
            org_code: Some(self.org_code()),
            uscc: None,
            name: self.employer_name(industry, ownership),
            division_code: self.rng.one(&self.city.divisions).clone(),
            industry: industry.to_string(),
            ownership_type: ownership.to_string(),
            size_band,
            ui_participant: ui,
        };
        let staff = staff_in(size_band, &mut self.rng);
        let (org_code, division) = (
            employer.org_code.clone().unwrap_or_default(),
            employer.division_code.clone(),
        );
        let name = employer.name.clone();
        let id = self.emit(Pending::new(RecordData::Employer(employer)));
        let public_sector = matches!(ownership, "110" | "120");
        self.employers.push(EmployerRef {
            id,
            name,
            industry,
            division,
            org_code,
            staff,
            ui,
            public_sector,
        });
    }

    /// A GB 11714 organisation code: eight digits and the MOD 11 check character.
    fn org_code(&mut self) -> String {
        const WEIGHTS: [u32; 8] = [3, 7, 9, 10, 5, 8, 4, 2];
        let digits: Vec<u32> = (0..8).map(|_| self.rng.between(0, 9)).collect();
        let sum: u32 = digits.iter().zip(WEIGHTS).map(|(d, w)| d * w).sum();
        let check = match 11 - sum % 11 {
            10 => 'X',
            11 => '0',
            c => char::from_digit(c, 10).unwrap_or('0'),
        };
        let mut code: String = digits
            .iter()
            .filter_map(|d| char::from_digit(*d, 10))
            .collect();
        code.push(check);
        code
    }

    fn employer_name(&mut self, industry: &str, ownership: &str) -> String {
        if ownership == "500" {
            let person = format!("{}{}", self.rng.one(&SURNAMES), self.rng.one(&GIVEN));
            return format!(
                "{person}{}",
                self.rng.one(&["服装店", "饭馆", "修理部", "商店"])
            );
        }
        let trade = format!("{}{}", self.rng.one(&TRADE), self.rng.one(&TRADE));
        let suffix = self.rng.one(employer_suffixes(industry));
        format!("{}{trade}{suffix}", self.city.name)
    }

    /// Emits this month's training courses.
    pub(super) fn new_courses(&mut self) {
        for _ in 0..self.city.sized(6.0, 2, 30) {
            self.new_course();
        }
        let excess = self.courses.len().saturating_sub(COURSES_KEPT);
        self.courses.drain(..excess);
    }

    fn new_course(&mut self) {
        let occupation = self.occupations.training(&mut self.rng);
        let level = *self.rng.weighted(&[
            (CourseLevel::Entry, 30),
            (CourseLevel::Initial, 55),
            (CourseLevel::Intermediate, 15),
        ]);
        let fee = *self
            .rng
            .weighted(&[(Fee::Free, 55), (Fee::PartlyFree, 35), (Fee::Paid, 10)]);
        let start_on = self.soon(2, 25);
        let end_on = plus_days(start_on, self.rng.between(20, 120));
        let mut providers = self.offices.training.clone();
        providers.push(self.offices.city_centre.clone());
        let course = TrainingCourse {
            provider_office_id: self.rng.one(&providers).clone(),
            title: format!("{}再就业培训班", codes::occupation_name(occupation)),
            occupation: occupation.to_string(),
            level,
            start_on,
            end_on,
            seats: self.rng.between(20, 40),
            fee,
            funding: funding_for(fee, &mut self.rng),
            certificate: (level != CourseLevel::Entry).then(|| "职业资格证书".to_string()),
        };
        let id = self.emit(Pending::new(RecordData::TrainingCourse(course)));
        self.courses.push(CourseRef {
            id,
            start_on,
            end_on,
            fee,
        });
    }

    /// A uniform day in `from..before` (or `from` when the range is empty).
    fn day_between(&mut self, from: NaiveDate, before: NaiveDate) -> NaiveDate {
        let span = u32::try_from((before - from).num_days())
            .unwrap_or(1)
            .max(1);
        plus_days(from, self.rng.between(0, span - 1))
    }
}

impl OfficeSpec {
    fn top(office_type: OfficeType, division: String, name: String) -> OfficeSpec {
        OfficeSpec {
            office_type,
            division,
            parent: None,
            employer: None,
            name,
        }
    }
}

fn networked_share(office_type: OfficeType) -> f64 {
    match office_type {
        OfficeType::CityCentre => 1.0,
        OfficeType::UiAgency => 0.8,
        OfficeType::DistrictCentre => 0.5,
        OfficeType::TrainingCentre => 0.4,
        _ => 0.2,
    }
}

fn services_of(office_type: OfficeType) -> Vec<OfficeService> {
    use OfficeService as S;
    match office_type {
        OfficeType::CityCentre | OfficeType::DistrictCentre | OfficeType::PrivateAgency => {
            vec![
                S::Registration,
                S::Guidance,
                S::JobInfo,
                S::Referral,
                S::Tracking,
            ]
        }
        OfficeType::StreetStation => vec![S::Registration, S::JobInfo, S::Tracking],
        OfficeType::UiAgency => vec![S::Registration, S::UiClaims],
        OfficeType::TrainingCentre => vec![S::Guidance, S::Training],
        OfficeType::ReemploymentServiceCentre => {
            vec![
                S::Guidance,
                S::JobInfo,
                S::Referral,
                S::Training,
                S::Tracking,
            ]
        }
    }
}

fn staff_of<R: Draw>(office_type: OfficeType, rng: &mut R) -> u32 {
    match office_type {
        OfficeType::CityCentre => rng.between(30, 80),
        OfficeType::UiAgency => rng.between(20, 60),
        OfficeType::TrainingCentre => rng.between(10, 40),
        OfficeType::DistrictCentre => rng.between(8, 20),
        OfficeType::ReemploymentServiceCentre => rng.between(3, 12),
        _ => rng.between(2, 5),
    }
}

fn staff_in<R: Draw>(band: SizeBand, rng: &mut R) -> u32 {
    match band {
        SizeBand::Micro => rng.between(3, 19),
        SizeBand::Small => rng.between(20, 99),
        SizeBand::Medium => rng.between(100, 499),
        SizeBand::Large => rng.between(500, 5000),
    }
}

fn funding_for<R: Draw>(fee: Fee, rng: &mut R) -> Funding {
    match fee {
        Fee::Free if rng.chance(0.6) => Funding::UiFund,
        Fee::Free => Funding::Fiscal,
        Fee::PartlyFree => Funding::Mixed,
        Fee::Paid => Funding::Participant,
    }
}

fn employer_suffixes(industry: &str) -> &'static [&'static str] {
    match industry {
        "C" => &[
            "机械厂",
            "纺织厂",
            "电子有限公司",
            "食品厂",
            "服装厂",
            "化工厂",
        ],
        "H" => &["百货商店", "商贸有限公司", "酒家", "饭店", "超市"],
        "E" => &["建筑工程公司", "装饰工程有限公司"],
        "G" => &["运输公司", "物流有限公司"],
        "K" => &["物业管理公司", "宾馆", "家政服务社"],
        _ => &["有限公司", "实业公司"],
    }
}
