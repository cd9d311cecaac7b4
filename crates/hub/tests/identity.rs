//! The master patient index through the service layer over a real SQLite store: every Patient
//! written is linked to one golden person, possible matches go to the worklist, stewards resolve
//! them, persons merge and unmerge exactly, and the index survives a restart.
//!
//! Owns: the data-driven linking cases (a list of Patients written in order and who should end
//! up as the same person) and the identity operations' behaviour. Does not: test scoring in
//! detail (concord-mpi does) or HTTP (the REST crate and the e2e tests do).

mod support;

use std::collections::BTreeMap;
use std::sync::Arc;

use concord_fhir::ErrorKind;
use concord_hub::identity::r#match::MatchRequest;
use concord_hub::identity::worklist::Resolution;
use concord_hub::identity::{IdentityConfig, InvalidNhsNumber};
use concord_hub::{Hub, HubConfig, SystemClock};
use concord_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};
use serde_json::{Value, json};

use support::ctx;

const NHS: &str = "https://fhir.nhs.uk/Id/nhs-number";

/// A Patient; `nhs` may be empty.
fn patient(id: &str, nhs: &str, given: &str, family: &str, birth: &str, postcode: &str) -> Value {
    let mut p = json!({
        "resourceType": "Patient",
        "id": id,
        "identifier": [{"system": "https://example.org/mrn", "value": format!("MRN-{id}")}],
        "name": [{"use": "official", "family": family, "given": [given]}],
        "gender": "female",
        "birthDate": birth,
        "address": [{"use": "home", "line": ["1 Church Lane"], "city": "Leeds", "postalCode": postcode}],
    });
    if !nhs.is_empty() {
        p["identifier"]
            .as_array_mut()
            .unwrap()
            .push(json!({"system": NHS, "value": nhs}));
    }
    p
}

fn open(dir: &std::path::Path, identity: IdentityConfig) -> Hub {
    let options = SqliteOptions {
        synchronous: Synchronous::Normal,
        ..SqliteOptions::new(dir.join("concord.db"))
    };
    let store = SqliteStore::open(&options).expect("store opens");
    Hub::new(
        Arc::new(store),
        Arc::new(SystemClock),
        HubConfig {
            identity,
            ..HubConfig::default()
        },
    )
    .expect("hub")
}

fn write_all(hub: &Hub, patients: &[Value]) {
    for p in patients {
        let id = p["id"].as_str().unwrap();
        hub.update(&ctx(), "Patient", id, p.clone(), None)
            .expect("patient stored");
    }
}

fn resources(hub: &Hub, query: &str) -> Vec<Value> {
    let (resource_type, query) = query.split_once('?').unwrap_or((query, ""));
    let params = concord_hub::search::parse_query_string(query);
    let bundle = hub
        .search(
            &ctx(),
            Some(resource_type),
            &params,
            concord_hub::search::Handling::Strict,
            "http://test/fhir",
        )
        .expect("search");
    let json: Value = serde_json::from_str(&bundle.to_json().unwrap()).unwrap();
    json["entry"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e["search"]["mode"] == "match")
        .map(|e| e["resource"].clone())
        .collect()
}

/// Groups record ids by golden person, as sorted lists, for comparing with an expectation.
fn groups(hub: &Hub, ids: &[&str]) -> Vec<Vec<String>> {
    let mut by_person: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for id in ids {
        let person = hub
            .person_of(id)
            .unwrap_or_else(|| panic!("Patient/{id} is not linked"));
        by_person.entry(person).or_default().push((*id).to_string());
    }
    let mut groups: Vec<Vec<String>> = by_person.into_values().collect();
    groups.iter_mut().for_each(|g| g.sort());
    groups.sort();
    groups
}

fn open_tasks(hub: &Hub) -> Vec<Value> {
    resources(hub, "Task?status=requested")
}

