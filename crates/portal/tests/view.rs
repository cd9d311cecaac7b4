//! The single view (`/portal/patient/{id}`) over a real node: the banner, the sections with
//! their sources, trend charts, documents read in place, urgent plans, patient-entered items,
//! the Server-Timing header, and the no-relationship page with break-glass.

mod common;

use axum::http::{Method, StatusCode};
use base64::Engine;
use common::{ORGANIZATION, PASSWORD, TestNode};
use serde_json::{Value, json};

const NHS_NUMBER: &str = "9434765919";

async fn create(node: &TestNode, resource: Value) -> String {
    let t = resource["resourceType"].as_str().unwrap().to_string();
    let (status, body) = node
        .fhir(Method::POST, &format!("/fhir/{t}"), &resource)
        .await;
    assert_eq!(status, StatusCode::CREATED, "{t}: {body}");
    body["id"].as_str().unwrap().to_string()
}

fn hba1c(patient: &str, when: &str, value: f64) -> Value {
    json!({
        "resourceType": "Observation", "status": "final",
        "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "laboratory"}]}],
        "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c/Hemoglobin.total in Blood"}]},
        "subject": {"reference": format!("Patient/{patient}")},
        "effectiveDateTime": when,
        "valueQuantity": {"value": value, "unit": "%", "system": "http://unitsofmeasure.org", "code": "%"},
        "referenceRange": [{"low": {"value": 4.0, "unit": "%"}, "high": {"value": 6.0, "unit": "%"}}]
    })
}

