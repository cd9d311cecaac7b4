//! The decision's rules (decide.rs's module doc), one test per rule, each stating the outcome it
//! expects for the principal, target and facts it builds.

mod common;

use common::*;
use concord_access::*;

/// The outcome in a few words: `permit <basis>` or `deny <reason>`.
fn outcome(decision: &Decision) -> String {
    match decision {
        Decision::Permit(permit) => format!("permit {}", permit.basis.code()),
        Decision::Deny(denial) => format!("deny {}", denial.reason.code()),
    }
}

fn check(principal: &Principal, target: &Target, expect: &str) {
    let decision = decide(principal, target, &policy(), NOW);
    assert_eq!(outcome(&decision), expect, "{principal:?}\n{target:?}");
}

#[test]
fn rule_1_system_principals_need_a_system_scope() {
    let t = read("Observation", person(false));
    check(&system(&["system/*.rs"]), &t, "permit system");
    check(&system(&["system/Observation.read"]), &t, "permit system");
    check(&system(&["user/*.cruds", "patient/*.*"]), &t, "deny scope");
    check(&system(&["system/Condition.rs"]), &t, "deny scope");
    check(
        &system(&["system/*.rs"]),
        &target("Observation", Interaction::Create, None),
        "deny scope",
    );
    check(
        &system(&["system/*.c"]),
        &target("Observation", Interaction::Create, None),
        "permit system",
    );
    let Decision::Permit(p) = decide(&system(&["system/*.*"]), &t, &policy(), NOW) else {
        panic!()
    };
    assert!(p.filter.is_everything());
}

#[test]
fn rule_2_scopes_come_first() {
    let mut clinician = staff(Role::Clinician);
    let t = read("Observation", person(true));
    check(&clinician, &t, "permit relationship");
    clinician.scopes = vec!["user/Condition.rs".to_owned(), "openid".to_owned()];
    check(&clinician, &t, "deny scope");
    clinician.scopes = vec!["system/*.*".to_owned()];
    check(&clinician, &t, "deny scope");
    clinician.scopes = vec!["user/Observation.rs?category=laboratory".to_owned()];
    check(&clinician, &t, "deny scope");
    clinician.scopes.clear();
    check(&clinician, &t, "deny scope");
    // A patient token without scopes is refused even for its own record.
    let mut own = patient("p1");
    own.scopes.clear();
    check(&own, &read("Observation", person(false)), "deny scope");
}

#[test]
fn rule_2_patient_scopes_bind_the_patient_in_context() {
    let mut clinician = staff(Role::Clinician);
    clinician.scopes = vec!["patient/*.rs".to_owned()];
    check(
        &clinician,
        &read("Observation", person(true)),
        "deny no-patient-context",
    );
    clinician.patient = Some("p9".to_owned());
    check(
        &clinician,
        &read("Observation", person(true)),
        "deny not-own-record",
    );
    clinician.patient = Some("p2".to_owned());
    check(
        &clinician,
        &read("Observation", person(true)),
        "permit relationship",
    );
    // The patient in context still needs the relationship.
    check(
        &clinician,
        &read("Observation", person(false)),
        "deny no-relationship",
    );
}

#[test]
fn rule_2_scopes_narrow_the_categories() {
    let mut clinician = staff(Role::Clinician);
    clinician.scopes = vec!["user/Observation.rs".to_owned()];
    let Decision::Permit(p) = decide(
        &clinician,
        &read("Observation", person(true)),
        &policy(),
        NOW,
    ) else {
        panic!()
    };
    assert!(p.filter.categories.contains(&Category::Results));
    assert!(!p.filter.categories.contains(&Category::Problems));
    assert_eq!(
        kept(&p.filter),
        [
            "patient",
            "own-result",
            "other-result",
            "care-plan",
            "entered"
        ]
    );
}