/// Writes `patients` in order into a fresh hub and checks who ended up as one person and how
/// many possible matches went to the worklist.
fn check(name: &str, patients: &[Value], expected: &[&[&str]], expected_tasks: usize) {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path(), IdentityConfig::default());
    write_all(&hub, patients);
    let ids: Vec<&str> = patients.iter().map(|p| p["id"].as_str().unwrap()).collect();
    let want: Vec<Vec<String>> = {
        let mut w: Vec<Vec<String>> = expected
            .iter()
            .map(|g| {
                let mut g: Vec<String> = g.iter().map(|s| (*s).to_string()).collect();
                g.sort();
                g
            })
            .collect();
        w.sort();
        w
    };
    assert_eq!(groups(&hub, &ids), want, "{name}: persons");
    assert_eq!(
        open_tasks(&hub).len(),
        expected_tasks,
        "{name}: worklist tasks"
    );
}

#[test]
fn linking_cases() {
    let jane = patient("a", "9434765919", "Jane", "Smith", "1980-03-07", "LS6 2AB");
    check(
        "the same person from two sources, NHS number and demographics agree",
        &[
            jane.clone(),
            patient("b", "9434765919", "Jane", "Smith", "1980-03-07", "LS6 2AB"),
        ],
        &[&["a", "b"]],
        0,
    );
    check(
        "a nickname and no NHS number in one source",
        &[
            patient(
                "a",
                "9434765919",
                "William",
                "Featherstone",
                "1951-11-23",
                "LS6 2AB",
            ),
            patient("b", "", "Bill", "Featherstone", "1951-11-23", "LS6 2AB"),
        ],
        &[&["a", "b"]],
        0,
    );
    check(
        "twins: same surname, birth date and address, different first names",
        &[
            patient("a", "", "Amelia", "Okafor", "2001-06-14", "LS6 2AB"),
            patient("b", "", "Olivia", "Okafor", "2001-06-14", "LS6 2AB"),
        ],
        &[&["a"], &["b"]],
        0,
    );
    check(
        "the same NHS number with a different name and birth date is never linked silently",
        &[
            jane.clone(),
            patient(
                "b",
                "9434765919",
                "Margaret",
                "Hughes",
                "1947-12-01",
                "BD1 4QT",
            ),
        ],
        &[&["a"], &["b"]],
        1,
    );
    check(
        "twins with different NHS numbers are never linked automatically, however alike",
        &[
            patient("a", "9434765919", "Ian", "Hooper", "1990-05-05", "LS6 2AB"),
            patient("b", "4010232137", "Ian", "Hooper", "1990-05-05", "LS6 2AB"),
        ],
        &[&["a"], &["b"]],
        1,
    );
    check(
        "strangers",
        &[
            jane,
            patient(
                "b",
                "4010232137",
                "Tomasz",
                "Nowak",
                "1992-01-30",
                "M14 5RX",
            ),
        ],
        &[&["a"], &["b"]],
        0,
    );
}

#[test]
fn a_person_flags_linked_records_that_disagree() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path(), IdentityConfig::default());
    write_all(
        &hub,
        &[
            patient("a", "9434765919", "Jane", "Smith", "1980-03-07", "LS6 2AB"),
            patient("b", "9434765919", "Jane", "Smith", "1980-03-07", "LS7 3JX"),
        ],
    );
    let person = hub.person_of("a").unwrap();
    assert_eq!(hub.person_of("b").as_deref(), Some(person.as_str()));
    let body: Value =
        serde_json::from_str(&hub.read(&ctx(), "Person", &person).unwrap().body.unwrap()).unwrap();
    let conflicts: Vec<&str> = body["extension"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["valueCode"].as_str().unwrap())
        .collect();
    assert_eq!(conflicts, ["postcode"]);
    assert_eq!(body["link"].as_array().unwrap().len(), 2);
    // Every decision is kept with its evidence.
    let provenance = resources(&hub, "Provenance?_count=10");
    assert_eq!(provenance.len(), 2, "one new-person and one link decision");
    assert!(
        provenance
            .iter()
            .any(|p| p["activity"]["coding"][0]["code"] == "link"
                && p["extension"][0]["extension"][0]["url"] == "score")
    );
}