/// A person held by the test node, with a little of everything the view shows.
async fn person(node: &TestNode) -> String {
    let patient = create(
        node,
        json!({
            "resourceType": "Patient",
            "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": NHS_NUMBER}],
            "name": [{"use": "official", "family": "Ash", "given": ["Ann"]}],
            "gender": "female",
            "birthDate": "1950-01-01",
            "address": [{"line": ["1 High Street"], "city": "Leeds", "postalCode": "LS1 4AP"}],
            "generalPractitioner": [{"display": "Riverside Surgery"}]
        }),
    )
    .await;
    let subject = json!({"reference": format!("Patient/{patient}")});
    create(
        node,
        json!({"resourceType": "Condition",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "44054006", "display": "Type 2 diabetes mellitus"}]},
            "subject": subject, "onsetDateTime": "2015-04-01"}),
    )
    .await;
    create(
        node,
        json!({"resourceType": "AllergyIntolerance",
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active"}]},
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "91936005", "display": "Penicillin allergy"}]},
            "patient": subject}),
    )
    .await;
    for (when, value) in [
        ("2025-01-10", 7.9),
        ("2025-07-12", 7.1),
        ("2026-01-15", 6.4),
    ] {
        create(node, hba1c(&patient, when, value)).await;
    }
    create(
        node,
        json!({"resourceType": "MedicationRequest", "status": "active", "intent": "order",
            "medicationCodeableConcept": {"text": "Metformin 500mg tablets"},
            "dosageInstruction": [{"text": "One tablet twice a day"}],
            "subject": subject, "authoredOn": "2025-01-10"}),
    )
    .await;
    create(
        node,
        json!({"resourceType": "Encounter", "status": "finished",
            "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB", "display": "ambulatory"},
            "type": [{"text": "Diabetes review"}],
            "subject": subject, "period": {"start": "2026-01-15T09:00:00Z", "end": "2026-01-15T09:20:00Z"}}),
    )
    .await;
    let letter = base64::engine::general_purpose::STANDARD
        .encode("Dear colleague,\nAnn's diabetes is <well> controlled.");
    create(
        node,
        json!({"resourceType": "DocumentReference", "status": "current",
            "type": {"text": "Clinic letter"}, "description": "Diabetes clinic letter",
            "subject": subject, "date": "2026-01-16T10:00:00Z",
            "content": [{"attachment": {"contentType": "text/plain", "data": letter}}]}),
    )
    .await;
    create(
        node,
        json!({"resourceType": "CarePlan", "status": "active", "intent": "plan",
            "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "736373009", "display": "End of life care plan"}]}],
            "title": "End of life care plan",
            "description": "Preferred place of care: home.",
            "subject": subject, "period": {"start": "2026-02-01"}}),
    )
    .await;
    create(
        node,
        json!({"resourceType": "Observation", "status": "final",
            "meta": {"tag": [{"system": "https://concord.health/fhir/CodeSystem/provenance", "code": "patient-entered"}]},
            "category": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]}],
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7", "display": "Body weight"}]},
            "subject": subject, "effectiveDateTime": "2026-03-01T08:00:00Z",
            "valueQuantity": {"value": 71.5, "unit": "kg", "system": "http://unitsofmeasure.org", "code": "kg"}}),
    )
    .await;
    patient
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinician_with_a_relationship_sees_the_single_view() {
    let node = TestNode::new();
    let patient = person(&node).await;
    node.add_user("dr.jones", "clinician", Some(ORGANIZATION), None);
    let mut browser = node.browser();
    browser.sign_in("dr.jones", PASSWORD).await;

    let page = browser.get(&format!("/portal/patient/{patient}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    let html = &page.html;

    // Server-Timing names the fetch and the render.
    let timing = page.header("server-timing").expect("Server-Timing");
    assert!(
        timing.starts_with("fetch;dur=") && timing.contains(", render;dur="),
        "{timing}"
    );

    // The banner.
    assert!(html.contains("id=\"patient-banner\""));
    assert!(
        html.contains("<p class=\"banner-name\">Ann Ash</p>"),
        "{html}"
    );
    assert!(html.contains("<dd id=\"banner-nhs-number\">943 476 5919</dd>"));
    assert!(html.contains("1 Jan 1950"));
    assert!(html.contains("Riverside Surgery"));
    let allergies = &html[html.find("id=\"banner-allergies\"").unwrap()..];
    assert!(allergies.contains("Penicillin allergy"));
    assert!(!html.contains("id=\"demographics-warning\""));

    // One h1, every contract section, no scripts or inline styles.
    assert_eq!(html.matches("<h1").count(), 1);
    for id in [
        "summary",
        "problems",
        "medications",
        "allergies",
        "encounters",
        "results",
        "documents",
        "care-plans",
        "social-care",
        "urgent-plans",
    ] {
        assert!(html.contains(&format!("id=\"{id}\"")), "no #{id}");
    }
    assert!(!html.contains("<script") && !html.contains("style="));

    // Items with their source.
    let problems = section(html, "problems");
    assert!(problems.contains("Type 2 diabetes mellitus"));
    assert!(problems.contains("class=\"source\""));
    assert!(section(html, "medications").contains("Metformin 500mg tablets"));
    assert!(section(html, "encounters").contains("Diabetes review"));

    // A chart for the repeated HbA1c, with its reference range and a table alternative.
    let results = section(html, "results");
    assert!(results.contains("<svg"), "{results}");
    assert!(results.contains("role=\"img\""));
    assert!(results.contains("reference range 4 to 6"));
    assert!(results.contains("3 readings"));
    assert!(results.contains("<th scope=\"col\">Date</th>"));

    // The patient's own reading is tagged.
    assert!(results.contains("<span class=\"tag tag-patient\">Entered by the patient</span>"));

    // The letter reads in place, escaped.
    let documents = section(html, "documents");
    assert!(documents.contains("<details"));
    assert!(documents.contains("diabetes is &lt;well&gt; controlled"));

    // The end-of-life plan is prominent and flagged in the banner.
    let urgent = &html[html.find("id=\"urgent-plans\"").unwrap()..];
    assert!(urgent.contains("End of life care plan"));
    assert!(urgent.contains("Preferred place of care: home."));

    // All sources answered and nothing was withheld.
    assert!(!html.contains("id=\"sources-bar\""));
    assert!(!html.contains("id=\"withheld\""));
    assert!(!html.contains("id=\"break-glass-notice\""));
}

/// The HTML of `<section id="{id}"` up to the next section.
fn section<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("<section id=\"{id}\""))
        .unwrap_or_else(|| panic!("no section {id}"));
    let rest = &html[start..];
    let end = rest[1..].find("<section").map_or(rest.len(), |e| e + 1);
    &rest[..end]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clinician_without_a_relationship_can_break_glass() {
    let node = TestNode::new();
    let patient = person(&node).await;
    node.add_user("dr.away", "clinician", Some("R1X"), None);
    let mut browser = node.browser();
    browser.sign_in("dr.away", PASSWORD).await;

    let refused = browser.get(&format!("/portal/patient/{patient}")).await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.html);
    assert!(
        refused
            .html
            .contains("You do not have a recorded care relationship with this person")
    );
    let action = format!("action=\"/portal/patient/{patient}/break-glass\"");
    assert!(refused.html.contains("id=\"break-glass\""));
    assert!(refused.html.contains(&action));
    assert!(
        refused
            .html
            .contains("<select id=\"reason\" name=\"reason\"")
    );
    assert!(refused.html.contains("value=\"emergency-care\""));
    assert!(refused.html.contains("Break glass and open the record"));
    assert!(
        !refused.html.contains("Ann Ash"),
        "no record data on the 403"
    );
    let csrf = refused.csrf();
    let post = format!("/portal/patient/{patient}/break-glass");

    // Without the CSRF token: refused.
    let forged = browser
        .post_form(
            &post,
            &[
                ("reason", "emergency-care"),
                ("text", "Collapsed in the street"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);

    // Without a reason in words: the form again, naming the field.
    let empty = browser
        .post_form(
            &post,
            &[("csrf", &csrf), ("reason", "emergency-care"), ("text", " ")],
        )
        .await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST);
    assert!(empty.html.contains("Enter why you need this record now"));

    let done = browser
        .post_form(
            &post,
            &[
                ("csrf", &csrf),
                ("reason", "emergency-care"),
                ("text", "Collapsed in the street, unconscious"),
            ],
        )
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert_eq!(
        done.location(),
        Some(format!("/portal/patient/{patient}").as_str())
    );

    let opened = browser.get(&format!("/portal/patient/{patient}")).await;
    assert_eq!(opened.status, StatusCode::OK, "{}", opened.html);
    assert!(opened.html.contains("id=\"break-glass-notice\""));
    assert!(opened.html.contains("audited"));
    assert!(opened.html.contains("943 476 5919"));
}

#[test]
fn sources_that_disagree_on_demographics_raise_a_warning() {
    // Rendered directly from a Bundle: two Patient records of one person with different
    // birth dates, and an outcome with a failed source and a suppressed issue.
    let bundle = json!({
        "resourceType": "Bundle", "type": "document",
        "entry": [
            {"fullUrl": "urn:uuid:c", "resource": {"resourceType": "Composition", "status": "final",
                "subject": {"reference": "urn:uuid:p"},
                "section": [{"title": "Sources consulted",
                    "code": {"coding": [{"system": "https://concord.health/fhir/CodeSystem/summary-section", "code": "sources"}]},
                    "entry": [{"reference": "urn:uuid:o"}]}]}},
            {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p", "birthDate": "1950-01-01",
                "name": [{"family": "Ash", "given": ["Ann"]}]}},
            {"fullUrl": "https://gp.example/fhir/Patient/x", "resource": {"resourceType": "Patient", "id": "x", "birthDate": "1951-01-01",
                "name": [{"family": "Ash", "given": ["Ann"]}]}},
            {"fullUrl": "urn:uuid:o", "resource": {"resourceType": "OperationOutcome", "issue": [
                {"severity": "warning", "code": "timeout",
                 "extension": [{"url": "https://concord.health/fhir/StructureDefinition/source-organization",
                                "valueReference": {"display": "St Elsewhere Hospital"}}],
                 "details": {"coding": [{"system": "https://concord.health/fhir/CodeSystem/source-status", "code": "timeout"}],
                             "text": "St Elsewhere Hospital did not answer within 2000 ms."}},
                {"severity": "information", "code": "suppressed", "diagnostics": "Some information in this record has been withheld."}
            ]}}
        ]
    });
    let related = json!({"resourceType": "Bundle", "type": "searchset", "entry": [
        {"resource": {"resourceType": "RelatedPerson", "patient": {"reference": "Patient/x"},
            "relationship": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "HUSB", "display": "husband"}]}, {"text": "Unpaid carer"}],
            "name": [{"family": "Ash", "given": ["Alan"]}],
            "telecom": [{"system": "phone", "value": "07700 900123"}]}}
    ]});
    let options = concord_portal::view::ViewOptions {
        patient_id: "p",
        today: "2026-12-03",
        urgent_first: true,
        break_glass: None,
        related: Some(&related),
    };
    let html = concord_portal::view::render(&bundle, &options, None).into_string();
    assert!(html.contains("id=\"demographics-warning\""), "{html}");
    assert!(html.contains("date of birth"));
    let bar = &html[html.find("id=\"sources-bar\"").expect("sources bar")..];
    assert!(bar.contains("St Elsewhere Hospital"));
    assert!(bar.contains("did not answer in time"));
    assert!(html.contains("id=\"withheld\""));
    assert!(html.contains("Some information in this record has been withheld"));
    // A paramedic's page opens with the urgent plans, before the summary.
    assert!(html.find("id=\"urgent-plans\"").unwrap() < html.find("id=\"summary\"").unwrap());
    assert!(html.contains("76 years"));
    // Carers from the related searchset are in social care.
    let social = &html[html.find("id=\"social-care\"").unwrap()..];
    assert!(social.contains("Alan Ash"));
    assert!(social.contains("husband, Unpaid carer"));
    assert!(social.contains("07700 900123"));
}

