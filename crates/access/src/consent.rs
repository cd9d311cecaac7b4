//! Consent as FHIR R4 Consent resources the person controls (issue 6, item 4).
//!
//! Owns reading a person's Consent resources into a [`ConsentPolicy`], writing the portal's
//! choices as one Consent ([`consent_resource`]), the sensitive-category code lists
//! ([`SensitiveCategories`]) and the emergency override settings ([`EmergencyOverride`]). Does
//! not: decide access (`decide` applies the policy) or store consents (the hub does).
//!
//! The shape written and read:
//!
//! - `scope` consentscope `patient-privacy`, `category` LOINC 59284-0, `policyRule` v3-ActCode
//!   `OPTOUT` or `OPTIN`, `patient`, `dateTime`.
//! - Opting out is a top-level `provision.type` `deny` with no actor, label or code; otherwise
//!   the top level is `permit`.
//! - Each withheld organisation is a nested `deny` provision whose actor (role v3
//!   ParticipationType `CST`, the custodian) has `reference.identifier` with system
//!   `https://fhir.nhs.uk/Id/ods-organization-code`. Withholding an organisation means what that
//!   organisation holds is not shared with anyone else (it still sees its own records): the
//!   custodian of the withheld data, not a recipient denied the record.
//! - Each blocked organisation is a nested `deny` provision whose actor has role v3
//!   ParticipationType `IRCP` (information recipient) and the same ODS identifier. Blocking an
//!   organisation means its users may not see the person's shared record at all: they see only
//!   what their own organisation holds (as if the person had opted out, for them alone).
//! - A deny naming both a custodian and a recipient organisation cannot be expressed exactly and
//!   is read by the rule for such denies (below), as are actors with any other role.
//! - Each withheld sensitive category is a nested `deny` provision whose `securityLabel` names it
//!   in [`SENSITIVE_CATEGORY_SYSTEM`]. v3 ActCode confidentiality labels (HIV, PSY, PSYTHPN, SEX,
//!   STD, SDV) and `provision.code` codings in either system are read too.
//!
//! Reading rules (issues are strings naming the Consent by position, never its content):
//!
//! - Only `status` `active` Consents with scope `patient-privacy` (or no scope, which is read as
//!   privacy so a deny is not lost) count, and only while `now_ms` is within `provision.period`.
//! - Of the Consents in force, the one with the latest `dateTime` wins, whole: a new Consent from
//!   the portal replaces the old. Consents sharing the latest `dateTime` are all applied (the
//!   union of what they withhold), because picking one of them would be arbitrary and withholding
//!   too much is the safer error. A Consent without `dateTime` is older than any with one.
//! - `policyRule` is read only when a Consent has no `provision`: `OPTOUT` is then an opt-out.
//! - A deny provision that names neither an actor nor a label or code is an opt-out. A deny this
//!   crate cannot express exactly (an actor named only by a literal reference, not an ODS
//!   identifier; a label or code naming no known category; a `class`, `data`, `purpose` or
//!   `dataPeriod`) is applied as an opt-out as well as by whatever part of it was understood, and
//!   comes back as an issue: opting out plus the understood part covers every deny. `action` is
//!   not distinguished: a deny withholds sharing for every action.
//! - A deny naming both organisations and categories withholds the categories from everyone, the
//!   narrower of the two supersets this crate can express. A permit nested in a deny (an
//!   exception) is not applied; both come back as issues.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::role::Role;

/// The code system naming Concord's sensitive categories (in consent labels and `meta.security`).
pub const SENSITIVE_CATEGORY_SYSTEM: &str =
    "https://concord.health/fhir/CodeSystem/sensitive-category";
/// The ODS organisation code identifier system.
pub const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
/// The sensitive categories the issue names, as spelled in configuration and consent.
pub const SENSITIVE_CATEGORIES: [&str; 6] = [
    "sexual-health",
    "hiv",
    "gender-identity",
    "fertility",
    "safeguarding",
    "mental-health",
];

const SNOMED: &str = "http://snomed.info/sct";
const ICD10: &str = "http://hl7.org/fhir/sid/icd-10";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const CONSENT_SCOPE: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
const PARTICIPATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
const LOINC: &str = "http://loinc.org";

