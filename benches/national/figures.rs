//! The national bench's figures and how they are printed: one line per figure,
//! `name = value unit (ratio …)`, as the other benches print theirs.

use std::collections::BTreeMap;
use std::time::Instant;

use lmsync::core::model::{NodeCode, Tier};

use super::Params;
use super::common::BATCH;
use super::feed::Ledger;
use super::measure::{self, quantile};

const MIB: f64 = (1 << 20) as f64;

/// City commit → ministry commit, per city.
#[derive(Debug, Default)]
pub struct Lags {
    /// (city, p50, p99, records measured), ms.
    pub per_city: Vec<(NodeCode, f64, f64, usize)>,
    /// Records whose seq the ministry was never seen holding.
    pub unseen: usize,
}

impl Lags {
    /// Lags of every city's acknowledgements from index `skip[city]` on, cities in
    /// `exclude` left out, against the ministry's `seen` seqs.
    pub fn measure(
        ledgers: &BTreeMap<NodeCode, Ledger>,
        seen: &BTreeMap<NodeCode, Vec<(Instant, u64)>>,
        skip: &BTreeMap<NodeCode, usize>,
        exclude: &[NodeCode],
    ) -> Lags {
        let mut out = Lags::default();
        for (city, ledger) in ledgers.iter().filter(|(c, _)| !exclude.contains(c)) {
            let steps = seen.get(city).map_or(&[][..], Vec::as_slice);
            let from = skip.get(city).copied().unwrap_or(0).min(ledger.acks.len());
            let all = measure::lags_ms(&ledger.acks[from..], steps);
            out.unseen += all.iter().filter(|l| l.is_none()).count();
            let mut known: Vec<f64> = all.into_iter().flatten().collect();
            let n = known.len();
            let (p50, p99) = (quantile(&mut known, 0.5), quantile(&mut known, 0.99));
            out.per_city.push((*city, p50, p99, n));
        }
        out
    }

    /// Three lines: the median city's p50 and p99, the slowest city's p99.
    fn print(&self, name: &str, what: &str, p: &Params) {
        let records: usize = self.per_city.iter().map(|l| l.3).sum();
        let p50 = median(self.per_city.iter().map(|l| l.1).collect());
        let p99s: Vec<f64> = self.per_city.iter().map(|l| l.2).collect();
        let median_p99 = median(p99s.clone());
        let Some(slowest) = self.per_city.iter().max_by(|a, b| a.2.total_cmp(&b.2)) else {
            println!("{name}_p99_max = none ({what}: no city measured)");
            return;
        };
        let fastest = p99s.iter().copied().fold(f64::INFINITY, f64::min);
        println!(
            "{name}_p50_median = {p50:.0} ms ({what}; city commit to ministry commit, median \
             city; {} cities, {records} records, {} unseen; ministry polled every {} ms)",
            self.per_city.len(),
            self.unseen,
            p.poll.as_millis()
        );
        println!("{name}_p99_median = {median_p99:.0} ms (the median city's p99)");
        println!(
            "{name}_p99_max = {:.0} ms (city {}; {:.2}x the median city's p99; goal <= 2; \
             fastest city's p99 {fastest:.0} ms)",
            slowest.2,
            slowest.0,
            slowest.2 / median_p99
        );
    }
}

/// Every figure of a run.
#[derive(Debug, Default)]
pub struct Figures {
    pub raw: f64,
    pub raw_records: usize,
    pub nodes: usize,
    pub started_in: f64,
    pub posted: u64,
    pub distinct: u64,
    pub fed_in: f64,
    pub to_ministry: f64,
    pub lags: Lags,
    pub idle_cpu: f64,
    /// Share of one core per tier: cities, provinces, ministry.
    pub idle_cpu_tiers: [f64; 3],
    pub idle_window: f64,
    /// Seconds waited, after the rest, for the nodes' background work to finish.
    pub idle_waited: f64,
    /// (code, bytes) of every node.
    pub rss: Vec<(NodeCode, measure::Rss)>,
    pub killed: String,
    pub down_for: f64,
    pub wiped: String,
    pub restored_in: f64,
    pub restored_records: u64,
    pub fault_posted: u64,
    pub fault_fed_in: f64,
    pub fault_converged_after: f64,
    /// Lags of the paced feed, cities outside the faults.
    pub paced_lags: Lags,
    pub checked: usize,
}

fn median(mut v: Vec<f64>) -> f64 {
    quantile(&mut v, 0.5)
}

