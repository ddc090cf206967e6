//! The dashboard's coverage section at a province or the ministry: per pilot city the
//! freshness of its data, lag, quarantine, its quarterly report and target status; per province the pilot
//! count; the scope's metrics, and each target's trend over four quarters. Colour always comes with words; every table sorts by
//! a click on its header (a few lines of inline script, no external assets).

use maud::{Markup, PreEscaped, display, html};

use crate::reporting::analysis::{Direction, MetricId, MetricValue, Status, TrendPoint};
use crate::reporting::scan::{CityCoverage, Coverage};

/// The metrics shown per city, in this order.
const CITY_METRICS: [MetricId; 7] = [
    MetricId::M01,
    MetricId::M02,
    MetricId::M03,
    MetricId::M04,
    MetricId::M05,
    MetricId::M07,
    MetricId::M12,
];

/// Sorts a table by the clicked column: numbers numerically (cells carry `data-v`), text
/// otherwise; a second click reverses. Constant script, so it goes in unescaped.
const SORT_SCRIPT: &str = "document.querySelectorAll('table.sortable th').forEach(function(th,i){\
th.style.cursor='pointer';th.title='sort';th.addEventListener('click',function(){\
var t=th.closest('table'),b=t.tBodies[0],rows=Array.from(b.rows),dir=th.dataset.dir==='a'?-1:1;th.dataset.dir=dir===1?'a':'d';\
rows.sort(function(x,y){var a=x.cells[i],c=y.cells[i];var p=a.dataset.v,q=c.dataset.v;\
if(p!==undefined&&q!==undefined){return dir*(parseFloat(p)-parseFloat(q));}\
return dir*a.textContent.localeCompare(c.textContent);});rows.forEach(function(r){b.appendChild(r);});});});";

/// `(css class, words)` for a judged value.
fn judged(v: &MetricValue) -> (&'static str, String) {
    let value = v
        .value
        .map_or_else(String::new, |x| format!(" {}", short(x)));
    match v.status {
        Status::Pass => ("ok", format!("pass{value}")),
        Status::Fail => ("bad", format!("fail{value}")),
        Status::NoData => ("warn", "no data".into()),
        Status::NotApplicable => ("", "n/a".into()),
        Status::NoTarget => ("", format!("—{value}")),
    }
}

