//! Unit tests of office exports: mapping files and their errors, cells as fields (dates,
//! numbers, value maps), encodings, rows and the columns a rejection points at.

use chrono::NaiveDate;
use serde_json::{Value, json};

use super::columns::{Header, from_letters, letters};
use super::convert::{self, excel_date};
use super::mapper::{Mapper, data_rows, read_header};
use super::mapping::{Encoding, Field, FieldType, Mapping};
use super::text::{CsvRows, decode};
use super::{Cell, OfficeError, Row};

fn mapping(text: &str) -> Mapping {
    Mapping::parse(text).unwrap_or_else(|e| panic!("{e}"))
}

fn mapping_error(text: &str) -> (String, String) {
    match Mapping::parse(text) {
        Err(OfficeError::Mapping { key, message }) => (key, message),
        other => panic!("expected a mapping error, got {other:?}"),
    }
}

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap()
}

/// The one field of a mapping of `kind = "vacancy"` with `[fields.f]` as given.
fn field(spec: &str) -> Field {
    let m = mapping(&format!(
        "kind = \"vacancy\"\nid = \"{{A}}\"\n[fields.f]\n{spec}\n"
    ));
    m.fields.into_iter().next().unwrap()
}

fn text(t: &str) -> Cell {
    Cell::Text(t.to_string())
}

fn csv_rows(text: &str) -> Vec<Row> {
    CsvRows::new(decode(text.as_bytes(), Encoding::Auto), b',').collect()
}

#[test]
fn column_letters_go_both_ways() {
    for (i, l) in [
        (0, "A"),
        (25, "Z"),
        (26, "AA"),
        (51, "AZ"),
        (255, "IV"),
        (1023, "AMJ"),
    ] {
        assert_eq!(letters(i), l);
        assert_eq!(from_letters(l), Some(i));
        assert_eq!(from_letters(&l.to_lowercase()), Some(i));
    }
    assert_eq!(from_letters("AMK"), None, "past the columns read");
    assert_eq!(from_letters("人数"), None);
    assert_eq!(from_letters("A1"), None);
}

#[test]
fn dates_read_in_the_office_formats() {
    let f = field(
        "column = \"A\"\ntype = \"date\"\nformats = [\"%Y年%m月%d日\", \"%Y/%m/%d\", \"%Y%m%d\", \"excel\"]",
    );
    for (written, expected) in [
        ("1999年9月14日", date(1999, 9, 14)),
        ("1999年09月04日", date(1999, 9, 4)),
        ("１９９９年９月１４日", date(1999, 9, 14)),
        ("1999/9/14", date(1999, 9, 14)),
        ("19990914", date(1999, 9, 14)),
        ("36526", date(2000, 1, 1)),
        ("1999/9/14 0:00:00", date(1999, 9, 14)),
    ] {
        assert_eq!(
            convert::value(&f, Some(&text(written))).unwrap(),
            Some(Value::from(expected.format("%Y-%m-%d").to_string())),
            "{written}"
        );
    }
    // A sheet's date cell is a date whatever the formats; a number is a serial day.
    assert_eq!(
        convert::value(&f, Some(&Cell::Date(date(1999, 12, 31)))).unwrap(),
        Some(json!("1999-12-31"))
    );
    assert_eq!(
        convert::value(&f, Some(&Cell::Float(36161.0))).unwrap(),
        Some(json!("1999-01-01"))
    );
    for bad in ["1999年13月1日", "1999-09-14", "下月", "1999/2/30"] {
        let p = convert::value(&f, Some(&text(bad))).unwrap_err();
        assert_eq!(p.error, "bad_date", "{bad}");
        assert!(p.message.contains("%Y年%m月%d日"), "{}", p.message);
    }
}