#[test]
fn rule_3_directory_types_are_not_patient_data() {
    for role in Role::ALL {
        let principal = user(&[role], Some(OWN));
        check(
            &principal,
            &target("Organization", Interaction::Search, None),
            "permit not-patient-data",
        );
        let write = target("Practitioner", Interaction::Update, None);
        let expect = if matches!(role, Role::Administrator | Role::DataSteward) {
            "permit not-patient-data"
        } else {
            "deny role"
        };
        check(&principal, &write, expect);
    }
    check(
        &patient("p1"),
        &target("Location", Interaction::Read, None),
        "permit not-patient-data",
    );
}

#[test]
fn rule_4_oversight_spans_the_population() {
    let officer = staff(Role::PrivacyOfficer);
    check(
        &officer,
        &target("AuditEvent", Interaction::Search, None),
        "permit oversight",
    );
    check(
        &officer,
        &read("AuditEvent", person(false)),
        "permit oversight",
    );
    check(
        &officer,
        &read("Consent", person(false)),
        "permit oversight",
    );
    check(
        &officer,
        &target("AuditEvent", Interaction::Create, None),
        "deny no-patient-context",
    );
    check(
        &officer,
        &read("AuditEvent", person(false)),
        "permit oversight",
    );
    check(&officer, &read("Observation", person(true)), "deny role");
    let steward = staff(Role::DataSteward);
    check(
        &steward,
        &target("Patient", Interaction::Search, None),
        "permit oversight",
    );
    check(
        &steward,
        &target("Patient", Interaction::Update, Some(person(false))),
        "permit oversight",
    );
    check(&steward, &read("Observation", person(true)), "deny role");
    let Decision::Permit(p) = decide(&officer, &read("Consent", person(false)), &policy(), NOW)
    else {
        panic!()
    };
    assert_eq!(
        p.filter.categories,
        [Category::Consent, Category::Audit].into()
    );
}

#[test]
fn rule_5_patient_data_needs_a_person() {
    check(
        &staff(Role::Clinician),
        &target("Observation", Interaction::Search, None),
        "deny no-patient-context",
    );
    check(
        &staff(Role::Clinician),
        &target("Patient", Interaction::Search, None),
        "deny no-patient-context",
    );
    check(
        &patient("p1"),
        &target("Observation", Interaction::Search, None),
        "deny no-patient-context",
    );
    check(
        &staff(Role::Clinician),
        &target("SomethingNew", Interaction::Search, None),
        "deny no-patient-context",
    );
}

#[test]
fn rule_6_patients_and_proxies_see_only_their_records() {
    check(
        &patient("p1"),
        &read("Observation", person(false)),
        "permit own-record",
    );
    check(
        &patient("p2"),
        &read("AuditEvent", person(false)),
        "permit own-record",
    );
    check(
        &patient("p9"),
        &read("Observation", person(false)),
        "deny not-own-record",
    );
    let mut no_context = patient("p1");
    no_context.patient = None;
    no_context.scopes = vec!["user/*.rs".to_owned()];
    check(
        &no_context,
        &read("Observation", person(false)),
        "deny no-patient-context",
    );

    let mut proxy = patient("x");
    proxy.roles = vec![Role::Proxy];
    proxy.patient = None;
    proxy.scopes = vec!["user/*.cruds".to_owned()];
    proxy.proxy_for = vec!["p7".to_owned(), "p2".to_owned()];
    check(&proxy, &read("Condition", person(false)), "permit proxy");
    proxy.proxy_for = vec!["p7".to_owned()];
    check(
        &proxy,
        &read("Condition", person(false)),
        "deny not-own-record",
    );

    // They see everything of their record, whatever their consent says.
    let mut withholding = person(false);
    withholding.consent.opt_out = true;
    withholding
        .consent
        .withheld_categories
        .insert("hiv".to_owned());
    let Decision::Permit(p) = decide(
        &patient("p1"),
        &read("Observation", withholding),
        &policy(),
        NOW,
    ) else {
        panic!()
    };
    assert!(p.filter.is_everything());
    assert_eq!(kept(&p.filter).len(), record().len());
}