/// One code to look for: `code` ending in `*` matches every code starting with the rest, so an
/// ICD-10 block (`F3*`) is one entry whether the source writes `F32.1` or `F321`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CodeMatch {
    pub system: String,
    pub code: String,
}

impl CodeMatch {
    pub fn new(system: &str, code: &str) -> CodeMatch {
        CodeMatch {
            system: system.to_owned(),
            code: code.to_owned(),
        }
    }

    /// Whether a coding's system and code match.
    pub fn matches(&self, system: &str, code: &str) -> bool {
        if self.system != system {
            return false;
        }
        match self.code.strip_suffix('*') {
            Some(prefix) => code.starts_with(prefix),
            None => self.code == code,
        }
    }
}

/// The codes that mark each sensitive category, by category name. Configuration may replace the
/// defaults; a category a consent withholds also always matches its own label in
/// [`SENSITIVE_CATEGORY_SYSTEM`] (see [`SensitiveCategories::codes_for`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SensitiveCategories(pub BTreeMap<String, Vec<CodeMatch>>);

impl Default for SensitiveCategories {
    /// A few well-known codes per category: SNOMED CT disorders, ICD-10 blocks and the v3 ActCode
    /// confidentiality labels. Deployments are expected to extend them from their own code lists.
    fn default() -> Self {
        let list = |codes: &[(&str, &str)]| -> Vec<CodeMatch> {
            codes
                .iter()
                .map(|(system, code)| CodeMatch::new(system, code))
                .collect()
        };
        let mut map = BTreeMap::new();
        map.insert(
            "sexual-health".to_owned(),
            list(&[
                (SNOMED, "8098009"),
                (ICD10, "A5*"),
                (ICD10, "A60*"),
                (ICD10, "A63*"),
                (ICD10, "A64*"),
                (ACT_CODE, "SEX"),
                (ACT_CODE, "STD"),
            ]),
        );
        map.insert(
            "hiv".to_owned(),
            list(&[
                (SNOMED, "86406008"),
                (SNOMED, "165816005"),
                (ICD10, "B20*"),
                (ICD10, "B21*"),
                (ICD10, "B22*"),
                (ICD10, "B23*"),
                (ICD10, "B24*"),
                (ICD10, "Z21*"),
                (ACT_CODE, "HIV"),
            ]),
        );
        map.insert(
            "gender-identity".to_owned(),
            list(&[(SNOMED, "93461009"), (ICD10, "F64*")]),
        );
        map.insert(
            "fertility".to_owned(),
            list(&[
                (SNOMED, "8619003"),
                (ICD10, "N46*"),
                (ICD10, "N97*"),
                (ICD10, "Z31*"),
            ]),
        );
        map.insert(
            "safeguarding".to_owned(),
            list(&[(ICD10, "T74*"), (ICD10, "T76*"), (ACT_CODE, "SDV")]),
        );
        map.insert(
            "mental-health".to_owned(),
            list(&[
                (SNOMED, "74732009"),
                (SNOMED, "35489007"),
                (SNOMED, "58214004"),
                (ICD10, "F2*"),
                (ICD10, "F3*"),
                (ICD10, "F4*"),
                (ACT_CODE, "PSY"),
                (ACT_CODE, "PSYTHPN"),
            ]),
        );
        SensitiveCategories(map)
    }
}

impl SensitiveCategories {
    /// The codes that mark any of the named categories: the configured list of each plus its own
    /// Concord label, so a category without a configured list still withholds what is labelled.
    pub fn codes_for<'a>(
        &self,
        categories: impl IntoIterator<Item = &'a String>,
    ) -> Vec<CodeMatch> {
        let mut codes = BTreeSet::new();
        for name in categories {
            codes.insert(CodeMatch::new(SENSITIVE_CATEGORY_SYSTEM, name));
            if let Some(list) = self.0.get(name) {
                codes.extend(list.iter().cloned());
            }
        }
        codes.into_iter().collect()
    }
}

/// Who an emergency may lift consent for, and which withheld sensitive categories it reveals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmergencyOverride {
    pub roles: BTreeSet<Role>,
    pub categories: BTreeSet<String>,
}

