//! `concord mpi ...`: batch record linkage and the identity benchmarks, on CSV files.
//!
//! Owns: reading person CSVs into [`Demographics`] (the column names, row-level warnings for
//! fields that do not parse, errors for rows that cannot be used), `link` (dedupe of one file or
//! linkage of two, written as a pairs CSV), `eval` (precision, recall and F1 of a pairs file against
//! a truth file) and `bench` (load a [`MatchIndex`], measure its memory and the latency of `find`).
//!
//! Does not: match. Blocking, weights, EM and scoring are the `concord-mpi` crate's; this module
//! only feeds it records and reports what it returns. It does not touch the store or the server.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Subcommand;
use concord_mpi::{
    BirthDate, Decision, Demographics, MatchConfig, MatchGrade, MatchIndex, Model, NhsNumber, Sex,
    link_records,
};

/// How many warnings of one file are printed before they are only counted.
const WARNINGS_SHOWN: usize = 20;

#[derive(Debug, Subcommand)]
pub enum MpiCommand {
    /// Find the records of the same person: within one CSV (dedupe) or across two (linkage).
    ///
    /// The CSVs have a header of named columns: id (required), nhs_number, given_name, surname,
    /// date_of_birth (YYYY-MM-DD or YYYYMMDD), sex, address, postcode, phone, identifier (another
    /// identifier the files share). Any but id may be missing.
    Link {
        /// The first file (the only one for a dedupe).
        #[arg(long)]
        left: PathBuf,
        /// The second file, for a linkage of left against right.
        #[arg(long)]
        right: Option<PathBuf>,
        /// Where to write the pairs: left_id,right_id,score,weight, best first.
        #[arg(long)]
        out: PathBuf,
        /// The lowest match probability written [default: the review threshold of the
        /// default match configuration].
        #[arg(long)]
        threshold: Option<f64>,
        /// Use the default UK weights instead of estimating them from the files by EM.
        #[arg(long)]
        default_model: bool,
    },
    /// Precision, recall and F1 of a pairs file against the true pairs.
    Eval {
        /// Pairs written by `concord mpi link` (left_id,right_id[,score[,weight]]).
        #[arg(long)]
        pairs: PathBuf,
        /// The true pairs (left_id,right_id); the order within a pair does not matter.
        #[arg(long)]
        truth: PathBuf,
        /// Pairs with a score at or above this count as links [default: the link threshold of
        /// the default match configuration].
        #[arg(long)]
        threshold: Option<f64>,
    },
    /// Load people into a match index and time `find` for each probe, one at a time.
    Bench {
        /// The people to index (same columns as `link`).
        #[arg(long)]
        people: PathBuf,
        /// The records to look up (same columns).
        #[arg(long)]
        probes: PathBuf,
        /// probe_id,person_id[,changes]: the person each probe is (empty when not in the
        /// index) and, optionally, space-separated tags of what was changed, for a breakdown.
        #[arg(long)]
        truth: Option<PathBuf>,
        /// How many of the first people the model is estimated on (EM).
        #[arg(long, default_value_t = 20_000)]
        sample: usize,
        /// Use the default UK weights instead of estimating them.
        #[arg(long)]
        default_model: bool,
        /// Candidates asked of each `find`.
        #[arg(long, default_value_t = 10)]
        limit: usize,
        /// Write each probe's top candidate here: probe_id,person_id,top_id,score,grade.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

pub fn run(command: MpiCommand) -> anyhow::Result<ExitCode> {
    match command {
        MpiCommand::Link {
            left,
            right,
            out,
            threshold,
            default_model,
        } => link(&left, right.as_deref(), &out, threshold, default_model),
        MpiCommand::Eval {
            pairs,
            truth,
            threshold,
        } => eval(&pairs, &truth, threshold),
        MpiCommand::Bench {
            people,
            probes,
            truth,
            sample,
            default_model,
            limit,
            out,
        } => bench(&BenchArgs {
            people: &people,
            probes: &probes,
            truth: truth.as_deref(),
            sample,
            default_model,
            limit,
            out: out.as_deref(),
        }),
    }?;
    Ok(ExitCode::SUCCESS)
}

// ---------------------------------------------------------------------------------------------
// Reading person CSVs

/// The columns a person CSV may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Id,
    NhsNumber,
    GivenName,
    Surname,
    DateOfBirth,
    Sex,
    Address,
    Postcode,
    Phone,
    Identifier,
}

impl Column {
    const ALL: [(&'static str, Column); 10] = [
        ("id", Column::Id),
        ("nhs_number", Column::NhsNumber),
        ("given_name", Column::GivenName),
        ("surname", Column::Surname),
        ("date_of_birth", Column::DateOfBirth),
        ("sex", Column::Sex),
        ("address", Column::Address),
        ("postcode", Column::Postcode),
        ("phone", Column::Phone),
        ("identifier", Column::Identifier),
    ];

    fn parse(name: &str) -> Option<Self> {
        let name = name.trim().to_ascii_lowercase();
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
    }

    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, c)| *c == self)
            .map_or("?", |(n, _)| n)
    }
}

