//! One test per mapping rule, on small hand-written messages: NHS numbers, the patient key,
//! Encounter status by ADT event, merges and identifier changes, OBX value types, appointment and
//! document statuses, local time, errors, and that nothing a message says leaks into an error or
//! warning.
//!
//! Owns: the rule-level tests of `concord-v2fhir`. Does not: run the shared sample messages (see
//! `shared_messages.rs`). Every bundle made here is also checked by the FHIR validator.

use concord_fhir::validate::validate_resource;
use concord_hl7v2::Message;
use concord_v2fhir::{ErrorCode, LocalTime, MapError, MapOptions, Mapped, map_message};
use serde_json::Value;

const MSH_ADT: &str = "MSH|^~\\&|PAS|RX1|CONCORD|RX1|20240701120000+0100||ADT^{EVENT}|MSG1|P|2.5";

/// A segment with values at the given field positions (the rest empty).
fn seg(id: &str, fields: &[(usize, &str)]) -> String {
    let last = fields.iter().map(|(n, _)| *n).max().unwrap_or(0);
    let mut parts = vec![String::new(); last + 1];
    parts[0] = id.to_string();
    for (n, v) in fields {
        parts[*n] = (*v).to_string();
    }
    parts.join("|")
}

fn pv1(extra: &[(usize, &str)]) -> String {
    let mut fields = vec![
        (1, "1"),
        (2, "I"),
        (3, "WARD1^BAY2^BED3^RX1"),
        (7, "C123^JONES^ANNA^^^DR"),
        (10, "MED"),
        (19, "V1001^^^RX1^VN"),
        (44, "202407011000+0100"),
    ];
    fields.extend_from_slice(extra);
    seg("PV1", &fields)
}

fn options() -> MapOptions {
    MapOptions::new("RX1", "2025-01-01T00:00:00+00:00")
}

fn parse(segments: &[&str]) -> Message {
    Message::parse(segments.join("\r").as_bytes()).expect("test message parses")
}

fn try_map_with(segments: &[&str], options: &MapOptions) -> Result<Mapped, MapError> {
    let mapped = map_message(&parse(segments), options)?;
    let issues = validate_resource(&mapped.bundle);
    assert!(issues.is_empty(), "invalid FHIR: {issues:?}");
    Ok(mapped)
}

fn map(segments: &[&str]) -> Mapped {
    try_map_with(segments, &options()).expect("maps")
}

fn map_err(segments: &[&str]) -> MapError {
    match try_map_with(segments, &options()) {
        Err(e) => e,
        Ok(_) => panic!("expected an error"),
    }
}

/// The resources of one type in a bundle.
fn resources<'a>(m: &'a Mapped, kind: &str) -> Vec<&'a Value> {
    m.bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == kind)
        .collect()
}

fn one<'a>(m: &'a Mapped, kind: &str) -> &'a Value {
    let all = resources(m, kind);
    assert_eq!(all.len(), 1, "one {kind} in {:#}", m.bundle);
    all[0]
}

fn request_of<'a>(m: &'a Mapped, kind: &str) -> &'a Value {
    &m.bundle["entry"]
        .as_array()
        .expect("entries")
        .iter()
        .find(|e| e["resource"]["resourceType"] == kind)
        .expect("entry")["request"]
}

fn adt<S: AsRef<str>>(event: &str, rest: &[S]) -> Vec<String> {
    let mut segs = vec![
        MSH_ADT.replace("{EVENT}", event),
        format!("EVN|{event}|20240701120000+0100"),
    ];
    segs.extend(rest.iter().map(|s| s.as_ref().to_string()));
    segs
}

fn refs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

const PID: &str = "PID|1||12345^^^RX1^MR~9434765919^^^NHS^NH||SMITH^JOHN^^^MR||19700101|M|||1 HIGH STREET^^LEEDS^^LS1 1AA^GBR^H||01132345678^PRN^PH";

