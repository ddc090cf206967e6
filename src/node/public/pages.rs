//! The public pages, Chinese first: the vacancy board with its search form, a vacancy's
//! detail with the office to contact, the quarterly market report with its 求人倍率
//! chart, the offices and their channels, and the display-screen mode that cycles through
//! the newest vacancies. Compile-time templates with auto-escaping: everything shown came
//! from records, and records are untrusted text.

use maud::{DOCTYPE, Markup, PreEscaped, display, html};

use super::Public;
use crate::core::model::kinds::{
    ChannelType, ContractTerm, EmploymentType, OfficeService, OfficeType,
};
use crate::reporting::analysis::report::Cell;
use crate::reporting::analysis::{Period, PublishedReport};
use crate::reporting::public::PublicVacancy;
use crate::reporting::public::search::{Page, Query};

const STYLE: &str = "body{font:16px/1.5 system-ui,'Noto Sans CJK SC','WenQuanYi Zen Hei',sans-serif;\
margin:0;color:#1d1d1d}header{background:#0b5394;color:#fff;padding:.6em 1em}header a{color:#fff;\
margin-right:1em}main{padding:1em;max-width:72em;margin:auto}form{display:flex;flex-wrap:wrap;gap:.5em}\
form label{display:flex;flex-direction:column;font-size:.85em}input{font-size:1em;padding:.3em}\
.v{border-bottom:1px solid #ddd;padding:.6em 0}.v h3{margin:.1em 0}.meta{color:#555;font-size:.9em}\
.wage{color:#b35900;font-weight:bold}table{border-collapse:collapse}td,th{padding:.3em .6em;\
border-bottom:1px solid #ddd;text-align:left}.num{text-align:right}.muted{color:#777}\
.bar{fill:#0b5394}svg{max-width:100%;height:auto}.line{stroke:#b00;stroke-dasharray:4 2}.pager a{margin-right:1em}\
@media (max-width:600px){main{padding:.5em}form label{flex:1 1 45%}table{font-size:.85em}}";