/// Reads a person CSV one row at a time. Warnings (fields that do not parse and are left empty)
/// go to stderr as they are met; errors (rows that cannot be used) end the read.
struct PersonReader {
    name: String,
    reader: csv::Reader<File>,
    columns: Vec<Column>,
    record: csv::StringRecord,
    row: u64,
    seen: HashMap<String, u64>,
    warnings: usize,
    lines: LineCounter,
}

/// The line number at a byte offset (one plus the line feeds before it), for messages. The csv
/// crate's own line count misses a line in files with CRLF endings (as Python's csv module writes
/// them), so lines are counted here, on a second handle opened at the first message and moved
/// forward only (messages come in order).
struct LineCounter {
    path: PathBuf,
    file: Option<std::io::BufReader<File>>,
    byte: u64,
    line: u64,
}

impl LineCounter {
    fn line_at(&mut self, byte: u64) -> u64 {
        use std::io::BufRead;
        if byte < self.byte {
            (self.file, self.byte, self.line) = (None, 0, 1);
        }
        if self.file.is_none() {
            match File::open(&self.path) {
                Ok(f) => self.file = Some(std::io::BufReader::new(f)),
                Err(_) => return 0,
            }
        }
        let Some(file) = self.file.as_mut() else {
            return 0;
        };
        while self.byte < byte {
            let Ok(buf) = file.fill_buf() else { return 0 };
            if buf.is_empty() {
                break;
            }
            let take = buf
                .len()
                .min(usize::try_from(byte - self.byte).unwrap_or(usize::MAX));
            self.line += buf[..take].iter().filter(|b| **b == b'\n').count() as u64;
            self.byte += take as u64;
            file.consume(take);
        }
        self.line
    }
}

impl PersonReader {
    fn open(path: &Path) -> anyhow::Result<Self> {
        let name = path.display().to_string();
        let file = File::open(path).with_context(|| format!("cannot open {name}"))?;
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(file);
        let headers = reader
            .headers()
            .with_context(|| format!("{name}: cannot read the header"))?
            .clone();
        let mut columns = Vec::with_capacity(headers.len());
        let mut unknown = Vec::new();
        for header in &headers {
            match Column::parse(header) {
                Some(c) if columns.contains(&c) => {
                    bail!("{name}: column {} appears twice in the header", c.name())
                }
                Some(c) => columns.push(c),
                None => unknown.push(format!("{header:?}")),
            }
        }
        if !unknown.is_empty() {
            let known: Vec<&str> = Column::ALL.iter().map(|(n, _)| *n).collect();
            bail!(
                "{name}: unknown column{} {} (known columns: {})",
                if unknown.len() == 1 { "" } else { "s" },
                unknown.join(", "),
                known.join(", ")
            );
        }
        if !columns.contains(&Column::Id) {
            bail!("{name}: the header has no id column");
        }
        Ok(Self {
            name,
            reader,
            columns,
            record: csv::StringRecord::new(),
            row: 0,
            seen: HashMap::new(),
            warnings: 0,
            lines: LineCounter {
                path: path.to_path_buf(),
                file: None,
                byte: 0,
                line: 1,
            },
        })
    }