#[test]
fn a_valid_nhs_number_gets_the_nhs_system_and_the_local_number_keys_the_record() {
    let m = map(&refs(&adt("A28", &[PID])));
    let patient = one(&m, "Patient");
    let ids = patient["identifier"].as_array().unwrap();
    assert!(
        ids.iter()
            .any(|i| i["system"] == "https://fhir.nhs.uk/Id/nhs-number"
                && i["value"] == "9434765919")
    );
    assert_eq!(
        m.patient_key.as_deref(),
        Some("https://concord.health/fhir/source/RX1/id/RX1|12345")
    );
    assert_eq!(
        request_of(&m, "Patient")["url"],
        "Patient?identifier=https://concord.health/fhir/source/RX1/id/RX1|12345"
    );
    assert!(m.warnings.is_empty(), "{:?}", m.warnings);
}

#[test]
fn an_nhs_number_failing_modulus_11_is_kept_local_with_a_warning() {
    let pid = "PID|1||943 476 5918^^^NHS^NH~12345^^^RX1^MR||SMITH^JOHN";
    let m = map(&refs(&adt("A28", &[pid])));
    let ids = one(&m, "Patient")["identifier"].as_array().unwrap().clone();
    assert!(
        !ids.iter()
            .any(|i| i["system"] == "https://fhir.nhs.uk/Id/nhs-number")
    );
    assert!(
        ids.iter()
            .any(|i| i["system"] == "https://concord.health/fhir/source/RX1/id/NHS")
    );
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("PID-3") && w.contains("NHS number")),
        "{:?}",
        m.warnings
    );
    assert!(
        !m.warnings.iter().any(|w| w.contains("5918")),
        "no value in warnings"
    );
}

#[test]
fn an_nhs_number_alone_keys_the_record() {
    let m = map(&refs(&adt(
        "A28",
        &["PID|1||9434765919^^^NHS^NH||SMITH^JOHN"],
    )));
    assert_eq!(
        m.patient_key.as_deref(),
        Some("https://fhir.nhs.uk/Id/nhs-number|9434765919")
    );
}

#[test]
fn encounter_status_follows_the_event() {
    let admitted = pv1(&[]);
    let discharged = pv1(&[(45, "202407051500+0100")]);
    for (event, pv1, status, has_end) in [
        ("A01", &admitted, "in-progress", false),
        ("A02", &admitted, "in-progress", false),
        ("A03", &discharged, "finished", true),
        ("A04", &admitted, "in-progress", false),
        ("A05", &admitted, "planned", false),
        ("A06", &admitted, "in-progress", false),
        ("A08", &admitted, "in-progress", false),
        ("A08", &discharged, "finished", true),
        ("A11", &admitted, "cancelled", false),
        ("A12", &admitted, "in-progress", false),
        ("A13", &discharged, "in-progress", false),
        ("A21", &admitted, "onleave", false),
        ("A23", &admitted, "entered-in-error", false),
        ("A38", &admitted, "cancelled", false),
    ] {
        let m = map(&refs(&adt(event, &[PID, pv1])));
        let e = one(&m, "Encounter");
        assert_eq!(e["status"], status, "{event}");
        assert_eq!(e["period"].get("end").is_some(), has_end, "{event}");
        assert_eq!(e["period"]["start"], "2024-07-01T10:00:00+01:00", "{event}");
        assert_eq!(
            request_of(&m, "Encounter")["url"],
            "Encounter?identifier=https://concord.health/fhir/source/RX1/id/RX1|V1001"
        );
        assert_eq!(e["class"]["code"], "IMP");
        assert_eq!(
            e["location"][0]["location"]["display"],
            "WARD1, BAY2, BED3, RX1"
        );
        assert_eq!(
            e["participant"][0]["individual"]["display"],
            "DR ANNA JONES"
        );
        assert_eq!(e["subject"]["reference"], m.bundle["entry"][0]["fullUrl"]);
    }
}

#[test]
fn a_cancelled_transfer_drops_the_location_it_cancelled() {
    let visit = pv1(&[(6, "WARD9^BAY9^BED9^RX1")]);
    let m = map(&refs(&adt("A02", &[PID, visit.as_str()])));
    let locations = one(&m, "Encounter")["location"].as_array().unwrap().clone();
    assert_eq!(locations.len(), 2);
    assert_eq!(locations[1]["status"], "completed");
    let m = map(&refs(&adt("A12", &[PID, visit.as_str()])));
    let e = one(&m, "Encounter");
    assert_eq!(e["status"], "in-progress");
    assert_eq!(e["location"].as_array().unwrap().len(), 1);
    assert_eq!(e["location"][0]["status"], "active");
}