#[test]
fn invalid_nhs_numbers_are_rejected_or_flagged_by_policy() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path(), IdentityConfig::default());
    let bad = patient("a", "9434765918", "Jane", "Smith", "1980-03-07", "LS6 2AB");
    let error = hub
        .update(&ctx(), "Patient", "a", bad.clone(), None)
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Unprocessable);
    assert_eq!(error.issues[0].expression, ["Patient.identifier[1].value"]);
    assert!(
        hub.read(&ctx(), "Patient", "a").is_err(),
        "nothing was stored"
    );

    let dir = tempfile::tempdir().unwrap();
    let hub = open(
        dir.path(),
        IdentityConfig {
            invalid_nhs_number: InvalidNhsNumber::Flag,
            ..IdentityConfig::default()
        },
    );
    hub.update(&ctx(), "Patient", "a", bad, None).unwrap();
    let flagged = resources(
        &hub,
        "Patient?_tag=https://concord.health/fhir/CodeSystem/data-quality|invalid-nhs-number",
    );
    assert_eq!(flagged.len(), 1);
    assert!(
        hub.person_of("a").is_some(),
        "a flagged record is still linked, on its demographics"
    );
}

#[test]
fn match_scores_and_grades_candidates() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path(), IdentityConfig::default());
    write_all(
        &hub,
        &[
            patient("a", "9434765919", "Jane", "Smith", "1980-03-07", "LS6 2AB"),
            patient("b", "", "Amelia", "Okafor", "2001-06-14", "LS6 2AB"),
        ],
    );
    let probe = json!({"resourceType": "Parameters", "parameter": [
        {"name": "resource", "resource": patient("x", "", "Jane", "Smith", "1980-07-03", "LS6 2AB")},
        {"name": "count", "valueInteger": 5}
    ]});
    let request = MatchRequest::from_parameters(&probe).unwrap();
    let bundle = hub
        .match_patient(&ctx(), &request, "http://test/fhir")
        .unwrap();
    let json: Value = serde_json::from_str(&bundle.to_json().unwrap()).unwrap();
    let entries = json["entry"].as_array().unwrap();
    assert_eq!(entries[0]["resource"]["id"], "a");
    let score = entries[0]["search"]["score"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&score));
    assert_eq!(
        entries[0]["search"]["extension"][0]["url"],
        "http://hl7.org/fhir/StructureDefinition/match-grade"
    );
    assert!(
        entries.iter().all(|e| e["resource"]["id"] != "b"),
        "a stranger is not a candidate"
    );

    let bad = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": {"resourceType": "Observation"}}]});
    let error = MatchRequest::from_parameters(&bad).unwrap_err();
    assert_eq!(
        error.issues[0].expression,
        ["Parameters.parameter[0].resource"]
    );
}

#[test]
fn pix_cross_references_every_linked_record() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path(), IdentityConfig::default());
    write_all(
        &hub,
        &[
            patient("a", "9434765919", "Jane", "Smith", "1980-03-07", "LS6 2AB"),
            patient("b", "9434765919", "Jane", "Smith", "1980-03-07", "LS6 2AB"),
            patient(
                "c",
                "4010232137",
                "Tomasz",
                "Nowak",
                "1992-01-30",
                "M14 5RX",
            ),
        ],
    );
    let answer = hub
        .pix(&ctx(), "https://example.org/mrn|MRN-a", &[])
        .unwrap();
    let values: Vec<String> = answer["parameter"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| match p["name"].as_str().unwrap() {
            "targetIdentifier" => p["valueIdentifier"]["value"].as_str().unwrap().to_string(),
            _ => p["valueReference"]["reference"]
                .as_str()
                .unwrap()
                .to_string(),
        })
        .collect();
    assert_eq!(
        values,
        [
            "9434765919",
            "Patient/a",
            "MRN-b",
            "9434765919",
            "Patient/b"
        ]
    );
    let only_mrn = hub
        .pix(
            &ctx(),
            "https://example.org/mrn|MRN-a",
            &["https://example.org/mrn".into()],
        )
        .unwrap();
    assert_eq!(only_mrn["parameter"].as_array().unwrap().len(), 3);
    let missing = hub
        .pix(&ctx(), "https://example.org/mrn|nobody", &[])
        .unwrap_err();
    assert_eq!(missing.kind, ErrorKind::NotFound);
    let malformed = hub.pix(&ctx(), "MRN-a", &[]).unwrap_err();
    assert_eq!(malformed.kind, ErrorKind::Invalid);
}