#[test]
fn excel_serial_days_keep_excels_calendar() {
    assert_eq!(excel_date(1.0, false), Some(date(1900, 1, 1)));
    assert_eq!(excel_date(59.0, false), Some(date(1900, 2, 28)));
    assert_eq!(
        excel_date(60.0, false),
        None,
        "Lotus's 1900-02-29 does not exist"
    );
    assert_eq!(excel_date(61.0, false), Some(date(1900, 3, 1)));
    assert_eq!(excel_date(36416.75, false), Some(date(1999, 9, 13)));
    assert_eq!(excel_date(0.0, true), Some(date(1904, 1, 1)));
    assert_eq!(
        excel_date(34955.0, true),
        Some(date(1999, 9, 14)),
        "1462 days fewer"
    );
    assert_eq!(excel_date(-1.0, false), None);
    assert_eq!(excel_date(f64::NAN, false), None);
}

#[test]
fn value_maps_turn_local_names_into_codes() {
    let m = mapping(
        r#"
kind = "job_seeker"
id = "{A}"
[fields.sex]
column = "B"
values = { "男" = "male", "女" = "female" }
[fields.desired_occupations]
column = "C"
type = "list"
map = "occupations"
[fields.education]
column = "D"
map = "education"
keep_unmapped = true
[maps.occupations]
"车工" = "6-04-01"
"营业员" = "4-01-01"
"无要求" = ""
[maps.education]
"初中" = "70"
"不限" = ""
"#,
    );
    let named = |n: &str| m.fields.iter().find(|f| f.name == n).unwrap();
    let (sex, occupations, education) = (
        named("sex"),
        named("desired_occupations"),
        named("education"),
    );
    let v = |f: &Field, t: &str| convert::value(f, Some(&text(t)));
    assert_eq!(v(sex, " 男 ").unwrap(), Some(json!("male")));
    let p = v(sex, "未知").unwrap_err();
    assert_eq!(p.error, "unmapped_value");
    assert!(p.message.contains("fields.sex.values"), "{}", p.message);
    assert_eq!(
        v(occupations, "车工、营业员").unwrap(),
        Some(json!(["6-04-01", "4-01-01"]))
    );
    assert_eq!(
        v(occupations, "车工，营业员；").unwrap(),
        Some(json!(["6-04-01", "4-01-01"]))
    );
    assert_eq!(v(occupations, "无要求").unwrap(), None, "mapped to nothing");
    let p = v(occupations, "车工、厨师").unwrap_err();
    assert!(
        p.message.contains("\"厨师\" is not in maps.occupations"),
        "{}",
        p.message
    );
    assert_eq!(v(education, "初中").unwrap(), Some(json!("70")));
    assert_eq!(
        v(education, "70").unwrap(),
        Some(json!("70")),
        "kept as written"
    );
    assert_eq!(v(education, "不限").unwrap(), None);
}