#[test]
fn person_events_make_no_encounter() {
    for event in ["A28", "A31"] {
        let m = map(&refs(&adt(event, &[PID, &pv1(&[])])));
        assert!(resources(&m, "Encounter").is_empty(), "{event}");
        assert_eq!(resources(&m, "Patient").len(), 1);
    }
}

#[test]
fn a_visit_without_a_number_is_not_written() {
    let m = map(&refs(&adt("A01", &[PID, "PV1|1|I|WARD1"])));
    assert!(resources(&m, "Encounter").is_empty());
    assert!(m.warnings.iter().any(|w| w.contains("PV1-19")));
}

#[test]
fn a40_retires_the_merged_record_and_links_both_ways() {
    let m = map(&refs(&adt(
        "A40",
        &[
            "PID|1||12345^^^RX1^MR||SMITH^JOHN",
            "MRG|67890^^^RX1^MR||||||SMITH^JON",
        ],
    )));
    let patients = resources(&m, "Patient");
    assert_eq!(patients.len(), 2);
    let entries = m.bundle["entry"].as_array().unwrap();
    let url = |i: usize| entries[i]["fullUrl"].as_str().unwrap().to_string();
    let survivor = &entries[0]["resource"];
    let retired = &entries[1]["resource"];
    assert_eq!(survivor["active"], true);
    assert_eq!(survivor["link"][0]["type"], "replaces");
    assert_eq!(survivor["link"][0]["other"]["reference"], url(1).as_str());
    assert_eq!(retired["active"], false);
    assert_eq!(retired["link"][0]["type"], "replaced-by");
    assert_eq!(retired["link"][0]["other"]["reference"], url(0).as_str());
    assert_eq!(retired["name"][0]["family"], "SMITH");
    assert_eq!(
        entries[1]["request"]["url"],
        "Patient?identifier=https://concord.health/fhir/source/RX1/id/RX1|67890"
    );
    assert_eq!(m.merges.len(), 1);
    assert_eq!(
        m.merges[0].retired,
        "https://concord.health/fhir/source/RX1/id/RX1|67890"
    );
    assert_eq!(
        m.merges[0].survivor,
        "https://concord.health/fhir/source/RX1/id/RX1|12345"
    );
}

#[test]
fn a40_without_mrg_fails() {
    let e = map_err(&refs(&adt("A40", &["PID|1||12345^^^RX1^MR||SMITH^JOHN"])));
    assert_eq!(
        (e.segment.as_str(), e.code),
        ("MRG", ErrorCode::SegmentSequence)
    );
}

#[test]
fn a47_rewrites_the_record_found_by_its_old_identifier() {
    let m = map(&refs(&adt(
        "A47",
        &["PID|1||NEW1^^^RX1^MR||SMITH^JOHN", "MRG|OLD1^^^RX1^MR"],
    )));
    assert_eq!(
        request_of(&m, "Patient")["url"],
        "Patient?identifier=https://concord.health/fhir/source/RX1/id/RX1|OLD1"
    );
    let ids = &one(&m, "Patient")["identifier"];
    assert_eq!(ids[0]["value"], "NEW1");
    // The old identifier stays, marked old, so the same message applied again finds the record.
    assert_eq!(
        (ids[1]["value"].as_str(), ids[1]["use"].as_str()),
        (Some("OLD1"), Some("old"))
    );
    assert_eq!(
        m.patient_key.as_deref(),
        Some("https://concord.health/fhir/source/RX1/id/RX1|NEW1")
    );
}