#[test]
fn a_steward_links_or_keeps_apart_and_merges_undo_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path(), IdentityConfig::default());
    write_all(
        &hub,
        &[
            patient("a", "9434765919", "Jane", "Smith", "1980-03-07", "LS6 2AB"),
            patient(
                "b",
                "9434765919",
                "Margaret",
                "Hughes",
                "1947-12-01",
                "BD1 4QT",
            ),
        ],
    );
    let tasks = open_tasks(&hub);
    assert_eq!(tasks.len(), 1);
    let task_id = tasks[0]["id"].as_str().unwrap();
    let person_a = hub.person_of("a").unwrap();
    let person_b = hub.person_of("b").unwrap();
    assert_ne!(person_a, person_b);

    // Keeping apart survives a restart: the pair is never raised again.
    hub.resolve_match(
        &ctx(),
        task_id,
        Resolution::KeepApart,
        Some("different people"),
    )
    .unwrap();
    let error = hub
        .resolve_match(&ctx(), task_id, Resolution::Link, None)
        .unwrap_err();
    assert_eq!(error.kind, ErrorKind::Conflict, "a task is resolved once");
    drop(hub);
    let hub = open(dir.path(), IdentityConfig::default());
    assert_eq!(
        hub.person_of("a").as_deref(),
        Some(person_a.as_str()),
        "links reload"
    );
    hub.update(
        &ctx(),
        "Patient",
        "b",
        patient(
            "b",
            "9434765919",
            "Margaret",
            "Hughes",
            "1947-12-01",
            "BD1 4QU",
        ),
        None,
    )
    .unwrap();
    assert!(open_tasks(&hub).is_empty());

    // Merge and unmerge of persons.
    let before_a = hub.locate(&ctx(), &person_a).unwrap();
    hub.merge_persons(&ctx(), &person_b, &person_a, Some("confirmed by phone"))
        .unwrap();
    assert_eq!(hub.person_of("b").as_deref(), Some(person_a.as_str()));
    assert_eq!(hub.locate(&ctx(), &person_a).unwrap().len(), 2);
    let retired: Value =
        serde_json::from_str(&hub.read(&ctx(), "Person", &person_b).unwrap().body.unwrap())
            .unwrap();
    assert_eq!(retired["active"], false);
    assert_eq!(
        retired["link"][0]["target"]["reference"],
        format!("Person/{person_a}")
    );
    let again = hub
        .merge_persons(&ctx(), &person_b, &person_a, None)
        .unwrap_err();
    assert_eq!(again.kind, ErrorKind::Conflict);
    hub.unmerge_person(&ctx(), &person_b, Some("merged in error"))
        .unwrap();
    assert_eq!(hub.person_of("b").as_deref(), Some(person_b.as_str()));
    assert_eq!(hub.locate(&ctx(), &person_a).unwrap(), before_a);
    let decisions: Vec<String> = resources(&hub, "Provenance?_count=50")
        .iter()
        .map(|p| {
            p["activity"]["coding"][0]["code"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for activity in ["new-person", "keep-apart", "merge", "unmerge"] {
        assert!(
            decisions.iter().any(|d| d == activity),
            "{activity} in {decisions:?}"
        );
    }
}

#[test]
fn a_linked_possible_match_joins_the_person() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path(), IdentityConfig::default());
    write_all(
        &hub,
        &[
            patient("a", "9434765919", "Jane", "Smith", "1980-03-07", "LS6 2AB"),
            patient(
                "b",
                "9434765919",
                "Margaret",
                "Hughes",
                "1947-12-01",
                "BD1 4QT",
            ),
        ],
    );
    let task = open_tasks(&hub)[0]["id"].as_str().unwrap().to_string();
    let completed = hub
        .resolve_match(
            &ctx(),
            &task,
            Resolution::Link,
            Some("same person, record corrected"),
        )
        .unwrap();
    let completed: Value = serde_json::from_str(&completed.body.unwrap()).unwrap();
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["businessStatus"]["coding"][0]["code"], "linked");
    assert_eq!(hub.person_of("a"), hub.person_of("b"));
}

