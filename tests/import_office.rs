//! Office exports into a real city node, through the shipped mappings of
//! `config/mappings/`: the vacancy form as a GB18030 CSV, the job-seeker form as a UTF-8
//! CSV with a byte-order mark and as an .xlsx sheet (written here), rows with mistakes
//! each named by line or row, column and reason while the good rows are stored, and
//! `--dry-run` (and `POST /v1/records?dry_run=true`) answering the same while storing
//! nothing.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Output;

use common::{Http, Network, NodeFiles, RunningNode, lmsync, lmsync_ok, vacancy};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
use serde_json::{Value, json};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn fixture(name: &str) -> PathBuf {
    repo("tests/fixtures/office").join(name)
}

fn shipped(name: &str) -> PathBuf {
    repo("config/mappings").join(name)
}

/// `lmsync import --config … --mapping MAP [extra] FILE`.
fn import(files: &NodeFiles, map: &Path, file: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "import",
        "--config",
        files.config.to_str().unwrap(),
        "--mapping",
        map.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    args.push(file.to_str().unwrap());
    lmsync(&args)
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn succeeded(out: &Output) -> String {
    assert!(
        out.status.success(),
        "import failed: {}\n{}",
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

fn record(node: &RunningNode, kind: &str, id: &str) -> Value {
    let (status, body) = Http::new().get(&node.url(&format!("/v1/records/440100/{kind}/{id}")));
    assert_eq!(status, 200, "{kind}/{id}: {body}");
    body
}

fn stored(node: &RunningNode) -> u64 {
    Http::new().get(&node.url("/v1/digest")).1["records"]
        .as_u64()
        .unwrap()
}

/// The report's rejection lines (`line …` / `row …`), as a set.
fn rejections(report: &str) -> BTreeSet<String> {
    report
        .lines()
        .filter(|l| l.starts_with("line ") || l.starts_with("row "))
        .map(String::from)
        .collect()
}

#[test]
fn the_vacancy_form_imports_from_a_gb18030_csv() {
    let net = Network::new();
    let files = net.init("440100", None);
    let node = RunningNode::start(&files);
    let file = fixture("vacancies.gb18030.csv");
    assert!(
        std::str::from_utf8(&std::fs::read(&file).unwrap()).is_err(),
        "the sample is GB18030, not UTF-8"
    );
    let out = succeeded(&import(&files, &shipped("vacancy.toml"), &file, &[]));
    assert!(
        out.contains("6 accepted (0 unchanged), 0 rejected"),
        "{out}"
    );
    assert_eq!(stored(&node), 6);

    let first = record(&node, "vacancy", "YX-V-1999001");
    assert_eq!(
        first["data"],
        json!({
            "receiving_office_id": "O-440104-01", "employer_id": "E-19043520X",
            "reported_on": "1999-09-14", "report_channel": "on_site", "title": "普通车工",
            "occupation": "6-04-01", "industry": "C", "headcount": 4,
            "contract_term": "one_year_or_more", "term_months": null,
            "employment_type": "full_time", "wage_min": 600, "wage_max": 800,
            "education_min": "70", "experience_years": null, "work_location": "440104",
            "valid_from": "1999-09-14", "valid_until": "1999-11-30", "publish_allowed": true,
            "published_online_on": null, "published_channels": [], "fill_state": "open",
            "filled_count": 0, "skill_level_min": null, "sex_requirement": null,
            "age_min": null, "age_max": null
        })
    );
    // 面议 and 不限 leave fields out; other date formats; a code kept as written.
    let third = record(&node, "vacancy", "YX-V-1999003")["data"].clone();
    assert_eq!(
        (
            &third["wage_min"],
            &third["education_min"],
            &third["publish_allowed"],
            &third["reported_on"],
            &third["employment_type"]
        ),
        (
            &Value::Null,
            &Value::Null,
            &json!(false),
            &json!("1999-09-16"),
            &json!("temporary")
        )
    );
    assert_eq!(
        record(&node, "vacancy", "YX-V-1999004")["data"]["valid_until"],
        "1999-12-31"
    );
    assert_eq!(
        record(&node, "vacancy", "YX-V-1999005")["data"]["occupation"],
        "6-08-04"
    );
    assert_eq!(
        record(&node, "vacancy", "YX-V-1999006")["data"]["wage_max"],
        600
    );

    let again = succeeded(&import(&files, &shipped("vacancy.toml"), &file, &[]));
    assert!(again.contains("6 accepted (6 unchanged)"), "{again}");
}

#[test]
fn job_seekers_from_a_utf8_csv_keep_no_identity() {
    let net = Network::new();
    let files = net.init("440100", None);
    let node = RunningNode::start(&files);
    let file = fixture("job_seekers.bom.csv");
    assert_eq!(&std::fs::read(&file).unwrap()[..3], b"\xEF\xBB\xBF");
    let out = succeeded(&import(&files, &shipped("job_seeker.toml"), &file, &[]));
    assert!(
        out.contains("5 accepted (0 unchanged), 0 rejected"),
        "{out}"
    );

    let first = record(&node, "job_seeker", "YX-S-S99-0101");
    let data = &first["data"];
    assert_eq!(data["pid"].as_str().unwrap().len(), 32, "{data}");
    assert_eq!(data["pid_epoch"], 1);
    assert_eq!(
        (
            &data["sex"],
            &data["birth_year"],
            &data["education"],
            &data["hukou_class"],
            &data["category"],
            &data["residence_division"]
        ),
        (
            &json!("male"),
            &json!(1968),
            &json!("70"),
            &json!("local_urban"),
            &json!("laid_off"),
            &json!("440104")
        )
    );
    assert_eq!(data["desired_occupations"], json!(["6-04-01", "6-05-02"]));
    assert_eq!(
        (
            &data["desired_wage_min"],
            &data["registered_on"],
            &data["valid_until"]
        ),
        (&json!(500), &json!("1999-09-20"), &json!("2000-01-20"))
    );
    assert_eq!(data["consent_publish_profile"], false);
    let text = first.to_string();
    for private in ["440104196803150011", "张伟", "83301111"] {
        assert!(!text.contains(private), "{private} stored: {text}");
    }

    let third = record(&node, "job_seeker", "YX-S-S99-0103")["data"].clone();
    assert_eq!(third["desired_occupations"], json!(["6-24-01", "6-24-05"]));
    assert_eq!(third["desired_wage_min"], Value::Null, "面议");
    assert_eq!(third["birth_year"], 1972);
    let fourth = record(&node, "job_seeker", "YX-S-S99-0104")["data"].clone();
    assert_eq!(fourth["desired_occupations"], json!([]), "无要求");
    assert_eq!(
        (&fourth["birth_year"], &fourth["hukou_class"]),
        (&json!(1980), &json!("non_local"))
    );
    // The 15-digit ID of the old form is the same person as its 18-digit form.
    let fifth = record(&node, "job_seeker", "YX-S-S99-0105")["data"].clone();
    assert_eq!(fifth["birth_year"], 1970);
    assert_eq!(fifth["desired_occupations"], json!(["3-02-02", "4-07-13"]));
}

/// The job-seeker form as an office's workbook: a notes sheet first, then the form's
/// sheet with its title row, header row and rows holding real dates, numbers, yes/no
/// cells, and one citizen ID that Excel turned into a number.
fn job_seeker_workbook(path: &Path) {
    let mut book = Workbook::new();
    let notes = book.add_worksheet();
    notes.set_name("说明").unwrap();
    notes
        .write_string(0, 0, "本表由越秀区职业介绍服务中心填报")
        .unwrap();
    let sheet = book.add_worksheet();
    sheet.set_name("求职登记").unwrap();
    let day = Format::new().set_num_format("yyyy\"年\"m\"月\"d\"日\"");
    sheet.write_string(0, 0, "求职人员登记表").unwrap();
    let header = [
        "登记编号",
        "姓名",
        "公民身份号码",
        "性别",
        "出生日期",
        "文化程度",
        "户口性质",
        "人员类别",
        "居住区县",
        "求职工种",
        "最低月薪",
        "求职登记日期",
        "有效期至",
        "联系电话",
        "同意公开",
    ];
    for (c, h) in header.iter().enumerate() {
        sheet
            .write_string(1, u16::try_from(c).unwrap(), *h)
            .unwrap();
    }
    let people = [
        (
            1001,
            "刘洋",
            "44010619751203101",
            "男",
            (1975, 12, 3),
            "大专",
            "会计",
            true,
        ),
        (
            1002,
            "孙梅",
            "44010519820430202",
            "女",
            (1982, 4, 30),
            "高中",
            "营业员、文员",
            false,
        ),
        (
            1003,
            "周强",
            "44011119690101303",
            "男",
            (1969, 1, 1),
            "初中",
            "司机",
            true,
        ),
    ];
    for (i, (no, name, id17, sex, born, edu, wants, consent)) in people.iter().enumerate() {
        let r = u32::try_from(i).unwrap() + 2;
        sheet.write_number(r, 0, *no).unwrap();
        sheet.write_string(r, 1, *name).unwrap();
        sheet.write_string(r, 2, common::citizen_id(id17)).unwrap();
        sheet.write_string(r, 3, *sex).unwrap();
        let (y, m, d) = *born;
        let born = ExcelDateTime::from_ymd(y, m, d).unwrap();
        sheet.write_datetime_with_format(r, 4, &born, &day).unwrap();
        sheet.write_string(r, 5, *edu).unwrap();
        sheet.write_string(r, 6, "非农业").unwrap();
        sheet.write_string(r, 7, "其他失业人员").unwrap();
        sheet.write_string(r, 8, "天河区").unwrap();
        sheet.write_string(r, 9, *wants).unwrap();
        sheet.write_number(r, 10, 600).unwrap();
        let registered = ExcelDateTime::from_ymd(1999, 10, 8).unwrap();
        sheet
            .write_datetime_with_format(r, 11, &registered, &day)
            .unwrap();
        // A date typed as text, as often as not.
        sheet.write_string(r, 12, "2000年2月8日").unwrap();
        sheet.write_boolean(r, 14, *consent).unwrap();
    }
    // Row 6: the citizen ID typed into a number cell; Excel keeps 15 digits of it.
    sheet.write_number(5, 0, 1004).unwrap();
    sheet.write_number(5, 2, 440_106_197_512_031_010.0).unwrap();
    for (c, v) in [
        (3, "男"),
        (5, "初中"),
        (6, "非农业"),
        (7, "其他失业人员"),
        (8, "天河区"),
    ] {
        sheet.write_string(5, c, v).unwrap();
    }
    sheet.write_string(5, 4, "1975-12-03").unwrap();
    sheet.write_string(5, 11, "1999-10-08").unwrap();
    sheet.write_string(5, 12, "2000-02-08").unwrap();
    book.save(path).unwrap();
}

#[test]
fn job_seekers_from_an_xlsx_sheet() {
    let net = Network::new();
    let files = net.init("440100", None);
    let node = RunningNode::start(&files);
    let file = net.path().join("求职登记.xlsx");
    job_seeker_workbook(&file);
    let out = import(&files, &shipped("job_seeker.toml"), &file, &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let report = stdout(&out);
    assert_eq!(
        rejections(&report).into_iter().collect::<Vec<_>>(),
        [
            "row 6, column C 公民身份号码: data.citizen_id number_precision: the cell holds the \
          number 4.4010619751203104e17, which Excel keeps to 15 digits only; format the column \
          as text and enter the value again"
        ],
        "{report}"
    );
    assert!(
        report.contains("3 accepted (0 unchanged), 1 rejected"),
        "{report}"
    );
    assert!(stderr(&out).contains("1 rows rejected"), "{}", stderr(&out));
    assert_eq!(stored(&node), 3);

    let data = record(&node, "job_seeker", "YX-S-1001")["data"].clone();
    assert_eq!(
        (
            &data["birth_year"],
            &data["registered_on"],
            &data["valid_until"],
            &data["desired_wage_min"],
            &data["consent_publish_profile"],
            &data["desired_occupations"]
        ),
        (
            &json!(1975),
            &json!("1999-10-08"),
            &json!("2000-02-08"),
            &json!(600),
            &json!(true),
            &json!(["2-06-03"])
        )
    );
    assert_eq!(
        record(&node, "job_seeker", "YX-S-1002")["data"]["desired_occupations"],
        json!(["4-01-01", "3-01-02"])
    );
}

/// The vacancy sample with a mistake in most rows, and two good rows after them,
/// GB18030-encoded as the office's file would be.
fn vacancies_with_mistakes(dir: &Path) -> PathBuf {
    let bytes = std::fs::read(fixture("vacancies.gb18030.csv")).unwrap();
    let (text, _, malformed) = encoding_rs::GB18030.decode(&bytes);
    assert!(!malformed);
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let set = |line: &mut String, column: usize, value: &str| {
        let mut cells: Vec<String> = line.split(',').map(String::from).collect();
        cells[column] = value.into();
        *line = cells.join(",");
    };
    set(&mut lines[2], 13, "1999年13月1日"); // line 3: no such month
    set(&mut lines[3], 4, "9-99"); // line 4: a code not in CN-OCC@1999
    set(&mut lines[4], 7, "长期工"); // line 5: not in the value map
    let short: Vec<&str> = lines[5].split(',').take(6).collect();
    lines[5] = short.join(","); // line 6: cut short after 工种
    set(&mut lines[6], 6, "0"); // line 7: the node wants 1 to 10000 people
    let good = lines[1].clone();
    for id in ["1999007", "1999008"] {
        let mut row = good.clone();
        set(&mut row, 0, id);
        lines.push(row);
    }
    let path = dir.join("空岗登记表.csv");
    let text = lines.join("\r\n") + "\r\n";
    let (gb, _, _) = encoding_rs::GB18030.encode(&text);
    std::fs::write(&path, gb).unwrap();
    path
}

#[test]
fn bad_rows_are_named_by_line_column_and_reason_and_the_rest_stored() {
    let net = Network::new();
    let files = net.init("440100", None);
    let node = RunningNode::start(&files);
    let file = vacancies_with_mistakes(net.path());
    let map = shipped("vacancy.toml");
    let expected: BTreeSet<String> = [
        "line 3, column N 登记日期: data.reported_on bad_date: \"1999年13月1日\" is not a date in \
         any of the formats %Y年%m月%d日, %Y-%m-%d, %Y/%m/%d, %Y%m%d, excel",
        "line 3, column N 登记日期: data.valid_from bad_date: \"1999年13月1日\" is not a date in \
         any of the formats %Y年%m月%d日, %Y-%m-%d, %Y/%m/%d, %Y%m%d, excel",
        "line 4, column E 职业: data.occupation unknown_code: unknown occupation code \"9-99\" in \
         CN-OCC@1999",
        "line 5, column H 用工形式: data.employment_type unmapped_value: \"长期工\" is not in \
         fields.employment_type.values (it has 临时, 临时工, 全日制, 季节工, 季节性, 学徒, 非全日制)",
        "line 6, column G 人数: missing_column: the line has 6 fields, so no G 人数, H 用工形式, \
         I 合同期限, J 月工资, K 文化程度, L 工作地点, M 是否公开, N 登记日期, O 有效期",
        "line 7, column G 人数: data.headcount invalid_value: must be 1 to 10000, got 0",
    ]
    .into_iter()
    .map(String::from)
    .collect();

    // A dry run: the same report, nothing stored, no seq taken.
    let dry = import(&files, &map, &file, &["--dry-run"]);
    assert_eq!(dry.status.code(), Some(1));
    let dry_report = stdout(&dry);
    assert_eq!(rejections(&dry_report), expected, "{dry_report}");
    assert!(
        dry_report
            .contains("(dry run, nothing stored): 3 would be accepted (0 unchanged), 5 rejected"),
        "{dry_report}"
    );
    assert!(
        stderr(&dry).contains("5 lines would be rejected; nothing was stored"),
        "{}",
        stderr(&dry)
    );
    assert_eq!(stored(&node), 0);
    let status = Http::new().get(&node.url("/v1/status")).1;
    assert_eq!(status["ingest"]["records_written"], 0, "{status}");
    assert_eq!(status["ingest"]["records_rejected"], 0, "{status}");

    // The import itself: the same rows refused, the good ones (behind the bad) stored.
    let out = import(&files, &map, &file, &[]);
    assert_eq!(out.status.code(), Some(1));
    let report = stdout(&out);
    assert_eq!(rejections(&report), expected, "{report}");
    assert!(
        report.contains("3 accepted (0 unchanged), 5 rejected"),
        "{report}"
    );
    assert!(
        stderr(&out).contains("5 lines rejected; the other lines are stored"),
        "{}",
        stderr(&out)
    );
    // The three good rows, and the quarter's ingest tally counting the five refusals.
    assert_eq!(stored(&node), 4);
    for id in ["YX-V-1999001", "YX-V-1999007", "YX-V-1999008"] {
        assert!(
            record(&node, "vacancy", id)["seq"].as_u64().unwrap() <= 3,
            "{id}"
        );
    }
    let (missing, _) = Http::new().get(&node.url("/v1/records/440100/vacancy/YX-V-1999006"));
    assert_eq!(missing, 404);
}

#[test]
fn a_dry_run_validates_at_the_node_and_stores_nothing() {
    let net = Network::new();
    let files = net.init("440100", None);
    let node = RunningNode::start(&files);
    let http = Http::new();
    let url = node.url("/v1/records?dry_run=true");
    let (status, answer) = http.post(
        &url,
        &files.token,
        &json!([vacancy("V-1", 3), vacancy("V-2", 0)]),
    );
    assert_eq!(status, 422, "{answer}");
    assert_eq!(answer["dry_run"], true);
    assert_eq!(
        answer["accepted"],
        json!([{"kind": "vacancy", "id": "V-1", "version": 1, "seq": 1, "changed": true}])
    );
    assert_eq!(answer["rejected"][0]["index"], 1);
    assert_eq!(answer["rejected"][0]["field"], "data.headcount");
    assert_eq!(stored(&node), 0);
    assert_eq!(http.get(&node.url("/v1/records/440100/vacancy/V-1")).0, 404);
    let ingest = http.get(&node.url("/v1/status")).1["ingest"].clone();
    assert_eq!(
        (
            &ingest["requests"],
            &ingest["commits"],
            &ingest["records_rejected"]
        ),
        (&json!(0), &json!(0), &json!(0)),
        "{ingest}"
    );

    // The real write takes the first seq: the dry run took none.
    let (status, written) = http.post(
        &node.url("/v1/records"),
        &files.token,
        &json!([vacancy("V-1", 3)]),
    );
    assert_eq!(status, 200, "{written}");
    assert_eq!(written["accepted"][0]["seq"], 1);
    assert!(written.get("dry_run").is_none());
    // Against what is stored: the same content changes nothing, new content would be v2.
    let (_, same) = http.post(
        &url,
        &files.token,
        &json!([vacancy("V-1", 3), vacancy("V-1", 5)]),
    );
    assert_eq!(
        same["accepted"],
        json!([
            {"kind": "vacancy", "id": "V-1", "version": 1, "seq": 1, "changed": false},
            {"kind": "vacancy", "id": "V-1", "version": 2, "seq": 2, "changed": true}
        ])
    );
    assert_eq!(record(&node, "vacancy", "V-1")["data"]["headcount"], 3);
    assert_eq!(stored(&node), 1);
    // An unknown parameter is refused, not taken for a write.
    let (status, refused) = http.post(
        &node.url("/v1/records?dryrun=true"),
        &files.token,
        &json!([vacancy("V-9", 3)]),
    );
    assert_eq!(
        (status, refused["error"].as_str()),
        (400, Some("bad_query"))
    );
    assert_eq!(stored(&node), 1);

    // The CLI's dry run of a clean file: exit 0, nothing stored.
    let out = succeeded(&import(
        &files,
        &shipped("vacancy.toml"),
        &fixture("vacancies.gb18030.csv"),
        &["--dry-run"],
    ));
    assert!(
        out.contains("6 would be accepted (0 unchanged), 0 rejected"),
        "{out}"
    );
    assert_eq!(stored(&node), 1);
    // And of JSON Lines.
    let lines = net.path().join("r.jsonl");
    std::fs::write(&lines, format!("{}\n", vacancy("V-3", 2))).unwrap();
    let out = lmsync_ok(&[
        "import",
        "--dry-run",
        "--config",
        files.config.to_str().unwrap(),
        lines.to_str().unwrap(),
    ]);
    assert!(out.contains("1 would be accepted"), "{out}");
    assert_eq!(stored(&node), 1);
}

#[test]
fn unreadable_files_and_wrong_mappings_are_refused_before_any_row() {
    // No node runs: each of these must stop before sending anything.
    let net = Network::new();
    let files = net.init("440100", None);
    let csv = fixture("vacancies.gb18030.csv");
    let refused = |map: &Path, file: &Path, words: &str| {
        let out = import(&files, map, file, &[]);
        assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
        assert!(stderr(&out).contains(words), "{words}: {}", stderr(&out));
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    };
    let shipped_text = std::fs::read_to_string(shipped("vacancy.toml")).unwrap();
    let edit = |from: &str, to: &str| {
        assert!(shipped_text.contains(from), "{from}");
        let path = net.path().join("edited.toml");
        std::fs::write(&path, shipped_text.replacen(from, to, 1)).unwrap();
        path
    };
    refused(
        &edit(
            "type = \"integer\"\n",
            "type = \"integer\"\ncolour = \"red\"\n",
        ),
        &csv,
        "fields.headcount",
    );
    refused(
        &edit("column = \"人数\"", "column = \"需求人数\""),
        &csv,
        "fields.headcount.column: no column headed \"需求人数\" in header row 1",
    );
    refused(
        &edit(
            "[fields.title]",
            "[fields.contact_phone]\ncolumn = \"联系电话\"\n\n[fields.title]",
        ),
        &csv,
        "fields.contact_phone: vacancy records do not keep \"contact_phone\"",
    );
    let huge = net.path().join("big.csv");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len((64 << 20) + 1)
        .unwrap();
    refused(&shipped("vacancy.toml"), &huge, "split it");
    let fake = net.path().join("fake.xlsx");
    std::fs::write(&fake, "登记编号,人数\n1,2\n").unwrap();
    refused(&shipped("vacancy.toml"), &fake, "not an .xlsx workbook");
    let wrong_sheet = net.path().join("wrong.xlsx");
    job_seeker_workbook(&wrong_sheet);
    refused(&shipped("vacancy.toml"), &wrong_sheet, "no column headed");
    let out = lmsync(&[
        "import",
        "--config",
        files.config.to_str().unwrap(),
        csv.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("needs --mapping"), "{}", stderr(&out));
}
