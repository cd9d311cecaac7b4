//! End-to-end tests of `concord import-csv`: runs the built binary on the shipped social care
//! sample (examples/social-care) and on small bad extracts, each into a temporary data directory.
//!
//! Owns: checking that every sample row imports, that re-importing changes nothing (no
//! new versions, every resource counted unchanged), and that bad
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
fn the_sample_imports_and_reimporting_changes_nothing() {
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

    let created: usize = out
        .split("resources: ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no count of resources created: {out}"));
    let before = versions(data.path());
    let second = import(&mapping, &extract, data.path());
    let out = text(&second);
    assert!(second.status.success(), "{out}");
    assert!(
        out.contains(&format!(
            "rows: {rows} imported, 0 failed; resources: 0 created, 0 updated, {created} unchanged"
        )),
        "a re-import must change nothing: {out}"
    );
    assert_eq!(
        versions(data.path()),
        before,
        "a re-import wrote new versions"
    );
}

#[test]
fn assessments_become_questionnaire_responses_with_typed_answers() {
    let (mapping, extract) = sample();
    let data = tempfile::tempdir().unwrap();
    let output = import(&mapping, &extract, data.path());
    assert!(output.status.success(), "{}", text(&output));
    let db = rusqlite::Connection::open(data.path().join("concord.db")).unwrap();
    let bodies: Vec<String> = db
        .prepare(
            "SELECT body FROM resource_version WHERE resource_type = 'QuestionnaireResponse' AND superseded_seq IS NULL",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    let assessed = csv_column(&extract, "assessment_date")
        .iter()
        .filter(|v| !v.is_empty())
        .count();
    assert_eq!(bodies.len(), assessed, "one per assessed person");
    let response: serde_json::Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(
        response["questionnaire"],
        "https://example-council.gov.uk/fhir/Questionnaire/care-act-needs-assessment"
    );
    assert_eq!(response["status"], "completed");
    assert!(
        response["subject"]["reference"]
            .as_str()
            .unwrap()
            .starts_with("Patient/"),
        "{response}"
    );
    let answer = |link_id: &str| {
        response["item"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["linkId"] == link_id)
            .unwrap_or_else(|| panic!("no item {link_id}: {response}"))["answer"][0]
            .clone()
    };
    assert!(answer("eligible-needs")["valueBoolean"].is_boolean());
    assert!(answer("outcomes-not-achieved")["valueInteger"].is_i64());
    let coding = &answer("primary-support-reason")["valueCoding"];
    assert_eq!(
        coding["system"],
        "https://example-council.gov.uk/CodeSystem/primary-support-reason"
    );
    assert!(coding["code"].is_string() && coding["display"].is_string());
}

/// One column of a CSV file, every data row.
fn csv_column(file: &Path, column: &str) -> Vec<String> {
    let mut reader = csv::Reader::from_path(file).unwrap();
    let at = reader
        .headers()
        .unwrap()
        .iter()
        .position(|h| h == column)
        .unwrap();
    reader
        .records()
        .map(|r| r.unwrap().get(at).unwrap_or("").to_string())
        .collect()
}

/// Every stored version (type, id, version) in a node's data directory, in order.
fn versions(data: &Path) -> Vec<(String, String, i64)> {
    let db = rusqlite::Connection::open(data.join("concord.db")).unwrap();
    let mut statement = db
        .prepare("SELECT resource_type, id, version_id FROM resource_version ORDER BY seq")
        .unwrap();
    statement
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .unwrap()
        .map(Result::unwrap)
        .collect()
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
    let row = |id: &str, nhs: &str, dob: &str, outcomes: &str| {
        format!(
            "{id},{nhs},Ann,Example,{dob},F,1 High Street,LS1 1AA,active,01/02/2024,Sam Okafor,Home care,01/02/2024,,active,Bob Example,Son,07700 900001,03/02/2024,42,Y,{outcomes},MEMORY,Support with memory and cognition"
        )
    };
    let good = |id: &str, nhs: &str, dob: &str| row(id, nhs, dob, "3");
    let csv = [
        header,
        good("T1", "9990000018", "01/01/1940"),
        good("T2", "9990000026", "31/02/1940"),
        good("T3", "9990000019", "01/01/1941"),
        good("", "9990000034", "01/01/1942"),
        good("T5", "9990000042", "1943-05-06"),
        row("T6", "9990000050", "01/01/1944", "several"),
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
    assert!(
        out.contains("row 6 (line 7), column outcomes_not_achieved: item outcomes-not-achieved:"),
        "an answer that is not an integer: {out}"
    );
    assert!(out.contains("rows: 2 imported, 4 failed"), "{out}");
    // The report locates a bad cell; it never repeats the patient data in it.
    for value in ["31/02/1940", "9990000019", "several"] {
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

#[test]
fn end_missing_ends_the_open_episodes_of_people_the_extract_no_longer_lists() {
    let (mapping, extract) = sample();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let first = import(&mapping, &extract, &data);
    assert!(first.status.success(), "{}", text(&first));

    // The next extract drops its first five people.
    let all = std::fs::read_to_string(&extract).unwrap();
    let lines: Vec<&str> = all.lines().collect();
    let dropped = &lines[1..6];
    let shorter = dir.path().join("shorter.csv");
    std::fs::write(
        &shorter,
        std::iter::once(lines[0])
            .chain(lines[6..].iter().copied())
            .collect::<Vec<_>>()
            .join("\n"),
    )
    .unwrap();
    let statuses = csv_column(&extract, "involvement_status");
    let open = statuses[..5].iter().filter(|s| *s != "finished").count();
    assert!(open > 0, "the sample's first five are all finished");

    let run = |extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_concord"))
            .arg("import-csv")
            .arg("--mapping")
            .arg(&mapping)
            .arg(&shorter)
            .arg("--data")
            .arg(&data)
            .args(extra)
            .output()
            .expect("run concord")
    };
    let without = run(&[]);
    let out = text(&without);
    assert!(without.status.success(), "{out}");
    assert!(!out.contains("ended"), "ending is opt-in: {out}");

    let before = versions(&data);
    let ended = run(&["--end-missing", "--extract-date", "01/12/2026"]);
    let out = text(&ended);
    assert!(ended.status.success(), "{out}");
    assert!(out.contains(&format!("{open} ended")), "{out}");
    assert_eq!(versions(&data).len(), before.len() + open, "{out}");

    let db = rusqlite::Connection::open(data.join("concord.db")).unwrap();
    for line in dropped {
        let key = line.split(',').next().unwrap();
        let body: String = db
            .query_row(
                "SELECT body FROM resource_version WHERE resource_type = 'EpisodeOfCare' AND superseded_seq IS NULL AND body LIKE ?1",
                [format!("%\"{key}-episode\"%")],
                |r| r.get(0),
            )
            .unwrap();
        let episode: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(episode["status"], "finished", "{episode}");
        assert_eq!(episode["period"]["end"], "2026-12-01", "{episode}");
    }
    // Nothing was deleted: every dropped person's Patient is still current.
    let deleted: i64 = db
        .query_row(
            "SELECT count(*) FROM resource_version WHERE body IS NULL",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(deleted, 0);

    // Running it again ends nothing more.
    let again = run(&["--end-missing", "--extract-date", "01/12/2026"]);
    let out = text(&again);
    assert!(again.status.success(), "{out}");
    assert!(out.contains("0 created, 0 updated"), "{out}");
    assert!(out.contains(", 0 ended"), "{out}");
}
