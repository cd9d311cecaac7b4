//! Tests of `concord mpi link` and `concord mpi eval` through the built binary, on small CSVs
//! written to a temporary folder.
//!
//! Owns: the CLI's contract (columns, warnings and errors naming rows, the pairs file, the eval
//! figures). Does not: test the quality of the matcher beyond one clear duplicate and one twin
//! (the concord-mpi crate's tests and tools/bench/mpi.sh do), or need the FEBRL download.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use concord_mpi::{MatchConfig, NhsNumber};

fn concord(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_concord"))
        .args(args)
        .output()
        .expect("run concord")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).unwrap();
    path
}

fn arg(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// A valid NHS number made from a seed (the check digit appended).
fn nhs(seed: u32) -> String {
    (seed..)
        .find_map(|s| {
            let digits = format!("{:09}", 400_000_000 + s * 7919);
            let nine: Vec<u8> = digits.bytes().map(|b| b - b'0').collect();
            NhsNumber::from_first_nine(nine.try_into().unwrap())
        })
        .unwrap()
        .digits()
}

const HEADER: &str = "id,nhs_number,given_name,surname,date_of_birth,sex,address,postcode\n";

const GIVEN: [&str; 12] = [
    "Oliver", "Amelia", "Harry", "Isla", "George", "Ava", "Noah", "Mia", "Jack", "Grace", "Leo",
    "Freya",
];
const SURNAMES: [&str; 10] = [
    "Patel", "Jones", "Williams", "Brown", "Taylor", "Davies", "Evans", "Wilson", "Roberts",
    "Walker",
];
const STREETS: [&str; 7] = [
    "Station Road",
    "Mill Lane",
    "Park Avenue",
    "Victoria Street",
    "Manor Close",
    "Green Lane",
    "Oak Drive",
];

/// `count` people who are nobody else: distinct names, dates of birth and addresses.
fn others(count: u32) -> String {
    let mut rows = String::new();
    for i in 0..count {
        let given = GIVEN[i as usize % GIVEN.len()];
        let surname = SURNAMES[(i as usize / GIVEN.len() + i as usize) % SURNAMES.len()];
        let sex = if i % 2 == 0 { "M" } else { "F" };
        rows.push_str(&format!(
            "o{i},{},{given},{surname},{}-{:02}-{:02},{sex},\"{} {}, Leeds\",LS{} {}AB\n",
            nhs(100 + i),
            1940 + i % 60,
            1 + i % 12,
            1 + (i * 7) % 28,
            1 + i,
            STREETS[i as usize % STREETS.len()],
            1 + i % 27,
            i % 10,
        ));
    }
    rows
}

fn read_pairs(path: &Path) -> HashMap<(String, String), f64> {
    let content = std::fs::read_to_string(path).unwrap();
    let mut lines = content.lines();
    assert_eq!(lines.next(), Some("left_id,right_id,score,weight,decision"));
    lines
        .map(|line| {
            let fields: Vec<&str> = line.split(',').collect();
            assert_eq!(fields.len(), 5, "{line}");
            assert!(["link", "review", "new"].contains(&fields[4]), "{line}");
            let score: f64 = fields[2].parse().unwrap();
            assert!((0.0..=1.0).contains(&score), "{line}");
            assert_eq!(fields[2].split('.').nth(1).map(str::len), Some(4), "{line}");
            fields[3].parse::<f64>().unwrap();
            let (a, b) = (fields[0].to_string(), fields[1].to_string());
            (if a <= b { (a, b) } else { (b, a) }, score)
        })
        .collect()
}

fn key(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

#[test]
fn dedupe_finds_the_duplicate_and_not_the_twin() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from(HEADER);
    csv.push_str(&others(60));
    // The same man twice: a nickname, a surname typo, an abbreviated street, no NHS number.
    csv.push_str(&format!(
        "w1,{},William James,Thompson,1971-03-14,M,\"12 Church Road, Harrogate\",HG1 4QT\n",
        nhs(1)
    ));
    csv.push_str("w2,,Bill,Thomspon,1971-03-14,male,12 Church Rd Harrogate,HG1 4QT\n");
    // His twin brother: same surname, birthday and home, another name and NHS number.
    csv.push_str(&format!(
        "t1,{},Henry,Thompson,1971-03-14,M,\"12 Church Road, Harrogate\",HG1 4QT\n",
        nhs(2)
    ));
    let people = write(dir.path(), "people.csv", &csv);
    let out = dir.path().join("pairs.csv");
    let run = concord(&["mpi", "link", "--left", arg(&people), "--out", arg(&out)]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let stdout = text(&run.stdout);
    assert!(stdout.contains("63 records"), "{stdout}");
    assert!(stdout.contains("pairs written"), "{stdout}");

    let pairs = read_pairs(&out);
    let link = MatchConfig::default().link_threshold;
    let duplicate = pairs.get(&key("w1", "w2")).copied();
    assert!(
        duplicate.is_some_and(|s| s >= link),
        "w1-w2 should be a link: {pairs:?}"
    );
    for twin in [key("w1", "t1"), key("w2", "t1")] {
        assert!(
            pairs.get(&twin).is_none_or(|s| *s < link),
            "{twin:?} is a twin, not a duplicate: {pairs:?}"
        );
    }
    // Best first.
    let content = std::fs::read_to_string(&out).unwrap();
    let scores: Vec<f64> = content
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
}

#[test]
fn linkage_pairs_records_across_two_files() {
    let dir = tempfile::tempdir().unwrap();
    let mut left = String::from(HEADER);
    left.push_str(&others(40));
    left.push_str(&format!(
        "a1,{},Margaret Anne,O'Neill,1950-07-02,F,\"3 Mill Lane, York\",YO1 7HH\n",
        nhs(3)
    ));
    left.push_str(&format!(
        "a2,{},Priya,Sharma,1988-12-30,F,\"77 Kings Road, Reading\",RG1 3DF\n",
        nhs(4)
    ));
    let mut right = String::from("id,given_name,surname,date_of_birth,sex,postcode,nhs_number\n");
    right.push_str(&format!(
        "b1,Maggie,O'Neill,1950-07-02,F,YO1 7HH,{}\n",
        nhs(3)
    ));
    right.push_str("b2,Priya,Sharma,1988-12-30,F,RG1 3DF,\n");
    right.push_str(&format!(
        "b3,Kwame,Mensah,1979-05-19,M,M14 5RS,{}\n",
        nhs(5)
    ));
    let left = write(dir.path(), "left.csv", &left);
    let right = write(dir.path(), "right.csv", &right);
    let out = dir.path().join("pairs.csv");
    let run = concord(&[
        "mpi",
        "link",
        "--left",
        arg(&left),
        "--right",
        arg(&right),
        "--out",
        arg(&out),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let content = std::fs::read_to_string(&out).unwrap();
    // Left ids in the left column, right ids in the right.
    for line in content.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        assert!(!f[0].starts_with('b') && f[1].starts_with('b'), "{line}");
    }
    let pairs = read_pairs(&out);
    let link = MatchConfig::default().link_threshold;
    assert!(
        pairs.get(&key("a1", "b1")).is_some_and(|s| *s >= link),
        "{pairs:?}"
    );
    // No NHS number and no address on one side: written for review at least, and b2's best.
    let a2b2 = pairs.get(&key("a2", "b2")).copied();
    assert!(a2b2.is_some(), "{pairs:?}");
    assert!(
        pairs
            .iter()
            .all(|((x, y), s)| (x != "b2" && y != "b2") || *s <= a2b2.unwrap()),
        "{pairs:?}"
    );
    assert!(
        pairs
            .iter()
            .all(|((x, y), s)| (x != "b3" && y != "b3") || *s < link),
        "b3 is in the right file only: {pairs:?}"
    );
}

#[test]
fn eval_reports_precision_recall_and_f1() {
    let dir = tempfile::tempdir().unwrap();
    let pairs = write(
        dir.path(),
        "pairs.csv",
        "left_id,right_id,score,weight\na,b,0.9900,12.0\nc,d,0.9500,9.1\ne,f,0.9000,7.0\ng,h,0.4000,-1.0\n",
    );
    // (b,a) is (a,b): the order within a pair does not matter. g-h is true but scores too low.
    let truth = write(
        dir.path(),
        "truth.csv",
        "left_id,right_id\nb,a\nc,d\ni,j\ng,h\n",
    );
    let run = concord(&[
        "mpi",
        "eval",
        "--pairs",
        arg(&pairs),
        "--truth",
        arg(&truth),
        "--threshold",
        "0.5",
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let out = text(&run.stdout);
    for expected in [
        "true positives: 2\n",
        "false positives: 1\n",
        "false negatives: 2\n",
        "precision: 0.6667\n",
        "recall: 0.5000\n",
        "F1: 0.5714\n",
    ] {
        assert!(out.contains(expected), "{expected:?} in\n{out}");
    }
    // Counting every pair (threshold 0.4) finds g-h too: 3 of 4 true pairs, 1 false.
    let run = concord(&[
        "mpi",
        "eval",
        "--pairs",
        arg(&pairs),
        "--truth",
        arg(&truth),
        "--threshold",
        "0.4",
    ]);
    let out = text(&run.stdout);
    assert!(out.contains("precision: 0.7500\n"), "{out}");
    assert!(out.contains("recall: 0.7500\n"), "{out}");
    assert!(out.contains("F1: 0.7500\n"), "{out}");
}

#[test]
fn a_bad_nhs_number_or_date_is_a_warning_naming_the_row_and_the_row_still_links() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from(HEADER);
    csv.push_str(&format!(
        "x1,{},Eleanor,Fairweather,1962-09-21,F,\"5 Abbey Walk, Bath\",BA1 1LZ\n",
        nhs(6)
    ));
    // Row 2 (line 3): an NHS number with a wrong check digit and a date that is no date.
    let good = nhs(6);
    let last = good.as_bytes()[9] - b'0';
    let bad = format!("{}{}", &good[..9], (last + 1) % 10);
    csv.push_str(&format!(
        "x2,{bad},Eleanor,Fairweather,1962-13-45,F,\"5 Abbey Walk, Bath\",BA1 1LZ\n"
    ));
    csv.push_str(&others(30));
    let people = write(dir.path(), "people.csv", &csv);
    let out = dir.path().join("pairs.csv");
    let run = concord(&["mpi", "link", "--left", arg(&people), "--out", arg(&out)]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("row 2 (line 3): column nhs_number"),
        "{stderr}"
    );
    assert!(stderr.contains(&bad), "{stderr}");
    assert!(
        stderr.contains("row 2 (line 3): column date_of_birth"),
        "{stderr}"
    );
    let pairs = read_pairs(&out);
    assert!(pairs.contains_key(&key("x1", "x2")), "{pairs:?}");
}

#[test]
fn an_unknown_column_is_rejected_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let people = write(
        dir.path(),
        "people.csv",
        "id,given_name,favourite_colour,surname\n1,Ann,blue,Lee\n",
    );
    let out = dir.path().join("pairs.csv");
    let run = concord(&["mpi", "link", "--left", arg(&people), "--out", arg(&out)]);
    assert!(!run.status.success());
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("unknown column \"favourite_colour\""),
        "{stderr}"
    );
    assert!(!out.exists());
}

#[test]
fn a_missing_id_or_a_short_row_names_the_row() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pairs.csv");
    let people = write(
        dir.path(),
        "no-id.csv",
        "id,given_name,surname\n1,Ann,Lee\n2,Bob,Lee\n,Cat,Lee\n",
    );
    let run = concord(&["mpi", "link", "--left", arg(&people), "--out", arg(&out)]);
    assert!(!run.status.success());
    let stderr = text(&run.stderr);
    assert!(stderr.contains("row 3 (line 4): missing id"), "{stderr}");

    // Line numbers hold with CRLF endings too (Python's csv module writes them).
    let people = write(
        dir.path(),
        "crlf.csv",
        "id,given_name,surname\r\n1,Ann,Lee\r\n,Cat,Lee\r\n",
    );
    let run = concord(&["mpi", "link", "--left", arg(&people), "--out", arg(&out)]);
    assert!(!run.status.success());
    let stderr = text(&run.stderr);
    assert!(stderr.contains("row 2 (line 3): missing id"), "{stderr}");

    let people = write(
        dir.path(),
        "short.csv",
        "id,given_name,surname\n1,Ann,Lee\n2,Bob\n",
    );
    let run = concord(&["mpi", "link", "--left", arg(&people), "--out", arg(&out)]);
    assert!(!run.status.success());
    let stderr = text(&run.stderr);
    assert!(
        stderr.contains("row 2 (line 3): 2 fields where the header has 3"),
        "{stderr}"
    );

    let people = write(
        dir.path(),
        "no-id-column.csv",
        "given_name,surname\nAnn,Lee\n",
    );
    let run = concord(&["mpi", "link", "--left", arg(&people), "--out", arg(&out)]);
    assert!(!run.status.success());
    assert!(text(&run.stderr).contains("no id column"));
}

#[test]
fn bench_reports_load_memory_latency_and_outcomes() {
    let dir = tempfile::tempdir().unwrap();
    let mut people = String::from(HEADER);
    people.push_str(&others(50));
    let people = write(dir.path(), "people.csv", &people);
    // o7 with a typo in the surname and no NHS number; and a stranger.
    let source = others(50);
    let o7 = source.lines().nth(7).unwrap();
    // id, nhs_number, given_name, surname, and the rest (date, sex, quoted address, postcode).
    let fields: Vec<&str> = o7.splitn(5, ',').collect();
    let probes = format!(
        "{HEADER}q1,,{},{}x,{}\nq2,,Zebedee,Quill,1901-01-01,M,1 Nowhere Lane,ZZ9 9ZZ\n",
        fields[2], fields[3], fields[4]
    );
    let probes = write(dir.path(), "probes.csv", &probes);
    let truth = write(
        dir.path(),
        "truth.csv",
        "probe_id,person_id,changes\nq1,o7,surname-typo no-nhs-number\nq2,,new-person\n",
    );
    let out = dir.path().join("results.csv");
    let run = concord(&[
        "mpi",
        "bench",
        "--people",
        arg(&people),
        "--probes",
        arg(&probes),
        "--truth",
        arg(&truth),
        "--out",
        arg(&out),
    ]);
    assert!(run.status.success(), "{}", text(&run.stderr));
    let stdout = text(&run.stdout);
    for expected in [
        "people indexed: 50",
        "memory: index +",
        "find (limit 10, one thread): 2 probes",
        "probes of people in the index: 1; their person first: 1 (100.00%)",
        "probes of people not in the index: 1; given a certain match: 0",
        "surname-typo",
    ] {
        assert!(stdout.contains(expected), "{expected:?} in\n{stdout}");
    }
    let results = std::fs::read_to_string(&out).unwrap();
    assert!(
        results.starts_with("probe_id,person_id,top_id,score,grade\nq1,o7,o7,"),
        "{results}"
    );
}
