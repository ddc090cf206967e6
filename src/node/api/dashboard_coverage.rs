//! The dashboard's coverage section at a province or the ministry: per pilot city the
//! freshness of its data, lag, quarantine and target status; per province the pilot
//! count; and the scope's metrics. Colour always comes with words; every table sorts by
//! a click on its header (a few lines of inline script, no external assets).

use std::fmt::Write;

use super::dashboard::esc;
use crate::reporting::analysis::{MetricId, MetricValue, Status};
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
/// otherwise; a second click reverses.
const SORT_SCRIPT: &str = "<script>document.querySelectorAll('table.sortable th').forEach(function(th,i){\
th.style.cursor='pointer';th.title='sort';th.addEventListener('click',function(){\
var t=th.closest('table'),b=t.tBodies[0],rows=Array.from(b.rows),dir=th.dataset.dir==='a'?-1:1;th.dataset.dir=dir===1?'a':'d';\
rows.sort(function(x,y){var a=x.cells[i],c=y.cells[i];var p=a.dataset.v,q=c.dataset.v;\
if(p!==undefined&&q!==undefined){return dir*(parseFloat(p)-parseFloat(q));}\
return dir*a.textContent.localeCompare(c.textContent);});rows.forEach(function(r){b.appendChild(r);});});});</script>";

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

fn metric_cell(html: &mut String, v: Option<&MetricValue>) {
    match v {
        Some(v) => {
            let (class, words) = judged(v);
            let _ = write!(
                html,
                "<td class=\"{class}\" data-v=\"{}\" title=\"{}\">{words}</td>",
                v.value.unwrap_or(-1.0),
                esc(&format!("{} / {} — {}", v.numerator, v.denominator, v.note))
            );
        }
        None => html.push_str("<td data-v=\"-1\">—</td>"),
    }
}

fn freshness_cell(html: &mut String, c: &CityCoverage) {
    let (class, words, v) = match (c.stale, c.seconds_since_received) {
        (false, None) => ("ok", "own records".to_string(), 0),
        (true, None) => ("bad", "stale: nothing received".to_string(), i64::MAX),
        (true, Some(s)) => ("bad", format!("stale: {} ago", ago(s)), s),
        (false, Some(s)) => ("ok", format!("fresh: {} ago", ago(s)), s),
    };
    let _ = write!(
        html,
        "<td class=\"dot {class}\" data-v=\"{v}\">{words}</td>"
    );
}

fn ago(seconds: i64) -> String {
    match seconds {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

fn num(html: &mut String, n: impl std::fmt::Display) {
    let _ = write!(html, "<td class=\"num\" data-v=\"{n}\">{n}</td>");
}

fn city_row(html: &mut String, c: &CityCoverage) {
    let pilot = match (c.pilot, c.confirmed) {
        (true, true) => "pilot, confirmed",
        (true, false) => "pilot",
        _ => "—",
    };
    let _ = write!(
        html,
        "<tr data-city=\"{code}\"><td>{code} {name}</td><td>{pilot}</td>",
        code = c.city,
        name = esc(c.name.unwrap_or("")),
    );
    num(html, c.records);
    freshness_cell(html, c);
    num(html, c.lag_records_last_hop);
    match c.lag_p95_ms {
        Some(ms) => num(html, ms / 1000),
        None => html.push_str("<td class=\"num\" data-v=\"-1\">—</td>"),
    }
    num(html, c.quarantined);
    for id in CITY_METRICS {
        metric_cell(html, primary(&c.metrics.values, id));
    }
    html.push_str("</tr>");
}

fn cities_table(html: &mut String, cov: &Coverage) {
    let _ = write!(
        html,
        "<h3>Cities</h3><table id=\"coverage-cities\" class=\"sortable\"><thead><tr><th>city</th><th>pilot</th>\
         <th class=\"num\">records</th><th>newest record (stale after {})</th><th class=\"num\">lag, records</th>\
         <th class=\"num\">lag p95, s</th><th class=\"num\">quarantined</th>",
        ago(i64::try_from(cov.stale_after_seconds).unwrap_or(i64::MAX))
    );
    for id in CITY_METRICS {
        let _ = write!(html, "<th>{id}</th>");
    }
    html.push_str("</tr></thead><tbody>");
    for c in &cov.cities {
        city_row(html, c);
    }
    html.push_str("</tbody></table>");
}

fn provinces_table(html: &mut String, cov: &Coverage) {
    if cov.provinces.is_empty() {
        return;
    }
    let shown: Vec<_> = cov
        .provinces
        .iter()
        .filter(|p| !p.active.is_empty() || cov.provinces.len() == 1)
        .collect();
    html.push_str(
        "<h3>Pilot cities per province (M11)</h3><table id=\"coverage-provinces\" class=\"sortable\"><thead><tr>\
         <th>province</th><th class=\"num\">active pilots</th><th class=\"num\">confirmed</th><th>M11</th></tr></thead><tbody>",
    );
    for p in shown {
        let _ = write!(
            html,
            "<tr data-province=\"{}\"><td>{} {}</td>",
            p.province,
            p.province,
            esc(p.name)
        );
        num(html, p.active.len());
        num(html, p.confirmed.len());
        metric_cell(html, Some(&p.m11));
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
    if let Some(national) = &cov.national_pilots {
        let (class, words) = judged(national);
        let _ = write!(
            html,
            "<p id=\"national-pilots\" class=\"dot {class}\">National pilot count (M11): {words}</p>"
        );
    }
}

fn summary_table(html: &mut String, cov: &Coverage) {
    html.push_str(
        "<h3>Targets for the whole scope</h3><table id=\"coverage-summary\" class=\"sortable\"><thead><tr>\
         <th>metric</th><th>reading</th><th class=\"num\">numerator</th><th class=\"num\">denominator</th>\
         <th>target</th><th>status</th></tr></thead><tbody>",
    );
    for v in &cov.summary.values {
        let target = v
            .target
            .as_ref()
            .map_or_else(String::new, |t| t.comparator.to_string());
        let _ = write!(html, "<tr><td>{}</td><td>{}</td>", v.id, esc(v.variant));
        num(html, v.numerator);
        num(html, v.denominator);
        let _ = write!(html, "<td>{}</td>", esc(&target));
        metric_cell(html, Some(v));
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>");
}

/// The coverage section of the dashboard.
pub(super) fn coverage_section(html: &mut String, cov: &Coverage) {
    let _ = write!(
        html,
        "<h2>Coverage {period}</h2><form method=\"get\"><label>Quarter <input name=\"period\" value=\"{period}\" size=\"7\"></label> \
         <button>Show</button></form>",
        period = cov.period
    );
    cities_table(html, cov);
    provinces_table(html, cov);
    summary_table(html, cov);
    html.push_str(SORT_SCRIPT);
}
