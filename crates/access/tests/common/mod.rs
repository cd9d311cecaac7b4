//! Builders shared by the access tests: principals, people, targets and a small federated record
//! from two organisations. Owns no rules; the tests state what they expect.

#![allow(dead_code)] // reason: each test binary uses a different part of the builders

use concord_access::*;
use serde_json::{Value, json};

pub const NOW: i64 = 1_800_000_000_000;
pub const OWN: &str = "RX1";
pub const OTHER: &str = "A81001";
pub const SNOMED: &str = "http://snomed.info/sct";

pub fn user(roles: &[Role], organization: Option<&str>) -> Principal {
    Principal {
        subject: "user-1".to_owned(),
        kind: PrincipalKind::User,
        roles: roles.to_vec(),
        organization: organization.map(str::to_owned),
        scopes: vec!["user/*.cruds".to_owned()],
        patient: None,
        proxy_for: Vec::new(),
        purpose: "TREAT".to_owned(),
    }
}

pub fn staff(role: Role) -> Principal {
    user(&[role], Some(OWN))
}

pub fn patient(patient_id: &str) -> Principal {
    Principal {
        subject: "citizen-1".to_owned(),
        roles: vec![Role::Patient],
        organization: None,
        scopes: vec!["patient/*.cruds".to_owned()],
        patient: Some(patient_id.to_owned()),
        ..user(&[], None)
    }
}

pub fn system(scopes: &[&str]) -> Principal {
    Principal {
        subject: "edge-1".to_owned(),
        kind: PrincipalKind::System,
        scopes: scopes.iter().map(|s| (*s).to_owned()).collect(),
        ..user(&[], None)
    }
}

/// The person: two Patient ids, a record held by `OTHER`, and optionally a relationship with `OWN`.
pub fn person(related: bool) -> PersonFacts {
    let mut relationships = vec![RelationshipFact {
        organization: OTHER.to_owned(),
        evidence: Evidence::HoldsRecord,
        at_ms: None,
    }];
    if related {
        relationships.push(RelationshipFact {
            organization: OWN.to_owned(),
            evidence: Evidence::Encounter,
            at_ms: Some(NOW - 86_400_000),
        });
    }
    PersonFacts {
        patient_ids: vec!["p1".to_owned(), "p2".to_owned()],
        relationships,
        consent: ConsentPolicy::default(),
        break_glass: None,
    }
}

pub fn grant(principal: &Principal, reason: BreakGlassReason) -> BreakGlass {
    BreakGlass::request(
        &principal.subject,
        principal.organization.as_deref(),
        "person-1",
        reason,
        "seen in the emergency department",
        NOW - 1000,
        DEFAULT_BREAK_GLASS_MS,
    )
    .unwrap()
}

pub fn target(
    resource_type: &str,
    interaction: Interaction,
    person: Option<PersonFacts>,
) -> Target {
    Target {
        resource_type: resource_type.to_owned(),
        interaction,
        person,
    }
}

pub fn read(resource_type: &str, person: PersonFacts) -> Target {
    target(resource_type, Interaction::Read, Some(person))
}

pub fn policy() -> Policy {
    Policy::default()
}

/// One resource of the person's record with where it came from.
pub struct Held {
    pub name: &'static str,
    pub resource: Value,
    pub organization: &'static str,
    pub kind: &'static str,
}

fn coded(resource_type: &str, system: &str, code: &str) -> Value {
    json!({"resourceType": resource_type, "code": {"coding": [{"system": system, "code": code}]}})
}

/// A small record: demographics, an encounter and a result from each organisation, an HIV
/// diagnosis and a depression diagnosis held elsewhere, a social-care plan and a patient-entered
/// observation.
pub fn record() -> Vec<Held> {
    let mut entered = coded("Observation", "http://loinc.org", "29463-7");
    entered["meta"] = json!({"tag": [{"system": "https://concord.health/fhir/CodeSystem/provenance", "code": "patient-entered"}]});
    vec![
        Held {
            name: "patient",
            resource: json!({"resourceType": "Patient"}),
            organization: OTHER,
            kind: "gp",
        },
        Held {
            name: "own-encounter",
            resource: json!({"resourceType": "Encounter"}),
            organization: OWN,
            kind: "acute",
        },
        Held {
            name: "own-result",
            resource: coded("Observation", "http://loinc.org", "718-7"),
            organization: OWN,
            kind: "acute",
        },
        Held {
            name: "other-result",
            resource: coded("Observation", "http://loinc.org", "718-7"),
            organization: OTHER,
            kind: "gp",
        },
        Held {
            name: "other-allergy",
            resource: json!({"resourceType": "AllergyIntolerance"}),
            organization: OTHER,
            kind: "gp",
        },
        Held {
            name: "hiv",
            resource: coded("Condition", SNOMED, "86406008"),
            organization: OTHER,
            kind: "gp",
        },
        Held {
            name: "depression",
            resource: coded("Condition", SNOMED, "35489007"),
            organization: OTHER,
            kind: "gp",
        },
        Held {
            name: "care-plan",
            resource: json!({"resourceType": "CarePlan"}),
            organization: "SC1",
            kind: "social-care",
        },
        Held {
            name: "entered",
            resource: entered,
            organization: OTHER,
            kind: "gp",
        },
    ]
}

/// The names of the record's resources a filter keeps.
pub fn kept(filter: &Filter) -> Vec<&'static str> {
    record()
        .into_iter()
        .filter(|held| {
            mask(
                filter,
                &held.resource,
                Some(held.organization),
                Some(held.kind),
            ) == Verdict::Keep
        })
        .map(|held| held.name)
        .collect()
}
