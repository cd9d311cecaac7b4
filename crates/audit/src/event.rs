//! An [`AuditRecord`] as a FHIR R4 AuditEvent in the IHE Basic Audit Log Patterns (BALP) shape,
//! and back.
//!
//! Owns the element layout: `type` rest, `subtype` the restful interaction, `action`, `recorded`,
//! `outcome` and `outcomeDesc` (`HTTP <status>` and, for a refusal, why), the requesting agent
//! (who by identifier with their organisation as its assigner, role, purposeOfUse), the client app
//! agent (BALP's Source Role ID) and this server (Destination Role ID), `source.observer`, and one
//! entity per patient (type 1 Person, role 1 Patient), the resource (type 2, role 4), the query
//! (role 24, base64) and the request id (BALP's `XrequestId`). Break-glass adds purposeOfUse `BTG`
//! and a Concord extension with the reason and the user's text. Does not decide what is audited.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

use crate::{Action, Agent, AuditRecord, Outcome};
use crate::{format_instant, parse_instant};

const AUDIT_EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const RESTFUL_INTERACTION: &str = "http://hl7.org/fhir/restful-interaction";
/// Interactions that are not FHIR restful interactions (`break-glass`, `login`, `consent`).
const CONCORD_INTERACTION: &str = "https://concord.health/fhir/CodeSystem/audit-interaction";
const OPERATION_SYSTEM: &str = "https://concord.health/fhir/CodeSystem/operation";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
const BALP_ENTITY_TYPE: &str = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType";
const DICOM: &str = "http://dicom.nema.org/resources/ontology/DCM";
const SECURITY_ROLE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/extra-security-role-type";
const SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";
const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const ROLE_SYSTEM: &str = "https://concord.health/fhir/CodeSystem/role";
const SUBJECT_SYSTEM: &str = "https://concord.health/fhir/sid/subject";
const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const CLIENT_SYSTEM: &str = "https://concord.health/fhir/sid/client-id";
const NODE_SYSTEM: &str = "https://concord.health/fhir/sid/node";
const BREAK_GLASS_URL: &str = "https://concord.health/fhir/StructureDefinition/break-glass";
const BREAK_GLASS_REASON: &str = "https://concord.health/fhir/CodeSystem/break-glass-reason";
const BALP_PROFILE: &str = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.";

/// The standard interactions, whose subtype is in FHIR's restful-interaction code system.
const RESTFUL: &[&str] = &[
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history",
    "history-instance",
    "history-type",
    "history-system",
    "create",
    "search",
    "search-type",
    "search-system",
    "capabilities",
    "transaction",
    "batch",
    "operation",
];

/// The BALP profile a successful interaction conforms to, when BALP defines one.
fn profile(record: &AuditRecord) -> Option<String> {
    if record.outcome != Outcome::Success {
        return None;
    }
    let kind = match record.interaction.as_str() {
        "read" | "vread" => "Read",
        "search" | "search-type" | "search-system" => "Query",
        "create" => "Create",
        "update" | "patch" => "Update",
        "delete" => "Delete",
        _ => return None,
    };
    let patient = if record.patients.is_empty() {
        ""
    } else {
        "Patient"
    };
    Some(format!("{BALP_PROFILE}{patient}{kind}"))
}

fn coding(system: &str, code: &str, display: Option<&str>) -> Value {
    let mut c = Map::new();
    c.insert("system".into(), system.into());
    c.insert("code".into(), code.into());
    if let Some(d) = display {
        c.insert("display".into(), d.into());
    }
    Value::Object(c)
}

fn concept(system: &str, code: &str, display: Option<&str>) -> Value {
    json!({ "coding": [coding(system, code, display)] })
}