impl Figures {
    /// One line per figure.
    pub fn print(&self, p: &Params) {
        let limit = self.raw / 3.0;
        println!(
            "raw_sled_batch_durable = {:.0} rec/s ({} records, batches of {BATCH}; the limit \
             per store)",
            self.raw, self.raw_records
        );
        println!(
            "e2e_limit = {limit:.0} rec/s (raw sled / 3: three durable stores on the same cores)"
        );
        println!(
            "network_start = {:.1} s ({} processes: CA, certificates, lmsync init, lmsync run \
             until ready)",
            self.started_in, self.nodes
        );
        println!(
            "clean_feed = {:.2} s for {} records posted ({} distinct held; {:.0} rec/s ingest \
             over all cities)",
            self.fed_in,
            self.posted,
            self.distinct,
            self.posted as f64 / self.fed_in
        );
        let rate = self.distinct as f64 / self.to_ministry;
        println!(
            "time_to_ministry = {:.2} s (first POST until the ministry's digest equals every \
             city's)",
            self.to_ministry
        );
        println!(
            "e2e_national = {rate:.0} rec/s ({:.2}x raw sled / 3; goal >= 0.5)",
            rate / limit
        );
        self.lags.print(
            "lag_clean",
            "every city posting at once, as fast as it can",
            p,
        );
        self.print_idle();
        self.print_faults(p);
    }

    fn rss_of(&self, tier: Tier) -> Vec<f64> {
        self.rss_part(tier, |r| r.total)
    }

    fn rss_part(&self, tier: Tier, part: impl Fn(&measure::Rss) -> u64) -> Vec<f64> {
        self.rss
            .iter()
            .filter(|(c, _)| c.tier() == tier)
            .map(|(_, r)| part(r) as f64 / MIB)
            .collect()
    }

    fn print_idle(&self) {
        println!(
            "idle_cpu = {:.2} % of one core ({} processes together, {:.1} s window, after \
             {:.1} s waiting for their background work to finish; goal < 5; cities {:.2}, \
             provinces {:.2}, ministry {:.2})",
            self.idle_cpu,
            self.rss.len(),
            self.idle_window,
            self.idle_waited,
            self.idle_cpu_tiers[0],
            self.idle_cpu_tiers[1],
            self.idle_cpu_tiers[2]
        );
        let (cities, provinces) = (self.rss_of(Tier::City), self.rss_of(Tier::Province));
        let nodes: Vec<f64> = [cities.clone(), provinces.clone()].concat();
        let max = |v: &[f64]| v.iter().copied().fold(0.0, f64::max);
        println!(
            "idle_rss_median = {:.1} MiB ({} cities and provinces; goal < 30; cities {:.1}, \
             provinces {:.1})",
            median(nodes.clone()),
            nodes.len(),
            median(cities.clone()),
            median(provinces.clone())
        );
        let largest = self
            .rss
            .iter()
            .filter(|(c, _)| c.tier() != Tier::Ministry)
            .max_by_key(|(_, r)| r.total);
        let largest = largest.map_or_else(String::new, |(code, r)| {
            format!(
                "; {code}: anonymous {:.1}, file-backed {:.1}",
                r.anon as f64 / MIB,
                r.file as f64 / MIB
            )
        });
        println!(
            "idle_rss_max = {:.1} MiB (goal < 30; largest city {:.1}, largest province \
             {:.1}{largest})",
            max(&nodes),
            max(&cities),
            max(&provinces)
        );
        let part = |f: fn(&measure::Rss) -> u64| {
            [Tier::City, Tier::Province].map(|t| median(self.rss_part(t, f)))
        };
        let (anon, file) = (part(|r| r.anon), part(|r| r.file));
        println!(
            "idle_rss_parts = anonymous {:.1} / {:.1} MiB, file-backed {:.1} / {:.1} MiB \
             (median city / median province; file-backed pages are the lmsync binary's, \
             shared by every node on the machine)",
            anon[0], anon[1], file[0], file[1]
        );
        println!(
            "ministry_rss = {:.1} MiB",
            median(self.rss_of(Tier::Ministry))
        );
    }

    fn print_faults(&self, p: &Params) {
        println!(
            "faults_feed = {:.1} s for {} more records (paced); province {} SIGKILLed, back \
             after {:.1} s; city {} wiped, re-created with init --restore",
            self.fault_fed_in,
            self.fault_posted,
            self.killed,
            self.down_for,
            if self.wiped.is_empty() {
                "none"
            } else {
                &self.wiped
            }
        );
        println!(
            "city_restore = {:.2} s ({} records restored from its province)",
            self.restored_in, self.restored_records
        );
        println!(
            "faults_converged = {:.2} s after the last POST (every city's digest equal at city, \
             province and ministry)",
            self.fault_converged_after
        );
        self.paced_lags.print(
            "lag_paced",
            "the paced feed of the fault phase, cities outside the killed province and the \
             wiped city",
            p,
        );
        println!(
            "nothing_lost = yes ({} acknowledged records, each at its city, its province and \
             the ministry at its version or later)",
            self.checked
        );
    }
}