    /// Where the current row is, for messages: `people.csv row 3 (line 4)`, counting data rows
    /// from 1 and file lines from 1 (the header is line 1).
    fn at(&mut self) -> String {
        // With CRLF endings the csv crate puts a record's start on the LF before it, so the byte
        // at the position counts too.
        let byte = self.record.position().map_or(0, csv::Position::byte);
        let line = self.lines.line_at(byte + 1);
        format!("{} row {} (line {line})", self.name, self.row)
    }

    fn warn(&mut self, message: std::fmt::Arguments<'_>) {
        self.warnings += 1;
        if self.warnings <= WARNINGS_SHOWN {
            let at = self.at();
            eprintln!("warning: {at}: {message}");
        }
    }

    /// The next row's id and demographics, `None` at the end of the file.
    fn next_person(&mut self) -> anyhow::Result<Option<(String, Demographics)>> {
        let more = self
            .reader
            .read_record(&mut self.record)
            .with_context(|| format!("{}: after row {}", self.name, self.row))?;
        if !more {
            return Ok(None);
        }
        self.row += 1;
        if self.record.len() != self.columns.len() {
            bail!(
                "{}: {} fields where the header has {}",
                self.at(),
                self.record.len(),
                self.columns.len()
            );
        }
        let mut id = String::new();
        let mut d = Demographics::default();
        for i in 0..self.columns.len() {
            let column = self.columns[i];
            let value = &self.record[i];
            if value.is_empty() {
                continue;
            }
            match column {
                Column::Id => id = value.to_string(),
                Column::NhsNumber => match NhsNumber::parse(value) {
                    Ok(n) => d.nhs_number = Some(n),
                    Err(e) => {
                        let value = value.to_string();
                        self.warn(format_args!(
                            "column nhs_number: {value:?} is not a valid NHS number ({e}); left empty"
                        ));
                    }
                },
                Column::GivenName => {
                    d.given_names = value.split_whitespace().map(str::to_string).collect();
                }
                Column::Surname => d.family_name = Some(value.to_string()),
                Column::DateOfBirth => match BirthDate::parse(value) {
                    Some(b) => d.birth_date = Some(b),
                    None => {
                        let value = value.to_string();
                        self.warn(format_args!(
                            "column date_of_birth: {value:?} is not a date (YYYY-MM-DD or YYYYMMDD); left empty"
                        ));
                    }
                },
                Column::Sex => match Sex::parse(value) {
                    Some(s) => d.sex = Some(s),
                    None => {
                        let value = value.to_string();
                        self.warn(format_args!(
                            "column sex: {value:?} is not a sex (male, female, other, unknown, M, F, O, U); left empty"
                        ));
                    }
                },
                Column::Address => d.address = Some(value.to_string()),
                Column::Postcode => d.postcode = Some(value.to_string()),
                Column::Phone => d.phone = Some(value.to_string()),
                Column::Identifier => d.other_identifier = Some(value.to_string()),
            }
        }
        if id.is_empty() {
            bail!("{}: missing id", self.at());
        }
        if let Some(first) = self.seen.insert(id.clone(), self.row) {
            bail!("{}: id {id:?} is also used by row {first}", self.at());
        }
        Ok(Some((id, d)))
    }

