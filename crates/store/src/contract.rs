//! The store contract: behaviour every [`ResourceStore`] backend must show.
//!
//! Owns: backend-neutral checks, run by each backend's tests through [`contract_tests!`], which
//! makes one `#[test]` per check with a fresh store. The checks hand-build index entries, so they
//! test the store alone; extraction is tested in `concord-search`.

use concord_fhir::primitive::date_range;
use concord_fhir::{ErrorKind, RequestContext};
use concord_search::index::{IndexEntry, IndexValue};
use concord_search::query::{
    Clause, Include, Modifier, ParamClause, ParamRef, ParamType, Prefix, SearchQuery, SearchValue,
    Sort, Summary, TokenSystem,
};

use crate::{CompartmentQuery, HistoryQuery, Method, NewVersion, ResourceStore, StoredVersion};

/// Generates one test per contract check. `$make` is an expression returning a fresh store
/// (`Box<dyn ResourceStore>` or anything that derefs to one) each time it is evaluated.
#[macro_export]
macro_rules! contract_tests {
    ($make:expr) => {
        $crate::contract_tests!(@each $make;
            create_then_read, versions_must_follow_in_order, vread_and_delete, history_newest_first,
            failed_unit_of_work_leaves_nothing, failed_attempt_is_undone_and_the_unit_commits,
            outcome_hooks_follow_the_commit,
            token_string_and_date_search, number_quantity_uri_search,
            reference_chain_and_has, missing_and_not, composite_search, sort_and_paging_at_a_snapshot,
            includes_and_revincludes, compartment_lists_members, summary_count_and_total,
            scan_pages_current_resources, changes_list_current_versions_with_deletions,
            last_seq_moves_with_every_write, repeatable_units_are_stored_once_or_not_at_all
        );
    };
    (@each $make:expr; $($check:ident),*) => {
        $(
            #[test]
            fn $check() {
                let store = $make;
                $crate::contract::$check(&*store);
            }
        )*
    };
}

fn ctx() -> RequestContext {
    RequestContext::system("contract-test", "req-1")
}

fn string(code: &str, s: &str) -> IndexEntry {
    IndexEntry {
        code: code.into(),
        value: IndexValue::String {
            normalized: s.to_lowercase(),
            exact: s.into(),
        },
    }
}

fn token(code: &str, system: Option<&str>, value: &str) -> IndexEntry {
    IndexEntry {
        code: code.into(),
        value: IndexValue::Token {
            system: system.map(Into::into),
            code: Some(value.into()),
            text: None,
        },
    }
}

fn date(code: &str, s: &str) -> IndexEntry {
    let r = date_range(s).expect("valid test date");
    IndexEntry {
        code: code.into(),
        value: IndexValue::Date {
            low: r.low,
            high: r.high,
        },
    }
}

fn reference(code: &str, resource_type: &str, id: &str) -> IndexEntry {
    IndexEntry {
        code: code.into(),
        value: IndexValue::Reference {
            resource_type: Some(resource_type.into()),
            id: Some(id.into()),
            url: None,
            version: None,
            identifier: None,
        },
    }
}

fn quantity(code: &str, value: f64, unit: &str) -> IndexValue {
    let _ = code;
    IndexValue::Quantity {
        value,
        low: value,
        high: value,
        system: Some("http://unitsofmeasure.org".into()),
        code: Some(unit.into()),
        unit: Some(unit.into()),
    }
}

/// Writes one version in its own unit of work.
fn put(
    store: &dyn ResourceStore,
    resource_type: &str,
    id: &str,
    version_id: u64,
    index: Vec<IndexEntry>,
) -> StoredVersion {
    let body = format!(
        r#"{{"resourceType":"{resource_type}","id":"{id}","meta":{{"versionId":"{version_id}"}}}}"#
    );
    let mut out = None;
    store
        .write(&ctx(), &mut |tx| {
            out = Some(tx.put(NewVersion {
                resource_type: resource_type.into(),
                id: id.into(),
                version_id,
                last_updated: 1_600_000_000_000 + version_id as i64,
                method: if version_id == 1 {
                    Method::Post
                } else {
                    Method::Put
                },
                body: Some(body.clone()),
                index: index.clone(),
            })?);
            Ok(())
        })
        .expect("write succeeds");
    out.expect("put ran")
}

fn delete(store: &dyn ResourceStore, resource_type: &str, id: &str, version_id: u64) {
    store
        .write(&ctx(), &mut |tx| {
            tx.put(NewVersion {
                resource_type: resource_type.into(),
                id: id.into(),
                version_id,
                last_updated: 1_700_000_000_000,
                method: Method::Delete,
                body: None,
                index: Vec::new(),
            })?;
            Ok(())
        })
        .expect("delete succeeds");
}

fn query(resource_type: &str, clauses: Vec<Clause>) -> SearchQuery {
    SearchQuery {
        resource_type: Some(resource_type.into()),
        clauses,
        ..SearchQuery::default()
    }
}

fn param(
    code: &str,
    param_type: ParamType,
    modifier: Modifier,
    values: Vec<SearchValue>,
) -> Clause {
    Clause::Param(ParamClause {
        param: ParamRef::Indexed {
            code: code.into(),
            param_type,
        },
        modifier,
        values,
    })
}

fn tok(system: Option<&str>, code: &str) -> SearchValue {
    SearchValue::Token {
        system: system.map_or(TokenSystem::Any, |s| TokenSystem::Is(s.into())),
        code: Some(code.into()),
    }
}

fn str_value(s: &str) -> SearchValue {
    SearchValue::String {
        normalized: s.to_lowercase(),
        exact: s.into(),
    }
}

fn date_value(prefix: Prefix, s: &str) -> SearchValue {
    SearchValue::Date {
        prefix,
        range: date_range(s).expect("valid test date"),
    }
}

/// The ids of the Patients a `name` string search finds.
fn patients_named(store: &dyn ResourceStore, name: &str) -> Vec<String> {
    let q = query(
        "Patient",
        vec![param(
            "name",
            ParamType::String,
            Modifier::None,
            vec![str_value(name)],
        )],
    );
    ids(store, &q)
}

