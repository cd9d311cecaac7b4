//! The authorisation matrix: role × data category × relationship × break-glass as a reviewed
//! snapshot, and consent × break-glass over a small federated record as a table of `check`s
//! naming exactly which resources each caller sees.

mod common;

use std::collections::BTreeSet;

use common::*;
use concord_access::*;

/// One type per category the table places by type.
const TYPES: [&str; 14] = [
    "Patient",
    "Encounter",
    "Appointment",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "Immunization",
    "Observation",
    "Procedure",
    "CarePlan",
    "DocumentReference",
    "Consent",
    "AuditEvent",
    "Provenance",
];

fn code(decision: &Decision) -> char {
    match decision {
        Decision::Permit(p) => match p.basis {
            Basis::Relationship { .. } => 'r',
            Basis::BreakGlass => 'g',
            Basis::OwnRecord => 'o',
            Basis::Proxy => 'x',
            Basis::Oversight => 'v',
            Basis::System => 's',
            Basis::NotPatientData => 'n',
        },
        Decision::Deny(d) => match d.reason {
            DenyReason::Scope => 'S',
            DenyReason::Role => '-',
            DenyReason::NoRelationship => 'B',
            DenyReason::BreakGlassNotAllowed => 'N',
            DenyReason::NotOwnRecord => 'O',
            DenyReason::NoPatientContext => 'C',
        },
    }
}

fn principal_for(role: Role) -> Principal {
    match role {
        Role::Patient => patient("p1"),
        Role::Proxy => Principal {
            roles: vec![Role::Proxy],
            // A proxy's SMART launch puts the person they act for in context.
            patient: Some("p2".to_owned()),
            proxy_for: vec!["p2".to_owned()],
            ..patient("p1")
        },
        _ => staff(role),
    }
}

#[test]
fn role_by_category_by_relationship_and_break_glass() {
    let mut out = String::from(
        "cell: read write. permit: r relationship, g break-glass, o own record, x proxy, v oversight.\n\
         deny: - role, B no relationship (may break glass), N no relationship (may not), O not own record.\n",
    );
    let scenarios = ["related", "unrelated", "break-glass"];
    for scenario in scenarios {
        out.push_str(&format!("\n{scenario}\n{:16}", ""));
        for t in TYPES {
            out.push_str(&format!("{:>6}", &t[..t.len().min(5)]));
        }
        out.push('\n');
        for role in Role::ALL {
            let principal = principal_for(role);
            let mut facts = person(scenario == "related");
            if scenario == "break-glass" {
                facts.break_glass = Some(grant(&principal, BreakGlassReason::EmergencyCare));
            }
            out.push_str(&format!("{:16}", role.code()));
            for t in TYPES {
                let r = decide(
                    &principal,
                    &target(t, Interaction::Read, Some(facts.clone())),
                    &policy(),
                    NOW,
                );
                let w = decide(
                    &principal,
                    &target(t, Interaction::Update, Some(facts.clone())),
                    &policy(),
                    NOW,
                );
                out.push_str(&format!("{:>6}", format!("{} {}", code(&r), code(&w))));
            }
            out.push('\n');
        }
    }
    insta::assert_snapshot!(out);
}

struct Case {
    who: Principal,
    related: bool,
    grant: Option<BreakGlassReason>,
    consent: ConsentPolicy,
    policy: Policy,
}

fn case(who: Principal) -> Case {
    Case {
        who,
        related: true,
        grant: None,
        consent: ConsentPolicy::default(),
        policy: policy(),
    }
}

impl Case {
    fn unrelated(mut self) -> Case {
        self.related = false;
        self
    }
    fn glass(mut self, reason: BreakGlassReason) -> Case {
        self.grant = Some(reason);
        self
    }
    fn opt_out(mut self) -> Case {
        self.consent.opt_out = true;
        self
    }
    fn withhold_org(mut self, org: &str) -> Case {
        self.consent.withheld_organizations.insert(org.to_owned());
        self
    }
    fn withhold(mut self, category: &str) -> Case {
        self.consent.withheld_categories.insert(category.to_owned());
        self
    }
    fn purpose(mut self, purpose: &str) -> Case {
        self.who.purpose = purpose.to_owned();
        self
    }
}

/// Decide a read of the person's Patient for the case and mask the record with the permit's filter.
fn check(case: Case, expect: &[&str]) {
    let mut facts = person(case.related);
    facts.consent = case.consent;
    facts.break_glass = case.grant.map(|reason| grant(&case.who, reason));
    let decision = decide(&case.who, &read("Patient", facts), &case.policy, NOW);
    let Decision::Permit(permit) = decision else {
        panic!("expected a permit, got {decision:?}");
    };
    assert_eq!(kept(&permit.filter), expect, "{:?}", case.who.roles);
}