    /// Prints how many warnings were not shown; returns the number of warnings.
    fn finish(&self) -> usize {
        if self.warnings > WARNINGS_SHOWN {
            eprintln!(
                "warning: {}: {} more warnings not shown ({} in all)",
                self.name,
                self.warnings - WARNINGS_SHOWN,
                self.warnings
            );
        }
        self.warnings
    }
}

/// A whole person CSV in memory.
struct People {
    ids: Vec<String>,
    records: Vec<Demographics>,
    warnings: usize,
}

fn read_people(path: &Path) -> anyhow::Result<People> {
    let mut reader = PersonReader::open(path)?;
    let mut ids = Vec::new();
    let mut records = Vec::new();
    while let Some((id, d)) = reader.next_person()? {
        ids.push(id);
        records.push(d);
    }
    let warnings = reader.finish();
    Ok(People {
        ids,
        records,
        warnings,
    })
}

// ---------------------------------------------------------------------------------------------
// link

fn config_with_threshold(threshold: Option<f64>) -> anyhow::Result<MatchConfig> {
    let mut config = MatchConfig::default();
    if let Some(t) = threshold {
        if !(0.0..=1.0).contains(&t) {
            bail!("the threshold is a probability between 0 and 1; found {t}");
        }
        config.review_threshold = t;
        config.link_threshold = config.link_threshold.max(t);
    }
    Ok(config)
}

fn link(
    left: &Path,
    right: Option<&Path>,
    out: &Path,
    threshold: Option<f64>,
    default_model: bool,
) -> anyhow::Result<()> {
    let config = config_with_threshold(threshold)?;
    let started = Instant::now();
    let left_people = read_people(left)?;
    let right_people = right.map(read_people).transpose()?;
    let read_time = started.elapsed();

    let linking = Instant::now();
    let model = default_model.then(Model::default_uk);
    let pairs = link_records(
        &left_people.records,
        right_people.as_ref().map(|r| r.records.as_slice()),
        model,
        &config,
    );
    let link_time = linking.elapsed();

    let writing = Instant::now();
    let right_ids = right_people.as_ref().map_or(&left_people.ids, |r| &r.ids);
    let file = File::create(out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(file));
    writer.write_record(["left_id", "right_id", "score", "weight", "decision"])?;
    for pair in &pairs {
        writer.write_record([
            left_people.ids[pair.left].as_str(),
            right_ids[pair.right].as_str(),
            &format!("{:.4}", pair.probability),
            &format!("{:.3}", pair.weight),
            match pair.decision {
                Decision::Link => "link",
                Decision::Review => "review",
                Decision::New => "new",
            },
        ])?;
    }
    writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("cannot write {}: {}", out.display(), e.error()))?
        .flush()?;
    let write_time = writing.elapsed();

    let warnings = left_people.warnings + right_people.as_ref().map_or(0, |r| r.warnings);
    match &right_people {
        None => println!(
            "dedupe: {} records read from {}",
            left_people.records.len(),
            left.display()
        ),
        Some(r) => println!(
            "linkage: {} records read from {}, {} from {}",
            left_people.records.len(),
            left.display(),
            r.records.len(),
            right
                .map(Path::display)
                .map(|d| d.to_string())
                .unwrap_or_default()
        ),
    }
    if warnings > 0 {
        println!("warnings: {warnings} fields left empty (see stderr)");
    }
    println!(
        "pairs written: {} with probability >= {} to {}",
        pairs.len(),
        config.review_threshold,
        out.display()
    );
    println!(
        "time: read {}, link {}, write {}, total {}",
        seconds(read_time),
        seconds(link_time),
        seconds(write_time),
        seconds(started.elapsed())
    );
    Ok(())
}

fn seconds(d: Duration) -> String {
    format!("{:.3} s", d.as_secs_f64())
}

// ---------------------------------------------------------------------------------------------
// eval

/// An unordered pair of ids.
fn pair_key(a: &str, b: &str) -> (String, String) {
    if a <= b {
        (a.to_string(), b.to_string())
    } else {
        (b.to_string(), a.to_string())
    }
}