/// A real `$summary` answer saved from `concord demo` (the person with the most sources and
/// entries), with the `$everything?_type=Patient,RelatedPerson` answer fetched beside it.
fn demo_fixture() -> (Value, Value) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
    let read = |name: &str| -> Value {
        serde_json::from_str(&std::fs::read_to_string(format!("{dir}/{name}")).unwrap()).unwrap()
    };
    (read("summary.json"), read("related.json"))
}

#[test]
fn the_demo_record_renders_within_the_page_weight_budget() {
    let (summary, related) = demo_fixture();
    let options = concord_portal::view::ViewOptions {
        patient_id: "demo",
        today: "2026-12-03",
        urgent_first: false,
        break_glass: None,
        related: Some(&related),
    };
    let html = concord_portal::view::render(&summary, &options, None).into_string();
    assert!(html.len() <= 150 * 1024, "{} bytes", html.len());
    // The person's records disagree on the given name ("Pat" at the hospital).
    assert!(html.contains("id=\"demographics-warning\""));
    assert!(html.contains("given name"));
    assert!(html.contains("End of life care plan"));
    assert!(html.contains("Reablement: 6 weeks, 2 visits a day"));
    // The neighbouring region was not asked (the person is not known there).
    assert!(html.contains("id=\"sources-bar\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_consent_withholds_is_missing_and_the_page_says_so() {
    let node = TestNode::new();
    let patient = person(&node).await;
    create(
        &node,
        json!({"resourceType": "Condition",
            "code": {"coding": [{"system": "http://snomed.info/sct", "code": "35489007", "display": "Depressive disorder"}]},
            "subject": {"reference": format!("Patient/{patient}")}}),
    )
    .await;
    let choices = concord_access::ConsentChoices {
        opt_out: false,
        withheld_organizations: Default::default(),
        blocked_organizations: Default::default(),
        withheld_categories: ["mental-health".to_string()].into(),
    };
    create(
        &node,
        concord_access::consent_resource(&patient, &choices, "2024-01-01T00:00:00Z"),
    )
    .await;
    node.add_user("dr.jones", "clinician", Some(ORGANIZATION), None);
    let mut browser = node.browser();
    browser.sign_in("dr.jones", PASSWORD).await;
    let page = browser.get(&format!("/portal/patient/{patient}")).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.html);
    assert!(page.html.contains("id=\"withheld\""), "{}", page.html);
    assert!(
        page.html
            .contains("Some information in this record has been withheld")
    );
    assert!(!page.html.contains("Depressive disorder"));
    assert!(page.html.contains("Type 2 diabetes mellitus"));
}

#[test]
fn a_respect_form_and_a_crisis_plan_are_urgent_plans() {
    use base64::Engine;
    let form = base64::engine::general_purpose::STANDARD
        .encode("ReSPECT: Recommended Summary Plan\nCPR: not for attempted CPR\n");
    let bundle = json!({
        "resourceType": "Bundle", "type": "document",
        "entry": [
            {"fullUrl": "urn:uuid:c", "resource": {"resourceType": "Composition", "status": "final",
                "subject": {"reference": "urn:uuid:p"},
                "section": [
                    {"code": {"coding": [{"system": "http://loinc.org", "code": "18776-5"}]}, "entry": [{"reference": "urn:uuid:plan"}]},
                    {"code": {"coding": [{"system": "https://concord.health/fhir/CodeSystem/summary-section", "code": "documents"}]}, "entry": [{"reference": "urn:uuid:doc"}]}
                ]}},
            {"fullUrl": "urn:uuid:p", "resource": {"resourceType": "Patient", "id": "p"}},
            {"fullUrl": "urn:uuid:plan", "resource": {"resourceType": "CarePlan", "status": "active", "intent": "plan",
                "category": [{"coding": [{"system": "http://snomed.info/sct", "code": "736253002", "display": "Mental health crisis plan"}]}],
                "title": "Mental health crisis plan", "period": {"start": "2026-05-01"},
                "activity": [{"detail": {"status": "in-progress", "description": "Crisis line, 24 hours: 0113 496 0000"}}]}},
            {"fullUrl": "urn:uuid:doc", "resource": {"resourceType": "DocumentReference", "status": "current",
                "type": {"coding": [{"system": "http://snomed.info/sct", "code": "1382601000000107", "display": "ReSPECT (Recommended Summary Plan for Emergency Care and Treatment) form"}]},
                "description": "ReSPECT form", "date": "2026-10-18T14:00:00+00:00",
                "content": [{"attachment": {"contentType": "text/plain", "data": form}}]}}
        ]
    });
    let options = concord_portal::view::ViewOptions {
        patient_id: "p",
        today: "2026-12-03",
        urgent_first: false,
        break_glass: None,
        related: None,
    };
    let html = concord_portal::view::render(&bundle, &options, None).into_string();
    let start = html.find("id=\"urgent-plans\"").unwrap();
    let urgent = &html[start..start + html[start..].find("</section>").unwrap()];
    assert!(urgent.contains("Mental health crisis plan"), "{urgent}");
    assert!(urgent.contains("Crisis line, 24 hours"));
    assert!(urgent.contains("ReSPECT form"));
    assert!(urgent.contains("CPR: not for attempted CPR"));
    let banner = &html[html.find("id=\"banner-allergies\"").unwrap()..];
    assert!(banner.contains("href=\"#urgent-plans\">ReSPECT form</a>"));
}