fn requestor(agent: &Agent, purpose: &str, break_glass: bool) -> Value {
    let mut who = Map::new();
    let mut identifier = Map::new();
    identifier.insert("system".into(), SUBJECT_SYSTEM.into());
    identifier.insert("value".into(), agent.subject.as_str().into());
    if let Some(org) = &agent.organization {
        identifier.insert(
            "assigner".into(),
            json!({ "identifier": { "system": ODS_SYSTEM, "value": org } }),
        );
    }
    who.insert("identifier".into(), Value::Object(identifier));
    let kind = if agent.kind == "user" {
        concept(SECURITY_ROLE_TYPE, "humanuser", Some("human user"))
    } else {
        concept(DICOM, "110150", Some("Application"))
    };
    let mut purposes = vec![concept(ACT_REASON, purpose, None)];
    if break_glass && purpose != "BTG" {
        purposes.push(concept(ACT_REASON, "BTG", Some("break the glass")));
    }
    let mut out = Map::new();
    out.insert("type".into(), kind);
    if let Some(role) = &agent.role {
        out.insert("role".into(), json!([concept(ROLE_SYSTEM, role, None)]));
    }
    out.insert("who".into(), Value::Object(who));
    out.insert("requestor".into(), true.into());
    out.insert("purposeOfUse".into(), Value::Array(purposes));
    Value::Object(out)
}

fn entity(type_code: (&str, &str, &str), role: (&str, &str)) -> Map<String, Value> {
    let mut e = Map::new();
    e.insert(
        "type".into(),
        coding(type_code.0, type_code.1, Some(type_code.2)),
    );
    e.insert("role".into(), coding(OBJECT_ROLE, role.0, Some(role.1)));
    e
}

/// The AuditEvent (R4, IHE BALP shape) for one record, with the given resource id.
pub fn audit_event(record: &AuditRecord, id: &str) -> Value {
    let mut event = Map::new();
    event.insert("resourceType".into(), "AuditEvent".into());
    event.insert("id".into(), id.into());
    if let Some(p) = profile(record) {
        event.insert("meta".into(), json!({ "profile": [p] }));
    }
    if let Some((reason, text)) = &record.break_glass {
        event.insert(
            "extension".into(),
            json!([{
                "url": BREAK_GLASS_URL,
                "extension": [
                    { "url": "reason", "valueCoding": { "system": BREAK_GLASS_REASON, "code": reason } },
                    { "url": "text", "valueString": text },
                ],
            }]),
        );
    }
    event.insert(
        "type".into(),
        coding(AUDIT_EVENT_TYPE, "rest", Some("Restful Operation")),
    );
    let interaction_system = if RESTFUL.contains(&record.interaction.as_str()) {
        RESTFUL_INTERACTION
    } else {
        CONCORD_INTERACTION
    };
    let mut subtype = vec![coding(interaction_system, &record.interaction, None)];
    if let Some(op) = &record.operation {
        subtype.push(coding(OPERATION_SYSTEM, op, None));
    }
    event.insert("subtype".into(), Value::Array(subtype));
    event.insert("action".into(), record.action.code().into());
    event.insert("recorded".into(), format_instant(record.recorded_ms).into());
    event.insert("outcome".into(), record.outcome.code().into());
    let desc = match &record.denied_reason {
        Some(reason) => format!("HTTP {}: {reason}", record.status),
        None => format!("HTTP {}", record.status),
    };
    event.insert("outcomeDesc".into(), desc.into());

    let mut agents = vec![requestor(
        &record.agent,
        &record.purpose,
        record.break_glass.is_some(),
    )];
    if let Some(client) = &record.agent.client_id {
        agents.push(json!({
            "type": concept(DICOM, "110153", Some("Source Role ID")),
            "who": { "identifier": { "system": CLIENT_SYSTEM, "value": client } },
            "requestor": false,
        }));
    }
    let node = json!({ "identifier": { "system": NODE_SYSTEM, "value": record.observer } });
    agents.push(json!({
        "type": concept(DICOM, "110152", Some("Destination Role ID")),
        "who": node,
        "requestor": false,
    }));
    event.insert("agent".into(), Value::Array(agents));
    event.insert(
        "source".into(),
        json!({
            "observer": node,
            "type": [coding(SOURCE_TYPE, "4", Some("Application Server"))],
        }),
    );

    let mut entities = Vec::new();
    for patient in &record.patients {
        let mut e = entity((ENTITY_TYPE, "1", "Person"), ("1", "Patient"));
        e.insert(
            "what".into(),
            json!({ "reference": format!("Patient/{patient}") }),
        );
        entities.push(Value::Object(e));
    }
    let what = match (&record.resource_type, &record.resource_id) {
        (Some(t), Some(i)) => Some(json!({ "reference": format!("{t}/{i}") })),
        (Some(t), None) => Some(json!({ "type": t })),
        (None, Some(i)) => Some(json!({ "identifier": { "value": i } })),
        (None, None) => None,
    };
    if let Some(what) = what {
        let mut e = entity(
            (ENTITY_TYPE, "2", "System Object"),
            ("4", "Domain Resource"),
        );
        e.insert("what".into(), what);
        entities.push(Value::Object(e));
    }
    if let Some(query) = &record.query {
        let mut e = entity((ENTITY_TYPE, "2", "System Object"), ("24", "Query"));
        e.insert("query".into(), BASE64.encode(query).into());
        entities.push(Value::Object(e));
    }
    entities.push(json!({
        "what": { "identifier": { "value": record.request_id } },
        "type": coding(BALP_ENTITY_TYPE, "XrequestId", Some("X-Request-Id")),
    }));
    event.insert("entity".into(), Value::Array(entities));
    Value::Object(event)
}

fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    let mut v = value;
    for key in path {
        v = v.get(key)?;
    }
    v.as_str()
}

/// The first coding's (system, code) of a CodeableConcept.
fn first_coding(concept: &Value) -> Option<(&str, &str)> {
    let c = concept.get("coding")?.get(0)?;
    Some((c.get("system")?.as_str()?, c.get("code")?.as_str()?))
}

fn codings(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value.and_then(Value::as_array).into_iter().flatten()
}

/// Reads an AuditEvent that [`audit_event`] made back into its record (`None` when it is not one).
/// The hub uses it to show the trail; a round trip gives the record back unchanged.
pub fn record_from_event(event: &Value) -> Option<AuditRecord> {
    if event.get("resourceType")?.as_str()? != "AuditEvent" {
        return None;
    }
    let recorded_ms = parse_instant(event.get("recorded")?.as_str()?)?;
    let action = Action::parse(event.get("action")?.as_str()?)?;
    let outcome = Outcome::from_code(event.get("outcome")?.as_str()?)?;
    let mut interaction = None;
    let mut operation = None;
    for c in codings(event.get("subtype")) {
        match (str_at(c, &["system"]), str_at(c, &["code"])) {
            (Some(OPERATION_SYSTEM), Some(op)) => operation = Some(op.to_string()),
            (Some(_), Some(code)) if interaction.is_none() => interaction = Some(code.to_string()),
            _ => {}
        }
    }
    let desc = event.get("outcomeDesc")?.as_str()?.strip_prefix("HTTP ")?;
    let (status, denied_reason) = match desc.split_once(": ") {
        Some((s, reason)) => (s, Some(reason.to_string())),
        None => (desc, None),
    };
    let status = status.parse().ok()?;

    let mut agent = None;
    let mut purpose = None;
    let mut client_id = None;
    let mut observer = None;
    for a in codings(event.get("agent")) {
        let kind = a.get("type").and_then(first_coding);
        if a.get("requestor").and_then(Value::as_bool) == Some(true) {
            let identifier = a.get("who")?.get("identifier")?;
            agent = Some(Agent {
                subject: identifier.get("value")?.as_str()?.to_string(),
                kind: if kind == Some((SECURITY_ROLE_TYPE, "humanuser")) {
                    "user".into()
                } else {
                    "system".into()
                },
                role: a
                    .get("role")
                    .and_then(|r| r.get(0))
                    .and_then(first_coding)
                    .map(|(_, code)| code.to_string()),
                organization: str_at(identifier, &["assigner", "identifier", "value"])
                    .map(str::to_string),
                client_id: None,
            });
            purpose = a
                .get("purposeOfUse")
                .and_then(|p| p.get(0))
                .and_then(first_coding)
                .map(|(_, code)| code.to_string());
        } else if kind == Some((DICOM, "110153")) {
            client_id = str_at(a, &["who", "identifier", "value"]).map(str::to_string);
        }
    }
    if let Some(node) = str_at(event, &["source", "observer", "identifier", "value"]) {
        observer = Some(node.to_string());
    }
    let mut agent = agent?;
    agent.client_id = client_id;

    let mut patients = Vec::new();
    let mut resource_type = None;
    let mut resource_id = None;
    let mut query = None;
    let mut request_id = None;
    for e in codings(event.get("entity")) {
        let role = str_at(e, &["role", "code"]);
        let kind = str_at(e, &["type", "code"]);
        match (kind, role) {
            (Some("1"), Some("1")) => {
                let reference = str_at(e, &["what", "reference"])?;
                patients.push(reference.strip_prefix("Patient/")?.to_string());
            }
            (Some("2"), Some("4")) => {
                if let Some(reference) = str_at(e, &["what", "reference"]) {
                    let (t, i) = reference.split_once('/')?;
                    resource_type = Some(t.to_string());
                    resource_id = Some(i.to_string());
                } else if let Some(t) = str_at(e, &["what", "type"]) {
                    resource_type = Some(t.to_string());
                } else {
                    resource_id = str_at(e, &["what", "identifier", "value"]).map(str::to_string);
                }
            }
            (Some("2"), Some("24")) => {
                let bytes = BASE64.decode(str_at(e, &["query"])?).ok()?;
                query = Some(String::from_utf8(bytes).ok()?);
            }
            (Some("XrequestId"), _) => {
                request_id = str_at(e, &["what", "identifier", "value"]).map(str::to_string);
            }
            _ => {}
        }
    }
    let mut break_glass = None;
    for ext in codings(event.get("extension")) {
        if str_at(ext, &["url"]) != Some(BREAK_GLASS_URL) {
            continue;
        }
        let mut reason = None;
        let mut text = None;
        for part in codings(ext.get("extension")) {
            match str_at(part, &["url"]) {
                Some("reason") => reason = str_at(part, &["valueCoding", "code"]),
                Some("text") => text = str_at(part, &["valueString"]),
                _ => {}
            }
        }
        break_glass = Some((reason?.to_string(), text?.to_string()));
    }
    Some(AuditRecord {
        recorded_ms,
        request_id: request_id?,
        action,
        interaction: interaction?,
        operation,
        outcome,
        status,
        agent,
        purpose: purpose?,
        patients,
        resource_type,
        resource_id,
        query,
        break_glass,
        denied_reason,
        observer: observer?,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    pub(crate) fn summary_read() -> AuditRecord {
        AuditRecord {
            recorded_ms: 1_764_756_000_000,
            request_id: "req-42".into(),
            action: Action::Execute,
            interaction: "operation".into(),
            operation: Some("$summary".into()),
            outcome: Outcome::Success,
            status: 200,
            agent: Agent {
                subject: "dr-jones".into(),
                kind: "user".into(),
                role: Some("clinician".into()),
                organization: Some("RX1".into()),
                client_id: Some("portal".into()),
            },
            purpose: "ETREAT".into(),
            patients: vec!["p1".into(), "p2".into()],
            resource_type: Some("Patient".into()),
            resource_id: Some("p1".into()),
            query: Some("_count=10".into()),
            break_glass: Some(("emergency".into(), "Unconscious in A&E".into())),
            denied_reason: None,
            observer: "hub-north".into(),
        }
    }

    #[test]
    fn a_break_glass_summary_in_the_balp_shape() {
        let event = audit_event(&summary_read(), "ae-1");
        insta::assert_json_snapshot!(event);
    }

    #[test]
    fn a_successful_patient_read_claims_the_balp_profile() {
        let mut record = summary_read();
        record.action = Action::Read;
        record.interaction = "read".into();
        record.operation = None;
        let event = audit_event(&record, "ae-2");
        assert_eq!(
            event["meta"]["profile"][0],
            "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead"
        );
        assert_eq!(event["subtype"][0]["system"], RESTFUL_INTERACTION);
        record.outcome = Outcome::Denied;
        record.status = 403;
        record.denied_reason = Some("no legitimate relationship".into());
        let event = audit_event(&record, "ae-3");
        assert!(event.get("meta").is_none(), "BALP profiles successes only");
        assert_eq!(event["outcome"], "4");
        assert_eq!(event["outcomeDesc"], "HTTP 403: no legitimate relationship");
    }

    #[test]
    fn a_system_agent_is_an_application() {
        let mut record = summary_read();
        record.agent = Agent {
            subject: "edge-1".into(),
            kind: "system".into(),
            ..Agent::default()
        };
        record.break_glass = None;
        let event = audit_event(&record, "ae-4");
        assert_eq!(event["agent"][0]["type"]["coding"][0]["code"], "110150");
        assert_eq!(
            event["agent"][0]["purposeOfUse"].as_array().map(Vec::len),
            Some(1)
        );
        assert_eq!(record_from_event(&event), Some(record));
    }

    #[test]
    fn something_else_is_not_read_as_a_record() {
        assert_eq!(
            record_from_event(&json!({ "resourceType": "Patient" })),
            None
        );
        assert_eq!(record_from_event(&json!([])), None);
        let mut event = audit_event(&summary_read(), "x");
        event["recorded"] = "yesterday".into();
        assert_eq!(record_from_event(&event), None);
    }

    fn opt(s: impl Strategy<Value = String>) -> impl Strategy<Value = Option<String>> {
        proptest::option::of(s)
    }

    prop_compose! {
        pub(crate) fn records()(
            recorded_ms in 0i64..4_102_444_800_000,
            request_id in "[a-z0-9-]{1,12}",
            action in prop::sample::select(vec![Action::Create, Action::Read, Action::Update, Action::Delete, Action::Execute]),
            interaction in prop::sample::select(vec!["read", "search-type", "operation", "break-glass", "login"]),
            operation in opt("\\$[a-z]{1,8}".prop_map(String::from)),
            outcome in prop::sample::select(vec![Outcome::Success, Outcome::Denied, Outcome::Failed]),
            status in 100u16..600,
            subject in "[a-z0-9|-]{1,12}",
            user in any::<bool>(),
            role in opt("[a-z-]{1,10}".prop_map(String::from)),
            organization in opt("[A-Z0-9]{1,6}".prop_map(String::from)),
            client_id in opt("[a-z]{1,8}".prop_map(String::from)),
            purpose in "[A-Z]{3,7}",
            patients in prop::collection::vec("[A-Za-z0-9.-]{1,16}", 0..4),
            resource_type in opt("[A-Z][a-z]{1,10}".prop_map(String::from)),
            resource_id in opt("[A-Za-z0-9.-]{1,16}".prop_map(String::from)),
            query in opt("[ -~]{0,30}".prop_map(String::from)),
            break_glass in proptest::option::of(("[a-z]{1,8}", "[ -~]{0,20}")),
            denied_reason in opt("[ -~]{0,20}".prop_map(String::from)),
            observer in "[a-z-]{1,10}",
        ) -> AuditRecord {
            AuditRecord {
                recorded_ms, request_id, action, interaction: interaction.to_string(), operation,
                outcome, status,
                agent: Agent { subject, kind: if user { "user" } else { "system" }.into(), role, organization, client_id },
                purpose, patients, resource_type, resource_id, query, break_glass, denied_reason, observer,
            }
        }
    }

    proptest! {
        #[test]
        fn every_record_reads_back_unchanged(record in records()) {
            let event = audit_event(&record, "id");
            prop_assert_eq!(record_from_event(&event), Some(record));
        }
    }
}