#[test]
fn rule_6_patients_write_only_their_entries_and_consent() {
    let own = patient("p1");
    for t in ["Observation", "QuestionnaireResponse", "Goal", "Consent"] {
        check(
            &own,
            &target(t, Interaction::Create, Some(person(false))),
            "permit own-record",
        );
    }
    for t in ["Condition", "MedicationRequest", "Patient", "AuditEvent"] {
        check(
            &own,
            &target(t, Interaction::Update, Some(person(false))),
            "deny role",
        );
    }
    check(
        &own,
        &target("Observation", Interaction::Create, None),
        "deny no-patient-context",
    );
}

#[test]
fn rule_6_a_citizen_who_is_also_staff_falls_through() {
    let mut both = user(&[Role::Patient, Role::Clinician], Some(OWN));
    both.patient = Some("p9".to_owned());
    both.scopes = vec!["user/*.cruds".to_owned()];
    check(
        &both,
        &read("Observation", person(true)),
        "permit relationship",
    );
    check(
        &both,
        &read("Observation", person(false)),
        "deny no-relationship",
    );
    both.patient = Some("p1".to_owned());
    check(
        &both,
        &read("Observation", person(false)),
        "permit own-record",
    );
}

#[test]
fn rule_7_roles_decide_the_categories() {
    let p = || person(true);
    check(
        &staff(Role::Receptionist),
        &read("Appointment", p()),
        "permit relationship",
    );
    check(
        &staff(Role::Receptionist),
        &read("Encounter", p()),
        "permit relationship",
    );
    check(
        &staff(Role::Receptionist),
        &read("Observation", p()),
        "deny role",
    );
    check(
        &staff(Role::Receptionist),
        &target("Encounter", Interaction::Create, Some(p())),
        "deny role",
    );
    check(
        &staff(Role::SocialWorker),
        &read("AllergyIntolerance", p()),
        "permit relationship",
    );
    check(
        &staff(Role::SocialWorker),
        &read("DiagnosticReport", p()),
        "deny role",
    );
    check(
        &staff(Role::SocialWorker),
        &read("DocumentReference", p()),
        "deny role",
    );
    check(
        &staff(Role::SocialWorker),
        &read("Condition", p()),
        "deny role",
    );
    check(&staff(Role::Analyst), &read("Patient", p()), "deny role");
    check(
        &staff(Role::Administrator),
        &read("Patient", p()),
        "deny role",
    );
    check(&user(&[], Some(OWN)), &read("Patient", p()), "deny role");
    // The union over roles.
    check(
        &user(&[Role::Receptionist, Role::SocialWorker], Some(OWN)),
        &read("CarePlan", p()),
        "permit relationship",
    );
    let Decision::Permit(permit) = decide(
        &staff(Role::Receptionist),
        &read("Patient", p()),
        &policy(),
        NOW,
    ) else {
        panic!()
    };
    assert_eq!(
        permit.filter.categories,
        [
            Category::Demographics,
            Category::Encounters,
            Category::Appointments
        ]
        .into()
    );
    assert_eq!(kept(&permit.filter), ["patient", "own-encounter"]);
}