/// A CSV opened with the positions of the columns asked for.
struct Table {
    reader: csv::Reader<File>,
    required: Vec<usize>,
    optional: Vec<Option<usize>>,
}

/// Opens a CSV and finds the named columns (case-insensitive); `None` for optional ones missing.
fn open_with_columns(path: &Path, required: &[&str], optional: &[&str]) -> anyhow::Result<Table> {
    let name = path.display();
    let file = File::open(path).with_context(|| format!("cannot open {name}"))?;
    let mut reader = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .from_reader(file);
    let headers = reader
        .headers()
        .with_context(|| format!("{name}: cannot read the header"))?
        .clone();
    let find = |col: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(col));
    let mut req = Vec::new();
    for col in required {
        req.push(find(col).with_context(|| format!("{name}: the header has no {col} column"))?);
    }
    Ok(Table {
        reader,
        required: req,
        optional: optional.iter().map(|c| find(c)).collect(),
    })
}

fn read_truth_pairs(path: &Path) -> anyhow::Result<HashSet<(String, String)>> {
    let Table {
        mut reader,
        required: cols,
        ..
    } = open_with_columns(path, &["left_id", "right_id"], &[])?;
    let mut truth = HashSet::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: row {}", path.display(), row + 1))?;
        let (a, b) = (&record[cols[0]], &record[cols[1]]);
        if a.is_empty() || b.is_empty() {
            bail!("{} row {}: an id is missing", path.display(), row + 1);
        }
        if a != b {
            truth.insert(pair_key(a, b));
        }
    }
    Ok(truth)
}

/// Precision, recall and F1 from the counts.
struct Scores {
    true_positives: usize,
    false_positives: usize,
    false_negatives: usize,
}

impl Scores {
    fn precision(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_positives,
        )
    }
    fn recall(&self) -> f64 {
        ratio(
            self.true_positives,
            self.true_positives + self.false_negatives,
        )
    }
    fn f1(&self) -> f64 {
        let (p, r) = (self.precision(), self.recall());
        if p + r == 0.0 {
            0.0
        } else {
            2.0 * p * r / (p + r)
        }
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 { 0.0 } else { a as f64 / b as f64 }
}

