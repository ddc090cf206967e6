//! The dashboard's charts, where an operator would rather look than read: records per
//! day per owner, replication lag per minute, and each city's value of every targeted
//! metric against its threshold; and the legend of the metric ids the page uses.
//!
//! Inline SVG from the same compile-time templates as the rest of the page (no script,
//! no external assets); every chart also says in words what it shows.

use maud::{Markup, display, html};

use crate::core::model::NodeCode;
use crate::node::links::History;
use crate::reporting::analysis::{Comparator, MetricId, MetricValue, Status};
use crate::reporting::scan::Coverage;

/// Chart width and the height of one row (bar charts) or the plot (line charts), px.
const WIDTH: u32 = 640;
const ROW: u32 = 18;
const PLOT: u32 = 160;
/// Room for the row labels at the left, px.
const LABEL: u32 = 150;
/// Owners drawn in one chart at most (the busiest, or the most lagging).
const MAX_SERIES: usize = 12;

/// The legend: every metric id with its name in both languages.
pub(super) fn legend() -> Markup {
    html! {
        details id="legend" {
            summary { "Legend: what M01–M12 and F01–F06 measure" }
            dl {
                @for id in MetricId::ALL {
                    dt { (id.as_str()) }
                    dd { (id.title_zh()) " · " (id.title_en()) }
                }
            }
            p id="legend-reports" {
                "M10 and F03 read each city's submitted quarterly report (supply_demand_report): "
                b { "on time" } " — first submitted by the due day of the reporting_schedule in force; "
                b { "late" } " — after it; " b { "missing" } " — the due day has passed and nothing is submitted; "
                b { "not yet due" } " — before the due day. M10 = submitted ÷ (submitted + missing); "
                "F03 = on time ÷ (on time + late + missing)."
            }
        }
    }
}