fn shell(public: &Public, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · " (public.name) }
                style { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    strong { (public.name) " 劳动力市场信息" } " "
                    nav {
                        a href="/" { "职位空缺 Vacancies" }
                        a href="/report" { "市场供求分析 Market report" }
                        a href="/offices" { "服务机构 Offices" }
                        a href="/screen" { "大屏 Display" }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// "3000–4500 元/月", or what is known of it.
fn wage(v: &PublicVacancy) -> String {
    match (v.wage_min, v.wage_max) {
        (Some(lo), Some(hi)) if lo == hi => format!("{lo} 元/月"),
        (Some(lo), Some(hi)) => format!("{lo}–{hi} 元/月"),
        (Some(lo), None) => format!("{lo} 元/月起"),
        (None, Some(hi)) => format!("至 {hi} 元/月"),
        (None, None) => "面议 negotiable".into(),
    }
}

fn occupation_name(public: &Public, code: &str) -> String {
    public
        .standards
        .current()
        .occupation
        .codes
        .get(code)
        .cloned()
        .unwrap_or_default()
}

fn area_name(v: &PublicVacancy) -> String {
    format!("{} {}", v.area, v.owner.builtin_name().unwrap_or(""))
}

fn vacancy_summary(public: &Public, v: &PublicVacancy) -> Markup {
    html! {
        div class="v" data-vacancy=(v.id) {
            h3 { a href={ "/vacancies/" (display(v.owner)) "/" (v.id) } { (v.title) } }
            div class="meta" {
                span class="wage" { (wage(v)) } " · "
                (occupation_name(public, &v.occupation)) " (" (v.occupation) ") · "
                (area_name(v)) " · 招 " (v.open_places) " 人 · 发布 " (v.posted_on)
                @if let Some(e) = &v.employer { " · " (e) }
            }
        }
    }
}

fn field(label: &str, name: &str, value: Option<String>) -> Markup {
    html! {
        label { (label) input name=(name) value=[value]; }
    }
}

/// The board with its search form.
pub(super) fn search(public: &Public, q: &Query, page: Result<Page, String>) -> Markup {
    let body = html! {
        h1 { "职位空缺 Job vacancies" }
        form method="get" action="/" {
            (field("关键词 Words", "q", q.q.clone()))
            (field("职业 Occupation (代码或名称)", "occupation", q.occupation.clone()))
            (field("地区 Area (区县代码)", "area", q.area.clone()))
            (field("最低工资 Wage from", "wage_min", q.wage_min.map(|w| w.to_string())))
            (field("最高工资 Wage to", "wage_max", q.wage_max.map(|w| w.to_string())))
            (field("发布日期起 Posted from", "posted_from", q.posted_from.map(|d| d.to_string())))
            (field("单位 Employer", "employer", q.employer.clone()))
            label { "排序 Sort"
                select name="sort" {
                    option value="newest" { "最新 newest" }
                    option value="wage" selected[q.sort == crate::reporting::public::search::Sort::Wage] { "工资 wage" }
                }
            }
            button type="submit" { "搜索 Search" }
        }
        @match page {
            Err(e) => p class="error" { "无法查询 Cannot search: " (e) },
            Ok(page) => {
                p id="total" { "共 " (page.total) " 个职位 (截至 " (page.date) ") · " (page.total) " vacancies open on " (page.date) }
                @if page.items.is_empty() {
                    p class="muted" { "没有符合条件的职位。 No vacancy matches." }
                }
                @for v in &page.items { (vacancy_summary(public, v)) }
                (pager(q, page.total))
            }
        }
    };
    shell(public, "职位空缺", body)
}

fn pager(q: &Query, total: usize) -> Markup {
    let (page, per_page) = q.paging().unwrap_or((1, 20));
    let link = |to: usize| {
        let mut params: Vec<(String, String)> = Vec::new();
        let mut add = |k: &str, v: Option<String>| {
            if let Some(v) = v.filter(|v| !v.is_empty()) {
                params.push((k.to_string(), v));
            }
        };
        add("q", q.q.clone());
        add("occupation", q.occupation.clone());
        add("area", q.area.clone());
        add("wage_min", q.wage_min.map(|w| w.to_string()));
        add("wage_max", q.wage_max.map(|w| w.to_string()));
        add("posted_from", q.posted_from.map(|d| d.to_string()));
        add("employer", q.employer.clone());
        add("page", Some(to.to_string()));
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{k}={}", urlencoding(v)))
            .collect();
        format!("/?{}", query.join("&"))
    };
    let last = total.div_ceil(per_page).max(1);
    html! {
        p class="pager" {
            @if page > 1 { a href=(link(page - 1)) { "‹ 上一页 previous" } }
            "第 " (page) " / " (last) " 页"
            @if page < last && page * per_page < crate::reporting::public::search::MAX_DEPTH {
                " " a href=(link(page + 1)) { "下一页 next ›" }
            }
        }
    }
}

/// Percent-encodes a query value (UTF-8 bytes outside the unreserved set).
fn urlencoding(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// One vacancy, and whom to contact.
pub(super) fn vacancy(public: &Public, v: &PublicVacancy) -> Markup {
    let body = html! {
        h1 { (v.title) }
        p class="wage" { (wage(v)) }
        table {
            tr { th { "职业 Occupation" } td { (occupation_name(public, &v.occupation)) " (" (v.occupation) ")" } }
            tr { th { "单位 Employer" } td { (v.employer.clone().unwrap_or_else(|| "—".into())) } }
            tr { th { "工作地点 Area" } td { (area_name(v)) } }
            tr { th { "招聘人数 Places" } td { (v.open_places) " / " (v.headcount) } }
            tr { th { "用工形式 Employment" } td { (employment_name(v.employment_type)) } }
            tr { th { "合同期限 Contract" } td { (term_name(v.contract_term)) } }
            @if let Some(e) = &v.education_min { tr { th { "学历 Education" } td { (e) } } }
            @if let Some(y) = v.experience_years { tr { th { "经验 Experience" } td { (y) " 年 years" } } }
            tr { th { "发布 Posted" } td { (v.posted_on) } }
            tr { th { "有效期 Valid" } td { (v.valid_from) " – " (v.valid_until) } }
        }
        h2 { "联系 Contact" }
        @match &v.office {
            Some(o) => {
                p { "请到 " strong { (o.name) } " 咨询、登记。 Apply at this office." }
                @if let Some(a) = &o.address { p { "地址 Address: " (a) } }
            }
            None => p { "请到当地公共就业服务机构咨询。 Ask at a public employment-service office." },
        }
        p { a href="/" { "‹ 返回 back to the board" } }
    };
    shell(public, &v.title, body)
}

/// The numeric value of a published cell, if it shows one.
fn value(cell: Option<&Cell>) -> Option<f64> {
    match cell? {
        Cell::Count(n) => Some(*n as f64),
        Cell::Number(x) => Some(*x),
        Cell::Suppressed | Cell::Empty => None,
    }
}

fn cell_text(cell: &Cell) -> String {
    match cell {
        Cell::Count(n) => n.to_string(),
        Cell::Number(x) => format!("{x:.2}"),
        Cell::Suppressed => "—*".into(),
        Cell::Empty => String::new(),
    }
}

/// The quarterly report: every published table, and the 求人倍率 by occupation group as
/// a chart.
pub(super) fn report(
    public: &Public,
    period: Period,
    report: Result<PublishedReport, String>,
) -> Markup {
    let body = html! {
        h1 { (period) " 劳动力市场职业供求状况分析 Supply and demand" }
        @match report {
            Err(e) => p class="error" { "报告暂不可用 The report is not available: " (e) },
            Ok(r) => {
                p class="muted" { "* 少于 " (r.suppress_below) " 的数字不公布。 Counts below " (r.suppress_below) " are withheld (—*)." }
                @if let Some(t5) = r.tables.iter().find(|t| t.id == "table_5") {
                    (ratio_chart(t5))
                }
                @for t in &r.tables {
                    h2 { (t.title.zh) @if let Some(en) = &t.title.en { " " small class="muted" { (en) } } }
                    table class="report" data-table=(t.id) {
                        tr { th {} @for c in &t.columns { th class="num" { (c.label.zh) } } }
                        @for row in &t.rows {
                            tr { th { (row.label.zh) } @for cell in &row.cells { td class="num" { (cell_text(cell)) } } }
                        }
                    }
                }
            }
        }
    };
    shell(public, "市场供求分析", body)
}

/// A bar per occupation group: its 求人倍率, with the line at 1 (as many places as seekers).
fn ratio_chart(table: &crate::reporting::analysis::report::PublishedTable) -> Markup {
    let at = table.columns.iter().position(|c| c.key == "ratio");
    let rows: Vec<(&str, Option<f64>)> = table
        .rows
        .iter()
        .filter(|r| r.key != "total")
        .map(|r| (r.label.zh.as_str(), value(at.and_then(|i| r.cells.get(i)))))
        .collect();
    let most = rows.iter().filter_map(|r| r.1).fold(1.0_f64, f64::max);
    let (width, row, label) = (640.0, 22.0, 230.0);
    let scale = (width - label - 60.0) / most;
    let height = row * rows.len() as f64 + 10.0;
    html! {
        h2 { "求人倍率 Vacancies per job seeker, by occupation group" }
        svg id="ratio-chart" width=(width) height=(height) viewBox=(format!("0 0 {width} {height:.0}"))
            role="img" aria-label="求人倍率 by occupation group" {
            @for (i, (name, ratio)) in rows.iter().enumerate() {
                @let y = row * i as f64;
                text x="0" y=(format!("{:.0}", y + 15.0)) font-size="12" { (name) }
                @match ratio {
                    Some(x) => {
                        rect class="bar" x=(label) y=(format!("{:.0}", y + 4.0)) width=(format!("{:.1}", x * scale)) height="14" {}
                        text x=(format!("{:.0}", label + x * scale + 4.0)) y=(format!("{:.0}", y + 15.0)) font-size="12" { (format!("{x:.2}")) }
                    }
                    None => text x=(label) y=(format!("{:.0}", y + 15.0)) font-size="12" fill="#777" { "—*" }
                }
            }
            line class="line" x1=(format!("{:.1}", label + scale)) y1="0" x2=(format!("{:.1}", label + scale)) y2=(format!("{height:.0}")) {}
        }
    }
}

fn employment_name(t: EmploymentType) -> &'static str {
    match t {
        EmploymentType::FullTime => "全日制 full time",
        EmploymentType::PartTime => "非全日制 part time",
        EmploymentType::Temporary => "临时 temporary",
        EmploymentType::Seasonal => "季节性 seasonal",
        EmploymentType::Apprentice => "学徒 apprentice",
    }
}

fn term_name(t: ContractTerm) -> &'static str {
    match t {
        ContractTerm::UpTo1Year => "一年以下 under a year",
        ContractTerm::OneYearOrMore => "一年及以上 a year or more",
        ContractTerm::OpenEnded => "无固定期限 open-ended",
    }
}

fn channel_name(c: ChannelType) -> &'static str {
    match c {
        ChannelType::DisplayScreen => "电子显示屏",
        ChannelType::BulletinBoard => "信息公告栏",
        ChannelType::FreeQueryTerminal => "自助查询终端",
        ChannelType::Website => "网站",
        ChannelType::Phone => "电话",
    }
}

fn service_name(s: OfficeService) -> &'static str {
    match s {
        OfficeService::Registration => "求职登记",
        OfficeService::Guidance => "职业指导",
        OfficeService::JobInfo => "职业信息",
        OfficeService::Referral => "职业介绍",
        OfficeService::Training => "就业培训",
        OfficeService::UiClaims => "失业保险",
        OfficeService::Tracking => "跟踪服务",
    }
}