fn ids(store: &dyn ResourceStore, q: &SearchQuery) -> Vec<String> {
    let page = store.search(&ctx(), q).expect("search succeeds");
    page.matches.iter().map(|m| m.id.clone()).collect()
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

pub fn last_seq_moves_with_every_write(store: &dyn ResourceStore) {
    assert_eq!(store.last_seq(&ctx()).expect("last_seq"), 0);
    let first = put(store, "Patient", "p1", 1, vec![]);
    assert_eq!(store.last_seq(&ctx()).expect("last_seq"), first.seq);
    let _ = store.read(&ctx(), "Patient", "p1").expect("reads");
    assert_eq!(store.last_seq(&ctx()).expect("last_seq"), first.seq);
    let second = put(store, "Consent", "c1", 1, vec![]);
    assert!(second.seq > first.seq);
    assert_eq!(store.last_seq(&ctx()).expect("last_seq"), second.seq);
    delete(store, "Consent", "c1", 2);
    let last = store.last_seq(&ctx()).expect("last_seq");
    assert!(last > second.seq);
    // Read together, the version and the store's last seq are those read one at a time.
    let (version, seq) = store
        .read_with_last_seq(&ctx(), "Patient", "p1")
        .expect("reads")
        .expect("p1 exists");
    assert_eq!(
        version,
        store.read(&ctx(), "Patient", "p1").unwrap().unwrap()
    );
    assert_eq!(seq, last);
    let (deleted, _) = store
        .read_with_last_seq(&ctx(), "Consent", "c1")
        .expect("reads")
        .expect("a deletion is a version");
    assert!(deleted.is_deleted());
    assert_eq!(
        store
            .read_with_last_seq(&ctx(), "Patient", "never")
            .unwrap(),
        None
    );
}

pub fn create_then_read(store: &dyn ResourceStore) {
    assert_eq!(store.read(&ctx(), "Patient", "p1").unwrap(), None);
    let written = put(store, "Patient", "p1", 1, vec![]);
    let read = store
        .read(&ctx(), "Patient", "p1")
        .unwrap()
        .expect("the patient exists");
    assert_eq!(read, written);
    assert_eq!(read.version_id, 1);
    assert!(read.body.unwrap().contains(r#""id":"p1""#));
    assert_eq!(
        store.read(&ctx(), "Observation", "p1").unwrap(),
        None,
        "ids are per resource type"
    );
}

pub fn versions_must_follow_in_order(store: &dyn ResourceStore) {
    put(store, "Patient", "p1", 1, vec![]);
    let err = store
        .write(&ctx(), &mut |tx| {
            tx.put(NewVersion {
                resource_type: "Patient".into(),
                id: "p1".into(),
                version_id: 1,
                last_updated: 0,
                method: Method::Put,
                body: Some("{}".into()),
                index: vec![],
            })?;
            Ok(())
        })
        .expect_err("a second version 1 is a conflict");
    assert_eq!(err.kind, ErrorKind::Conflict);
    put(store, "Patient", "p1", 2, vec![]);
    assert_eq!(
        store
            .read(&ctx(), "Patient", "p1")
            .unwrap()
            .unwrap()
            .version_id,
        2
    );
}

pub fn vread_and_delete(store: &dyn ResourceStore) {
    put(store, "Patient", "p1", 1, vec![string("name", "Ann")]);
    put(store, "Patient", "p1", 2, vec![string("name", "Bea")]);
    delete(store, "Patient", "p1", 3);
    let current = store.read(&ctx(), "Patient", "p1").unwrap().unwrap();
    assert!(current.is_deleted());
    assert_eq!(current.method, Method::Delete);
    let v1 = store.vread(&ctx(), "Patient", "p1", 1).unwrap().unwrap();
    assert!(v1.body.is_some());
    assert_eq!(store.vread(&ctx(), "Patient", "p1", 9).unwrap(), None);
    assert!(
        patients_named(store, "bea").is_empty(),
        "a deleted resource is not found by search"
    );
    put(store, "Patient", "p1", 4, vec![string("name", "Cat")]);
    assert_eq!(
        store
            .read(&ctx(), "Patient", "p1")
            .unwrap()
            .unwrap()
            .version_id,
        4,
        "a deleted resource can be recreated"
    );
}

pub fn history_newest_first(store: &dyn ResourceStore) {
    put(store, "Patient", "p1", 1, vec![]);
    put(store, "Patient", "p2", 1, vec![]);
    put(store, "Patient", "p1", 2, vec![]);
    put(store, "Observation", "o1", 1, vec![]);
    let instance = store
        .history(
            &ctx(),
            &HistoryQuery {
                resource_type: Some("Patient".into()),
                id: Some("p1".into()),
                count: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(
        instance
            .versions
            .iter()
            .map(|v| v.version_id)
            .collect::<Vec<_>>(),
        [2, 1]
    );
    assert_eq!(instance.total, 2);
    let by_type = store
        .history(
            &ctx(),
            &HistoryQuery {
                resource_type: Some("Patient".into()),
                count: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(by_type.total, 3);
    let system = store
        .history(
            &ctx(),
            &HistoryQuery {
                count: 2,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(system.total, 4);
    assert_eq!(system.versions.len(), 2);
    assert_eq!(system.versions[0].resource_type, "Observation");
    let since = store
        .history(
            &ctx(),
            &HistoryQuery {
                since: Some(1_600_000_000_002),
                count: 10,
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(since.total, 1, "only p1's second version is that recent");
    // A page at an earlier snapshot does not see later writes.
    let snapshot = system.snapshot;
    put(store, "Patient", "p3", 1, vec![]);
    let again = store
        .history(
            &ctx(),
            &HistoryQuery {
                count: 10,
                snapshot: Some(snapshot),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(again.total, 4);
}

pub fn failed_unit_of_work_leaves_nothing(store: &dyn ResourceStore) {
    let result = store.write(&ctx(), &mut |tx| {
        tx.put(NewVersion {
            resource_type: "Patient".into(),
            id: "a".into(),
            version_id: 1,
            last_updated: 0,
            method: Method::Post,
            body: Some("{}".into()),
            index: vec![string("name", "Ann")],
        })?;
        assert!(
            tx.read("Patient", "a")?.is_some(),
            "a unit sees its own writes"
        );
        Err(concord_fhir::Error::invalid("the second entry is bad"))
    });
    assert!(result.is_err());
    assert_eq!(store.read(&ctx(), "Patient", "a").unwrap(), None);
    assert!(patients_named(store, "ann").is_empty());
}

/// A first version of Patient `id`, indexed under `name`.
fn new_patient(id: &str, name: &str) -> NewVersion {
    NewVersion {
        resource_type: "Patient".into(),
        id: id.into(),
        version_id: 1,
        last_updated: 0,
        method: Method::Post,
        body: Some("{}".into()),
        index: vec![string("name", name)],
    }
}

/// `StoreTx::attempt`: work that fails inside a unit is undone and the unit commits the rest;
/// work that succeeds commits with it. A store that cannot nest refuses and changes nothing.
pub fn failed_attempt_is_undone_and_the_unit_commits(store: &dyn ResourceStore) {
    let version = new_patient;
    let mut nests = true;
    store
        .write(&ctx(), &mut |tx| {
            tx.put(version("kept", "Kept"))?;
            let failed = tx.attempt(&mut |tx| {
                tx.put(version("undone", "Undone"))?;
                Err(concord_fhir::Error::invalid("linking failed"))
            });
            match failed {
                Err(e) if e.kind == ErrorKind::NotSupported => nests = false,
                Err(e) => assert_eq!(e.kind, ErrorKind::Invalid, "the work's own error"),
                Ok(()) => panic!("a failed attempt must report its failure"),
            }
            assert_eq!(tx.read("Patient", "undone")?, None, "undone at once");
            if nests {
                tx.attempt(&mut |tx| tx.put(version("attempted", "Attempted")).map(|_| ()))?;
            }
            Ok(())
        })
        .unwrap();
    assert!(store.read(&ctx(), "Patient", "kept").unwrap().is_some());
    assert_eq!(store.read(&ctx(), "Patient", "undone").unwrap(), None);
    assert!(
        patients_named(store, "undone").is_empty(),
        "its index rows are undone too"
    );
    assert_eq!(
        store
            .read(&ctx(), "Patient", "attempted")
            .unwrap()
            .is_some(),
        nests
    );
}

/// [`ResourceStore::write_repeatable`] under concurrent writers, some of whose units fail: every
/// unit that succeeds is stored once, however often it ran; a failed one leaves nothing; each
/// run that was undone saw its hooks told so, and only the last run of a stored unit is told it
/// committed. Returns how many runs were undone and run again (a store may never need to), so a
/// backend's own tests can check that its batching really does it.
pub fn repeatable_units_are_stored_once_or_not_at_all(store: &dyn ResourceStore) -> usize {
    use std::sync::{Arc, Barrier, Mutex};
    const THREADS: usize = 8;
    const ROUNDS: usize = 12;
    let reruns = Mutex::new(0);
    for round in 0..ROUNDS {
        let barrier = Barrier::new(THREADS);
        std::thread::scope(|scope| {
            for thread in 0..THREADS {
                let (barrier, reruns) = (&barrier, &reruns);
                scope.spawn(move || {
                    let id = format!("r{round}-t{thread}");
                    // Every fourth writer fails after writing.
                    let fails = thread % 4 == 3;
                    let hooks: Arc<Mutex<Vec<bool>>> = Arc::default();
                    let mut runs = 0;
                    barrier.wait();
                    let result = store.write_repeatable(&ctx(), &mut |tx| {
                        runs += 1;
                        let hooks = Arc::clone(&hooks);
                        tx.on_outcome(Box::new(move |committed| {
                            hooks.lock().unwrap().push(committed)
                        }));
                        tx.put(new_patient(&id, &id))?;
                        // Long enough for the other writers to queue behind this unit.
                        std::thread::sleep(std::time::Duration::from_millis(2));
                        if fails {
                            return Err(concord_fhir::Error::invalid("this unit fails"));
                        }
                        Ok(())
                    });
                    let hooks = hooks.lock().unwrap().clone();
                    let stored = store.read(&ctx(), "Patient", &id).unwrap();
                    if fails {
                        assert!(result.is_err(), "{id}");
                        assert_eq!(stored, None, "{id}");
                        assert!(patients_named(store, &id).is_empty(), "{id}");
                        assert_eq!(hooks, vec![false; runs], "{id}");
                    } else {
                        result.unwrap_or_else(|e| panic!("{id}: {e:?}"));
                        assert_eq!(stored.map(|v| v.version_id), Some(1), "{id}");
                        assert_eq!(
                            patients_named(store, &id),
                            std::slice::from_ref(&id),
                            "{id}"
                        );
                        let mut expected = vec![false; runs - 1];
                        expected.push(true);
                        assert_eq!(hooks, expected, "{id}");
                        *reruns.lock().unwrap() += runs - 1;
                    }
                });
            }
        });
    }
    reruns.into_inner().unwrap()
}

/// Outcome hooks ([`crate::StoreTx::on_outcome`]) learn each unit's fate: `true` once it has
/// committed, `false` when the unit failed or an attempt inside it did (newest first), and
/// before the store returns, so whoever wrote can rely on them having run.
pub fn outcome_hooks_follow_the_commit(store: &dyn ResourceStore) {
    use std::sync::{Arc, Mutex};
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let hook = |name: &str| -> crate::OutcomeHook {
        let log = Arc::clone(&log);
        let name = name.to_string();
        Box::new(move |committed| log.lock().unwrap().push(format!("{name} {committed}")))
    };
    let version = |id: &str| new_patient(id, id);
    let mut nests = true;
    store
        .write(&ctx(), &mut |tx| {
            tx.on_outcome(hook("kept"));
            tx.put(version("kept"))?;
            let nested = tx.attempt(&mut |tx| {
                tx.on_outcome(hook("attempt-1"));
                tx.on_outcome(hook("attempt-2"));
                Err(concord_fhir::Error::invalid("linking failed"))
            });
            nests = !nested
                .as_ref()
                .is_err_and(|e| e.kind == ErrorKind::NotSupported);
            Ok(())
        })
        .unwrap();
    // A store that cannot nest runs no work in an attempt, so there is nothing to undo.
    let expected: &[&str] = if nests {
        &["attempt-2 false", "attempt-1 false", "kept true"]
    } else {
        &["kept true"]
    };
    assert_eq!(*log.lock().unwrap(), expected);
    log.lock().unwrap().clear();
    let failed = store.write(&ctx(), &mut |tx| {
        tx.on_outcome(hook("first"));
        tx.on_outcome(hook("second"));
        tx.put(version("dropped"))?;
        Err(concord_fhir::Error::invalid("the unit fails"))
    });
    assert!(failed.is_err());
    assert_eq!(*log.lock().unwrap(), ["second false", "first false"]);

    // Units written at once from several threads may share a commit; each one's hook has run
    // with `true` by the time its write returns.
    log.lock().unwrap().clear();
    std::thread::scope(|scope| {
        for i in 0..8 {
            let log = Arc::clone(&log);
            scope.spawn(move || {
                let mine = format!("unit-{i} true");
                let seen = Arc::clone(&log);
                store
                    .write(&ctx(), &mut |tx| {
                        let log = Arc::clone(&seen);
                        let name = format!("unit-{i}");
                        tx.on_outcome(Box::new(move |committed| {
                            log.lock().unwrap().push(format!("{name} {committed}"));
                        }));
                        tx.put(version(&format!("concurrent-{i}"))).map(|_| ())
                    })
                    .unwrap();
                assert!(
                    log.lock().unwrap().contains(&mine),
                    "{mine} ran before the write returned"
                );
            });
        }
    });
    assert_eq!(log.lock().unwrap().len(), 8);
}

pub fn token_string_and_date_search(store: &dyn ResourceStore) {
    put(
        store,
        "Patient",
        "a",
        1,
        vec![
            string("family", "Smith"),
            token("gender", None, "female"),
            date("birthdate", "1970-03-04"),
            token(
                "identifier",
                Some("https://fhir.nhs.uk/Id/nhs-number"),
                "9000000009",
            ),
        ],
    );
    put(
        store,
        "Patient",
        "b",
        1,
        vec![
            string("family", "Smythe"),
            token("gender", None, "male"),
            date("birthdate", "1980-01-01"),
        ],
    );
    put(
        store,
        "Patient",
        "c",
        1,
        vec![
            string("family", "Jones"),
            token(
                "gender",
                Some("http://hl7.org/fhir/administrative-gender"),
                "female",
            ),
            date("birthdate", "1970"),
        ],
    );

    let family = |v: &str, m: Modifier| {
        query(
            "Patient",
            vec![param("family", ParamType::String, m, vec![str_value(v)])],
        )
    };
    assert_eq!(
        ids(store, &family("sm", Modifier::None)),
        ["a", "b"],
        "string search matches the start"
    );
    assert_eq!(ids(store, &family("Smith", Modifier::Exact)), ["a"]);
    assert!(
        ids(store, &family("smith", Modifier::Exact)).is_empty(),
        ":exact is case-sensitive"
    );
    assert_eq!(ids(store, &family("yth", Modifier::Contains)), ["b"]);

    let gender = |v: SearchValue| {
        query(
            "Patient",
            vec![param("gender", ParamType::Token, Modifier::None, vec![v])],
        )
    };
    assert_eq!(ids(store, &gender(tok(None, "female"))), ["a", "c"]);
    assert_eq!(
        ids(
            store,
            &gender(SearchValue::Token {
                system: TokenSystem::NoSystem,
                code: Some("female".into())
            })
        ),
        ["a"]
    );
    assert_eq!(
        ids(
            store,
            &gender(tok(
                Some("http://hl7.org/fhir/administrative-gender"),
                "female"
            ))
        ),
        ["c"]
    );
    let nhs = query(
        "Patient",
        vec![param(
            "identifier",
            ParamType::Token,
            Modifier::None,
            vec![SearchValue::Token {
                system: TokenSystem::Is("https://fhir.nhs.uk/Id/nhs-number".into()),
                code: None,
            }],
        )],
    );
    assert_eq!(
        ids(store, &nhs),
        ["a"],
        "system| matches any code in the system"
    );

    let born = |p: Prefix, v: &str| {
        query(
            "Patient",
            vec![param(
                "birthdate",
                ParamType::Date,
                Modifier::None,
                vec![date_value(p, v)],
            )],
        )
    };
    assert_eq!(
        ids(store, &born(Prefix::Eq, "1970")),
        ["a", "c"],
        "a year contains its days"
    );
    assert_eq!(
        ids(store, &born(Prefix::Eq, "1970-03-04")),
        ["a"],
        "a day does not contain a whole year"
    );
    assert_eq!(ids(store, &born(Prefix::Gt, "1975")), ["b"]);
    assert_eq!(ids(store, &born(Prefix::Lt, "1975")), ["a", "c"]);
    assert_eq!(
        ids(store, &born(Prefix::Ge, "1970-03-04")),
        ["a", "b", "c"],
        "ge: c's 1970 overlaps the day"
    );
    assert_eq!(ids(store, &born(Prefix::Sa, "1970-06")), ["b"]);
    assert_eq!(ids(store, &born(Prefix::Eb, "1975")), ["a", "c"]);
    assert_eq!(ids(store, &born(Prefix::Ne, "1970")), ["b"]);

    // AND across clauses, OR within one.
    let and = query(
        "Patient",
        vec![
            param(
                "gender",
                ParamType::Token,
                Modifier::None,
                vec![tok(None, "female")],
            ),
            param(
                "family",
                ParamType::String,
                Modifier::None,
                vec![str_value("jones"), str_value("smith")],
            ),
        ],
    );
    assert_eq!(ids(store, &and), ["a", "c"]);
    let by_id = query(
        "Patient",
        vec![Clause::Param(ParamClause {
            param: ParamRef::Id,
            modifier: Modifier::None,
            values: vec![tok(None, "b"), tok(None, "c")],
        })],
    );
    assert_eq!(ids(store, &by_id), ["b", "c"]);
}

pub fn number_quantity_uri_search(store: &dyn ResourceStore) {
    put(
        store,
        "Observation",
        "o1",
        1,
        vec![IndexEntry {
            code: "value-quantity".into(),
            value: quantity("", 5.4, "mmol/L"),
        }],
    );
    put(
        store,
        "Observation",
        "o2",
        1,
        vec![IndexEntry {
            code: "value-quantity".into(),
            value: quantity("", 120.0, "mm[Hg]"),
        }],
    );
    put(
        store,
        "RiskAssessment",
        "r1",
        1,
        vec![IndexEntry {
            code: "probability".into(),
            value: IndexValue::Number {
                value: 0.8,
                low: 0.75,
                high: 0.85,
            },
        }],
    );
    put(
        store,
        "ValueSet",
        "v1",
        1,
        vec![IndexEntry {
            code: "url".into(),
            value: IndexValue::Uri("http://example.org/fhir/ValueSet/a".into()),
        }],
    );

    let q = |prefix: Prefix, value: f64, low: f64, high: f64, code: Option<&str>| {
        query(
            "Observation",
            vec![param(
                "value-quantity",
                ParamType::Quantity,
                Modifier::None,
                vec![SearchValue::Quantity {
                    prefix,
                    value,
                    low,
                    high,
                    system: None,
                    code: code.map(Into::into),
                }],
            )],
        )
    };
    assert_eq!(ids(store, &q(Prefix::Eq, 5.4, 5.35, 5.45, None)), ["o1"]);
    assert_eq!(ids(store, &q(Prefix::Gt, 100.0, 99.5, 100.5, None)), ["o2"]);
    assert_eq!(
        ids(store, &q(Prefix::Gt, 1.0, 0.5, 1.5, Some("mmol/L"))),
        ["o1"]
    );
    assert_eq!(
        ids(store, &q(Prefix::Ap, 118.0, 117.5, 118.5, None)),
        ["o2"],
        "ap allows 10%"
    );

    let number = |prefix: Prefix, value: f64| {
        query(
            "RiskAssessment",
            vec![param(
                "probability",
                ParamType::Number,
                Modifier::None,
                vec![SearchValue::Number {
                    prefix,
                    value,
                    low: value - 0.05,
                    high: value + 0.05,
                }],
            )],
        )
    };
    assert_eq!(ids(store, &number(Prefix::Eq, 0.8)), ["r1"]);
    assert!(ids(store, &number(Prefix::Lt, 0.5)).is_empty());

    let uri = |v: &str, m: Modifier| {
        query(
            "ValueSet",
            vec![param(
                "url",
                ParamType::Uri,
                m,
                vec![SearchValue::Uri(v.into())],
            )],
        )
    };
    assert_eq!(
        ids(
            store,
            &uri("http://example.org/fhir/ValueSet/a", Modifier::None)
        ),
        ["v1"]
    );
    assert!(ids(store, &uri("http://example.org/fhir", Modifier::None)).is_empty());
    assert_eq!(
        ids(store, &uri("http://example.org/fhir", Modifier::Below)),
        ["v1"]
    );
    assert_eq!(
        ids(
            store,
            &uri("http://example.org/fhir/ValueSet/a/extra", Modifier::Above)
        ),
        ["v1"]
    );
}

pub fn reference_chain_and_has(store: &dyn ResourceStore) {
    put(store, "Patient", "p1", 1, vec![string("name", "Smith")]);
    put(store, "Patient", "p2", 1, vec![string("name", "Jones")]);
    put(
        store,
        "Observation",
        "o1",
        1,
        vec![
            reference("subject", "Patient", "p1"),
            token("code", Some("http://loinc.org"), "8867-4"),
        ],
    );
    put(
        store,
        "Observation",
        "o2",
        1,
        vec![
            reference("subject", "Patient", "p2"),
            token("code", Some("http://loinc.org"), "1234-5"),
        ],
    );

    let subject = |rt: Option<&str>, id: &str| {
        query(
            "Observation",
            vec![param(
                "subject",
                ParamType::Reference,
                Modifier::None,
                vec![SearchValue::Reference {
                    resource_type: rt.map(Into::into),
                    id: Some(id.into()),
                    url: None,
                    version: None,
                }],
            )],
        )
    };
    assert_eq!(ids(store, &subject(Some("Patient"), "p1")), ["o1"]);
    assert_eq!(ids(store, &subject(None, "p2")), ["o2"]);
    assert!(ids(store, &subject(Some("Group"), "p1")).is_empty());

    let chain = query(
        "Observation",
        vec![Clause::Chain {
            reference: "subject".into(),
            target_types: vec!["Patient".into()],
            inner: Box::new(param(
                "name",
                ParamType::String,
                Modifier::None,
                vec![str_value("jon")],
            )),
        }],
    );
    assert_eq!(ids(store, &chain), ["o2"]);
    // The same chain as a secondary clause (checked per candidate, not driving).
    let mut chain_second = chain.clone();
    chain_second.clauses.insert(
        0,
        Clause::Param(ParamClause {
            param: ParamRef::Id,
            modifier: Modifier::None,
            values: vec![tok(None, "o1"), tok(None, "o2")],
        }),
    );
    assert_eq!(ids(store, &chain_second), ["o2"]);

    let has = query(
        "Patient",
        vec![Clause::Has {
            source_type: "Observation".into(),
            reference: "subject".into(),
            inner: Box::new(param(
                "code",
                ParamType::Token,
                Modifier::None,
                vec![tok(Some("http://loinc.org"), "8867-4")],
            )),
        }],
    );
    assert_eq!(ids(store, &has), ["p1"]);
    let mut has_second = has.clone();
    has_second.clauses.insert(
        0,
        param(
            "name",
            ParamType::String,
            Modifier::None,
            vec![str_value("s"), str_value("j")],
        ),
    );
    assert_eq!(ids(store, &has_second), ["p1"]);

    // The chain follows the target's current version.
    put(store, "Patient", "p2", 2, vec![string("name", "Brown")]);
    assert!(ids(store, &chain).is_empty());
}

pub fn missing_and_not(store: &dyn ResourceStore) {
    put(
        store,
        "Patient",
        "a",
        1,
        vec![token("gender", None, "female"), date("birthdate", "1970")],
    );
    put(
        store,
        "Patient",
        "b",
        1,
        vec![token("gender", None, "male")],
    );
    put(store, "Patient", "c", 1, vec![]);
    let missing = |m: bool| {
        query(
            "Patient",
            vec![param(
                "birthdate",
                ParamType::Date,
                Modifier::Missing(m),
                vec![],
            )],
        )
    };
    assert_eq!(ids(store, &missing(true)), ["b", "c"]);
    assert_eq!(ids(store, &missing(false)), ["a"]);
    let not = query(
        "Patient",
        vec![param(
            "gender",
            ParamType::Token,
            Modifier::Not,
            vec![tok(None, "male")],
        )],
    );
    assert_eq!(
        ids(store, &not),
        ["a", "c"],
        ":not includes resources with no value"
    );
}

pub fn composite_search(store: &dyn ResourceStore) {
    let component = |code: &str, value: f64| IndexEntry {
        code: "code-value-quantity".into(),
        value: IndexValue::Composite(vec![
            IndexValue::Token {
                system: Some("http://loinc.org".into()),
                code: Some(code.into()),
                text: None,
            },
            quantity("", value, "mm[Hg]"),
        ]),
    };
    // Blood pressure: systolic 120 and diastolic 80 in one resource.
    put(
        store,
        "Observation",
        "bp",
        1,
        vec![component("8480-6", 120.0), component("8462-4", 80.0)],
    );
    let q = |code: &str, prefix: Prefix, value: f64| {
        query(
            "Observation",
            vec![param(
                "code-value-quantity",
                ParamType::Composite,
                Modifier::None,
                vec![SearchValue::Composite(vec![
                    tok(Some("http://loinc.org"), code),
                    SearchValue::Quantity {
                        prefix,
                        value,
                        low: value - 0.5,
                        high: value + 0.5,
                        system: None,
                        code: None,
                    },
                ])],
            )],
        )
    };
    assert_eq!(ids(store, &q("8480-6", Prefix::Gt, 100.0)), ["bp"]);
    assert!(
        ids(store, &q("8462-4", Prefix::Gt, 100.0)).is_empty(),
        "components must match within the same pair"
    );
    let mut secondary = q("8462-4", Prefix::Eq, 80.0);
    secondary.clauses.insert(
        0,
        Clause::Param(ParamClause {
            param: ParamRef::Id,
            modifier: Modifier::None,
            values: vec![tok(None, "bp")],
        }),
    );
    assert_eq!(ids(store, &secondary), ["bp"]);
}

pub fn sort_and_paging_at_a_snapshot(store: &dyn ResourceStore) {
    for (id, family, born) in [
        ("a", "Cole", "1990"),
        ("b", "Adams", "1980"),
        ("c", "Baker", "1985"),
        ("d", "Adams", "1970"),
    ] {
        put(
            store,
            "Patient",
            id,
            1,
            vec![string("family", family), date("birthdate", born)],
        );
    }
    let mut q = query("Patient", vec![]);
    q.sort = vec![
        Sort {
            param: ParamRef::Indexed {
                code: "family".into(),
                param_type: ParamType::String,
            },
            descending: false,
        },
        Sort {
            param: ParamRef::Indexed {
                code: "birthdate".into(),
                param_type: ParamType::Date,
            },
            descending: true,
        },
    ];
    assert_eq!(ids(store, &q), ["b", "d", "c", "a"]);
    q.count = Some(2);
    let first = store.search(&ctx(), &q).unwrap();
    assert_eq!(
        first
            .matches
            .iter()
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>(),
        ["b", "d"]
    );
    assert_eq!(first.total, Some(4));
    // Someone writes between pages: the next page at the first page's snapshot is unchanged.
    put(store, "Patient", "e", 1, vec![string("family", "Aaron")]);
    put(store, "Patient", "c", 2, vec![string("family", "Zed")]);
    let mut next = q.clone();
    next.offset = 2;
    next.snapshot = Some(first.snapshot);
    let second = store.search(&ctx(), &next).unwrap();
    assert_eq!(
        second
            .matches
            .iter()
            .map(|m| m.id.as_str())
            .collect::<Vec<_>>(),
        ["c", "a"]
    );
    assert_eq!(
        second.matches[0].version_id, 1,
        "the snapshot sees c as it was"
    );
    assert_eq!(second.total, Some(4));
    let mut by_id = query("Patient", vec![]);
    by_id.sort = vec![Sort {
        param: ParamRef::Id,
        descending: true,
    }];
    assert_eq!(ids(store, &by_id), ["e", "d", "c", "b", "a"]);
}

pub fn includes_and_revincludes(store: &dyn ResourceStore) {
    put(store, "Organization", "org", 1, vec![]);
    put(
        store,
        "Patient",
        "p1",
        1,
        vec![reference("organization", "Organization", "org")],
    );
    put(
        store,
        "Encounter",
        "e1",
        1,
        vec![reference("subject", "Patient", "p1")],
    );
    put(
        store,
        "Observation",
        "o1",
        1,
        vec![
            reference("subject", "Patient", "p1"),
            reference("encounter", "Encounter", "e1"),
            token("code", None, "x"),
        ],
    );

    let mut q = query(
        "Observation",
        vec![param(
            "code",
            ParamType::Token,
            Modifier::None,
            vec![tok(None, "x")],
        )],
    );
    q.includes = vec![Include {
        source_type: "Observation".into(),
        param: Some("subject".into()),
        target_type: None,
        iterate: false,
    }];
    let page = store.search(&ctx(), &q).unwrap();
    assert_eq!(
        page.included
            .iter()
            .map(|v| v.id.as_str())
            .collect::<Vec<_>>(),
        ["p1"]
    );

    q.includes.push(Include {
        source_type: "Patient".into(),
        param: Some("organization".into()),
        target_type: None,
        iterate: true,
    });
    let page = store.search(&ctx(), &q).unwrap();
    assert_eq!(
        sorted(page.included.iter().map(|v| v.id.clone()).collect()),
        ["org", "p1"],
        ":iterate follows included resources"
    );

    let mut rev = query("Patient", vec![]);
    rev.revincludes = vec![Include {
        source_type: "Observation".into(),
        param: Some("subject".into()),
        target_type: None,
        iterate: false,
    }];
    let page = store.search(&ctx(), &rev).unwrap();
    assert_eq!(
        page.included
            .iter()
            .map(|v| v.id.as_str())
            .collect::<Vec<_>>(),
        ["o1"]
    );
    rev.revincludes = vec![Include {
        source_type: "*".into(),
        param: None,
        target_type: None,
        iterate: false,
    }];
    let page = store.search(&ctx(), &rev).unwrap();
    assert_eq!(
        sorted(page.included.iter().map(|v| v.id.clone()).collect()),
        ["e1", "o1"]
    );
}

pub fn compartment_lists_members(store: &dyn ResourceStore) {
    put(store, "Patient", "p1", 1, vec![]);
    put(
        store,
        "Observation",
        "o1",
        1,
        vec![
            reference("subject", "Patient", "p1"),
            reference("performer", "Patient", "p1"),
        ],
    );
    put(
        store,
        "Observation",
        "o2",
        1,
        vec![reference("subject", "Patient", "p2")],
    );
    put(
        store,
        "Encounter",
        "e1",
        1,
        vec![reference("subject", "Patient", "p1")],
    );
    put(
        store,
        "Organization",
        "x",
        1,
        vec![reference("partof", "Patient", "p1")],
    );
    let q = CompartmentQuery {
        owner_type: "Patient".into(),
        owner_id: "p1".into(),
        members: vec![
            (
                "Observation".into(),
                vec!["subject".into(), "performer".into()],
            ),
            ("Encounter".into(), vec!["subject".into()]),
        ],
        count: 10,
        ..Default::default()
    };
    let page = store.compartment(&ctx(), &q).unwrap();
    assert_eq!(
        page.matches
            .iter()
            .map(|v| v.id.as_str())
            .collect::<Vec<_>>(),
        ["o1", "e1"],
        "each member once; non-members left out"
    );
    assert_eq!(page.total, Some(2));
    delete(store, "Observation", "o1", 2);
    assert_eq!(store.compartment(&ctx(), &q).unwrap().total, Some(1));
}

pub fn summary_count_and_total(store: &dyn ResourceStore) {
    for i in 0..7 {
        put(
            store,
            "Patient",
            &format!("p{i}"),
            1,
            vec![token("active", None, "true")],
        );
    }
    let mut q = query(
        "Patient",
        vec![param(
            "active",
            ParamType::Token,
            Modifier::None,
            vec![tok(None, "true")],
        )],
    );
    q.summary = Some(Summary::Count);
    let page = store.search(&ctx(), &q).unwrap();
    assert!(page.matches.is_empty());
    assert_eq!(page.total, Some(7));
    q.summary = None;
    q.count = Some(3);
    let page = store.search(&ctx(), &q).unwrap();
    assert_eq!(page.matches.len(), 3);
    assert_eq!(page.total, Some(7));
}

/// `scan` lists the current, not deleted resources of one type in write order, page by page.
pub fn scan_pages_current_resources(store: &dyn ResourceStore) {
    for id in ["a", "b", "c", "d"] {
        put(store, "Patient", id, 1, Vec::new());
    }
    put(store, "Observation", "o", 1, Vec::new());
    put(store, "Patient", "a", 2, Vec::new());
    delete(store, "Patient", "c", 2);
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let page = store.scan(&ctx(), "Patient", after, 2).expect("scan");
        let Some(last) = page.last() else { break };
        after = last.seq;
        seen.extend(page.iter().map(|v| format!("{}/{}", v.id, v.version_id)));
    }
    assert_eq!(
        seen,
        ["b/1", "d/1", "a/2"],
        "current versions in write order, deletions left out"
    );
    assert!(
        store
            .scan(&ctx(), "Person", 0, 10)
            .expect("scan")
            .is_empty()
    );
}

/// `changes` lists the current version of each resource of one type in write order, deletions
/// included, page by page; a later write or deletion moves a resource to the end.
pub fn changes_list_current_versions_with_deletions(store: &dyn ResourceStore) {
    for id in ["a", "b", "c", "d"] {
        put(store, "Patient", id, 1, Vec::new());
    }
    put(store, "Observation", "o", 1, Vec::new());
    put(store, "Patient", "a", 2, Vec::new());
    delete(store, "Patient", "c", 2);
    let page = |after: i64, limit: u32| {
        store
            .changes(&ctx(), "Patient", after, limit)
            .expect("changes")
    };
    let mut seen = Vec::new();
    let mut after = 0;
    loop {
        let versions = page(after, 2);
        let Some(last) = versions.last() else { break };
        after = last.seq;
        seen.extend(versions.iter().map(|v| {
            let state = if v.is_deleted() { "deleted" } else { "live" };
            format!("{}/{} {state}", v.id, v.version_id)
        }));
    }
    assert_eq!(
        seen,
        ["b/1 live", "d/1 live", "a/2 live", "c/2 deleted"],
        "current versions in write order, the deletion included"
    );
    // A reader that had got as far as the deletion sees only what came after it.
    put(store, "Patient", "c", 3, Vec::new());
    let rest: Vec<String> = page(after, 10)
        .iter()
        .map(|v| format!("{}/{}", v.id, v.version_id))
        .collect();
    assert_eq!(rest, ["c/3"], "a resource written again after its deletion");
    assert!(page(0, 10).iter().all(|v| !v.is_deleted()));
    assert!(
        store
            .changes(&ctx(), "Person", 0, 10)
            .expect("changes")
            .is_empty()
    );
}

/// The message log keeps every message once per (sender, control id), answers a repeat with what
/// became of the first, and lists dead letters oldest first.
pub fn message_log_dedupes_and_tracks_status(log: &dyn crate::MessageLog) {
    use crate::{Appended, MessageStatus, NewMessage};
    let message = |sender: &str, control_id: &str| NewMessage {
        sender: sender.into(),
        control_id: control_id.into(),
        message_type: "ADT^A01".into(),
        received_at: 1_700_000_000_000,
        raw: b"MSH|^~\\&|PAS|RX1\r".to_vec(),
    };
    let Appended::New(first) = log.append(&ctx(), message("PAS|RX1", "1")).expect("append") else {
        panic!("a new message is new");
    };
    let Appended::New(second) = log.append(&ctx(), message("LAB|RX1", "1")).expect("append") else {
        panic!("the same control id from another sender is another message");
    };
    assert!(second > first);
    log.set_status(
        &ctx(),
        first,
        MessageStatus::DeadLetter,
        Some("PID-3: no identifier"),
        "AE",
    )
    .expect("status");
    match log.append(&ctx(), message("PAS|RX1", "1")).expect("append") {
        Appended::Repeat(previous) => {
            assert_eq!(previous.seq, first);
            assert_eq!(previous.status, MessageStatus::DeadLetter);
            assert_eq!(previous.ack_code.as_deref(), Some("AE"));
            assert_eq!(previous.raw, b"MSH|^~\\&|PAS|RX1\r");
        }
        Appended::New(_) => panic!("a repeated control id is not stored twice"),
    }
    let dead = log
        .list(&ctx(), MessageStatus::DeadLetter, 0, 10)
        .expect("list");
    assert_eq!(dead.iter().map(|m| m.seq).collect::<Vec<_>>(), [first]);
    assert_eq!(dead[0].error.as_deref(), Some("PID-3: no identifier"));
    assert_eq!(
        log.list(&ctx(), MessageStatus::Received, 0, 10)
            .expect("list")
            .len(),
        1
    );
    assert_eq!(
        log.get(&ctx(), second).expect("get").map(|m| m.sender),
        Some("LAB|RX1".into())
    );
    assert_eq!(log.get(&ctx(), 9999).expect("get"), None);
}

// The audit log: append-only, hash-chained, searchable.

/// An audit entry for the contract. The hashes are stand-ins: the store keeps the chain's links
/// (`seq` and `prev_hash` must continue what it holds) but computing hashes is the caller's job.
fn audit_entry(
    seq: u64,
    prev_hash: &str,
    recorded_ms: i64,
    patients: &[&str],
    agent: &str,
    organization: Option<&str>,
    outcome: &str,
) -> crate::AuditEntry {
    crate::AuditEntry {
        seq,
        recorded_ms,
        patients: patients.iter().map(|p| (*p).to_string()).collect(),
        agent: agent.into(),
        organization: organization.map(Into::into),
        action: if seq.is_multiple_of(2) { "R" } else { "U" }.into(),
        interaction: if seq.is_multiple_of(2) {
            "read"
        } else {
            "update"
        }
        .into(),
        outcome: outcome.into(),
        prev_hash: prev_hash.into(),
        hash: format!("{seq:064x}"),
        body: format!("{{\"resourceType\":\"AuditEvent\",\"id\":\"ae-{seq}\"}}"),
    }
}

fn hash_of(seq: u64) -> String {
    if seq == 0 {
        crate::audit::GENESIS.to_string()
    } else {
        format!("{seq:064x}")
    }
}

/// Appended entries come back from `scan` exactly as given, oldest first, and `last` names the
/// newest; an empty trail has no last entry.
pub fn audit_log_appends_and_scans(log: &dyn crate::AuditLog) {
    assert_eq!(log.last(&ctx()).expect("last"), None);
    assert!(log.scan(&ctx(), 0, 10).expect("scan").is_empty());
    let first = audit_entry(
        1,
        &hash_of(0),
        1000,
        &["p1", "p2"],
        "dr-a",
        Some("RX1"),
        "success",
    );
    log.append(&ctx(), std::slice::from_ref(&first))
        .expect("append one");
    let batch = vec![
        audit_entry(2, &hash_of(1), 2000, &[], "edge-1", None, "denied"),
        audit_entry(3, &hash_of(2), 3000, &["p2"], "dr-b", Some("RX2"), "failed"),
    ];
    log.append(&ctx(), &batch).expect("append a batch");
    assert_eq!(log.last(&ctx()).expect("last"), Some((3, hash_of(3))));
    let all = log.scan(&ctx(), 0, 10).expect("scan");
    assert_eq!(all, [vec![first], batch.clone()].concat());
    assert_eq!(log.scan(&ctx(), 1, 10).expect("scan"), batch);
    assert_eq!(
        log.scan(&ctx(), 0, 2)
            .expect("scan")
            .iter()
            .map(|e| e.seq)
            .collect::<Vec<_>>(),
        [1, 2],
        "scan stops at the limit"
    );
    assert!(log.scan(&ctx(), 3, 10).expect("scan").is_empty());
    // An empty append changes nothing.
    log.append(&ctx(), &[]).expect("empty append");
    assert_eq!(log.last(&ctx()).expect("last"), Some((3, hash_of(3))));
}

/// An append that does not continue the chain the store holds is refused whole: a repeated or
/// skipped number, a wrong link, a break inside the batch, or a first entry not from GENESIS.
pub fn audit_log_refuses_a_fork(log: &dyn crate::AuditLog) {
    let conflict = |entries: &[crate::AuditEntry], why: &str| {
        let err = log.append(&ctx(), entries).expect_err(why);
        assert_eq!(err.kind, ErrorKind::Conflict, "{why}");
    };
    conflict(
        &[audit_entry(1, &hash_of(7), 1, &[], "a", None, "success")],
        "the first entry must link to GENESIS",
    );
    conflict(
        &[audit_entry(2, &hash_of(0), 1, &[], "a", None, "success")],
        "the first entry is number 1",
    );
    log.append(
        &ctx(),
        &[audit_entry(1, &hash_of(0), 1, &["p"], "a", None, "success")],
    )
    .expect("first");
    conflict(
        &[audit_entry(1, &hash_of(0), 1, &[], "b", None, "success")],
        "a second writer's entry 1",
    );
    conflict(
        &[audit_entry(3, &hash_of(2), 1, &[], "b", None, "success")],
        "a gap",
    );
    conflict(
        &[audit_entry(2, &hash_of(9), 1, &[], "b", None, "success")],
        "a wrong link",
    );
    conflict(
        &[
            audit_entry(2, &hash_of(1), 1, &["q"], "b", None, "success"),
            audit_entry(4, &hash_of(3), 1, &[], "b", None, "success"),
        ],
        "a break inside the batch",
    );
    conflict(
        &[
            audit_entry(2, &hash_of(1), 1, &["q"], "b", None, "success"),
            audit_entry(3, &hash_of(9), 1, &[], "b", None, "success"),
        ],
        "a wrong link inside the batch",
    );
    assert_eq!(
        log.last(&ctx()).expect("last"),
        Some((1, hash_of(1))),
        "a refused batch leaves nothing behind"
    );
    let touched_q = log
        .search(
            &ctx(),
            &crate::AuditQuery {
                patient: Some("q".into()),
                limit: 10,
                ..crate::AuditQuery::default()
            },
        )
        .expect("search");
    assert!(touched_q.is_empty(), "nor any index row");
    log.append(
        &ctx(),
        &[audit_entry(2, &hash_of(1), 1, &[], "b", None, "success")],
    )
    .expect("the right continuation");
}

/// Search filters by patient, agent, organisation, outcome, action, interaction and time, newest
/// first, and pages with `before_seq`.
pub fn audit_log_search_filters_and_pages(log: &dyn crate::AuditLog) {
    let people = [
        (&["p1"][..], "dr-a", Some("RX1"), "success"),
        (&["p1", "p2"][..], "dr-b", Some("RX2"), "denied"),
        (&[][..], "edge-1", None, "success"),
        (&["p2"][..], "dr-a", Some("RX1"), "failed"),
        (&["p1"][..], "dr-b", Some("RX2"), "success"),
        (&["p3"][..], "dr-a", Some("RX1"), "success"),
    ];
    let entries: Vec<crate::AuditEntry> = people
        .iter()
        .enumerate()
        .map(|(i, (patients, agent, org, outcome))| {
            let seq = i as u64 + 1;
            audit_entry(
                seq,
                &hash_of(seq - 1),
                i64::try_from(seq).unwrap_or(0) * 1000,
                patients,
                agent,
                *org,
                outcome,
            )
        })
        .collect();
    log.append(&ctx(), &entries).expect("append");
    let seqs = |query: crate::AuditQuery| -> Vec<u64> {
        log.search(&ctx(), &query)
            .expect("search")
            .iter()
            .map(|e| e.seq)
            .collect()
    };
    let q = |f: &dyn Fn(&mut crate::AuditQuery)| {
        let mut query = crate::AuditQuery {
            limit: 100,
            ..crate::AuditQuery::default()
        };
        f(&mut query);
        seqs(query)
    };
    assert_eq!(q(&|_| {}), [6, 5, 4, 3, 2, 1], "newest first");
    assert_eq!(q(&|x| x.patient = Some("p1".into())), [5, 2, 1]);
    assert_eq!(q(&|x| x.patient = Some("p2".into())), [4, 2]);
    assert_eq!(q(&|x| x.patient = Some("nobody".into())), Vec::<u64>::new());
    assert_eq!(q(&|x| x.agent = Some("dr-a".into())), [6, 4, 1]);
    assert_eq!(q(&|x| x.organization = Some("RX2".into())), [5, 2]);
    assert_eq!(q(&|x| x.outcome = Some("denied".into())), [2]);
    assert_eq!(q(&|x| x.action = Some("R".into())), [6, 4, 2]);
    assert_eq!(q(&|x| x.interaction = Some("update".into())), [5, 3, 1]);
    assert_eq!(
        q(&|x| {
            x.since_ms = Some(2000);
            x.until_ms = Some(5000);
        }),
        [4, 3, 2],
        "since is inclusive, until exclusive"
    );
    assert_eq!(
        q(&|x| {
            x.patient = Some("p1".into());
            x.agent = Some("dr-b".into());
            x.outcome = Some("success".into());
        }),
        [5],
        "filters combine"
    );
    let found = log
        .search(
            &ctx(),
            &crate::AuditQuery {
                patient: Some("p2".into()),
                limit: 1,
                ..crate::AuditQuery::default()
            },
        )
        .expect("search");
    assert_eq!(found, [entries[3].clone()], "an entry comes back whole");
    // Paging: each page continues below the last seq of the one before.
    let mut pages = Vec::new();
    let mut before = None;
    loop {
        let page = q(&|x| {
            x.limit = 2;
            x.before_seq = before;
        });
        let Some(&last) = page.last() else { break };
        before = Some(last);
        pages.push(page);
    }
    assert_eq!(pages, [vec![6, 5], vec![4, 3], vec![2, 1]]);
    assert_eq!(
        q(&|x| {
            x.patient = Some("p1".into());
            x.before_seq = Some(5);
            x.limit = 1;
        }),
        [2]
    );
    assert!(q(&|x| x.limit = 0).is_empty(), "a zero limit finds nothing");
}
