//! `concord import PATH...`: loads FHIR Bundles (transaction, batch, collection and other types)
//! and NDJSON, from files or folders, through the service layer, so every resource is validated
//! and indexed exactly as an HTTP write would be.
//!
//! Owns: finding the files, the progress bar, grouping loose resources (NDJSON lines, collection
//! entries) into transactions of upserts, finding the bad entry when such a group fails, and the
//! closing report. It goes on past a bad file or entry; the exit status says whether anything
//! failed.

use std::io::BufRead;
use std::path::{Path, PathBuf};

use anyhow::Context;
use concord_fhir::{Error, RequestContext};
use concord_hub::Hub;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

use crate::config::Config;
use crate::node;

/// How many loose resources go into one transaction.
const CHUNK: usize = 500;

/// One thing that could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub file: String,
    /// `entry 3`, `line 17`, or `-` for the whole file.
    pub entry: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub files: usize,
    pub resources: usize,
    pub failures: Vec<Failure>,
}

impl Report {
    pub fn failed(&self) -> bool {
        !self.failures.is_empty()
    }
}

pub fn import(config: &Config, paths: &[PathBuf], progress: bool) -> anyhow::Result<Report> {
    let store = node::open_store(config)?;
    let hub = node::hub(config, store)?;
    let files = find_files(paths)?;
    let bar = if progress {
        ProgressBar::new(files.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{bar:40} {pos}/{len} files, {msg} [{elapsed_precise}, eta {eta}]",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let started = std::time::Instant::now();
    // Files are parsed, validated and indexed by parallel workers; their writes still go one at a
    // time through the store's single writer.
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(4);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let loaded = std::sync::atomic::AtomicUsize::new(0);
    let partial: Vec<Report> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut report = Report::default();
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(file) = files.get(i) else { break };
                        let name = file.display().to_string();
                        let before = report.resources;
                        if let Err(e) = import_file(&hub, file, &name, &mut report) {
                            report.failures.push(Failure {
                                file: name,
                                entry: "-".into(),
                                reason: format!("{e:#}"),
                            });
                        }
                        report.files += 1;
                        let total = loaded.fetch_add(
                            report.resources - before,
                            std::sync::atomic::Ordering::Relaxed,
                        ) + report.resources
                            - before;
                        bar.inc(1);
                        bar.set_message(format!("{total} resources"));
                    }
                    report
                })
            })
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let mut report = Report::default();
    for part in partial {
        report.files += part.files;
        report.resources += part.resources;
        report.failures.extend(part.failures);
    }
    report
        .failures
        .sort_by(|a, b| (&a.file, &a.entry).cmp(&(&b.file, &b.entry)));
    bar.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "imported {} resources from {} files in {seconds:.1} s ({:.0} resources/s); {} failures",
        report.resources,
        report.files,
        report.resources as f64 / seconds.max(1e-9),
        report.failures.len()
    );
    for failure in &report.failures {
        println!(
            "FAILED {}: {}: {}",
            failure.file, failure.entry, failure.reason
        );
    }
    Ok(report)
}

fn find_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut stack = vec![path.clone()];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(&dir)
                    .with_context(|| format!("cannot read {}", dir.display()))?
                {
                    let entry = entry?.path();
                    if entry.is_dir() {
                        stack.push(entry);
                    } else if is_importable(&entry) {
                        files.push(entry);
                    }
                }
            }
        } else if path.is_file() {
            files.push(path.clone());
        } else {
            anyhow::bail!("{} does not exist", path.display());
        }
    }
    files.sort();
    Ok(files)
}

fn is_importable(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("json" | "ndjson" | "jsonl")
    )
}

fn ctx() -> RequestContext {
    RequestContext::system("concord-import", uuid::Uuid::new_v4().to_string())
}

/// The base URL used for fullUrls in responses the importer discards.
const BASE: &str = "urn:concord:import";