#[test]
fn numbers_ranges_amounts_and_yes_no() {
    let int = field("column = \"A\"\ntype = \"integer\"");
    let low = field("column = \"A\"\ntype = \"integer\"\nrange = \"low\"");
    let high = field("column = \"A\"\ntype = \"integer\"\nrange = \"high\"");
    let fen = field("column = \"A\"\ntype = \"fen\"");
    let yes = field("column = \"A\"\ntype = \"bool\"");
    let year = field("column = \"A\"\ntype = \"year\"");
    let v = |f: &Field, c: Cell| convert::value(f, Some(&c));
    assert_eq!(v(&int, text("1,200")).unwrap(), Some(json!(1200)));
    assert_eq!(v(&int, text("１２")).unwrap(), Some(json!(12)));
    assert_eq!(v(&int, Cell::Float(4.0)).unwrap(), Some(json!(4)));
    assert_eq!(v(&int, text("3人")).unwrap_err().error, "not_a_number");
    assert_eq!(v(&int, Cell::Float(4.5)).unwrap_err().error, "not_a_number");
    assert_eq!(v(&low, text("600-800")).unwrap(), Some(json!(600)));
    assert_eq!(v(&high, text("600～800")).unwrap(), Some(json!(800)));
    assert_eq!(v(&high, text("700")).unwrap(), Some(json!(700)));
    assert_eq!(v(&fen, text("1,234.5")).unwrap(), Some(json!(123_450)));
    assert_eq!(v(&fen, text("315")).unwrap(), Some(json!(31_500)));
    assert_eq!(v(&fen, Cell::Float(12.34)).unwrap(), Some(json!(1234)));
    assert_eq!(v(&fen, text("1.234")).unwrap_err().error, "not_an_amount");
    assert_eq!(v(&yes, text("是")).unwrap(), Some(json!(true)));
    assert_eq!(v(&yes, text("否")).unwrap(), Some(json!(false)));
    assert_eq!(v(&yes, Cell::Bool(true)).unwrap(), Some(json!(true)));
    assert_eq!(v(&yes, text("也许")).unwrap_err().error, "not_yes_or_no");
    assert_eq!(v(&year, text("1970年3月15日")).unwrap(), Some(json!(1970)));
    assert_eq!(v(&year, text("1970")).unwrap(), Some(json!(1970)));
    assert_eq!(
        v(&year, Cell::Date(date(1968, 2, 1))).unwrap(),
        Some(json!(1968))
    );
    // An 18-digit ID Excel held as a number has lost its last digits.
    let id = field("column = \"A\"");
    assert_eq!(
        v(&id, Cell::Float(440_106_197_003_151_232.0))
            .unwrap_err()
            .error,
        "number_precision"
    );
    assert_eq!(v(&id, Cell::Int(1023)).unwrap(), Some(json!("1023")));
    assert_eq!(v(&id, Cell::Float(1023.0)).unwrap(), Some(json!("1023")));
    assert_eq!(
        v(&id, Cell::Error("#N/A".into())).unwrap_err().error,
        "cell_error"
    );
    assert_eq!(convert::value(&id, None).unwrap(), None);
    assert_eq!(v(&id, text("   ")).unwrap(), None);
    let with_default = field("column = \"A\"\ndefault = \"on_site\"");
    assert_eq!(v(&with_default, text("")).unwrap(), Some(json!("on_site")));
    let long = "长".repeat(super::MAX_CELL_CHARS + 1);
    assert_eq!(v(&id, text(&long)).unwrap_err().error, "too_long");
}

#[test]
fn encodings_are_told_apart() {
    let chinese = "单位名称,职业\n广州机床厂,车工\n";
    let (gb, _, _) = encoding_rs::GB18030.encode(chinese);
    assert!(
        std::str::from_utf8(&gb).is_err(),
        "GB18030 bytes are not UTF-8"
    );
    let auto = decode(&gb, Encoding::Auto);
    assert_eq!(
        (auto.text.as_str(), auto.encoding, auto.malformed),
        (chinese, "gb18030", false)
    );
    let told = decode(&gb, Encoding::Gb18030);
    assert_eq!(told.text, chinese);
    let utf8 = decode(chinese.as_bytes(), Encoding::Auto);
    assert_eq!((utf8.text.as_str(), utf8.encoding), (chinese, "UTF-8"));
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend_from_slice(chinese.as_bytes());
    for setting in [Encoding::Auto, Encoding::Utf8, Encoding::Gb18030] {
        let d = decode(&bom, setting);
        assert_eq!(
            (d.text.as_str(), d.encoding),
            (chinese, "UTF-8"),
            "a BOM wins"
        );
    }
    // Excel's "Unicode text" is UTF-16 with a BOM.
    let mut utf16 = vec![0xFF, 0xFE];
    utf16.extend(chinese.encode_utf16().flat_map(u16::to_le_bytes));
    assert_eq!(decode(&utf16, Encoding::Auto).text, chinese);
    // GB18030 bytes read as UTF-8: malformed, and the rows that hold them say so.
    let wrong = decode(&gb, Encoding::Utf8);
    assert!(wrong.malformed);
    let rows: Vec<Row> = CsvRows::new(wrong, b',').collect();
    let (column, why) = rows[1].fault.clone().unwrap();
    assert_eq!(column, Some(0));
    assert!(why.contains("not UTF-8"), "{why}");
}