impl Default for EmergencyOverride {
    /// Paramedics and clinicians; no sensitive category is revealed unless configured.
    fn default() -> Self {
        EmergencyOverride {
            roles: BTreeSet::from([Role::Paramedic, Role::Clinician]),
            categories: BTreeSet::new(),
        }
    }
}

/// What the person's consent withholds from staff. The default shares everything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentPolicy {
    /// Opted out of sharing: each organisation sees only its own records.
    pub opt_out: bool,
    /// ODS codes of organisations whose records are not shared with any other organisation
    /// (the custodians of the withheld data; each still sees its own records).
    pub withheld_organizations: BTreeSet<String>,
    /// ODS codes of organisations that may not see the person's shared record at all (the
    /// recipients denied): their users see only their own organisation's records.
    #[serde(default)]
    pub blocked_organizations: BTreeSet<String>,
    /// Sensitive category names withheld from everyone but the person.
    pub withheld_categories: BTreeSet<String>,
}

/// The choices a person makes in the portal.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConsentChoices {
    pub opt_out: bool,
    /// Organisations whose records are not shared with others ("don't share what X holds").
    pub withheld_organizations: BTreeSet<String>,
    /// Organisations that may not see the shared record ("X may not see my record").
    #[serde(default)]
    pub blocked_organizations: BTreeSet<String>,
    pub withheld_categories: BTreeSet<String>,
}

impl ConsentPolicy {
    /// Whether the policy withholds nothing.
    pub fn shares_everything(&self) -> bool {
        !self.opt_out
            && self.withheld_organizations.is_empty()
            && self.blocked_organizations.is_empty()
            && self.withheld_categories.is_empty()
    }

    /// The choices that write this policy back (for the portal's form).
    pub fn choices(&self) -> ConsentChoices {
        ConsentChoices {
            opt_out: self.opt_out,
            withheld_organizations: self.withheld_organizations.clone(),
            blocked_organizations: self.blocked_organizations.clone(),
            withheld_categories: self.withheld_categories.clone(),
        }
    }

    /// The policy from the person's Consent resources (any of their Patient ids), by the reading
    /// rules in the module doc, with an issue for each shape that could not be read.
    pub fn from_consents(consents: &[Value], now_ms: i64) -> (ConsentPolicy, Vec<String>) {
        let mut issues = Vec::new();
        let mut in_force: Vec<(i64, &Value)> = Vec::new();
        for (index, consent) in consents.iter().enumerate() {
            let name = format!("Consent {}", index + 1);
            if consent.get("resourceType").and_then(Value::as_str) != Some("Consent") {
                issues.push(format!("{name}: not a Consent resource; ignored"));
                continue;
            }
            match consent.get("status").and_then(Value::as_str) {
                Some("active") => {}
                Some(_) => continue,
                None => {
                    issues.push(format!("{name}: has no status; ignored"));
                    continue;
                }
            }
            if !is_privacy_scope(consent.get("scope")) {
                continue;
            }
            let provision = consent.get("provision");
            if provision.is_some_and(|p| !p.is_object()) {
                issues.push(format!("{name}: provision is not an object; ignored"));
                continue;
            }
            match provision.map_or(Ok(true), |p| in_period(p, now_ms)) {
                Ok(true) => {}
                Ok(false) => continue,
                Err(what) => {
                    issues.push(format!(
                        "{name}: provision.period.{what} is not a date; ignored"
                    ));
                    continue;
                }
            }
            let date_time = match consent.get("dateTime") {
                None => i64::MIN,
                Some(value) => match value.as_str().and_then(range_ms) {
                    Some((start, _)) => start,
                    None => {
                        issues.push(format!(
                            "{name}: dateTime is not a date; read as the oldest"
                        ));
                        i64::MIN
                    }
                },
            };
            in_force.push((date_time, consent));
        }
        let mut policy = ConsentPolicy::default();
        let Some(latest) = in_force.iter().map(|(at, _)| *at).max() else {
            return (policy, issues);
        };
        for (index, consent) in consents.iter().enumerate() {
            if !in_force
                .iter()
                .any(|(at, c)| *at == latest && std::ptr::eq(*c, consent))
            {
                continue;
            }
            let name = format!("Consent {}", index + 1);
            match consent.get("provision") {
                Some(provision) => {
                    read_provision(provision, true, 0, now_ms, &name, &mut policy, &mut issues)
                }
                // No provision: the policy rule alone says whether the person opted out.
                None => policy.opt_out |= has_coding(consent.get("policyRule"), ACT_CODE, "OPTOUT"),
            }
        }
        (policy, issues)
    }
}