#[test]
fn allergies_diagnoses_and_next_of_kin_belong_to_the_patient() {
    let m = map(&refs(&adt(
        "A01",
        &[
            PID,
            "NK1|1|SMITH^JANE|SPO^Spouse^HL70063|1 HIGH STREET^^LEEDS|01132345679",
            &pv1(&[]),
            "AL1|1|DA^Drug allergy^HL70127|PENICILLIN^Penicillin^L|SV|Rash|20200101",
            "DG1|1||I21.9^Acute myocardial infarction^I10||20240701|A",
        ],
    )));
    let patient_url = m.bundle["entry"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["resource"]["resourceType"] == "Patient")
        .unwrap()["fullUrl"]
        .clone();
    let rp = one(&m, "RelatedPerson");
    assert_eq!(rp["patient"]["reference"], patient_url);
    assert_eq!(rp["relationship"][0]["coding"][0]["code"], "SPO");
    let al = one(&m, "AllergyIntolerance");
    assert_eq!(al["category"][0], "medication");
    assert_eq!(al["criticality"], "high");
    assert_eq!(al["reaction"][0]["severity"], "severe");
    assert_eq!(al["reaction"][0]["manifestation"][0]["text"], "Rash");
    let c = one(&m, "Condition");
    assert_eq!(
        c["code"]["coding"][0]["system"],
        "http://hl7.org/fhir/sid/icd-10"
    );
    let e = one(&m, "Encounter");
    assert_eq!(e["diagnosis"][0]["use"]["coding"][0]["code"], "AD");
    // The same message again gives the same keys (derived keys are deterministic).
    let again = map(&refs(&adt(
        "A01",
        &[
            PID,
            "NK1|1|SMITH^JANE|SPO^Spouse^HL70063|1 HIGH STREET^^LEEDS|01132345679",
            &pv1(&[]),
            "AL1|1|DA^Drug allergy^HL70127|PENICILLIN^Penicillin^L|SV|Rash|20200101",
            "DG1|1||I21.9^Acute myocardial infarction^I10||20240701|A",
        ],
    )));
    assert_eq!(again.bundle, m.bundle);
}

#[test]
fn unsupported_types_and_events_name_msh_9() {
    let e = map_err(&[
        "MSH|^~\\&|A|B|C|D|20240701||ORM^O01|1|P|2.5",
        "PID|1||1^^^RX1^MR",
    ]);
    assert_eq!(
        (e.segment.as_str(), e.index, e.field, e.code),
        ("MSH", 1, Some(9), ErrorCode::UnsupportedMessageType)
    );
    for mt in ["ADT^A99", "SIU^S20", "ORU^R30", "MDM^T12"] {
        let e = map_err(&[
            &format!("MSH|^~\\&|A|B|C|D|20240701||{mt}|1|P|2.5"),
            "PID|1||1^^^RX1^MR",
        ]);
        assert_eq!(
            (e.field, e.code),
            (Some(9), ErrorCode::UnsupportedEventCode),
            "{mt}"
        );
    }
}

#[test]
fn a_message_without_a_patient_fails_with_the_position() {
    let e = map_err(&refs(&adt("A01", &[pv1(&[])])));
    assert_eq!(
        (e.segment.as_str(), e.code),
        ("PID", ErrorCode::SegmentSequence)
    );
    let e = map_err(&refs(&adt(
        "A01",
        &["PID|1||^^^RX1^MR||SMITH^JOHN".to_string(), pv1(&[])],
    )));
    assert_eq!(
        (e.segment.as_str(), e.index, e.field, e.code),
        ("PID", 3, Some(3), ErrorCode::RequiredFieldMissing)
    );
}

#[test]
fn nothing_from_the_message_leaks_into_errors_or_warnings() {
    let pid = "PID|1||XYZZY1^^^RX1^MR~1111111111^^^NHS^NH||QUUXNAME^JOHN||19709999|Q";
    let visit = seg(
        "PV1",
        &[
            (2, "I"),
            (3, "QUUXWARD"),
            (19, "QUUXVISIT"),
            (44, "notadate"),
        ],
    );
    let m = map(&refs(&adt("A01", &[pid, visit.as_str()])));
    for w in &m.warnings {
        for secret in ["XYZZY1", "1111111111", "QUUX", "19709999", "notadate"] {
            assert!(!w.contains(secret), "{w}");
        }
    }
    assert!(m.warnings.len() >= 3, "{:?}", m.warnings);
    let e = map_err(&refs(&adt(
        "A01",
        &["PID|1||^^^QUUXAUTH^MR||QUUXNAME^JOHN"],
    )));
    assert!(!e.to_string().contains("QUUX"), "{e}");
}