#[test]
fn csv_rows_are_numbered_by_their_line() {
    let rows = csv_rows("标题\n编号,人数\n1,3\n\"2\",\"多\n行\"\n3\n,\n4,5\n");
    let numbered: Vec<(u64, u64)> = rows.iter().map(|r| (r.ordinal, r.shown)).collect();
    assert_eq!(
        numbered,
        [(1, 1), (2, 2), (3, 3), (4, 4), (5, 6), (6, 7), (7, 8)]
    );
    // Windows line ends (and old Macintosh ones) number the same.
    for end in ["\r\n", "\r"] {
        let windows =
            csv_rows(&"标题\n编号,人数\n1,3\n\"2\",\"多\n行\"\n3\n,\n4,5\n".replace('\n', end));
        let again: Vec<(u64, u64)> = windows.iter().map(|r| (r.ordinal, r.shown)).collect();
        assert_eq!(again, numbered, "{end:?}");
        assert_eq!(windows[3].get(1), Some(&text("多\n行")));
    }
    assert_eq!(rows[3].get(1), Some(&text("多\n行")));
    assert_eq!(rows[4].width, Some(1));
    assert!(rows[5].is_blank());
}

const VACANCY: &str = r#"
kind = "vacancy"
id = "V-{登记编号}"
[source]
header_row = 2
[constants]
report_channel = "on_site"
[fields.employer_id]
template = "E-{组织机构代码}"
[fields.occupation]
column = "职 业"
values = { "车工" = "6-04-01" }
keep_unmapped = true
[fields.headcount]
column = "人数"
type = "integer"
[fields.reported_on]
column = "登记日期"
type = "date"
[fields."hardship.basis"]
column = "E"
"#;

#[test]
fn rows_become_records_and_errors_name_their_column() {
    let m = mapping(VACANCY);
    let file = "空岗登记表\n登记编号,组织机构代码,职业,人数,登记日期\n\
                101,12345678X,车工,3,1999/9/14\n\n\
                102,,6-04,x,1999年13月1日\n\
                ,1,2\n";
    let mut rows = csv_rows(file).into_iter().peekable();
    let header = read_header(&mut rows, &m.source);
    assert_eq!(header.row, Some(2));
    let mapper = Mapper::new(&m, &header).unwrap();
    let data: Vec<Row> = data_rows(rows, &m.source).collect();
    assert_eq!(data.len(), 3, "the blank line is skipped");
    assert_eq!(
        mapper.map(&data[0]).unwrap(),
        json!({"kind": "vacancy", "id": "V-101", "data": {
            "report_channel": "on_site", "employer_id": "E-12345678X", "occupation": "6-04-01",
            "headcount": 3, "reported_on": "1999-09-14", "hardship": {"basis": "1999/9/14"}}})
    );
    let errors = mapper.map(&data[1]).unwrap_err();
    let found: Vec<(&str, &str, &str)> = errors
        .iter()
        .map(|e| (e.column.as_str(), e.field.as_str(), e.error.as_str()))
        .collect();
    assert_eq!(
        found,
        [
            ("D 人数", "data.headcount", "not_a_number"),
            ("E 登记日期", "data.reported_on", "bad_date"),
        ],
        "an empty template cell leaves employer_id out for the node to name"
    );
    let short = mapper.map(&data[2]).unwrap_err();
    assert_eq!(short.len(), 1);
    assert_eq!(short[0].column, "D 人数");
    assert_eq!(short[0].error, "missing_column");
    assert!(
        short[0]
            .message
            .contains("3 fields, so no D 人数, E 登记日期"),
        "{}",
        short[0].message
    );
    // The node's field names lead back to columns.
    assert_eq!(mapper.locate("data.occupation").as_deref(), Some("C 职业"));
    assert_eq!(
        mapper.locate("data.employer_id").as_deref(),
        Some("B 组织机构代码")
    );
    assert_eq!(
        mapper.locate("data.hardship.basis").as_deref(),
        Some("E 登记日期")
    );
    assert_eq!(
        mapper.locate("data.report_channel").as_deref(),
        Some("mapping constants.report_channel")
    );
    assert_eq!(mapper.locate("id").as_deref(), Some("A 登记编号"));
    assert_eq!(mapper.locate("data.title"), None);
}