fn office_type_name(t: OfficeType) -> &'static str {
    match t {
        OfficeType::CityCentre => "市劳动力市场",
        OfficeType::DistrictCentre => "区县劳动力市场",
        OfficeType::StreetStation => "街道劳动保障站",
        OfficeType::UiAgency => "失业保险经办机构",
        OfficeType::ReemploymentServiceCentre => "再就业服务中心",
        OfficeType::TrainingCentre => "就业训练中心",
        OfficeType::PrivateAgency => "职业介绍机构",
    }
}

/// The offices, their channels and their free services.
pub(super) fn offices(public: &Public) -> Markup {
    let board = public.board();
    let body = html! {
        h1 { "公共就业服务机构 Employment-service offices" }
        p class="muted" { "公共就业服务机构为劳动者免费提供以下服务。 Public offices offer these services free of charge." }
        table id="offices" {
            tr { th { "名称 Name" } th { "类型 Type" } th { "地址 Address" } th { "发布渠道 Channels" } th { "服务 Services" } }
            @for o in board.offices() {
                tr {
                    td { (o.name) }
                    td { (office_type_name(o.office_type)) }
                    td { (o.address.clone().unwrap_or_else(|| format!("{} {}", o.area, o.owner.builtin_name().unwrap_or("")))) }
                    td { @for c in &o.channels { (channel_name(*c)) " " } }
                    td { @for s in &o.services { (service_name(*s)) " " } }
                }
            }
        }
    };
    drop(board);
    shell(public, "服务机构", body)
}