fn eval(pairs_path: &Path, truth_path: &Path, threshold: Option<f64>) -> anyhow::Result<()> {
    let truth = read_truth_pairs(truth_path)?;
    let Table {
        mut reader,
        required: cols,
        optional: opt,
    } = open_with_columns(pairs_path, &["left_id", "right_id"], &["score", "decision"])?;
    // Without a threshold, the decisions `concord mpi link` wrote are what counts: a pair the
    // rules keep from linking (different NHS numbers, say) is no link however high it scores.
    let by_decision = threshold.is_none() && opt[1].is_some();
    let threshold = threshold.unwrap_or_else(|| MatchConfig::default().link_threshold);
    // Every distinct pair with its best score (a pairs file without scores counts every pair).
    let mut scored: HashMap<(String, String), f64> = HashMap::new();
    for (row, record) in reader.records().enumerate() {
        let record =
            record.with_context(|| format!("{}: row {}", pairs_path.display(), row + 1))?;
        let score = match opt[0] {
            Some(i) => record[i].parse::<f64>().with_context(|| {
                format!(
                    "{} row {}: score {:?} is not a number",
                    pairs_path.display(),
                    row + 1,
                    &record[i]
                )
            })?,
            None => 1.0,
        };
        // A blocked pair counts as scoring just below the threshold.
        let score = match opt[1] {
            Some(i) if by_decision && &record[i] != "link" => score.min(threshold.next_down()),
            _ => score,
        };
        let key = pair_key(&record[cols[0]], &record[cols[1]]);
        let best = scored.entry(key).or_insert(f64::NEG_INFINITY);
        *best = best.max(score);
    }

    let mut tp = 0;
    let mut fp = 0;
    for (key, score) in &scored {
        if *score >= threshold {
            if truth.contains(key) {
                tp += 1;
            } else {
                fp += 1;
            }
        }
    }
    let at = Scores {
        true_positives: tp,
        false_positives: fp,
        false_negatives: truth.len() - tp,
    };
    if by_decision {
        println!(
            "links: the pairs whose decision is \"link\" (score at least {threshold} and no rule against)"
        );
    } else {
        println!("threshold: {threshold} (pairs scoring at least this count as links)");
    }
    println!(
        "pairs: {} in {}, {} at or above the threshold; true pairs: {}",
        scored.len(),
        pairs_path.display(),
        tp + fp,
        truth.len()
    );
    println!("true positives: {}", at.true_positives);
    println!("false positives: {}", at.false_positives);
    println!("false negatives: {}", at.false_negatives);
    println!("precision: {:.4}", at.precision());
    println!("recall: {:.4}", at.recall());
    println!("F1: {:.4}", at.f1());

    // The best F1 over all thresholds the file offers, as a check on the threshold chosen.
    let mut by_score: Vec<(f64, bool)> = scored
        .iter()
        .map(|(k, s)| (*s, truth.contains(k)))
        .collect();
    by_score.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut best: Option<(f64, f64)> = None;
    let (mut tp, mut fp) = (0, 0);
    for (i, (score, is_true)) in by_score.iter().enumerate() {
        if *is_true {
            tp += 1;
        } else {
            fp += 1;
        }
        if by_score.get(i + 1).is_some_and(|next| next.0 == *score) {
            continue;
        }
        let f1 = Scores {
            true_positives: tp,
            false_positives: fp,
            false_negatives: truth.len() - tp,
        }
        .f1();
        if best.is_none_or(|(b, _)| f1 > b) {
            best = Some((f1, *score));
        }
    }
    if let Some((f1, score)) = best {
        println!("best F1 over thresholds: {f1:.4} at {score}");
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// bench

struct BenchArgs<'a> {
    people: &'a Path,
    probes: &'a Path,
    truth: Option<&'a Path>,
    sample: usize,
    default_model: bool,
    limit: usize,
    out: Option<&'a Path>,
}

/// VmRSS and VmHWM of this process in KiB, from /proc/self/status (Linux); zero elsewhere.
fn memory_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn mib(kib: u64) -> String {
    format!("{:.0} MiB", kib as f64 / 1024.0)
}

fn bench(args: &BenchArgs<'_>) -> anyhow::Result<()> {
    let (rss_before, _) = memory_kib();
    let started = Instant::now();
    let mut reader = PersonReader::open(args.people)?;

    // The model is estimated on the first `sample` people, then they and the rest are inserted.
    let mut first = Vec::new();
    while first.len() < args.sample {
        match reader.next_person()? {
            Some(p) => first.push(p),
            None => break,
        }
    }
    let estimating = Instant::now();
    let model = if args.default_model {
        Model::default_uk()
    } else {
        let sample: Vec<Demographics> = first.iter().map(|(_, d)| d.clone()).collect();
        Model::estimate(&sample)
    };
    let estimate_time = estimating.elapsed();
    let mut index = MatchIndex::new(model, MatchConfig::default());
    for (id, d) in first {
        index.insert(&id, d);
    }
    while let Some((id, d)) = reader.next_person()? {
        index.insert(&id, d);
    }
    reader.finish();
    let load_time = started.elapsed();
    let (rss_after, hwm_after) = memory_kib();

    let probes = read_people(args.probes)?;
    let truth = args.truth.map(read_probe_truth).transpose()?;

    let mut latencies = Vec::with_capacity(probes.records.len());
    let mut tally = Tally::default();
    let mut out = match args.out {
        Some(path) => {
            let file =
                File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
            let mut w = csv::Writer::from_writer(std::io::BufWriter::new(file));
            w.write_record(["probe_id", "person_id", "top_id", "score", "grade"])?;
            Some(w)
        }
        None => None,
    };
    for (probe_id, probe) in probes.ids.iter().zip(&probes.records) {
        let t = Instant::now();
        let candidates = index.find(probe, args.limit, false);
        latencies.push(t.elapsed());
        if let Some(truth) = &truth {
            let expected = truth.get(probe_id.as_str()).with_context(|| {
                format!(
                    "probe {probe_id:?} is not in {}",
                    args.truth.unwrap_or(args.probes).display()
                )
            })?;
            tally.count(expected, &candidates);
        }
        if let Some(w) = out.as_mut() {
            let person = truth
                .as_ref()
                .and_then(|t| t.get(probe_id.as_str()))
                .and_then(|t| t.person.as_deref())
                .unwrap_or_default();
            let top = candidates.first();
            w.write_record([
                probe_id.as_str(),
                person,
                top.map_or("", |c| c.key.as_str()),
                &top.map_or(String::new(), |c| {
                    format!("{:.4}", c.comparison.probability)
                }),
                top.map_or("", |c| c.comparison.grade.code()),
            ])?;
        }
    }
    if let Some(w) = out {
        w.into_inner()
            .map_err(|e| anyhow::anyhow!("cannot write the probe results: {}", e.error()))?
            .flush()?;
    }
    latencies.sort();

    println!(
        "people indexed: {} from {}",
        index.len(),
        args.people.display()
    );
    println!(
        "model: {}",
        if args.default_model {
            "default UK weights".to_string()
        } else {
            format!(
                "estimated by EM on the first {} people in {}",
                args.sample.min(index.len()),
                seconds(estimate_time)
            )
        }
    );
    println!(
        "load: {} ({:.0} records/s, reading and parsing the CSV included)",
        seconds(load_time),
        index.len() as f64 / load_time.as_secs_f64()
    );
    println!(
        "memory: index +{} (VmRSS {} before loading, {} after; VmHWM {})",
        mib(rss_after.saturating_sub(rss_before)),
        mib(rss_before),
        mib(rss_after),
        mib(hwm_after)
    );
    let n = latencies.len();
    if n > 0 {
        let pct = |p: f64| latencies[((n as f64 * p).ceil() as usize).clamp(1, n) - 1];
        let total: Duration = latencies.iter().sum();
        println!(
            "find (limit {}, one thread): {n} probes, mean {}, p50 {}, p95 {}, p99 {}, max {}",
            args.limit,
            millis(total / n as u32),
            millis(pct(0.50)),
            millis(pct(0.95)),
            millis(pct(0.99)),
            millis(latencies[n - 1])
        );
    }
    if truth.is_some() {
        tally.print();
    }
    Ok(())
}

fn millis(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

/// What a probe is: the person's id (`None` when not in the index) and, when the truth file has
/// a `changes` column, the space-separated tags of what was changed (or what kind of stranger).
struct ProbeTruth {
    person: Option<String>,
    changes: Vec<String>,
}

fn read_probe_truth(path: &Path) -> anyhow::Result<HashMap<String, ProbeTruth>> {
    let Table {
        mut reader,
        required: cols,
        optional,
    } = open_with_columns(path, &["probe_id", "person_id"], &["changes"])?;
    let mut truth = HashMap::new();
    for (row, record) in reader.records().enumerate() {
        let record = record.with_context(|| format!("{}: row {}", path.display(), row + 1))?;
        let person = &record[cols[1]];
        let changes = optional[0]
            .map(|i| record[i].split_whitespace().map(str::to_string).collect())
            .unwrap_or_default();
        truth.insert(
            record[cols[0]].to_string(),
            ProbeTruth {
                person: (!person.is_empty()).then(|| person.to_string()),
                changes,
            },
        );
    }
    Ok(truth)
}

/// Outcomes of a group of probes.
#[derive(Default, Clone, Copy)]
struct Counts {
    probes: usize,
    /// The probe's person is the top candidate.
    first: usize,
    /// ... and graded certain (would be linked automatically).
    first_certain: usize,
    /// The probe's person is among the candidates.
    among: usize,
    /// The top candidate is someone else, graded certain: a wrong automatic link.
    wrong_certain: usize,
    /// No candidate at all.
    nothing: usize,
}

/// What `find` gave the probes, against the truth: in all, and by change tag.
#[derive(Default)]
struct Tally {
    members: Counts,
    non_members: Counts,
    by_change: std::collections::BTreeMap<String, Counts>,
}

impl Tally {
    fn count(&mut self, truth: &ProbeTruth, candidates: &[concord_mpi::Candidate]) {
        let top = candidates.first();
        let top_certain = top.is_some_and(|c| matches!(c.comparison.grade, MatchGrade::Certain));
        let mut outcome = Counts {
            probes: 1,
            nothing: usize::from(candidates.is_empty()),
            ..Counts::default()
        };
        match &truth.person {
            Some(person) => {
                let first = top.is_some_and(|c| &c.key == person);
                outcome.first = usize::from(first);
                outcome.first_certain = usize::from(first && top_certain);
                outcome.wrong_certain = usize::from(!first && top_certain);
                outcome.among = usize::from(candidates.iter().any(|c| &c.key == person));
            }
            None => outcome.wrong_certain = usize::from(top_certain),
        }
        let group = if truth.person.is_some() {
            &mut self.members
        } else {
            &mut self.non_members
        };
        add(group, outcome);
        if truth.changes.is_empty() && truth.person.is_some() {
            add(
                self.by_change.entry("(none)".to_string()).or_default(),
                outcome,
            );
        }
        for change in &truth.changes {
            add(self.by_change.entry(change.clone()).or_default(), outcome);
        }
    }

    fn print(&self) {
        let pct = |a: usize, b: usize| format!("{:.2}%", 100.0 * ratio(a, b));
        let m = &self.members;
        println!(
            "probes of people in the index: {}; their person first: {} ({}), first and certain: {} ({}), among the candidates: {} ({}), no candidate: {}",
            m.probes,
            m.first,
            pct(m.first, m.probes),
            m.first_certain,
            pct(m.first_certain, m.probes),
            m.among,
            pct(m.among, m.probes),
            m.nothing
        );
        println!(
            "wrong person first with a certain match: {} ({})",
            m.wrong_certain,
            pct(m.wrong_certain, m.probes)
        );
        let n = &self.non_members;
        println!(
            "probes of people not in the index: {}; given a certain match: {} ({}), no candidate: {}",
            n.probes,
            n.wrong_certain,
            pct(n.wrong_certain, n.probes),
            n.nothing
        );
        if self.by_change.is_empty() {
            return;
        }
        println!("by change (a probe may have several):");
        println!(
            "  {:<28} {:>7} {:>9} {:>9} {:>9} {:>9}",
            "change", "probes", "first", "certain", "nothing", "wrong+c"
        );
        for (change, c) in &self.by_change {
            println!(
                "  {change:<28} {:>7} {:>9} {:>9} {:>9} {:>9}",
                c.probes,
                pct(c.first, c.probes),
                pct(c.first_certain, c.probes),
                c.nothing,
                c.wrong_certain
            );
        }
        println!(
            "  (first: the person is the top candidate; certain: and graded certain; wrong+c: someone else is top and certain)"
        );
    }
}

fn add(total: &mut Counts, one: Counts) {
    total.probes += one.probes;
    total.first += one.first;
    total.first_certain += one.first_certain;
    total.among += one.among;
    total.wrong_certain += one.wrong_certain;
    total.nothing += one.nothing;
}