fn short(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e12 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

/// The judged (primary) reading of `id`, else its first.
fn primary(values: &[MetricValue], id: MetricId) -> Option<&MetricValue> {
    let mut of_id = values.iter().filter(|v| v.id == id);
    values
        .iter()
        .filter(|v| v.id == id)
        .find(|v| v.target.is_some())
        .or_else(|| of_id.next())
}

fn metric_cell(v: Option<&MetricValue>) -> Markup {
    let Some(v) = v else {
        return html! { td data-v="-1" { "—" } };
    };
    let (class, words) = judged(v);
    let how = format!("{} / {} — {}", v.numerator, v.denominator, v.note);
    html! {
        td class=(class) data-v=(v.value.unwrap_or(-1.0)) title=(how) { (words) }
    }
}

fn freshness_cell(c: &CityCoverage) -> Markup {
    if let Some(on) = c.retired {
        return html! {
            td class="dot ok" data-v="0" { "retired since " (on) ": nothing expected" }
        };
    }
    let (class, words, v) = match (c.stale, c.seconds_since_received) {
        (false, None) => ("ok", "own records".to_string(), 0),
        (true, None) => ("bad", "stale: nothing received".to_string(), i64::MAX),
        (true, Some(s)) => ("bad", format!("stale: {} ago", ago(s)), s),
        (false, Some(s)) => ("ok", format!("fresh: {} ago", ago(s)), s),
    };
    html! {
        td class={ "dot " (class) } data-v=(v) { (words) }
    }
}

fn ago(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// A number cell, sortable by its value.
fn num(n: impl std::fmt::Display) -> Markup {
    html! {
        td class="num" data-v=(display(&n)) { (display(&n)) }
    }
}

fn city_row(c: &CityCoverage) -> Markup {
    let pilot = match (c.pilot, c.confirmed, c.retired) {
        (_, _, Some(_)) => "retired",
        (true, true, None) => "pilot, confirmed",
        (true, false, None) => "pilot",
        _ => "—",
    };
    html! {
        tr data-city=(display(c.city)) {
            td { (display(c.city)) " " (c.name.as_deref().unwrap_or("")) }
            td { (pilot) }
            (num(c.records))
            (freshness_cell(c))
            (num(c.lag_records_last_hop))
            @match c.lag_p95_ms {
                Some(ms) => (num(ms / 1000)),
                None => td class="num" data-v="-1" { "—" },
            }
            (num(c.quarantined))
            (super::dashboard_reports::state_cell(&c.report))
            @for id in CITY_METRICS {
                (metric_cell(primary(&c.metrics.values, id)))
            }
        }
    }
}

fn cities_table(cov: &Coverage) -> Markup {
    let stale_after = ago(i64::try_from(cov.stale_after_seconds).unwrap_or(i64::MAX));
    html! {
        h3 { "Cities" }
        table id="coverage-cities" class="sortable" {
            thead {
                tr {
                    th { "city" }
                    th { "pilot" }
                    th class="num" { "records" }
                    th { "newest record (stale after " (stale_after) ")" }
                    th class="num" { "lag, records" }
                    th class="num" { "lag p95, s" }
                    th class="num" { "quarantined" }
                    th { "quarterly report" }
                    @for id in CITY_METRICS { th { (display(id)) } }
                }
            }
            tbody {
                @for c in &cov.cities { (city_row(c)) }
            }
        }
    }
}

fn provinces_table(cov: &Coverage) -> Markup {
    if cov.provinces.is_empty() {
        return html! {};
    }
    let shown = cov
        .provinces
        .iter()
        .filter(|p| !p.active.is_empty() || cov.provinces.len() == 1);
    html! {
        h3 { "Pilot cities per province (M11)" }
        table id="coverage-provinces" class="sortable" {
            thead {
                tr {
                    th { "province" }
                    th class="num" { "active pilots" }
                    th class="num" { "confirmed" }
                    th { "M11" }
                }
            }
            tbody {
                @for p in shown {
                    tr data-province=(display(p.province)) {
                        td { (display(p.province)) " " (p.name) }
                        (num(p.active.len()))
                        (num(p.confirmed.len()))
                        (metric_cell(Some(&p.m11)))
                    }
                }
            }
        }
        @if let Some(national) = &cov.national_pilots {
            @let (class, words) = judged(national);
            p id="national-pilots" class={ "dot " (class) } {
                "National pilot count (M11): " (words)
            }
        }
    }
}

fn summary_table(cov: &Coverage) -> Markup {
    html! {
        h3 { "Targets for the whole scope" }
        table id="coverage-summary" class="sortable" {
            thead {
                tr {
                    th { "metric" }
                    th { "reading" }
                    th class="num" { "numerator" }
                    th class="num" { "denominator" }
                    th { "target" }
                    th { "status" }
                }
            }
            tbody {
                @for v in &cov.summary.values {
                    tr {
                        td { (display(v.id)) }
                        td { (v.variant) }
                        (num(v.numerator))
                        (num(v.denominator))
                        td { @if let Some(t) = &v.target { (display(&t.comparator)) } }
                        (metric_cell(Some(v)))
                    }
                }
            }
        }
    }
}

/// One quarter of a target trend: the value and whether it met the target, in words.
fn trend_cell(p: &TrendPoint) -> Markup {
    let value = p.value.map_or_else(|| "no data".to_string(), short);
    let (class, met) = match p.met {
        Some(true) => ("ok", " met"),
        Some(false) => ("bad", " missed"),
        None => ("", ""),
    };
    html! {
        td class=(class) title=(format!("{} / {}", p.numerator, p.denominator)) {
            (value) (met) small { " (" (p.numerator) "/" (p.denominator) ")" }
        }
    }
}

/// Each target's values over the last four quarters and which way it moves.
fn trends_table(cov: &Coverage) -> Markup {
    let periods: Vec<String> = cov
        .target_trends
        .first()
        .map(|t| t.quarters.iter().map(|p| p.period.to_string()).collect())
        .unwrap_or_default();
    html! {
        h3 { "Target trends" }
        table id="target-trends" {
            thead {
                tr {
                    th { "metric" }
                    th { "reading" }
                    th { "target" }
                    @for p in &periods { th { (p) } }
                    th { "direction" }
                }
            }
            tbody {
                @for t in &cov.target_trends {
                    @let (class, words) = match t.direction {
                        Direction::Improving => ("ok", "improving ↑"),
                        Direction::Worsening => ("bad", "worsening ↓"),
                        Direction::Steady => ("", "steady →"),
                        Direction::Unknown => ("warn", "unknown"),
                    };
                    tr {
                        td { (display(t.id)) }
                        td { (t.variant) }
                        td { (display(&t.target.comparator)) }
                        @for p in &t.quarters { (trend_cell(p)) }
                        td class=(class) { (words) }
                    }
                }
            }
        }
    }
}

/// The coverage section of the dashboard.
pub(super) fn coverage_section(cov: &Coverage) -> Markup {
    html! {
        h2 { "Coverage " (display(cov.period)) }
        form method="get" {
            label { "Quarter " input name="period" value=(display(cov.period)) size="7"; }
            " "
            button { "Show" }
        }
        (cities_table(cov))
        (provinces_table(cov))
        (summary_table(cov))
        (trends_table(cov))
        script { (PreEscaped(SORT_SCRIPT)) }
    }
}