/// Records committed here per owner and day (received from below or written here).
pub(super) fn records_per_day(history: &History, today: i64) -> Markup {
    let days: Vec<i64> = (today - 13..=today).collect();
    let mut owners: Vec<(NodeCode, u64)> = history
        .records_per_day
        .iter()
        .map(|(o, d)| (*o, d.values().sum()))
        .collect();
    owners.sort_by_key(|o| std::cmp::Reverse(o.1));
    owners.truncate(MAX_SERIES);
    let most = history
        .records_per_day
        .values()
        .flat_map(|d| d.values().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let column = (WIDTH - LABEL) / 14;
    let height = ROW * u32::try_from(owners.len()).unwrap_or(0) + ROW;
    html! {
        h3 { "Records per day, per owner (last 14 days, since this node started)" }
        @if owners.is_empty() {
            p class="chart-empty" { "No records committed since this node started." }
        } @else {
            svg class="chart" id="records-per-day" width=(WIDTH) height=(height)
                role="img" aria-label="records committed here per owner and day" {
                @for (i, (owner, total)) in owners.iter().enumerate() {
                    @let y = ROW * u32::try_from(i).unwrap_or(0);
                    text x="0" y=(y + ROW - 5) class="label" { (display(owner)) " (" (total) ")" }
                    @for (j, day) in days.iter().enumerate() {
                        @let n = history.records_per_day.get(owner).and_then(|d| d.get(day)).copied().unwrap_or(0);
                        @let x = LABEL + column * u32::try_from(j).unwrap_or(0);
                        // Darker for more: the share of the busiest day, as opacity.
                        rect x=(x) y=(y + 2) width=(column - 2) height=(ROW - 4)
                            class="cell" fill-opacity=(format!("{:.2}", opacity(n, most))) {
                            title { (display(owner)) ": " (n) " records on day " (day_label(*day)) }
                        }
                    }
                }
                text x=(LABEL) y=(height - 4) class="axis" { (day_label(days[0])) }
                text x=(WIDTH - 60) y=(height - 4) class="axis" { (day_label(today)) }
            }
        }
    }
}

fn opacity(n: u64, most: u64) -> f64 {
    if n == 0 {
        0.05
    } else {
        0.2 + 0.8 * (n as f64 / most as f64)
    }
}

fn day_label(day: i64) -> String {
    chrono::DateTime::from_timestamp(day * 86_400, 0)
        .map_or_else(|| day.to_string(), |d| d.format("%m-%d").to_string())
}

/// The largest replication lag per minute of each owner's records received here.
pub(super) fn lag_over_time(history: &History, now_minute: i64) -> Markup {
    let mut owners: Vec<(NodeCode, u64)> = history
        .lag_per_minute
        .iter()
        .map(|(o, m)| (*o, m.values().copied().max().unwrap_or(0)))
        .collect();
    owners.sort_by_key(|o| std::cmp::Reverse(o.1));
    owners.truncate(MAX_SERIES);
    let worst = owners.first().map_or(1, |o| o.1.max(1));
    let first = now_minute - 59;
    let x = |minute: i64| {
        let step = f64::from(WIDTH - LABEL) / 60.0;
        f64::from(LABEL) + (minute - first) as f64 * step
    };
    let y = |lag: u64| f64::from(PLOT) - f64::from(PLOT - 10) * (lag as f64 / worst as f64);
    html! {
        h3 { "Replication lag per minute, per owner (last hour; worst " (seconds(worst)) ")" }
        @if owners.is_empty() {
            p class="chart-empty" { "No records received from below since this node started." }
        } @else {
            svg class="chart" id="lag-over-time" width=(WIDTH) height=(PLOT + ROW)
                role="img" aria-label="largest replication lag per owner and minute" {
                line x1=(LABEL) y1=(PLOT) x2=(WIDTH) y2=(PLOT) class="axis-line" {}
                text x="0" y="12" class="axis" { (seconds(worst)) }
                text x="0" y=(PLOT) class="axis" { "0 s" }
                @for (i, (owner, most)) in owners.iter().enumerate() {
                    @let points = history.lag_per_minute.get(owner).map(|m| {
                        m.iter().filter(|(t, _)| **t >= first)
                            .map(|(t, lag)| format!("{:.0},{:.0}", x(*t), y(*lag)))
                            .collect::<Vec<_>>().join(" ")
                    }).unwrap_or_default();
                    polyline points=(points) class={ "series s" (i % 6) } {
                        title { (display(owner)) ": worst " (seconds(*most)) }
                    }
                    // A dot per minute too: a single minute draws no line.
                    @for (t, lag) in history.lag_per_minute.get(owner).into_iter().flatten().filter(|(t, _)| **t >= first) {
                        circle cx=(format!("{:.0}", x(*t))) cy=(format!("{:.0}", y(*lag))) r="2.5"
                            class={ "dot-point s" (i % 6) } {
                            title { (display(owner)) ": " (seconds(*lag)) }
                        }
                    }
                }
                text x=(LABEL) y=(PLOT + ROW - 4) class="axis" { "60 min ago" }
                text x=(WIDTH - 30) y=(PLOT + ROW - 4) class="axis" { "now" }
            }
            p class="chart-key" {
                @for (i, (owner, most)) in owners.iter().enumerate() {
                    span class={ "key s" (i % 6) } { "■ " } (display(owner)) " (" (seconds(*most)) ") "
                }
            }
        }
    }
}

fn seconds(ms: u64) -> String {
    if ms < 10_000 {
        format!("{:.1} s", ms as f64 / 1000.0)
    } else {
        format!("{} s", ms / 1000)
    }
}

/// One threshold to draw: the bound of a target (the lower bound of a range).
fn threshold(v: &MetricValue) -> Option<f64> {
    match v.target.as_ref()?.comparator {
        Comparator::AtLeast(t) | Comparator::AtMost(t) | Comparator::Equal(t) => Some(t),
        Comparator::Between(lo, _) => Some(lo),
    }
}

/// For each metric judged against a target in this scope: every city's value as a bar,
/// the threshold as a line, pass and fail in colour and in the bar's title.
pub(super) fn targets_per_city(coverage: &Coverage) -> Markup {
    // In metric order, each variant once, as the tables list them.
    let mut judged: Vec<(MetricId, &'static str)> = Vec::new();
    for v in coverage.cities.iter().flat_map(|c| c.metrics.values.iter()) {
        let key = (v.id, v.variant);
        if matches!(v.status, Status::Pass | Status::Fail) && shares(v) && !judged.contains(&key) {
            judged.push(key);
        }
    }
    judged.sort_by_key(|(id, _)| MetricId::ALL.iter().position(|m| m == id));
    html! {
        h3 { "Targets per city against their threshold" }
        @if judged.is_empty() {
            p class="chart-empty" { "No city is judged against a share target in this quarter." }
        }
        @for (id, variant) in judged {
            (target_chart(coverage, id, variant))
        }
    }
}

/// Shares (0–1) draw on one scale; counts and times are in the tables.
fn shares(v: &MetricValue) -> bool {
    v.value.is_some_and(|x| (0.0..=1.0).contains(&x)) && threshold(v).is_some_and(|t| t <= 1.0)
}

fn target_chart(coverage: &Coverage, id: MetricId, variant: &str) -> Markup {
    let rows: Vec<(NodeCode, &MetricValue)> = coverage
        .cities
        .iter()
        .filter_map(|c| {
            c.metrics
                .values
                .iter()
                .find(|v| v.id == id && v.variant == variant)
                .filter(|v| matches!(v.status, Status::Pass | Status::Fail))
                .map(|v| (c.city, v))
        })
        .collect();
    let line = rows.iter().find_map(|(_, v)| threshold(v)).unwrap_or(0.0);
    let span = f64::from(WIDTH - LABEL - 10);
    let height = ROW * u32::try_from(rows.len()).unwrap_or(0) + ROW;
    let met = rows
        .iter()
        .filter(|(_, v)| v.status == Status::Pass)
        .count();
    html! {
        p class="chart-title" {
            b { (id.as_str()) } " " (id.title_zh()) " (" (variant) "): met at " (met) " of "
            (rows.len()) " cities; the line is the threshold " (format!("{line:.2}"))
        }
        svg class="chart target" data-metric=(id.as_str()) width=(WIDTH) height=(height)
            role="img" aria-label={ (id.as_str()) " per city against its threshold" } {
            @for (i, (city, v)) in rows.iter().enumerate() {
                @let y = ROW * u32::try_from(i).unwrap_or(0);
                @let value = v.value.unwrap_or(0.0);
                @let class = if v.status == Status::Pass { "bar pass" } else { "bar fail" };
                text x="0" y=(y + ROW - 5) class="label" { (display(city)) " " (city.builtin_name().unwrap_or("")) }
                rect x=(LABEL) y=(y + 3) width=(format!("{:.1}", span * value.clamp(0.0, 1.0))) height=(ROW - 6) class=(class) {
                    title { (display(city)) ": " (format!("{value:.3}")) (if v.status == Status::Pass { " meets " } else { " misses " }) (format!("{line:.2}")) }
                }
            }
            line x1=(format!("{:.1}", f64::from(LABEL) + span * line.clamp(0.0, 1.0))) y1="0"
                x2=(format!("{:.1}", f64::from(LABEL) + span * line.clamp(0.0, 1.0))) y2=(height - ROW)
                class="threshold" {}
            text x=(LABEL) y=(height - 4) class="axis" { "0" }
            text x=(WIDTH - 20) y=(height - 4) class="axis" { "1" }
        }
    }
}

/// A duration since `then_ms`, in words: "12 s ago", "5 min ago", "3 h ago", "2 d ago".
pub(super) fn ago(now_ms: i64, then_ms: i64) -> String {
    let s = (now_ms - then_ms).max(0) / 1000;
    match s {
        s if s < 120 => format!("{s} s ago"),
        s if s < 7200 => format!("{} min ago", s / 60),
        s if s < 172_800 => format!("{} h ago", s / 3600),
        s => format!("{} d ago", s / 86_400),
    }
}

/// Bytes in binary units: "512 B", "3.4 MiB", "1.2 GiB".
pub(super) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::{ago, human_bytes};

    #[test]
    fn sizes_and_times_read_as_people_say_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(3 * 1024 * 1024 + 400 * 1024), "3.4 MiB");
        assert_eq!(human_bytes(1_288_490_189), "1.2 GiB");
        assert_eq!(ago(100_000, 88_000), "12 s ago");
        assert_eq!(ago(1_000_000, 700_000), "5 min ago");
        assert_eq!(ago(20_000_000, 9_000_000), "3 h ago");
        assert_eq!(ago(200_000_000, 0), "2 d ago");
    }
}