const MSH_ORU: &str =
    "MSH|^~\\&|LAB|RX1|CONCORD|RX1|20240701120000+0100||ORU^R01^ORU_R01|MSG2|P|2.5.1";

fn oru(obx: &[&str]) -> Mapped {
    let mut segs = vec![MSH_ORU, "PID|1||12345^^^RX1^MR||SMITH^JOHN"];
    let obr = seg(
        "OBR",
        &[
            (1, "1"),
            (2, "PL1^ICE"),
            (3, "FL1^LAB"),
            (4, "24331-1^Lipid panel^LN"),
            (7, "20240701090000+0100"),
            (22, "20240701110000+0100"),
            (25, "F"),
        ],
    );
    segs.push(&obr);
    segs.extend_from_slice(obx);
    map(&segs)
}

fn observation(m: &Mapped, i: usize) -> &Value {
    resources(m, "Observation")[i]
}

#[test]
fn results_make_a_report_with_its_observations() {
    let m = oru(&[
        "OBX|1|NM|2093-3^Cholesterol^LN||5.2|mmol/L^mmol/L^UCUM|3.5-5.0|H|||F",
        "NTE|1||Fasting sample",
    ]);
    let r = one(&m, "DiagnosticReport");
    assert_eq!(r["status"], "final");
    assert_eq!(r["identifier"][0]["value"], "FL1");
    assert_eq!(r["issued"], "2024-07-01T11:00:00+01:00");
    assert_eq!(
        request_of(&m, "DiagnosticReport")["url"],
        "DiagnosticReport?identifier=https://concord.health/fhir/source/RX1/id/LAB|FL1"
    );
    let o = observation(&m, 0);
    assert_eq!(r["result"][0]["reference"], m.bundle["entry"][1]["fullUrl"]);
    assert_eq!(o["valueQuantity"]["value"].to_string(), "5.2");
    assert_eq!(o["valueQuantity"]["system"], "http://unitsofmeasure.org");
    assert_eq!(o["valueQuantity"]["code"], "mmol/L");
    assert_eq!(o["referenceRange"][0]["low"]["value"].to_string(), "3.5");
    assert_eq!(o["referenceRange"][0]["high"]["value"].to_string(), "5.0");
    assert_eq!(o["interpretation"][0]["coding"][0]["code"], "H");
    assert_eq!(o["effectiveDateTime"], "2024-07-01T09:00:00+01:00");
    assert_eq!(o["note"][0]["text"], "Fasting sample");
    // The lab does not own demographics: its Patient is created only when absent.
    let p = request_of(&m, "Patient");
    assert_eq!(p["method"], "POST");
    assert_eq!(
        p["ifNoneExist"],
        "identifier=https://concord.health/fhir/source/RX1/id/RX1|12345"
    );
}

