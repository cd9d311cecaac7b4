//! End-to-end tests of `concord import-csv`: runs the built binary on the shipped social care
//! sample (examples/social-care) and on small bad extracts, each into a temporary data directory.
//!
//! Owns: checking that every sample row imports, that re-importing creates nothing, and that bad
//! rows are reported by row and column while the good ones still import. Does not test the FHIR
//! validation or the NHS number rule themselves (the hub's tests do).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn import(mapping: &Path, file: &Path, data: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_concord"))
        .arg("import-csv")
        .arg("--mapping")
        .arg(mapping)
        .arg(file)
        .arg("--data")
        .arg(data)
        .output()
        .expect("run concord")
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn sample() -> (PathBuf, PathBuf) {
    let dir = root().join("examples/social-care");
    (dir.join("mapping.toml"), dir.join("extract.csv"))
}

#[test]
fn the_sample_imports_and_reimporting_creates_nothing() {
    let (mapping, extract) = sample();
    let rows = std::fs::read_to_string(&extract)
        .unwrap()
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count();
    assert!(rows >= 100, "the sample has {rows} rows");
    let data = tempfile::tempdir().unwrap();

    let first = import(&mapping, &extract, data.path());
    let out = text(&first);
    assert!(first.status.success(), "{out}");
    assert!(
        out.contains(&format!("rows: {rows} imported, 0 failed")),
        "{out}"
    );
    assert!(!out.contains("0 created"), "the first run creates: {out}");

    let second = import(&mapping, &extract, data.path());
    let out = text(&second);
    assert!(second.status.success(), "{out}");
    assert!(
        out.contains(&format!(
            "rows: {rows} imported, 0 failed; resources: 0 created"
        )),
        "a re-import must create nothing: {out}"
    );
}

#[test]
fn bad_rows_name_the_row_and_column_and_good_rows_still_import() {
    let (mapping, _) = sample();
    let dir = tempfile::tempdir().unwrap();
    let header = std::fs::read_to_string(sample().1)
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let good = |id: &str, nhs: &str, dob: &str| {
        format!(
            "{id},{nhs},Ann,Example,{dob},F,1 High Street,LS1 1AA,active,01/02/2024,Sam Okafor,Home care,01/02/2024,,active,Bob Example,Son,07700 900001,03/02/2024,42"
        )
    };
    let csv = [
        header,
        good("T1", "9990000018", "01/01/1940"),
        good("T2", "9990000026", "31/02/1940"),
        good("T3", "9990000019", "01/01/1941"),
        good("", "9990000034", "01/01/1942"),
        good("T5", "9990000042", "1943-05-06"),
    ]
    .join("\n");
    let file = dir.path().join("bad.csv");
    std::fs::write(&file, csv).unwrap();
    let data = dir.path().join("data");

    let output = import(&mapping, &file, &data);
    let out = text(&output);
    assert!(!output.status.success(), "{out}");
    assert!(
        out.contains("row 2 (line 3), column date_of_birth:"),
        "bad date: {out}"
    );
    assert!(
        out.contains("row 3 (line 4), column nhs_number:"),
        "invalid NHS number: {out}"
    );
    assert!(
        out.contains("row 4 (line 5), column person_id:"),
        "empty key: {out}"
    );
    assert!(out.contains("rows: 2 imported, 3 failed"), "{out}");
    // The report locates a bad cell; it never repeats the patient data in it.
    for value in ["31/02/1940", "9990000019"] {
        assert!(
            !out.contains(value),
            "{value} repeated in the report: {out}"
        );
    }
}

#[test]
fn a_missing_column_stops_before_anything_is_imported() {
    let (mapping, _) = sample();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("short.csv");
    std::fs::write(&file, "person_id,forename\nT1,Ann\n").unwrap();
    let output = import(&mapping, &file, &dir.path().join("data"));
    let out = text(&output);
    assert!(!output.status.success(), "{out}");
    assert!(out.contains("nhs_number"), "{out}");
    assert!(out.contains("nothing imported"), "{out}");
    assert!(!out.contains("rows:"), "{out}");
}