/// Patients written from several threads at once: a write links its records inside its own unit
/// of work when the identity lock is free, and after its commit when another write holds it.
/// Either way every record is linked exactly once and one person's records end up together.
#[test]
fn patients_written_concurrently_are_each_linked_once() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path(), IdentityConfig::default());
    let people = [
        ("9434765005", "Ann", "Hale", "1950-01-02", "LS1 1AA"),
        ("9434765374", "Bea", "Irwin", "1961-02-03", "LS2 2BB"),
        ("9434765749", "Cal", "Jones", "1972-03-04", "LS3 3CC"),
        ("9434766117", "Dee", "Kerr", "1983-04-05", "LS4 4DD"),
        ("9434766486", "Eli", "Lowe", "1994-05-06", "LS5 5EE"),
        ("9434766850", "Fay", "Moss", "2005-06-07", "LS6 6FF"),
    ];
    let threads = 4;
    std::thread::scope(|scope| {
        for t in 0..threads {
            let hub = &hub;
            scope.spawn(move || {
                for (i, (nhs, given, family, birth, postcode)) in people.iter().enumerate() {
                    let id = format!("t{t}-p{i}");
                    hub.update(
                        &ctx(),
                        "Patient",
                        &id,
                        patient(&id, nhs, given, family, birth, postcode),
                        None,
                    )
                    .expect("patient stored");
                }
            });
        }
    });
    let ids: Vec<String> = (0..threads)
        .flat_map(|t| (0..people.len()).map(move |i| format!("t{t}-p{i}")))
        .collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let want: Vec<Vec<String>> = (0..people.len())
        .map(|i| (0..threads).map(|t| format!("t{t}-p{i}")).collect())
        .collect();
    assert_eq!(groups(&hub, &ids), want);
    assert_eq!(resources(&hub, "Person").len(), people.len());
    // One automatic decision per record: none was linked twice.
    assert_eq!(resources(&hub, "Provenance").len(), ids.len());
    assert!(open_tasks(&hub).is_empty());
}

#[test]
fn a_deleted_record_leaves_its_person() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path(), IdentityConfig::default());
    write_all(
        &hub,
        &[
            patient("a", "9434765919", "Jane", "Smith", "1980-03-07", "LS6 2AB"),
            patient("b", "9434765919", "Jane", "Smith", "1980-03-07", "LS6 2AB"),
        ],
    );
    let person = hub.person_of("a").unwrap();
    hub.delete(&ctx(), "Patient", "b", None).unwrap();
    assert_eq!(hub.person_of("b"), None);
    let located: Vec<String> = hub
        .locate(&ctx(), &person)
        .unwrap()
        .into_iter()
        .map(|l| l.patient)
        .collect();
    assert_eq!(located, ["a"]);
}