#[test]
fn obx_value_types() {
    let m = oru(&[
        "OBX|1|ST|X1^Comment^L||Haemolysed||||||F",
        "OBX|2|TX|X2^Report^L||Line one~Line two||||||F",
        "OBX|3|CE|X3^Organism^L||27268008^Salmonella^SCT||||||P",
        "OBX|4|CWE|X4^Result^L||260385009^Negative^SCT||||||C",
        "OBX|5|SN|X5^eGFR^L||>^90|mL/min^^UCUM|||||F",
        "OBX|6|SN|X6^Range^L||^10^-^20|||||F",
        "OBX|7|SN|X7^Titre^L||^1^:^128|||||F",
        "OBX|8|DT|X8^Date^L||20240630||||||F",
        "OBX|9|TS|X9^Time^L||202406301230+0100||||||F",
        "OBX|10|TM|X10^Clock^L||1230||||||F",
        "OBX|11|NM|X11^Count^L||abc||||||X",
        "OBX|12|ED|X12^Image^L||^IM^JPEG^Base64^VGhpcyBpcyBhIEJhc2U2NCBzdHJpbmc=||||||F",
        "OBX|13|NM|X13^Pending^L||||||||",
    ]);
    let v = |i: usize| observation(&m, i);
    assert_eq!(v(0)["valueString"], "Haemolysed");
    assert_eq!(v(1)["valueString"], "Line one\nLine two");
    assert_eq!(
        v(2)["valueCodeableConcept"]["coding"][0]["system"],
        "http://snomed.info/sct"
    );
    assert_eq!(v(2)["status"], "preliminary");
    assert_eq!(v(3)["status"], "corrected");
    assert_eq!(v(4)["valueQuantity"]["comparator"], ">");
    assert_eq!(v(4)["valueQuantity"]["value"].to_string(), "90");
    assert_eq!(v(5)["valueRange"]["low"]["value"].to_string(), "10");
    assert_eq!(v(5)["valueRange"]["high"]["value"].to_string(), "20");
    assert_eq!(
        v(6)["valueRatio"]["denominator"]["value"].to_string(),
        "128"
    );
    assert_eq!(v(7)["valueDateTime"], "2024-06-30");
    assert_eq!(v(8)["valueDateTime"], "2024-06-30T12:30:00+01:00");
    assert_eq!(v(9)["valueTime"], "12:30:00");
    assert_eq!(v(10)["valueString"], "abc");
    assert_eq!(v(10)["status"], "cancelled");
    assert_eq!(
        v(11)["extension"][0]["valueAttachment"]["contentType"],
        "image/jpeg"
    );
    assert_eq!(v(12)["status"], "unknown");
    assert!(m.warnings.iter().any(|w| w.contains("OBX-11")));
}

const MSH_SIU: &str = "MSH|^~\\&|PAS|RX1|CONCORD|RX1|20240701120000+0100||SIU^{EVENT}|MSG3|P|2.5";

#[test]
fn appointment_status_follows_the_event() {
    for (event, sch25, status) in [
        ("S12", "Booked", "booked"),
        ("S13", "Booked", "booked"),
        ("S14", "Pending", "pending"),
        ("S15", "Cancelled", "cancelled"),
        ("S16", "Discontinued", "cancelled"),
        ("S17", "Deleted", "entered-in-error"),
        ("S26", "Noshow", "noshow"),
    ] {
        let msh = MSH_SIU.replace("{EVENT}", event);
        let sch = seg(
            "SCH",
            &[
                (1, "P1"),
                (2, "F1"),
                (9, "30"),
                (10, "min"),
                (11, "^^30^20240801093000^20240801100000"),
                (25, sch25),
            ],
        );
        let m = map(&[
            &msh,
            &sch,
            "PID|1||12345^^^RX1^MR||SMITH^JOHN",
            "AIP|1||C123^JONES^ANNA|CON^Consultant",
        ]);
        let a = one(&m, "Appointment");
        assert_eq!(a["status"], status, "{event}");
        assert_eq!(a["start"], "2024-08-01T09:30:00+01:00");
        assert_eq!(a["end"], "2024-08-01T10:00:00+01:00");
        assert_eq!(a["minutesDuration"], 30);
        assert_eq!(a["participant"][1]["actor"]["display"], "ANNA JONES");
        assert_eq!(
            request_of(&m, "Appointment")["url"],
            "Appointment?identifier=https://concord.health/fhir/source/RX1/id/filler-appointment|F1"
        );
    }
}

const MSH_MDM: &str = "MSH|^~\\&|EPR|RX1|CONCORD|RX1|20240701120000+0100||MDM^{EVENT}|MSG4|P|2.5";