fn import_file(hub: &Hub, path: &Path, name: &str, report: &mut Report) -> anyhow::Result<()> {
    let ndjson = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("ndjson" | "jsonl")
    );
    if ndjson {
        let reader = std::io::BufReader::new(
            std::fs::File::open(path).with_context(|| format!("cannot open {name}"))?,
        );
        let mut chunk: Vec<(String, Value)> = Vec::new();
        for (number, line) in reader.lines().enumerate() {
            let line = line.with_context(|| format!("cannot read line {}", number + 1))?;
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(&line) {
                Ok(resource) => chunk.push((format!("line {}", number + 1), resource)),
                Err(e) => report.failures.push(Failure {
                    file: name.into(),
                    entry: format!("line {}", number + 1),
                    reason: format!("not valid JSON: {e}"),
                }),
            }
            if chunk.len() >= CHUNK {
                upsert_chunk(hub, name, std::mem::take(&mut chunk), report);
            }
        }
        upsert_chunk(hub, name, chunk, report);
        return Ok(());
    }
    let text = std::fs::read(path).with_context(|| format!("cannot read {name}"))?;
    let value: Value =
        serde_json::from_slice(&text).map_err(|e| anyhow::anyhow!("not valid JSON: {e}"))?;
    let resource_type = value
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let bundle_type = value
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match (resource_type, bundle_type) {
        ("Bundle", "transaction") => match hub.process_bundle(&ctx(), &value, BASE) {
            Ok(response) => report.resources += response.entry.len(),
            Err(e) => report.failures.push(Failure {
                file: name.into(),
                entry: "transaction".into(),
                reason: e.to_string(),
            }),
        },
        ("Bundle", "batch") => {
            let response = hub
                .process_bundle(&ctx(), &value, BASE)
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            for (i, entry) in response.entry.iter().enumerate() {
                let status = entry
                    .response
                    .as_ref()
                    .map(|r| r.status.as_str())
                    .unwrap_or_default();
                if status.starts_with('2') {
                    report.resources += 1;
                } else {
                    let reason = entry
                        .response
                        .as_ref()
                        .and_then(|r| r.outcome.as_ref())
                        .map_or_else(|| status.to_string(), |o| outcome_text(o.get()));
                    report.failures.push(Failure {
                        file: name.into(),
                        entry: format!("entry {i}"),
                        reason,
                    });
                }
            }
        }
        ("Bundle", _) => {
            let entries = value
                .get("entry")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let resources: Vec<(String, Value)> = entries
                .into_iter()
                .enumerate()
                .filter_map(|(i, e)| {
                    e.get("resource")
                        .cloned()
                        .map(|r| (format!("entry {i}"), r))
                })
                .collect();
            for chunk in resources.chunks(CHUNK) {
                upsert_chunk(hub, name, chunk.to_vec(), report);
            }
        }
        _ => upsert_chunk(hub, name, vec![("resource".into(), value)], report),
    }
    Ok(())
}

/// Upserts resources in one transaction; when it fails, retries them one by one so that only the
/// bad ones are reported and the good ones land.
fn upsert_chunk(hub: &Hub, name: &str, chunk: Vec<(String, Value)>, report: &mut Report) {
    if chunk.is_empty() {
        return;
    }
    let bundle = transaction_of(chunk.iter().map(|(_, r)| r));
    match hub.process_bundle(&ctx(), &bundle, BASE) {
        Ok(_) => report.resources += chunk.len(),
        Err(_) if chunk.len() > 1 => {
            for (label, resource) in chunk {
                let single = transaction_of(std::iter::once(&resource));
                match hub.process_bundle(&ctx(), &single, BASE) {
                    Ok(_) => report.resources += 1,
                    Err(e) => report.failures.push(Failure {
                        file: name.into(),
                        entry: label,
                        reason: reason(&e, &resource),
                    }),
                }
            }
        }
        Err(e) => report.failures.push(Failure {
            file: name.into(),
            entry: chunk[0].0.clone(),
            reason: reason(&e, &chunk[0].1),
        }),
    }
}

/// The error of a one-resource transaction, told about the resource itself: the wrapping
/// transaction is the importer's own device, so its entry number would only confuse.
fn reason(error: &Error, resource: &Value) -> String {
    let resource_type = resource
        .get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or("resource");
    error
        .to_string()
        .replace("Bundle.entry[0]: ", "")
        .replace("Bundle.entry[0].resource", resource_type)
}

/// A transaction that writes each resource under its own id (PUT), or creates it (POST) when it
/// has none.
fn transaction_of<'a>(resources: impl Iterator<Item = &'a Value>) -> Value {
    let entries: Vec<Value> = resources
        .map(|resource| {
            let resource_type = resource.get("resourceType").and_then(Value::as_str).unwrap_or("Unknown");
            match resource.get("id").and_then(Value::as_str) {
                Some(id) => json!({ "resource": resource, "request": { "method": "PUT", "url": format!("{resource_type}/{id}") } }),
                None => json!({ "resource": resource, "request": { "method": "POST", "url": resource_type } }),
            }
        })
        .collect();
    json!({ "resourceType": "Bundle", "type": "transaction", "entry": entries })
}

/// A one-line reading of an OperationOutcome: each issue's diagnostics and where it applies, so
/// batch failures read like the others in the report.
fn outcome_text(outcome_json: &str) -> String {
    let Ok(outcome) = serde_json::from_str::<Value>(outcome_json) else {
        return outcome_json.to_string();
    };
    let issues = outcome
        .get("issue")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    issues
        .iter()
        .map(|issue| {
            let text = issue
                .get("diagnostics")
                .and_then(Value::as_str)
                .unwrap_or("error");
            match issue
                .get("expression")
                .and_then(Value::as_array)
                .and_then(|e| e.first())
                .and_then(Value::as_str)
            {
                Some(at) => format!("{text} (at {at})"),
                None => text.to_string(),
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}