#[test]
fn a_source_record_merge_retires_the_record_and_unmerge_restores_it_apart() {
    let dir = tempfile::tempdir().unwrap();
    let hub = open(dir.path(), IdentityConfig::default());
    write_all(
        &hub,
        &[
            patient(
                "keep",
                "9434765919",
                "Jane",
                "Smith",
                "1980-03-07",
                "LS6 2AB",
            ),
            patient("dup", "", "Jayne", "Smyth", "1980-07-03", "LS6 2AB"),
        ],
    );
    let person = hub.person_of("keep").unwrap();
    hub.merge_patients(&ctx(), "dup", "keep", Some("A40 from the PAS"))
        .unwrap();
    let read = |id: &str| -> Value {
        serde_json::from_str(&hub.read(&ctx(), "Patient", id).unwrap().body.unwrap()).unwrap()
    };
    let retired = read("dup");
    assert_eq!(retired["active"], false);
    assert_eq!(
        retired["link"][0],
        json!({"other": {"reference": "Patient/keep"}, "type": "replaced-by"})
    );
    assert_eq!(
        read("keep")["link"][0],
        json!({"other": {"reference": "Patient/dup"}, "type": "replaces"})
    );
    assert_eq!(
        hub.person_of("dup").as_deref(),
        Some(person.as_str()),
        "the locator still finds data filed under the old record"
    );
    assert_eq!(
        hub.merge_patients(&ctx(), "dup", "keep", None)
            .unwrap_err()
            .kind,
        ErrorKind::Conflict
    );

    // A retired record is no longer a match candidate.
    let probe = json!({"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": patient("x", "", "Jayne", "Smyth", "1980-07-03", "LS6 2AB")}]});
    let bundle = hub
        .match_patient(
            &ctx(),
            &MatchRequest::from_parameters(&probe).unwrap(),
            "http://test/fhir",
        )
        .unwrap();
    let json: Value = serde_json::from_str(&bundle.to_json().unwrap()).unwrap();
    assert!(
        json["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .all(|e| e["resource"]["id"] != "dup")
    );

    hub.unmerge_patient(&ctx(), "dup", Some("merged in error"))
        .unwrap();
    assert_eq!(read("dup")["active"], true);
    assert!(read("dup").get("link").is_none() && read("keep").get("link").is_none());
    let own = hub.person_of("dup").unwrap();
    assert_ne!(
        own, person,
        "an unmerged record is its own person, kept apart"
    );
    drop(hub);
    let hub = open(dir.path(), IdentityConfig::default());
    hub.update(
        &ctx(),
        "Patient",
        "dup",
        patient("dup", "", "Jayne", "Smyth", "1980-07-03", "LS6 2AC"),
        None,
    )
    .unwrap();
    assert_eq!(hub.person_of("dup"), Some(own));
}

#[test]
fn a_node_without_a_master_index_stores_patients_unlinked() {
    let dir = tempfile::tempdir().unwrap();
    let edge = IdentityConfig {
        master_index: false,
        ..IdentityConfig::default()
    };
    let hub = open(dir.path(), edge.clone());
    let twins = [
        patient("a", "9434765919", "Jane", "Smith", "1980-03-07", "LS6 2AB"),
        patient("b", "9434765919", "Jane", "Smith", "1980-03-07", "LS6 2AB"),
    ];
    write_all(&hub, &twins);
    assert_eq!(
        resources(&hub, "Patient").len(),
        2,
        "both records are stored"
    );
    assert_eq!(hub.person_of("a"), None);
    assert!(resources(&hub, "Person").is_empty(), "no golden person");
    assert!(
        resources(&hub, "Provenance").is_empty(),
        "no linking decision"
    );
    drop(hub);
    // Reopened as a hub, the node links what it holds.
    let hub = open(dir.path(), IdentityConfig::default());
    assert_eq!(groups(&hub, &["a", "b"]), [["a", "b"]]);
    drop(hub);
    // Reopened as an edge again, it neither loads nor links anything.
    let hub = open(dir.path(), edge);
    assert_eq!(hub.person_of("a"), None);
}