/// The deepest provision nesting read; deeper provisions come back as an issue.
const MAX_DEPTH: usize = 8;

fn read_provision(
    provision: &Value,
    top: bool,
    depth: usize,
    now_ms: i64,
    name: &str,
    policy: &mut ConsentPolicy,
    issues: &mut Vec<String>,
) {
    if depth > MAX_DEPTH {
        issues.push(format!(
            "{name}: provisions nested too deep; the deepest were not read"
        ));
        return;
    }
    if !top {
        if !provision.is_object() {
            issues.push(format!(
                "{name}: a nested provision is not an object; ignored"
            ));
            return;
        }
        match in_period(provision, now_ms) {
            Ok(true) => {}
            Ok(false) => return,
            Err(what) => {
                issues.push(format!(
                    "{name}: a nested provision.period.{what} is not a date; ignored"
                ));
                return;
            }
        }
    }
    match provision.get("type").and_then(Value::as_str) {
        Some("deny") => read_deny(provision, name, policy, issues),
        Some("permit") if !top => {
            issues.push(format!(
                "{name}: a permit exception inside the consent is not applied"
            ));
        }
        Some("permit") => {}
        None if top => {}
        _ => issues.push(format!(
            "{name}: a provision type is not deny or permit; ignored"
        )),
    }
    match provision.get("provision") {
        None => {}
        Some(Value::Array(nested)) => {
            for inner in nested {
                read_provision(inner, false, depth + 1, now_ms, name, policy, issues);
            }
        }
        Some(_) => issues.push(format!("{name}: nested provisions are not a list; ignored")),
    }
}

fn read_deny(provision: &Value, name: &str, policy: &mut ConsentPolicy, issues: &mut Vec<String>) {
    // Whether every part of the deny could be expressed; if not, it is applied as an opt-out too.
    let mut exact = true;
    let mut organizations = BTreeSet::new();
    let mut recipients = BTreeSet::new();
    for actor in array(provision.get("actor")) {
        let identifier = actor.pointer("/reference/identifier");
        let system = identifier
            .and_then(|i| i.get("system"))
            .and_then(Value::as_str);
        let value = identifier
            .and_then(|i| i.get("value"))
            .and_then(Value::as_str);
        // A custodian (or an actor whose role is not given) names whose data is withheld; an
        // information recipient names who may not see the record.
        let role = actor.get("role");
        let custodian = role.is_none_or(|role| has_coding(Some(role), PARTICIPATION_TYPE, "CST"));
        let recipient = role.is_some_and(|role| has_coding(Some(role), PARTICIPATION_TYPE, "IRCP"));
        match (system, value) {
            (Some(ODS_SYSTEM), Some(code)) if !code.is_empty() && custodian && !recipient => {
                organizations.insert(code.to_owned());
            }
            (Some(ODS_SYSTEM), Some(code)) if !code.is_empty() && recipient && !custodian => {
                recipients.insert(code.to_owned());
            }
            _ => exact = false,
        }
    }
    if !organizations.is_empty() && !recipients.is_empty() {
        // "What A holds may not go to B" is narrower than either list; this crate can only
        // express both supersets, so the deny is read as an opt-out as well (the safe side).
        exact = false;
    }
    let mut categories = BTreeSet::new();
    let codings = array(provision.get("securityLabel"))
        .chain(array(provision.get("code")).flat_map(|concept| array(concept.get("coding"))));
    for coding in codings {
        let system = coding
            .get("system")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let code = coding
            .get("code")
            .and_then(Value::as_str)
            .unwrap_or_default();
        match label_category(system, code) {
            Some(category) => {
                categories.insert(category);
            }
            None => exact = false,
        }
    }
    if ["class", "data", "purpose", "dataPeriod"]
        .into_iter()
        .any(|field| provision.get(field).is_some())
    {
        exact = false;
    }
    if !exact {
        issues.push(format!(
            "{name}: a deny names an actor without an ODS code or with another role, custodians \
             and recipients together, an unknown label or code, or a class, data, purpose or \
             data period; it is applied as an opt-out"
        ));
        policy.opt_out = true;
    }
    if !categories.is_empty() {
        if !organizations.is_empty() || !recipients.is_empty() {
            issues.push(format!(
                "{name}: a deny naming organisations and categories withholds the categories from everyone"
            ));
        }
        policy.withheld_categories.extend(categories);
    } else if !organizations.is_empty() || !recipients.is_empty() {
        policy.withheld_organizations.extend(organizations);
        policy.blocked_organizations.extend(recipients);
    } else {
        policy.opt_out = true;
    }
}