const ALL: [&str; 9] = [
    "patient",
    "own-encounter",
    "own-result",
    "other-result",
    "other-allergy",
    "hiv",
    "depression",
    "care-plan",
    "entered",
];
const OWN_ONLY: [&str; 3] = ["patient", "own-encounter", "own-result"];

#[test]
fn consent_and_break_glass_shape_what_is_seen() {
    use BreakGlassReason::*;
    let clinician = || staff(Role::Clinician);
    check(case(clinician()), &ALL);
    check(case(clinician()).opt_out(), &OWN_ONLY);
    check(
        case(clinician()).withhold_org(OTHER),
        &["patient", "own-encounter", "own-result", "care-plan"],
    );
    // An organisation's own records are never withheld from it.
    check(
        case(user(&[Role::Clinician], Some(OTHER))).withhold_org(OTHER),
        &ALL,
    );
    check(
        case(user(&[Role::Clinician], Some(OTHER))).opt_out(),
        &[
            "patient",
            "other-result",
            "other-allergy",
            "hiv",
            "depression",
            "entered",
        ],
    );
    let all_but = |name: &str| {
        ALL.iter()
            .copied()
            .filter(|n| *n != name)
            .collect::<Vec<_>>()
    };
    check(case(clinician()).withhold("hiv"), &all_but("hiv"));
    check(
        case(clinician()).withhold("mental-health"),
        &all_but("depression"),
    );
    check(case(clinician()).withhold("fertility"), &ALL);

    // Emergency override: an emergency grant lifts opt-out and withheld organisations for
    // clinicians and paramedics, but reveals sensitive categories only when configured.
    check(
        case(clinician()).unrelated().glass(EmergencyCare).opt_out(),
        &ALL,
    );
    check(
        case(staff(Role::Paramedic))
            .unrelated()
            .glass(UrgentCare)
            .opt_out()
            .withhold_org(OTHER),
        &ALL,
    );
    check(
        case(clinician())
            .unrelated()
            .glass(EmergencyCare)
            .withhold("hiv"),
        &all_but("hiv"),
    );
    let mut revealing = case(clinician())
        .unrelated()
        .glass(EmergencyCare)
        .withhold("hiv");
    revealing
        .policy
        .emergency
        .categories
        .insert("hiv".to_owned());
    check(revealing, &ALL);
    check(case(clinician()).glass(EmergencyCare).opt_out(), &ALL);
    // Not an emergency reason, not an override role, or no grant at all: consent stands.
    check(
        case(clinician()).unrelated().glass(Safeguarding).opt_out(),
        &OWN_ONLY,
    );
    check(
        case(staff(Role::Nurse))
            .unrelated()
            .glass(EmergencyCare)
            .opt_out(),
        &OWN_ONLY,
    );
    check(case(clinician()).purpose("ETREAT").opt_out(), &OWN_ONLY);
    // A declared emergency purpose with any grant is an emergency.
    check(
        case(clinician())
            .unrelated()
            .glass(Safeguarding)
            .purpose("ETREAT")
            .opt_out(),
        &ALL,
    );
    let mut nurse_override = case(staff(Role::Nurse))
        .unrelated()
        .glass(EmergencyCare)
        .opt_out();
    nurse_override.policy.emergency.roles = BTreeSet::from([Role::Nurse]);
    check(nurse_override, &ALL);

    // Roles narrow first, consent after.
    check(
        case(staff(Role::SocialWorker)),
        &["patient", "own-encounter", "other-allergy", "care-plan"],
    );
    check(
        case(staff(Role::SocialWorker)).opt_out(),
        &["patient", "own-encounter"],
    );
    check(
        case(staff(Role::Receptionist)).withhold("hiv"),
        &["patient", "own-encounter"],
    );

    // The person and their proxy see everything, whatever they withhold from others.
    check(
        case(patient("p1"))
            .unrelated()
            .opt_out()
            .withhold("hiv")
            .withhold_org(OTHER),
        &ALL,
    );
}

#[test]
fn consent_read_from_resources_drives_the_filter() {
    let choices = ConsentChoices {
        opt_out: false,
        withheld_organizations: BTreeSet::new(),
        blocked_organizations: BTreeSet::new(),
        withheld_categories: BTreeSet::from(["mental-health".to_owned()]),
    };
    let resource = consent_resource("p1", &choices, "2026-01-01T00:00:00Z");
    let (consent, issues) = ConsentPolicy::from_consents(&[resource], NOW);
    assert!(issues.is_empty());
    let mut c = case(staff(Role::Clinician));
    c.consent = consent;
    check(
        c,
        &ALL.iter()
            .copied()
            .filter(|n| *n != "depression")
            .collect::<Vec<_>>(),
    );
}