#[test]
fn a_missing_header_is_named_with_what_the_file_has() {
    let m = mapping(VACANCY);
    let mut rows = csv_rows("表\n登记编号,单位代码,职业,人数,登记日期\n")
        .into_iter()
        .peekable();
    let header = read_header(&mut rows, &m.source);
    match Mapper::new(&m, &header).unwrap_err() {
        OfficeError::Mapping { key, message } => {
            assert_eq!(key, "fields.employer_id.template");
            assert!(
                message.contains("no column headed \"组织机构代码\" in header row 2"),
                "{message}"
            );
            assert!(message.contains("单位代码"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let none = Header::default();
    let m = mapping("kind = \"vacancy\"\nid = \"{编号}\"\n[source]\nheader_row = 0\n");
    let e = Mapper::new(&m, &none).unwrap_err().to_string();
    assert!(
        e.starts_with("id: no column \"编号\": the file has no header row"),
        "{e}"
    );
}

#[test]
fn mapping_errors_name_the_key() {
    let cases = [
        (
            "kind = \"vacancy\"\nid = \"{A}\"\ncolour = 1\n",
            "colour",
            "unknown field",
        ),
        (
            "kind = \"vacancies\"\nid = \"{A}\"\n",
            "kind",
            "unknown record kind",
        ),
        ("kind = \"vacancy\"\nid = \"V-{A\"\n", "id", "without its"),
        (
            "kind = \"vacancy\"\nid = \"{A}\"\n[fields.headcount]\ncolumn = \"G\"\ntype = \"number\"\n",
            "fields.headcount.type",
            "unknown variant",
        ),
        (
            "kind = \"vacancy\"\nid = \"{A}\"\n[fields.headcount]\n",
            "fields.headcount",
            "exactly one of",
        ),
        (
            "kind = \"vacancy\"\nid = \"{A}\"\n[fields.headcount]\ncolumn = \"G\"\nindex = 7\n",
            "fields.headcount",
            "exactly one of",
        ),
        (
            "kind = \"vacancy\"\nid = \"{A}\"\n[fields.occupation]\ncolumn = \"E\"\nmap = \"jobs\"\n",
            "fields.occupation.map",
            "no [maps.jobs]",
        ),
        (
            "kind = \"vacancy\"\nid = \"{A}\"\n[fields.reported_on]\ncolumn = \"E\"\ntype = \"date\"\nformats = [\"%Y年%Q月\"]\n",
            "fields.reported_on.formats[0]",
            "not a date format",
        ),
        (
            "kind = \"vacancy\"\nid = \"{A}\"\n[source]\nencoding = \"big5\"\n",
            "source.encoding",
            "unknown variant",
        ),
        (
            "kind = \"vacancy\"\nid = \"{A}\"\n[source]\nheader_row = 3\nfirst_row = 2\n",
            "source.first_row",
            "not below the header",
        ),
        (
            "kind = \"vacancy\"\nid = \"{A}\"\n[constants]\nreported_on = 1999-09-14\n",
            "constants.reported_on",
            "write it as a string",
        ),
        (
            "kind = \"vacancy\"\nid = \"{A}\"\n[constants]\ntitle = \"x\"\n[fields.title]\ncolumn = \"B\"\n",
            "fields.title",
            "constant already",
        ),
        (
            "kind = \"job_seeker\"\nid = \"{A}\"\n[fields.name]\ncolumn = \"B\"\n",
            "fields.name",
            "do not keep",
        ),
        (
            "kind = \"employer\"\nid = \"{A}\"\n[fields.contact_phone]\ncolumn = \"B\"\n",
            "fields.contact_phone",
            "do not keep",
        ),
        (
            "kind = \"vacancy\"\nid = \"{A}\"\n[fields.citizen_id]\ncolumn = \"B\"\n",
            "fields.citizen_id",
            "name no person",
        ),
        (
            "kind = \"job_seeker\"\nid = \"S-{身份证号}\"\n[fields.citizen_id]\ncolumn = \"身份证号\"\n",
            "id",
            "must not leave the city",
        ),
        (
            "kind = \"job_seeker\"\nid = \"{A}\"\n[fields.citizen_id]\ncolumn = \"C\"\n[fields.education]\ntemplate = \"{C}\"\n",
            "fields.education",
            "only citizen_id may read",
        ),
        (
            "kind = \"job_seeker\"\nid = \"{A}\"\n[fields.hardship]\ncolumn = \"C\"\n[fields.\"hardship.basis\"]\ncolumn = \"D\"\n",
            "fields.hardship",
            "as a whole",
        ),
        (
            "kind = \"vacancy\"\nid = \"{A}\"\n[fields.headcount]\nindex = 0\n",
            "fields.headcount.index",
            "numbered 1 to",
        ),
        (
            "kind = \"vacancy\"\nid = \"{A}\"\n[fields.title]\ncolumn = \"B\"\nseparator = \"、\"\n",
            "fields.title.separator",
            "only list fields",
        ),
        (
            "kind = \"vacancy\"\nid = \"{A}\"\n[source]\ndelimiter = \"ab\"\n",
            "source.delimiter",
            "one ASCII",
        ),
    ];
    for (text, key, words) in cases {
        let (k, message) = mapping_error(text);
        assert_eq!(k, key, "{text}\n{message}");
        assert!(message.contains(words), "{text}\n{message}");
    }
}

#[test]
fn a_mapping_reads_its_source_settings() {
    let m = mapping(
        "kind = \"vacancy\"\nid = \"{A}\"\nstatus = \"closed\"\n[source]\nencoding = \"gbk\"\nsheet = \"空岗\"\nheader_row = 3\nlast_row = 40\ndelimiter = \"tab\"\n",
    );
    assert_eq!(m.source.encoding, Encoding::Gb18030);
    assert_eq!(m.source.sheet.as_deref(), Some("空岗"));
    assert_eq!(
        (m.source.header_row, m.source.first_row, m.source.last_row),
        (3, 4, Some(40))
    );
    assert_eq!(m.source.delimiter, b'\t');
    assert_eq!(m.status.as_deref(), Some("closed"));
    assert_eq!(field("column = \"A\"").ty, FieldType::Text);
}

#[test]
fn the_shipped_mappings_parse() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mappings");
    let mut seen = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            Mapping::load(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 2, "vacancy and job seeker mappings");
}

#[test]
fn a_zip_bomb_is_refused_unread() {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("xl/worksheets/sheet1.xml", options).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..=(super::MAX_XLSX_INFLATED >> 20) {
        zip.write_all(&zeros).unwrap();
    }
    let bytes = zip.finish().unwrap().into_inner();
    assert!(bytes.len() < 1 << 20, "{} bytes packed", bytes.len());
    let e = super::xlsx::inflated_size(&bytes).unwrap_err();
    assert!(e.contains("inflates to more than"), "{e}");
    assert!(super::xlsx::inflated_size(b"not a zip").is_err());
}

#[test]
fn a_far_cell_makes_no_dense_sheet() {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.write_string(0, 0, "编号").unwrap();
    sheet.write_number(1, 0, 7).unwrap();
    sheet.write_string(1_048_575, 16_383, "far").unwrap();
    sheet.write_string(5, 3, "D6").unwrap();
    let bytes = book.save_to_buffer().unwrap();
    let m = mapping("kind = \"vacancy\"\nid = \"{编号}\"\n");
    let rows = super::xlsx::read_bytes(std::path::Path::new("t.xlsx"), bytes, &m.source).unwrap();
    let shown: Vec<(u64, usize)> = rows.iter().map(|r| (r.shown, r.cells.len())).collect();
    assert_eq!(
        shown,
        [(1, 1), (2, 1), (6, 1)],
        "the far cell is past the columns read"
    );
    let seven = rows[1].get(0).unwrap();
    assert_eq!(convert::cell_text(seven).unwrap(), "7", "{seven:?}");
}

#[test]
fn the_citizen_id_column_is_found_however_it_is_named() {
    let m = mapping(
        "kind = \"job_seeker\"\nid = \"S-{C}\"\n[fields.citizen_id]\ncolumn = \"公民身份号码\"\n",
    );
    let mut rows = csv_rows("编号,姓名,公民身份号码\n").into_iter().peekable();
    let header = read_header(&mut rows, &m.source);
    let e = Mapper::new(&m, &header).unwrap_err().to_string();
    assert!(e.starts_with("id: reads column C 公民身份号码"), "{e}");
}