fn label_category(system: &str, code: &str) -> Option<String> {
    if code.is_empty() {
        return None;
    }
    match system {
        SENSITIVE_CATEGORY_SYSTEM => Some(code.to_owned()),
        ACT_CODE => match code {
            "HIV" => Some("hiv"),
            "PSY" | "PSYTHPN" => Some("mental-health"),
            "SEX" | "STD" => Some("sexual-health"),
            "SDV" => Some("safeguarding"),
            _ => None,
        }
        .map(str::to_owned),
        _ => None,
    }
}

fn array(value: Option<&Value>) -> impl Iterator<Item = &Value> {
    value.and_then(Value::as_array).into_iter().flatten()
}

fn has_coding(concept: Option<&Value>, system: &str, code: &str) -> bool {
    array(concept.and_then(|c| c.get("coding"))).any(|coding| {
        coding.get("system").and_then(Value::as_str) == Some(system)
            && coding.get("code").and_then(Value::as_str) == Some(code)
    })
}

/// A consent without a scope is read as a privacy consent, so a deny in it is not lost.
fn is_privacy_scope(scope: Option<&Value>) -> bool {
    match scope {
        None => true,
        Some(scope) => has_coding(Some(scope), CONSENT_SCOPE, "patient-privacy"),
    }
}

/// Whether `now_ms` is within the provision's period; `Err` names the end that is not a date.
fn in_period(provision: &Value, now_ms: i64) -> Result<bool, &'static str> {
    let Some(period) = provision.get("period") else {
        return Ok(true);
    };
    let bound = |field: &'static str| -> Result<Option<(i64, i64)>, &'static str> {
        match period.get(field) {
            None => Ok(None),
            Some(value) => value.as_str().and_then(range_ms).map(Some).ok_or(field),
        }
    };
    let start = bound("start")?;
    let end = bound("end")?;
    Ok(
        start.is_none_or(|(first, _)| first <= now_ms)
            && end.is_none_or(|(_, last)| now_ms <= last),
    )
}

/// The portal's choices as one R4 Consent (the shape in the module doc), for `patient_id` (a hub
/// Patient id) at `date_time` (a FHIR dateTime the hub supplies).
pub fn consent_resource(patient_id: &str, choices: &ConsentChoices, date_time: &str) -> Value {
    let mut nested = Vec::new();
    for organization in &choices.withheld_organizations {
        nested.push(json!({
            "type": "deny",
            "actor": [{
                "role": {"coding": [{
                    "system": PARTICIPATION_TYPE,
                    "code": "CST",
                    "display": "custodian"
                }]},
                "reference": {"identifier": {"system": ODS_SYSTEM, "value": organization}}
            }]
        }));
    }
    for organization in &choices.blocked_organizations {
        nested.push(json!({
            "type": "deny",
            "actor": [{
                "role": {"coding": [{
                    "system": PARTICIPATION_TYPE,
                    "code": "IRCP",
                    "display": "information recipient"
                }]},
                "reference": {"identifier": {"system": ODS_SYSTEM, "value": organization}}
            }]
        }));
    }
    for category in &choices.withheld_categories {
        nested.push(json!({
            "type": "deny",
            "securityLabel": [{"system": SENSITIVE_CATEGORY_SYSTEM, "code": category}]
        }));
    }
    let mut provision = json!({"type": if choices.opt_out { "deny" } else { "permit" }});
    if !nested.is_empty() {
        provision["provision"] = Value::Array(nested);
    }
    json!({
        "resourceType": "Consent",
        "status": "active",
        "scope": {"coding": [{
            "system": CONSENT_SCOPE,
            "code": "patient-privacy",
            "display": "Privacy Consent"
        }]},
        "category": [{"coding": [{"system": LOINC, "code": "59284-0", "display": "Patient Consent"}]}],
        "patient": {"reference": format!("Patient/{patient_id}")},
        "dateTime": date_time,
        "policyRule": {"coding": [{
            "system": ACT_CODE,
            "code": if choices.opt_out { "OPTOUT" } else { "OPTIN" }
        }]},
        "provision": provision
    })
}

