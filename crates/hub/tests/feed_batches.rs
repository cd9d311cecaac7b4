//! Writers from many connections share the store's commits, and the store commits an HL7 v2
//! message's unit of work, or a FHIR transaction's, without isolating it from the others of its
//! batch (it can run again: `ResourceStore::write_repeatable`). One the store refuses rolls its
//! whole batch back, so the others must run again: this checks that every good one still ends
//! stored exactly once (a message applied and linked), and every refused one changed nothing
//! (a message a dead letter). Runs the hub over a real SQLite store with real threads.

mod support;

use concord_fhir::RequestContext;
use concord_hub::Hub;
use concord_hub::search::Handling;
use concord_store::MessageStatus;
use serde_json::{Value, json};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../../shared/testdata/hl7v2/messages/ADT-A04-01.hl7"
);

/// The identifier system the mapping gives the sample's PID-3 (its assigning authority).
const PATIENT_SYSTEM: &str = "urn:oid:2.16.1";

/// The sample cut to the segments an admission needs, with its own control id and identifiers;
/// `patient` is its PID-3 identifier.
fn message(sample: &str, id: &str, patient: &str) -> String {
    sample
        .split(['\r', '\n'])
        .filter(|s| {
            ["MSH|", "EVN|", "PID|", "PV1|", "AL1|"]
                .iter()
                .any(|p| s.starts_with(p))
        })
        .map(|s| format!("{s}\r"))
        .collect::<String>()
        .replace("|MSG00001|", &format!("|{id}|"))
        .replace("PATID1234^", &format!("{patient}^"))
        .replace("~123456789^", &format!("~{id}S^"))
        .replace("|1234567^4^M11^", &format!("|{id}^4^M11^"))
        .replace("|EOC124^", &format!("|{id}E^"))
        .replace("|40007716^^^AccMng", &format!("|{id}V^^^AccMng"))
}

fn patients_with(hub: &Hub, value: &str) -> Vec<Value> {
    let ctx = RequestContext::system("test", "check");
    let params = [(
        "identifier".to_string(),
        format!("{PATIENT_SYSTEM}|{value}"),
    )];
    hub.search(
        &ctx,
        Some("Patient"),
        &params,
        Handling::Strict,
        "http://test/fhir",
    )
    .unwrap()
    .entry
    .iter()
    .filter_map(|e| e.resource.as_ref())
    .map(|r| serde_json::from_str(r.get()).unwrap())
    .collect()
}

/// One Patient has the identifier `value`, at its first version: stored once, written once.
fn assert_written_once(hub: &Hub, value: &str) {
    let found = patients_with(hub, value);
    assert_eq!(found.len(), 1, "{value}: stored once");
    assert_eq!(found[0]["meta"]["versionId"], "1", "{value}: written once");
}

/// The two records sharing `DUPE` are as they were made.
fn assert_dupes_untouched(hub: &Hub) {
    let dupes = patients_with(hub, "DUPE");
    assert_eq!(dupes.len(), 2);
    assert!(dupes.iter().all(|p| p["meta"]["versionId"] == "1"));
}

/// Two records that share the identifier `DUPE`: a conditional update by it matches both, so
/// the store refuses it, inside the unit of work, which then fails without a savepoint and takes
/// its batch with it.
fn two_records_share_dupe(hub: &Hub) {
    let ctx = RequestContext::system("test", "setup");
    for family in ["One", "Two"] {
        hub.create(
            &ctx,
            "Patient",
            json!({"resourceType": "Patient", "name": [{"family": family}],
                   "identifier": [{"system": PATIENT_SYSTEM, "value": "DUPE"}]}),
            None,
        )
        .unwrap();
    }
}