#[test]
fn documents_carry_their_text_and_status() {
    let txa = seg(
        "TXA",
        &[
            (1, "1"),
            (2, "DS^Discharge summary^HL70270"),
            (3, "TX"),
            (4, "20240701"),
            (5, "C123^JONES^ANNA"),
            (6, "20240701115500+0100"),
            (12, "DOC1^EPR"),
            (13, "DOC0^EPR"),
            (17, "AU"),
            (19, "AV"),
            (25, "Discharge summary"),
        ],
    );
    let txa = txa.as_str();
    let m = map(&[
        &MSH_MDM.replace("{EVENT}", "T02"),
        "EVN|T02|20240701120000+0100",
        "PID|1||12345^^^RX1^MR||SMITH^JOHN",
        txa,
        "OBX|1|TX|DS^Summary^L||Admitted with chest pain.~Discharged well.||||||F",
    ]);
    let d = one(&m, "DocumentReference");
    assert_eq!(d["status"], "current");
    assert_eq!(d["docStatus"], "final");
    assert_eq!(d["masterIdentifier"]["value"], "DOC1");
    assert_eq!(d["date"], "2024-07-01T11:55:00+01:00");
    assert_eq!(d["description"], "Discharge summary");
    let data = d["content"][0]["attachment"]["data"].as_str().unwrap();
    assert_eq!(
        data,
        "QWRtaXR0ZWQgd2l0aCBjaGVzdCBwYWluLgpEaXNjaGFyZ2VkIHdlbGwu"
    );
    assert!(d.get("relatesTo").is_none());

    let m = map(&[
        &MSH_MDM.replace("{EVENT}", "T11"),
        "PID|1||12345^^^RX1^MR||SMITH^JOHN",
        txa,
    ]);
    assert_eq!(one(&m, "DocumentReference")["status"], "entered-in-error");

    let m = map(&[
        &MSH_MDM.replace("{EVENT}", "T06"),
        "PID|1||12345^^^RX1^MR||SMITH^JOHN",
        txa,
        "OBX|1|TX|DS^Summary^L||Addendum||||||F",
    ]);
    let d = one(&m, "DocumentReference");
    assert_eq!(d["relatesTo"][0]["code"], "appends");
    assert_eq!(d["relatesTo"][0]["target"]["identifier"]["value"], "DOC0");
}

#[test]
fn times_without_an_offset_follow_the_local_time_rule() {
    let msh = "MSH|^~\\&|PAS|RX1|CONCORD|RX1|20240701120000||ADT^A01|MSG1|P|2.5";
    let visit = seg(
        "PV1",
        &[(2, "I"), (19, "V1^^^RX1^VN"), (44, "202407011000")],
    );
    let segs = [msh, PID, visit.as_str()];
    let london = MapOptions {
        local_time: LocalTime::EuropeLondon,
        ..options()
    };
    let m = try_map_with(&segs, &london).unwrap();
    assert_eq!(
        one(&m, "Encounter")["period"]["start"],
        "2024-07-01T10:00:00+01:00"
    );
    let m = try_map_with(&segs, &options()).unwrap();
    assert_eq!(one(&m, "Encounter")["period"]["start"], "2024-07-01");
    assert!(
        m.warnings
            .iter()
            .any(|w| w.contains("PV1-44") && w.contains("offset"))
    );
}

#[test]
fn damaged_samples_map_or_fail_cleanly_but_never_panic() {
    // Each shared sample with one segment left out, then with one field emptied: the mapping
    // either succeeds with valid FHIR or returns an error; it never panics.
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/testdata/hl7v2/messages");
    let mut runs = 0;
    for entry in std::fs::read_dir(dir).expect("samples") {
        let text = std::fs::read_to_string(entry.expect("entry").path()).expect("sample");
        let segments: Vec<&str> = text.split(['\r', '\n']).filter(|s| !s.is_empty()).collect();
        let mut variants: Vec<Vec<String>> = Vec::new();
        for skip in 1..segments.len() {
            variants.push(
                segments
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != skip)
                    .map(|(_, s)| (*s).to_string())
                    .collect(),
            );
        }
        for (i, seg) in segments.iter().enumerate().skip(1) {
            for field in 1..seg.split('|').count() {
                let mut parts: Vec<&str> = seg.split('|').collect();
                parts[field] = "";
                let mut v: Vec<String> = segments.iter().map(|s| (*s).to_string()).collect();
                v[i] = parts.join("|");
                variants.push(v);
            }
        }
        for v in variants {
            let Ok(message) = Message::parse(v.join("\r").as_bytes()) else {
                continue;
            };
            if let Ok(mapped) = map_message(&message, &options()) {
                let issues = validate_resource(&mapped.bundle);
                assert!(issues.is_empty(), "{issues:?}");
            }
            runs += 1;
        }
    }
    assert!(runs > 1000, "{runs}");
}