/// The first and last millisecond a FHIR date or dateTime covers (concord-fhir's reading; a value
/// without a zone is read as UTC), or `None` when it is not one.
fn range_ms(text: &str) -> Option<(i64, i64)> {
    concord_fhir::primitive::search_date_range(text).map(|r| (r.low, r.high))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_800_000_000_000; // 2027-01-15T08:00:00Z

    fn choices(opt_out: bool, orgs: &[&str], categories: &[&str]) -> ConsentChoices {
        ConsentChoices {
            opt_out,
            withheld_organizations: orgs.iter().map(|s| (*s).to_owned()).collect(),
            blocked_organizations: BTreeSet::new(),
            withheld_categories: categories.iter().map(|s| (*s).to_owned()).collect(),
        }
    }

    fn blocking(mut c: ConsentChoices, blocked: &[&str]) -> ConsentChoices {
        c.blocked_organizations = blocked.iter().map(|s| (*s).to_owned()).collect();
        c
    }

    fn read(consents: &[Value]) -> (ConsentPolicy, Vec<String>) {
        ConsentPolicy::from_consents(consents, NOW)
    }

    #[test]
    fn what_the_portal_writes_reads_back() {
        for c in [
            choices(false, &[], &[]),
            choices(true, &[], &[]),
            choices(false, &["RX1", "A81001"], &["hiv"]),
            choices(true, &["RX1"], &["mental-health", "fertility"]),
            blocking(choices(false, &[], &[]), &["R9B"]),
            blocking(choices(false, &["RX1"], &["hiv"]), &["R9B", "X9A01"]),
        ] {
            let resource = consent_resource("p1", &c, "2026-01-01T00:00:00Z");
            let (policy, issues) = read(&[resource]);
            assert!(issues.is_empty(), "{issues:?}");
            assert_eq!(policy.choices(), c);
        }
    }

    #[test]
    fn the_written_shape() {
        let resource = consent_resource("p1", &choices(true, &["RX1"], &["hiv"]), "2026-01-01");
        assert_eq!(resource["patient"]["reference"], "Patient/p1");
        assert_eq!(resource["category"][0]["coding"][0]["code"], "59284-0");
        assert_eq!(resource["provision"]["type"], "deny");
        assert!(resource["provision"].get("actor").is_none());
        let nested = resource["provision"]["provision"].as_array().unwrap();
        assert_eq!(
            nested[0]["actor"][0]["reference"]["identifier"]["system"],
            ODS_SYSTEM
        );
        assert_eq!(nested[0]["actor"][0]["role"]["coding"][0]["code"], "CST");
        assert_eq!(nested[1]["securityLabel"][0]["code"], "hiv");
        assert_eq!(resource["policyRule"]["coding"][0]["code"], "OPTOUT");
    }

    #[test]
    fn the_latest_consent_in_force_wins() {
        let old = consent_resource("p1", &choices(true, &[], &[]), "2025-01-01T00:00:00Z");
        let new = consent_resource("p2", &choices(false, &["RX1"], &[]), "2026-01-01T00:00:00Z");
        let (policy, _) = read(&[new.clone(), old.clone()]);
        assert_eq!(policy.choices(), choices(false, &["RX1"], &[]));
        // An inactive or expired newer consent does not count.
        let mut inactive = new.clone();
        inactive["status"] = json!("inactive");
        assert!(read(&[old.clone(), inactive]).0.opt_out);
        let mut expired = new.clone();
        expired["provision"]["period"] = json!({"end": "2026-06-30"});
        assert!(read(&[old.clone(), expired]).0.opt_out);
        let mut future = new.clone();
        future["provision"]["period"] = json!({"start": "2027-02"});
        assert!(read(&[old.clone(), future]).0.opt_out);
        let mut current = new;
        current["provision"]["period"] = json!({"start": "2027-01-15", "end": "2027-01-15"});
        assert!(!read(&[old, current]).0.opt_out);
    }

    #[test]
    fn ties_apply_both_and_a_missing_date_time_is_oldest() {
        let a = consent_resource("p1", &choices(false, &["RX1"], &[]), "2026-01-01");
        let b = consent_resource("p2", &choices(false, &[], &["hiv"]), "2026-01-01");
        let (policy, issues) = read(&[a.clone(), b]);
        assert!(issues.is_empty());
        assert_eq!(policy.choices(), choices(false, &["RX1"], &["hiv"]));
        let mut undated = consent_resource("p1", &choices(true, &[], &[]), "x");
        undated.as_object_mut().unwrap().remove("dateTime");
        assert_eq!(
            read(&[undated, a]).0.choices(),
            choices(false, &["RX1"], &[])
        );
    }

    #[test]
    fn other_scopes_and_statuses_do_not_count() {
        let mut research = consent_resource("p1", &choices(true, &[], &[]), "2026-01-01");
        research["scope"]["coding"][0]["code"] = json!("research");
        assert_eq!(read(&[research]), (ConsentPolicy::default(), vec![]));
        let mut draft = consent_resource("p1", &choices(true, &[], &[]), "2026-01-01");
        draft["status"] = json!("draft");
        assert_eq!(read(&[draft]), (ConsentPolicy::default(), vec![]));
    }

    #[test]
    fn other_writers_shapes_are_read() {
        // A v3 ActCode label, a provision.code in the Concord system, a bare deny without a
        // policy rule, and an opt-out with no provision at all.
        let consent = json!({"resourceType": "Consent", "status": "active",
        "provision": {"type": "permit", "provision": [
            {"type": "deny", "securityLabel": [{"system": ACT_CODE, "code": "PSY"}]},
            {"type": "deny", "code": [{"coding": [{"system": SENSITIVE_CATEGORY_SYSTEM, "code": "fertility"}]}]}
        ]}});
        let (policy, issues) = read(&[consent]);
        assert!(issues.is_empty(), "{issues:?}");
        assert_eq!(
            policy.choices(),
            choices(false, &[], &["fertility", "mental-health"])
        );
        let bare =
            json!({"resourceType": "Consent", "status": "active", "provision": {"type": "deny"}});
        assert!(read(&[bare]).0.opt_out);
        let rule_only = json!({"resourceType": "Consent", "status": "active",
            "policyRule": {"coding": [{"system": ACT_CODE, "code": "OPTOUT"}]}});
        assert!(read(&[rule_only]).0.opt_out);
    }

    #[test]
    fn unreadable_shapes_are_issues_without_content() {
        let secret = "NHS 943 476 5919";
        let consents = [
            json!(secret),
            json!({"resourceType": "Patient", "id": secret}),
            json!({"resourceType": "Consent"}),
            json!({"resourceType": "Consent", "status": "active", "provision": secret}),
            json!({"resourceType": "Consent", "status": "active", "provision": {"period": {"start": secret}}}),
            json!({"resourceType": "Consent", "status": "active", "dateTime": secret, "provision": {"type": "permit",
            "provision": [
                {"type": "deny", "actor": [{"reference": {"reference": secret}}]},
                {"type": "deny", "actor": [{"role": {"coding": [{"system": PARTICIPATION_TYPE, "code": "PRCP"}]},
                    "reference": {"identifier": {"system": ODS_SYSTEM, "value": "RX9"}}}]},
                {"type": "deny", "securityLabel": [{"system": ACT_CODE, "code": "ETH"}]},
                {"type": "permit", "actor": []},
                {"type": secret},
                secret,
                {"type": "deny", "period": {"end": secret}},
                {"type": "deny", "class": [{"code": "x"}]},
                {"type": "deny", "securityLabel": [{"system": SENSITIVE_CATEGORY_SYSTEM, "code": "hiv"}],
                 "actor": [{"reference": {"identifier": {"system": ODS_SYSTEM, "value": "RX1"}}}]},
                {"type": "deny", "provision": secret}
            ]}}),
        ];
        let (policy, issues) = read(&consents);
        assert_eq!(issues.len(), 16, "{issues:#?}");
        for issue in &issues {
            assert!(!issue.contains("943"), "{issue}");
        }
        // The unreadable denies were applied as opt-outs; the mixed deny withholds the category.
        assert!(policy.opt_out);
        assert!(policy.withheld_categories.contains("hiv"));
        assert!(policy.withheld_organizations.is_empty());
    }

    #[test]
    fn a_recipient_deny_blocks_the_organisation_exactly() {
        let resource = consent_resource(
            "p1",
            &blocking(choices(false, &[], &[]), &["R9B"]),
            "2026-01-01",
        );
        let nested = resource["provision"]["provision"].as_array().unwrap();
        assert_eq!(nested.len(), 1);
        assert_eq!(nested[0]["type"], "deny");
        assert_eq!(nested[0]["actor"][0]["role"]["coding"][0]["code"], "IRCP");
        assert_eq!(
            nested[0]["actor"][0]["reference"]["identifier"]["value"],
            "R9B"
        );
        let (policy, issues) = read(&[resource]);
        assert!(issues.is_empty(), "{issues:?}");
        assert!(!policy.opt_out);
        assert!(policy.withheld_organizations.is_empty());
        assert_eq!(
            policy.blocked_organizations,
            BTreeSet::from(["R9B".to_owned()])
        );
        assert!(!policy.shares_everything());
        // A deny naming a custodian and a recipient together ("what A holds may not go to B")
        // is wider than either list alone can say: it is applied as an opt-out too.
        let both = json!({"resourceType": "Consent", "status": "active", "provision": {"type": "permit",
        "provision": [{"type": "deny", "actor": [
            {"role": {"coding": [{"system": PARTICIPATION_TYPE, "code": "CST"}]},
             "reference": {"identifier": {"system": ODS_SYSTEM, "value": "RX1"}}},
            {"role": {"coding": [{"system": PARTICIPATION_TYPE, "code": "IRCP"}]},
             "reference": {"identifier": {"system": ODS_SYSTEM, "value": "R9B"}}}
        ]}]}});
        let (policy, issues) = read(&[both]);
        assert_eq!(issues.len(), 1, "{issues:?}");
        assert!(policy.opt_out);
        assert!(policy.blocked_organizations.contains("R9B"));
        assert!(policy.withheld_organizations.contains("RX1"));
    }

    #[test]
    fn deep_nesting_stops_with_an_issue() {
        let mut provision = json!({"type": "deny", "securityLabel": [{"system": SENSITIVE_CATEGORY_SYSTEM, "code": "hiv"}]});
        for _ in 0..20 {
            provision = json!({"type": "permit", "provision": [provision]});
        }
        let consent =
            json!({"resourceType": "Consent", "status": "active", "provision": provision});
        let (_, issues) = read(&[consent]);
        assert!(issues.iter().any(|i| i.contains("too deep")));
    }

    #[test]
    fn code_matches_and_sensitive_defaults() {
        let block = CodeMatch::new(ICD10, "F3*");
        assert!(block.matches(ICD10, "F32.1"));
        assert!(block.matches(ICD10, "F321"));
        assert!(!block.matches(ICD10, "F64"));
        assert!(!block.matches(SNOMED, "F32"));
        assert!(CodeMatch::new(SNOMED, "86406008").matches(SNOMED, "86406008"));
        assert!(!CodeMatch::new(SNOMED, "86406008").matches(SNOMED, "864060081"));
        let defaults = SensitiveCategories::default();
        for name in SENSITIVE_CATEGORIES {
            assert!(!defaults.0[name].is_empty(), "{name}");
        }
        let codes = defaults.codes_for(&["hiv".to_owned(), "custom".to_owned()]);
        assert!(codes.contains(&CodeMatch::new(SENSITIVE_CATEGORY_SYSTEM, "custom")));
        assert!(codes.contains(&CodeMatch::new(SENSITIVE_CATEGORY_SYSTEM, "hiv")));
        assert!(codes.contains(&CodeMatch::new(ACT_CODE, "HIV")));
        assert!(!codes.contains(&CodeMatch::new(ACT_CODE, "PSY")));
    }

    #[test]
    fn emergency_override_defaults() {
        let o = EmergencyOverride::default();
        assert_eq!(o.roles, BTreeSet::from([Role::Clinician, Role::Paramedic]));
        assert!(o.categories.is_empty());
    }
}
