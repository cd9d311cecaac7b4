//! The demo's sign-ins: one account for each kind of person the portal serves, all with the
//! password [`PASSWORD`], listed on the portal's front page and in the banner.
//!
//! Owns: the accounts (a GP with a relationship with everyone, a hospital doctor, a paramedic, a
//! mental health nurse and a social worker with relationships only where their organisation
//! holds a record, a patient, a privacy officer and a data steward) and linking the patient
//! account to the demo person held by the most organisations. Does not: exist
//! outside the demo; a real node's accounts are made with `concord user add`.

use std::path::Path;

use anyhow::Context;
use concord_auth::{AuthServer, NewUser};
use concord_fhir::{ErrorKind, RequestContext};
use concord_portal::DemoSignIn;

use super::data::ORGS;

/// Every demo account's password: the demo's people are made up.
pub const PASSWORD: &str = "concord-demo";

/// (user id, role, organisation kind the user works at, who they are).
const ACCOUNTS: &[(&str, &str, Option<&str>, &str)] = &[
    ("gp.clinician", "clinician", Some("gp"), "GP at"),
    (
        "hospital.doctor",
        "clinician",
        Some("acute"),
        "Hospital doctor at",
    ),
    ("paramedic", "paramedic", Some("ambulance"), "Paramedic at"),
    (
        "mh.nurse",
        "nurse",
        Some("mental-health"),
        "Mental health nurse at",
    ),
    (
        "social.worker",
        "social-worker",
        Some("social-care"),
        "Social worker at",
    ),
    (
        "patient",
        "patient",
        None,
        "A patient (the person-held record)",
    ),
    (
        "privacy.officer",
        "privacy-officer",
        None,
        "Privacy officer for the region",
    ),
    (
        "data.steward",
        "data-steward",
        None,
        "Data steward (record matching)",
    ),
];

fn org(id: &str) -> Option<&'static super::data::OrgSpec> {
    ORGS.iter().find(|o| o.id == id)
}

/// The accounts as the portal's front page lists them.
pub fn sign_ins() -> Vec<DemoSignIn> {
    ACCOUNTS
        .iter()
        .map(|(user, _, at, label)| DemoSignIn {
            user: (*user).into(),
            password: PASSWORD.into(),
            label: match at.and_then(org) {
                Some(o) => format!("{label} {}", o.name),
                None => (*label).to_string(),
            },
        })
        .collect()
}

/// Creates the accounts that do not exist yet. The patient account is linked to the person in
/// `people` (the demo's `people.txt`) held by the most organisations.
pub async fn create(
    hub: &concord_hub::Hub,
    auth: &AuthServer,
    people: &Path,
) -> anyhow::Result<()> {
    let listing = std::fs::read_to_string(people)
        .with_context(|| format!("cannot read {}", people.display()))?;
    // The person held by the most organisations (among those at both the GP practice and the
    // acute trust), so the person-held record shows the most.
    let nhs_number = listing
        .lines()
        .filter_map(|line| {
            let orgs: Vec<&str> = line
                .split_once(" at ")?
                .1
                .split("  (")
                .next()?
                .split(", ")
                .collect();
            (orgs.contains(&"gp") && orgs.contains(&"acute"))
                .then(|| (orgs.len(), line.split_whitespace().next()))
        })
        .max_by_key(|(count, _)| *count)
        .and_then(|(_, nhs)| nhs)
        .map(str::to_string);
    let patient = match nhs_number {
        Some(nhs) => hub_patient(hub, &nhs).await?,
        None => None,
    };
    for (user, role, at, _) in ACCOUNTS {
        let account = NewUser {
            id: (*user).into(),
            roles: vec![(*role).into()],
            org: at.and_then(org).map(|o| o.ods.to_string()),
            patient: if *role == "patient" {
                patient.clone()
            } else {
                None
            },
            proxy_for: Vec::new(),
            password: PASSWORD.into(),
        };
        match auth.add_user(&account) {
            Ok(()) => {}
            Err(e) if e.kind == ErrorKind::Conflict => {}
            Err(e) => anyhow::bail!("cannot create the demo account {user}: {e}"),
        }
    }
    Ok(())
}

/// The hub's Patient id for the person with this NHS number.
async fn hub_patient(hub: &concord_hub::Hub, nhs: &str) -> anyhow::Result<Option<String>> {
    let hub = hub.clone();
    let params = vec![(
        "identifier".to_string(),
        format!("{}|{nhs}", concord_mpi::NHS_NUMBER_SYSTEM),
    )];
    let bundle = tokio::task::spawn_blocking(move || {
        hub.search(
            &RequestContext::system("concord-demo", "accounts"),
            Some("Patient"),
            &params,
            concord_hub::search::Handling::Lenient,
            "http://demo.invalid/fhir",
        )
    })
    .await
    .context("the search stopped")?
    .map_err(|e| anyhow::anyhow!("cannot find the demo patient: {e}"))?;
    Ok(bundle
        .entry
        .iter()
        .filter_map(|e| e.resource.as_ref())
        .filter_map(|r| serde_json::from_str::<serde_json::Value>(r.get()).ok())
        .find_map(|r| r["id"].as_str().map(str::to_string)))
}