#[test]
fn rule_8_relationship_or_break_glass() {
    let clinician = staff(Role::Clinician);
    check(
        &clinician,
        &read("Observation", person(false)),
        "deny no-relationship",
    );
    check(
        &staff(Role::Receptionist),
        &read("Patient", person(false)),
        "deny break-glass-not-allowed",
    );
    check(
        &user(&[Role::Clinician], None),
        &read("Observation", person(true)),
        "deny no-relationship",
    );

    let mut glass = person(false);
    glass.break_glass = Some(grant(&clinician, BreakGlassReason::Safeguarding));
    check(
        &clinician,
        &read("Observation", glass.clone()),
        "permit break-glass",
    );
    // Only for the user who broke glass, in their organisation, while it lasts.
    let mut colleague = clinician.clone();
    colleague.subject = "user-2".to_owned();
    check(
        &colleague,
        &read("Observation", glass.clone()),
        "deny no-relationship",
    );
    let mut elsewhere = clinician.clone();
    elsewhere.organization = Some("ZZ9".to_owned());
    check(
        &elsewhere,
        &read("Observation", glass.clone()),
        "deny no-relationship",
    );
    let late = decide(
        &clinician,
        &read("Observation", glass.clone()),
        &policy(),
        NOW + DEFAULT_BREAK_GLASS_MS,
    );
    assert_eq!(outcome(&late), "deny no-relationship");
    // A role that may not break glass gains nothing from a grant.
    let mut receptionist = staff(Role::Receptionist);
    receptionist.subject = clinician.subject.clone();
    check(
        &receptionist,
        &read("Patient", glass.clone()),
        "deny break-glass-not-allowed",
    );
    // A relationship is named in preference to a grant.
    let mut both = person(true);
    both.break_glass = glass.break_glass.clone();
    let Decision::Permit(p) = decide(&clinician, &read("Observation", both), &policy(), NOW) else {
        panic!()
    };
    assert_eq!(
        p.basis,
        Basis::Relationship {
            organization: OWN.to_owned()
        }
    );
}

#[test]
fn rule_8_old_touches_expire() {
    let clinician = staff(Role::Clinician);
    let mut stale = person(false);
    stale.relationships.push(RelationshipFact {
        organization: OWN.to_owned(),
        evidence: Evidence::Referral,
        at_ms: Some(NOW - 400 * 86_400_000),
    });
    check(
        &clinician,
        &read("Observation", stale.clone()),
        "deny no-relationship",
    );
    let generous = Policy {
        relationship: RelationshipPolicy { recent_days: 500 },
        ..policy()
    };
    let decision = decide(&clinician, &read("Observation", stale), &generous, NOW);
    assert_eq!(outcome(&decision), "permit relationship");
}

#[test]
fn rule_9_a_blocked_organisation_sees_only_its_own_records() {
    let clinician = staff(Role::Clinician);
    let mut facts = person(true);
    facts.consent.blocked_organizations.insert(OWN.to_owned());
    let Decision::Permit(p) = decide(
        &clinician,
        &read("Observation", facts.clone()),
        &policy(),
        NOW,
    ) else {
        panic!("a block narrows what is seen; it does not refuse")
    };
    assert_eq!(
        p.filter.only_organizations,
        Some(std::collections::BTreeSet::from([OWN.to_owned()]))
    );
    // Another organisation's block changes nothing for this one.
    let mut other = person(true);
    other.consent.blocked_organizations.insert(OTHER.to_owned());
    let Decision::Permit(p) = decide(&clinician, &read("Observation", other), &policy(), NOW)
    else {
        panic!()
    };
    assert_eq!(p.filter.only_organizations, None);
    // The emergency override lifts the block, as it lifts an opt-out.
    let mut emergency = facts;
    emergency.break_glass = Some(grant(&clinician, BreakGlassReason::EmergencyCare));
    let Decision::Permit(p) = decide(&clinician, &read("Observation", emergency), &policy(), NOW)
    else {
        panic!()
    };
    assert_eq!(p.filter.only_organizations, None);
}

#[test]
fn denial_messages_carry_no_input() {
    let secret = "Jane Smith 9434765919";
    let mut principal = staff(Role::Clinician);
    principal.organization = Some(secret.to_owned());
    principal.subject = secret.to_owned();
    let mut facts = person(false);
    facts.patient_ids = vec![secret.to_owned()];
    for resource_type in [secret, "Observation"] {
        for interaction in Interaction::ALL {
            let decision = decide(
                &principal,
                &target(resource_type, interaction, Some(facts.clone())),
                &policy(),
                NOW,
            );
            if let Decision::Deny(denial) = decision {
                assert!(!denial.message.contains("Jane"), "{}", denial.message);
                assert!(!denial.message.contains("9434"), "{}", denial.message);
                assert!(!denial.message.is_empty());
            }
        }
    }
}