/// Vacancies on one display screen.
const SCREEN_ITEMS: usize = 6;
/// Screens the display cycles through.
const SCREEN_PAGES: usize = 10;
/// Seconds a screen stays.
const SCREEN_SECONDS: u32 = 12;

/// The display-screen mode: large type, the newest vacancies a screen at a time, moving
/// on to the next screen by itself.
pub(super) fn screen(public: &Public, page: usize) -> Markup {
    let board = public.board();
    let date = board.board_date(public.today());
    let newest = board.newest(date, SCREEN_ITEMS * SCREEN_PAGES);
    drop(board);
    let pages = newest.len().div_ceil(SCREEN_ITEMS).max(1);
    let page = page % pages;
    let next = format!("{SCREEN_SECONDS};url=/screen?page={}", (page + 1) % pages);
    html! {
        (DOCTYPE)
        html lang="zh-CN" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta http-equiv="refresh" content=(next);
                title { (public.name) " 最新职位" }
                style { (PreEscaped("body{margin:0;background:#001b3a;color:#fff;font:2.2vw/1.4 system-ui,'WenQuanYi Zen Hei',sans-serif}\
    h1{background:#0b5394;margin:0;padding:.3em .8em}ul{list-style:none;margin:0;padding:0 1em}\
    li{border-bottom:1px solid #234;padding:.4em 0}.wage{color:#ffcc4d}.meta{color:#9cc;font-size:.8em}\
    @media (max-width:600px){body{font-size:16px}}")) }
            }
            body {
                h1 { (public.name) " 最新职位空缺 · " (date) " · " (page + 1) "/" (pages) }
                ul id="screen" {
                    @for v in newest.iter().skip(page * SCREEN_ITEMS).take(SCREEN_ITEMS) {
                        li {
                            strong { (v.title) } " " span class="wage" { (wage(v)) }
                            div class="meta" { (occupation_name(public, &v.occupation)) " · " (area_name(v)) " · 招 " (v.open_places) " 人"
                                @if let Some(e) = &v.employer { " · " (e) } }
                        }
                    }
                }
            }
        }
    }
}

/// 404.
pub(super) fn not_found() -> Markup {
    html! {
        (DOCTYPE)
        html lang="zh-CN" { head { meta charset="utf-8"; title { "未找到 Not found" } }
            body { h1 { "未找到 Not found" } p { a href="/" { "返回 back to the board" } } } }
    }
}