#[test]
fn a_refused_message_does_not_take_the_others_of_its_commit_with_it() {
    let (hub, _dir) = support::feed_hub();
    let sample = String::from_utf8(std::fs::read(SAMPLE).unwrap()).unwrap();
    two_records_share_dupe(&hub);

    let threads: Vec<_> = (0..8)
        .map(|sender| {
            let hub = hub.clone();
            let sample = sample.clone();
            std::thread::spawn(move || {
                let mut sent = Vec::new();
                for n in 0..12 {
                    let id = format!("B{sender}x{n}");
                    let refused = (sender + n) % 5 == 0;
                    let patient = if refused {
                        "DUPE".to_string()
                    } else {
                        format!("{id}P")
                    };
                    let ctx = RequestContext::system("test", id.clone());
                    let received = hub.receive_v2(&ctx, message(&sample, &id, &patient).as_bytes());
                    let expected = if refused { "AE" } else { "AA" };
                    assert_eq!(
                        received.code,
                        expected,
                        "{id}: {}",
                        String::from_utf8_lossy(&received.ack)
                    );
                    sent.push((received.seq.unwrap(), patient, refused));
                }
                sent
            })
        })
        .collect();
    let sent: Vec<(i64, String, bool)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();

    let ctx = RequestContext::system("test", "check");
    for (seq, patient, refused) in &sent {
        let logged = hub.logged_message(&ctx, *seq).unwrap();
        if *refused {
            assert_eq!(logged.status, MessageStatus::DeadLetter, "{seq}");
        } else {
            assert_eq!(logged.status, MessageStatus::Applied, "{seq}");
            assert_written_once(&hub, patient);
        }
    }
    // The refused messages changed neither record.
    assert_dupes_untouched(&hub);
    // Every good message's Patient is linked to a golden person (its linking ran, and was
    // undone, with each run of its unit).
    for (_, patient, refused) in &sent {
        if !refused {
            let id = patients_with(&hub, patient)[0]["id"]
                .as_str()
                .unwrap()
                .to_string();
            assert!(hub.person_of(&id).is_some(), "{patient} is linked");
        }
    }
}

/// The same for FHIR transactions posted at once: a transaction is a repeatable unit too, which
/// prepares its Bundle again when another's failure undid it.
#[test]
fn a_refused_transaction_does_not_take_the_others_of_its_commit_with_it() {
    let (hub, _dir) = support::feed_hub();
    two_records_share_dupe(&hub);
    let transaction = |patient: &str| {
        let urn = "urn:uuid:cccccccc-cccc-4ccc-8ccc-cccccccccccc";
        json!({"resourceType": "Bundle", "type": "transaction", "entry": [
            {"fullUrl": urn,
             "request": {"method": "PUT", "url": format!("Patient?identifier={PATIENT_SYSTEM}|{patient}")},
             "resource": {"resourceType": "Patient", "name": [{"family": patient}],
                          "identifier": [{"system": PATIENT_SYSTEM, "value": patient}]}},
            {"request": {"method": "POST", "url": "Observation"},
             "resource": {"resourceType": "Observation", "status": "final",
                          "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
                          "subject": {"reference": urn}}},
        ]})
    };
    let threads: Vec<_> = (0..8)
        .map(|sender| {
            let hub = hub.clone();
            std::thread::spawn(move || {
                let mut sent = Vec::new();
                for n in 0..10 {
                    let refused = (sender + n) % 5 == 0;
                    let patient = if refused {
                        "DUPE".to_string()
                    } else {
                        format!("T{sender}x{n}")
                    };
                    let ctx = RequestContext::system("test", patient.clone());
                    let result =
                        hub.process_bundle(&ctx, &transaction(&patient), "http://test/fhir");
                    assert_eq!(result.is_err(), refused, "{patient}: {result:?}");
                    sent.push((patient, refused));
                }
                sent
            })
        })
        .collect();
    let sent: Vec<(String, bool)> = threads
        .into_iter()
        .flat_map(|t| t.join().unwrap())
        .collect();
    for (patient, refused) in &sent {
        if !refused {
            assert_written_once(&hub, patient);
        }
    }
    assert_dupes_untouched(&hub);
    // One Observation for each transaction that was not refused, none for the others.
    let ctx = RequestContext::system("test", "check");
    let params = [("_summary".to_string(), "count".to_string())];
    let observations = hub
        .search(
            &ctx,
            Some("Observation"),
            &params,
            Handling::Strict,
            "http://test/fhir",
        )
        .unwrap();
    let good = sent.iter().filter(|(_, refused)| !refused).count();
    assert_eq!(observations.total, Some(good as u64));
}
