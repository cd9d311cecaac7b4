//! The synthetic region of `concord demo`: seven made-up organisations and the people whose
//! records they hold, built from real synthetic clinical content (Synthea's R4 transaction
//! Bundles, one person each) re-identified with UK demographics.
//!
//! Owns: the organisations ([`ORGS`]); choosing the people and what happens to them (end-of-life
//! care plans, ReSPECT forms, mental health crisis plans, social care packages, district nursing,
//! 999 calls, a visit across the regional boundary, hospital appointments); a UK identity for
//! each (names, a test-range NHS number, address, phone) with the small differences real
//! organisations' records of one person have; moving each Synthea resource to the organisation
//! that would have created it; and writing one self-contained transaction Bundle per person per
//! organisation. Deterministic for a seed: no clock (today comes in as an argument), no
//! hash-order or thread randomness, and a hand-written generator whose sequence never changes
//! with a dependency's version.
//!
//! Does not: start nodes or load the Bundles (the rest of `demo` does), or check FHIR validity
//! itself (the tests load every Bundle through a real hub over SQLite). The clinical histories are
//! Synthea's, moved in time so that each record ends shortly before today; what this module adds
//! is the UK care around them.
//!
//! Coding choices, with why:
//! - End-of-life care plan: SNOMED CT 736373009 "End of life care plan", as CarePlan.category.
//! - ReSPECT form: SNOMED CT 1382601000000107 "ReSPECT (Recommended Summary Plan for Emergency
//!   Care and Treatment) form", as DocumentReference.type with category 734163000 "Care plan".
//!   The form is a signed document people keep at home, so a document, not a CarePlan.
//! - Mental health crisis plan: SNOMED CT 736253002 "Mental health crisis plan", as
//!   CarePlan.category.
//!
//!   These three are the pointer types England's National Record Locator uses for the same
//!   documents, so a UK system that reads them knows the codes.
//! - Discharge summary: SNOMED CT 373942005 "Discharge summary", category 823651000000106
//!   "Clinical note" (also the National Record Locator's).
//! - Social care has no national coding: the EpisodeOfCare type, care package category and Care
//!   Act assessment are text, as council systems send them (see `import_csv`).
//!
//! Every resource carries `meta.security` HTEST ("test health data"), the HL7 label for data that
//! is not about a real person.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, anyhow, bail};
use concord_mpi::{NHS_NUMBER_SYSTEM, NhsNumber};
use serde_json::{Map, Value, json};

use super::names;

/// One made-up organisation of the demo.
#[derive(Debug)]
pub struct OrgSpec {
    /// Short id, also the local identifier system's host (`fhir.<id>.example.nhs.uk`).
    pub id: &'static str,
    pub name: &'static str,
    /// An ODS-shaped code, made up (trusts are `R9x`) and not checked against the ODS register.
    pub ods: &'static str,
    /// `gp`, `acute`, `mental-health`, `community`, `ambulance` or `social-care`.
    pub kind: &'static str,
    /// `home`, or `neighbour` for the other region's hospital.
    pub region: &'static str,
}

/// The organisations, home region first. The last is the neighbouring region's acute hospital,
/// whose data reaches the home region through the neighbouring hub.
pub const ORGS: &[OrgSpec] = &[
    OrgSpec {
        id: "gp",
        name: "Beckside Medical Practice",
        ods: "Y09341",
        kind: "gp",
        region: "home",
    },
    OrgSpec {
        id: "acute",
        name: "Aire and Calder Hospitals NHS Foundation Trust",
        ods: "R9A",
        kind: "acute",
        region: "home",
    },
    OrgSpec {
        id: "mental-health",
        name: "West Riding Mental Health NHS Foundation Trust",
        ods: "R9B",
        kind: "mental-health",
        region: "home",
    },
    OrgSpec {
        id: "community",
        name: "Five Towns Community Health NHS Trust",
        ods: "R9C",
        kind: "community",
        region: "home",
    },
    OrgSpec {
        id: "ambulance",
        name: "Northern Moors Ambulance Service NHS Trust",
        ods: "R9D",
        kind: "ambulance",
        region: "home",
    },
    OrgSpec {
        id: "social-care",
        name: "Aire and Calder Council Adult Social Care",
        ods: "X9A01",
        kind: "social-care",
        region: "home",
    },
    OrgSpec {
        id: "neighbour-acute",
        name: "Vale of Ouse Hospitals NHS Trust",
        ods: "R9E",
        kind: "acute",
        region: "neighbour",
    },
];

const GP: usize = 0;
const ACUTE: usize = 1;
const MENTAL_HEALTH: usize = 2;
const COMMUNITY: usize = 3;
const AMBULANCE: usize = 4;
const SOCIAL_CARE: usize = 5;
const NEIGHBOUR: usize = 6;

/// What one organisation holds: a transaction Bundle per person it knows.
#[derive(Debug)]
pub struct OrgData {
    pub org: &'static OrgSpec,
    pub bundles: Vec<Value>,
}

/// One demo person as the GP knows them, with where they are known and what to look for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoPerson {
    /// Ten digits, no spaces.
    pub nhs_number: String,
    pub given: String,
    pub family: String,
    pub birth_date: String,
    pub postcode: String,
    /// Ids of the organisations holding a record, in [`ORGS`] order; always starts with `gp`.
    pub orgs: Vec<&'static str>,
    /// What makes the person worth opening: plans, packages, documents, and how the
    /// organisations' records of them differ.
    pub highlights: Vec<String>,
}

#[derive(Debug)]
pub struct DemoData {
    /// One per entry of [`ORGS`], in that order.
    pub orgs: Vec<OrgData>,
    pub people: Vec<DemoPerson>,
}

const SNOMED: &str = "http://snomed.info/sct";
const LOINC: &str = "http://loinc.org";
const UCUM: &str = "http://unitsofmeasure.org";
const ODS_SYSTEM: &str = "https://fhir.nhs.uk/Id/ods-organization-code";
const ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
const ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
const ROLE_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-RoleCode";
const IDENTIFIER_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
const CONDITION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/condition-category";
const CONDITION_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/condition-clinical";
const CONDITION_VERIFICATION: &str = "http://terminology.hl7.org/CodeSystem/condition-ver-status";
const ALLERGY_CLINICAL: &str = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical";
const ALLERGY_VERIFICATION: &str =
    "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification";

const END_OF_LIFE_PLAN: (&str, &str) = ("736373009", "End of life care plan");
const RESPECT_FORM: (&str, &str) = (
    "1382601000000107",
    "ReSPECT (Recommended Summary Plan for Emergency Care and Treatment) form",
);
const CRISIS_PLAN: (&str, &str) = ("736253002", "Mental health crisis plan");
const CARE_PLAN_DOCUMENT: (&str, &str) = ("734163000", "Care plan");
const DISCHARGE_SUMMARY: (&str, &str) = ("373942005", "Discharge summary");
const CLINICAL_NOTE: (&str, &str) = ("823651000000106", "Clinical note");
const PSYCHIATRY_REFERRAL: (&str, &str) = ("183524004", "Referral to psychiatry service");
const HOME_VISIT: (&str, &str) = ("439708006", "Home visit");
const EMERGENCY_ADMISSION: (&str, &str) = ("50849002", "Emergency room admission");
const PENICILLIN_ALLERGY: (&str, &str) = ("91936005", "Allergy to penicillin");
const SKIN_ERUPTION: (&str, &str) = ("271807003", "Eruption of skin");

/// Conditions for people the mental health trust knows whose Synthea history has none.
const MENTAL_HEALTH_CONDITIONS: &[(&str, &str)] = &[
    ("35489007", "Depressive disorder"),
    ("197480006", "Anxiety disorder"),
    ("47505003", "Posttraumatic stress disorder"),
    ("13746004", "Bipolar disorder"),
];

/// Injuries for a visit to the neighbouring region's emergency department; the codes are the
/// ones Synthea itself uses.
const AWAY_INJURIES: &[(&str, &str)] = &[
    ("44465007", "Sprain of ankle"),
    ("283371005", "Laceration of forearm"),
    ("62564004", "Concussion with loss of consciousness"),
    ("70704007", "Sprain of wrist"),
];

/// LOINC codes of the results a GP most wants to see (HbA1c, eGFR, creatinine, cholesterol,
/// potassium, sodium, haemoglobin, glucose): the ones copied to the GP record on purpose.
const KEY_LABS: &[&str] = &[
    "4548-4", "33914-3", "2160-0", "38483-4", "2093-3", "6298-4", "2947-0", "2951-2", "718-7",
    "2339-0",
];

/// Words in a condition that make it the kind an end-of-life plan addresses.
const LIFE_LIMITING: &[&str] = &[
    "heart failure",
    "alzheimer",
    "obstructive",
    "emphysema",
    "neoplasm",
    "cancer",
    "stroke",
];

/// Resource types left out: billing (Claim, ExplanationOfBenefit), Synthea's own provenance, and
/// the US organisations and clinicians, which references name by `display` instead.
const DROPPED: &[&str] = &[
    "Claim",
    "ExplanationOfBenefit",
    "Provenance",
    "Organization",
    "Practitioner",
    "PractitionerRole",
    "Location",
];

/// Builds the demo region: `people` Synthea persons from `synthea_dir`, chosen and re-identified
/// with `seed`, with their records ending shortly before `today` (`YYYY-MM-DD`).
pub fn build(
    synthea_dir: &Path,
    seed: u64,
    people: usize,
    today: &str,
) -> anyhow::Result<DemoData> {
    let today_day = Some(today)
        .filter(|t| t.len() == 10)
        .and_then(parse_day)
        .ok_or_else(|| anyhow!("today must be a date written YYYY-MM-DD, not {today:?}"))?;
    let files = synthea_files(synthea_dir)?;
    if people > files.len() {
        bail!(
            "the demo can have at most {} people: {} holds {} Synthea bundles (one person each)",
            files.len(),
            synthea_dir.display(),
            files.len()
        );
    }
    let summaries = files
        .iter()
        .map(|f| summarise(f))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let chosen = choose_people(&summaries, seed, people);
    let chosen: Vec<&Summary> = chosen.iter().map(|&i| &summaries[i]).collect();
    let plans = plan(&chosen, seed);
    let mut builder = Builder {
        seed,
        today: today_day,
        nhs_numbers: HashSet::new(),
        phones: HashSet::new(),
    };
    let mut orgs: Vec<OrgData> = ORGS
        .iter()
        .map(|org| OrgData {
            org,
            bundles: Vec::new(),
        })
        .collect();
    let mut demo_people = Vec::with_capacity(people);
    for (summary, plan) in chosen.iter().zip(&plans) {
        let (bundles, person) = builder
            .person(summary, plan)
            .with_context(|| format!("cannot build the demo from {}", summary.path.display()))?;
        for (org, bundle) in bundles {
            orgs[org].bundles.push(bundle);
        }
        demo_people.push(person);
    }
    Ok(DemoData {
        orgs,
        people: demo_people,
    })
}

/// The Bundles in the folder, sorted so that the choice of people depends only on the seed.
fn synthea_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let hint = "a folder of Synthea FHIR R4 transaction Bundles, one person per .json file (the \
                project keeps them in ../shared/testdata/synthea beside the repository); point \
                the demo at the folder that holds them";
    if !dir.is_dir() {
        bail!(
            "the demo's clinical content is expected in {}, which is not a folder: {hint}",
            dir.display()
        );
    }
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().and_then(|e| e.to_str()) == Some("json") {
            files.push(path);
        }
    }
    if files.is_empty() {
        bail!(
            "the demo's clinical content is expected in {}, which holds no .json files: {hint}",
            dir.display()
        );
    }
    files.sort();
    Ok(files)
}

fn read_entries(path: &Path) -> anyhow::Result<Vec<(String, Value)>> {
    let text = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut bundle: Value =
        serde_json::from_slice(&text).with_context(|| format!("{} is not JSON", path.display()))?;
    let Some(Value::Array(entries)) = bundle.get_mut("entry").map(Value::take) else {
        bail!("{} is not a Bundle with entries", path.display());
    };
    Ok(entries
        .into_iter()
        .filter_map(|mut entry| {
            let url = entry.get("fullUrl")?.as_str()?.to_string();
            let resource = entry.get_mut("resource")?.take();
            Some((url, resource))
        })
        .collect())
}

// ---------------------------------------------------------------------------------------------
// Choosing people and what happens to them

/// What the first reading of a Synthea Bundle tells about its person.
#[derive(Debug)]
struct Summary {
    path: PathBuf,
    /// The file name: stable per Synthea person, used only to seed choices, never written out.
    key: String,
    gender: String,
    /// Days since 1970-01-01, before moving in time.
    birth: i64,
    deceased: bool,
    /// The day of the last encounter or of death, before moving in time.
    last: i64,
    /// Age in years at the end of the record (about today, once moved).
    age: i64,
    /// Emergency encounters.
    emergencies: usize,
    allergies: bool,
    mental_health: bool,
    labs: bool,
}

fn summarise(path: &Path) -> anyhow::Result<Summary> {
    let mut summary = Summary {
        path: path.to_path_buf(),
        key: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        gender: String::new(),
        birth: i64::MIN,
        deceased: false,
        last: i64::MIN,
        age: 0,
        emergencies: 0,
        allergies: false,
        mental_health: false,
        labs: false,
    };
    for (_, r) in read_entries(path)? {
        match resource_type(&r) {
            "Patient" => {
                summary.gender = str_at(&r, &["gender"]).unwrap_or("unknown").to_string();
                summary.birth = str_at(&r, &["birthDate"])
                    .and_then(parse_day)
                    .with_context(|| {
                        format!("{}: the Patient has no birth date", path.display())
                    })?;
                if let Some(day) = str_at(&r, &["deceasedDateTime"]).and_then(parse_day) {
                    summary.deceased = true;
                    summary.last = summary.last.max(day);
                }
                if r.get("deceasedBoolean") == Some(&Value::Bool(true)) {
                    summary.deceased = true;
                }
            }
            "Encounter" => {
                for end in ["start", "end"] {
                    if let Some(day) = str_at(&r, &["period", end]).and_then(parse_day) {
                        summary.last = summary.last.max(day);
                    }
                }
                if is_mental_health(&type_text(&r)) {
                    summary.mental_health = true;
                } else if encounter_class(&r) == "EMER" {
                    summary.emergencies += 1;
                }
            }
            "Condition" if is_mental_health(&code_text(&r)) => summary.mental_health = true,
            "AllergyIntolerance" => summary.allergies = true,
            "Observation" if is_lab(&r) && r.get("valueQuantity").is_some() => {
                summary.labs = true;
            }
            _ => {}
        }
    }
    if summary.birth == i64::MIN {
        bail!("{} has no Patient", path.display());
    }
    summary.last = summary.last.max(summary.birth);
    summary.age = years_between(summary.birth, summary.last);
    Ok(summary)
}

/// A seeded shuffle, the living first: the demo is about people being cared for now; those who
/// died are there because real records have them too.
fn choose_people(summaries: &[Summary], seed: u64, people: usize) -> Vec<usize> {
    let mut rng = Rng::new(mix(seed, &["people"]));
    let mut order: Vec<usize> = (0..summaries.len()).collect();
    rng.shuffle(&mut order);
    order.sort_by_key(|&i| summaries[i].deceased);
    order.truncate(people);
    order
}

/// What happens to one person beyond their Synthea history.
#[derive(Debug, Clone, Default)]
struct Plan {
    /// The organisation holding the end-of-life care plan.
    end_of_life: Option<usize>,
    /// The organisation holding the ReSPECT form.
    respect: Option<usize>,
    crisis: bool,
    mental_health: bool,
    social_care: bool,
    carer: bool,
    no_nhs_number_at_social_care: bool,
    community: bool,
    ambulance: bool,
    neighbour: bool,
    appointment: bool,
    allergy_duplicate: bool,
    /// No chosen person has a Synthea allergy, so this one gets a penicillin allergy to show the
    /// duplicate with.
    invented_allergy: bool,
    lab_duplicate: bool,
}

/// Shares are quotas, not coin tosses, so that even a small demo has every kind of record (at
/// least one person each) and the shares hold for any size.
fn plan(people: &[&Summary], seed: u64) -> Vec<Plan> {
    let n = people.len();
    let mut rng = Rng::new(mix(seed, &["plan"]));
    let mut plans = vec![Plan::default(); n];
    let quota = |percent: usize| ((n * percent + 50) / 100).max(usize::from(n > 0));
    let living = |p: usize| !people[p].deceased;
    let adult = |p: usize| living(p) && people[p].age >= 18;
    let split = |keep: &dyn Fn(usize) -> bool, prefer: &dyn Fn(usize) -> bool| {
        let all: Vec<usize> = (0..n).filter(|&p| keep(p)).collect();
        let (preferred, rest): (Vec<usize>, Vec<usize>) = all.into_iter().partition(|&p| prefer(p));
        (preferred, rest)
    };

    // End of life: the old first, then the middle-aged; a younger adult only when there is
    // nobody else. "And/or": a plan, a ReSPECT form, or both.
    let (old, middle) = split(&|p| adult(p) && people[p].age >= 45, &|p| {
        people[p].age >= 70
    });
    let mut end_of_life = pick(&mut rng, old, middle, quota(15));
    if end_of_life.is_empty() {
        end_of_life = pick(
            &mut rng,
            (0..n).filter(|&p| adult(p)).collect(),
            Vec::new(),
            1,
        );
    }
    for p in end_of_life {
        let holder = if rng.chance(60) { GP } else { COMMUNITY };
        let both = rng.chance(50);
        if both || rng.chance(60) {
            plans[p].end_of_life = Some(holder);
        }
        if both || plans[p].end_of_life.is_none() {
            plans[p].respect = Some(if rng.chance(50) { GP } else { COMMUNITY });
        }
    }

    // Crisis plans: people the mental health trust already knows first.
    let (known, others) = split(
        &|p| living(p) && (16..=75).contains(&people[p].age) && plans[p].end_of_life.is_none(),
        &|p| people[p].mental_health,
    );
    for p in pick(&mut rng, known, others, quota(10)) {
        plans[p].crisis = true;
    }
    for (p, plan) in plans.iter_mut().enumerate() {
        plan.mental_health = plan.crisis || people[p].mental_health;
    }

    // Adult social care: mostly older people; a third of the council's records lack the NHS
    // number, as many council systems' records do.
    let (older, middle) = split(&|p| adult(p) && people[p].age >= 40, &|p| {
        people[p].age >= 65
    });
    let mut social = pick(&mut rng, older, middle, quota(25));
    if social.is_empty() {
        social = pick(
            &mut rng,
            (0..n).filter(|&p| adult(p)).collect(),
            Vec::new(),
            1,
        );
    }
    for &p in &social {
        plans[p].social_care = true;
        plans[p].carer = rng.chance(70);
    }
    for &p in social.iter().take(social.len().div_ceil(3)) {
        plans[p].no_nhs_number_at_social_care = true;
    }

    // Community: whoever holds a plan there, then social care clients, then anyone.
    for plan in &mut plans {
        plan.community = plan.end_of_life == Some(COMMUNITY) || plan.respect == Some(COMMUNITY);
    }
    let already = plans.iter().filter(|p| p.community).count();
    let (clients, rest) = split(&|p| adult(p) && !plans[p].community, &|p| {
        plans[p].social_care
    });
    for p in pick(&mut rng, clients, rest, quota(20).saturating_sub(already)) {
        plans[p].community = true;
    }

    // 999 calls: mirror a hospital emergency visit where there is one.
    let (emergencies, rest) = split(&|p| people[p].emergencies > 0 || living(p), &|p| {
        people[p].emergencies > 0
    });
    for p in pick(&mut rng, emergencies, rest, quota(15)) {
        plans[p].ambulance = true;
    }

    // The neighbouring region: people with emergency visits first (one of those visits then
    // happened across the boundary), then anyone (with a made-up visit).
    let (spare, rest) = split(&living, &|p| people[p].emergencies >= 2);
    for p in pick(&mut rng, spare, rest, quota(10)) {
        plans[p].neighbour = true;
    }

    for p in pick(
        &mut rng,
        (0..n).filter(|&p| living(p)).collect(),
        Vec::new(),
        quota(30),
    ) {
        plans[p].appointment = true;
    }

    // Facts both the GP and the hospital record, for the hub's de-duplication to show.
    let allergic: Vec<usize> = (0..n).filter(|&p| people[p].allergies).collect();
    if allergic.is_empty() {
        if let Some(p) = (0..n).find(|&p| living(p)) {
            plans[p].invented_allergy = true;
            plans[p].allergy_duplicate = true;
        }
    } else {
        for p in pick(&mut rng, allergic, Vec::new(), quota(10)) {
            plans[p].allergy_duplicate = true;
        }
    }
    let with_labs: Vec<usize> = (0..n).filter(|&p| people[p].labs).collect();
    for p in pick(&mut rng, with_labs, Vec::new(), quota(10)) {
        plans[p].lab_duplicate = true;
    }
    plans
}

/// `count` of `preferred` (shuffled), topped up from `rest` (shuffled).
fn pick(
    rng: &mut Rng,
    mut preferred: Vec<usize>,
    mut rest: Vec<usize>,
    count: usize,
) -> Vec<usize> {
    rng.shuffle(&mut preferred);
    rng.shuffle(&mut rest);
    preferred.into_iter().chain(rest).take(count).collect()
}

// ---------------------------------------------------------------------------------------------
// Identity

#[derive(Debug, Clone)]
struct Address {
    line: String,
    town: &'static str,
    postcode: String,
}

/// A person's UK identity, as the GP records it.
#[derive(Debug)]
struct Identity {
    gender: String,
    birth_date: String,
    deceased: Option<String>,
    marital_status: Option<Value>,
    /// `multipleBirthBoolean` or `multipleBirthInteger`, as Synthea has it.
    multiple_birth: Option<(String, Value)>,
    title: Option<&'static str>,
    given: String,
    middle: Option<String>,
    family: String,
    nickname: Option<&'static str>,
    nhs_number: String,
    phone: String,
    home: Address,
    /// The address before a move, and the day of the move.
    previous: Option<(Address, i64)>,
}

/// How one organisation's record of a person differs from the GP's. Each difference alone (and
/// the missing NHS number only with everything else exact) still matches: the tests check it.
#[derive(Debug, Clone, Copy, Default)]
struct Variation {
    nickname: bool,
    no_middle_name: bool,
    old_address: bool,
    no_phone: bool,
    no_hyphen: bool,
    no_nhs_number: bool,
}

impl Variation {
    fn differs(&self) -> bool {
        self.nickname || self.no_middle_name || self.old_address || self.no_hyphen
    }
}

struct Builder {
    seed: u64,
    today: i64,
    nhs_numbers: HashSet<String>,
    phones: HashSet<String>,
}

impl Builder {
    fn identity(&mut self, s: &Summary, offset: i64, patient: &Value, rng: &mut Rng) -> Identity {
        let birth = s.birth + offset;
        let (year, _, _) = civil_from_days(birth);
        let female = s.gender == "female";
        let mut roll = rng.below(100) as u32;
        let heritage = names::HERITAGES
            .iter()
            .find(|h| {
                let hit = roll < h.share;
                roll = roll.saturating_sub(h.share);
                hit
            })
            .unwrap_or(&names::HERITAGES[0]);
        let british = heritage.female.is_empty();
        let given_names: &[&str] = match (british, female) {
            (true, true) => names::BRITISH_FEMALE[era(year)],
            (true, false) => names::BRITISH_MALE[era(year)],
            (false, true) => heritage.female,
            (false, false) => heritage.male,
        };
        let given = rng.pick(given_names).to_string();
        let middle = if rng.chance(if british { 55 } else { 30 }) {
            let other = rng.pick(given_names).to_string();
            (other != given).then_some(other)
        } else {
            None
        };
        let mut family = rng.pick(heritage.surnames).to_string();
        if british && rng.chance(10) {
            let second = rng.pick(heritage.surnames);
            if *second != family {
                family = format!("{family}-{second}");
            }
        }
        let nickname = names::NICKNAMES
            .iter()
            .find(|(formal, _)| *formal == given)
            .map(|(_, nick)| *nick);
        let married = matches!(
            patient
                .pointer("/maritalStatus/coding/0/code")
                .and_then(Value::as_str),
            Some("M" | "W")
        );
        let age = years_between(birth, s.last + offset);
        let title = match (age >= 18, female, married) {
            (false, _, _) => None,
            (true, false, _) => Some("Mr"),
            (true, true, true) => Some("Mrs"),
            (true, true, false) => Some(if age < 30 { "Miss" } else { "Ms" }),
        };
        let home = address(rng);
        let previous = rng.chance(30).then(|| {
            let mut old = address(rng);
            while old.postcode == home.postcode {
                old = address(rng);
            }
            (old, self.today - rng.range(90, 1500))
        });
        Identity {
            gender: s.gender.clone(),
            birth_date: format_day(birth),
            deceased: str_at(patient, &["deceasedDateTime"]).map(str::to_string),
            marital_status: patient.get("maritalStatus").cloned(),
            multiple_birth: ["multipleBirthBoolean", "multipleBirthInteger"]
                .iter()
                .find_map(|k| patient.get(*k).map(|v| ((*k).to_string(), v.clone()))),
            title,
            given,
            middle,
            family,
            nickname,
            nhs_number: self.nhs_number(rng),
            phone: self.phone(rng),
            home,
            previous,
        }
    }

    /// A number in the range the NHS keeps for testing (999 000 0000 to 999 999 9999) with a
    /// valid modulus-11 check digit, different from every other demo person's.
    fn nhs_number(&mut self, rng: &mut Rng) -> String {
        loop {
            let mut nine = [9u8; 9];
            for digit in &mut nine[3..] {
                *digit = rng.below(10) as u8;
            }
            if let Some(number) = NhsNumber::from_first_nine(nine) {
                let digits = number.digits();
                if self.nhs_numbers.insert(digits.clone()) {
                    return digits;
                }
            }
        }
    }

    /// A mobile number in Ofcom's drama range (07700 900000 to 07700 900999), which is never
    /// allocated to a real phone.
    fn phone(&mut self, rng: &mut Rng) -> String {
        let mut phone = String::new();
        for _ in 0..100 {
            phone = format!("07700 900{:03}", rng.below(1000));
            if self.phones.insert(phone.clone()) {
                break;
            }
        }
        phone
    }

    fn clinician(&self, label: &str) -> String {
        let mut rng = Rng::new(mix(self.seed, &[label, "clinician"]));
        let heritage = &names::HERITAGES[rng.below(names::HERITAGES.len())];
        let (given, family) = if heritage.female.is_empty() {
            let list = if rng.chance(50) {
                names::BRITISH_FEMALE[rng.below(2) + 1]
            } else {
                names::BRITISH_MALE[rng.below(2) + 1]
            };
            (*rng.pick(list), *rng.pick(names::BRITISH_SURNAMES))
        } else {
            let list = if rng.chance(50) {
                heritage.female
            } else {
                heritage.male
            };
            (*rng.pick(list), *rng.pick(heritage.surnames))
        };
        format!("Dr {given} {family}")
    }
}

/// Which era's British given names suit a birth year.
fn era(year: i64) -> usize {
    match year {
        ..1950 => 0,
        1950..1980 => 1,
        1980..2000 => 2,
        _ => 3,
    }
}

fn address(rng: &mut Rng) -> Address {
    let (town, districts) = rng.pick(names::TOWNS);
    let letter = |rng: &mut Rng| char::from(*rng.pick(names::INWARD_LETTERS));
    let postcode = format!(
        "{} {}{}{}",
        rng.pick(districts),
        rng.below(10),
        letter(rng),
        letter(rng)
    );
    Address {
        line: format!(
            "{} {} {}",
            rng.range(1, 180),
            rng.pick(names::STREET_WORDS),
            rng.pick(names::STREET_KINDS)
        ),
        town,
        postcode,
    }
}

/// Chooses how each organisation's record differs and says so in words for the highlights.
fn variations(
    rng: &mut Rng,
    identity: &Identity,
    orgs: &[usize],
    plan: &Plan,
) -> (Vec<Variation>, Vec<String>) {
    let mut v = vec![Variation::default(); ORGS.len()];
    let mut notes = Vec::new();
    if plan.no_nhs_number_at_social_care && orgs.contains(&SOCIAL_CARE) {
        v[SOCIAL_CARE].no_nhs_number = true;
        notes.push(format!("no NHS number at {}", ORGS[SOCIAL_CARE].name));
    }
    // A record without the NHS number keeps every other detail exact, so that name, birth date
    // and postcode are enough to find the person.
    let open: Vec<usize> = orgs
        .iter()
        .copied()
        .filter(|&o| o != GP && !v[o].no_nhs_number)
        .collect();
    let choose = |rng: &mut Rng, v: &[Variation], prefer: &[usize]| -> Option<usize> {
        let untouched: Vec<usize> = open.iter().copied().filter(|&o| !v[o].differs()).collect();
        let preferred: Vec<usize> = untouched
            .iter()
            .copied()
            .filter(|o| prefer.contains(o))
            .collect();
        [preferred, untouched]
            .into_iter()
            .find(|list| !list.is_empty())
            .map(|list| list[rng.below(list.len())])
    };
    if let Some(nickname) = identity.nickname
        && rng.chance(60)
        && let Some(o) = choose(rng, &v, &[AMBULANCE, NEIGHBOUR, ACUTE])
    {
        v[o].nickname = true;
        notes.push(format!("known as {nickname} at {}", ORGS[o].name));
    }
    if identity.middle.is_some()
        && rng.chance(50)
        && let Some(o) = choose(rng, &v, &[ACUTE, MENTAL_HEALTH, COMMUNITY])
    {
        v[o].no_middle_name = true;
        notes.push(format!("no middle name at {}", ORGS[o].name));
    }
    // An old address is left out when a record lacks the NHS number: the two together share only
    // name, sex and birth date, which is a case for review, not a link, whatever order they come
    // in.
    if identity.previous.is_some()
        && !v[SOCIAL_CARE].no_nhs_number
        && let Some(o) = choose(rng, &v, &[ACUTE, MENTAL_HEALTH, NEIGHBOUR])
    {
        v[o].old_address = true;
        notes.push(format!("an old address at {}", ORGS[o].name));
    }
    if identity.family.contains('-')
        && let Some(o) = choose(rng, &v, &[])
    {
        v[o].no_hyphen = true;
        notes.push(format!(
            "surname written {} at {}",
            identity.family.replace('-', " "),
            ORGS[o].name
        ));
    }
    for o in [AMBULANCE, MENTAL_HEALTH] {
        if open.contains(&o) && rng.chance(40) {
            v[o].no_phone = true;
        }
    }
    // The other region's hospital always records the person a little differently.
    if orgs.contains(&NEIGHBOUR) && !v[NEIGHBOUR].differs() {
        if let Some(nickname) = identity.nickname {
            v[NEIGHBOUR].nickname = true;
            notes.push(format!("known as {nickname} at {}", ORGS[NEIGHBOUR].name));
        } else if identity.middle.is_some() {
            v[NEIGHBOUR].no_middle_name = true;
            notes.push(format!("no middle name at {}", ORGS[NEIGHBOUR].name));
        } else {
            v[NEIGHBOUR].no_phone = true;
        }
    }
    (v, notes)
}

fn local_id_system(org: usize) -> String {
    format!(
        "https://fhir.{}.example.nhs.uk/Id/local-patient-id",
        ORGS[org].id
    )
}

/// Each organisation's own patient number, in a shape of its own.
fn local_id(seed: u64, key: &str, org: usize) -> String {
    let n = mix(seed, &[key, ORGS[org].id, "local-id"]);
    match org {
        GP => format!("{}", 100_000 + n % 900_000),
        ACUTE => format!("RA{:07}", n % 10_000_000),
        MENTAL_HEALTH => format!("MH{:06}", n % 1_000_000),
        COMMUNITY => format!("C{:07}", n % 10_000_000),
        AMBULANCE => format!("NM{:08}", n % 100_000_000),
        SOCIAL_CARE => format!("ASC{:06}", n % 1_000_000),
        _ => format!("V{:07}", n % 10_000_000),
    }
}

fn org_reference(org: usize) -> Value {
    json!({
        "identifier": {"system": ODS_SYSTEM, "value": ORGS[org].ods},
        "display": ORGS[org].name,
    })
}

fn address_json(address: &Address, usage: &str, ended: Option<i64>) -> Value {
    let mut a = json!({
        "use": usage,
        "line": [address.line],
        "city": address.town,
        "district": "West Yorkshire",
        "postalCode": address.postcode,
        "country": "GB",
    });
    if let Some(day) = ended {
        a["period"] = json!({"end": format_day(day)});
    }
    a
}

fn patient_resource(identity: &Identity, org: usize, v: Variation, local: String) -> Value {
    let mut identifier = Vec::new();
    if !v.no_nhs_number {
        identifier.push(json!({"system": NHS_NUMBER_SYSTEM, "value": identity.nhs_number}));
    }
    identifier.push(json!({
        "type": {"coding": [{"system": IDENTIFIER_TYPE, "code": "MR", "display": "Medical record number"}]},
        "system": local_id_system(org),
        "value": local,
    }));
    let first = match (v.nickname, identity.nickname) {
        (true, Some(nickname)) => nickname.to_string(),
        _ => identity.given.clone(),
    };
    let mut given = vec![first];
    if let Some(middle) = identity.middle.as_ref().filter(|_| !v.no_middle_name) {
        given.push(middle.clone());
    }
    let family = if v.no_hyphen {
        identity.family.replace('-', " ")
    } else {
        identity.family.clone()
    };
    let mut name = json!({"use": "official", "family": family, "given": given});
    if let Some(title) = identity.title {
        name["prefix"] = json!([title]);
    }
    let mut p = Map::new();
    p.insert("resourceType".into(), "Patient".into());
    p.insert("identifier".into(), identifier.into());
    p.insert("active".into(), true.into());
    p.insert("name".into(), json!([name]));
    if !v.no_phone {
        p.insert(
            "telecom".into(),
            json!([{"system": "phone", "value": identity.phone, "use": "mobile"}]),
        );
    }
    p.insert("gender".into(), identity.gender.clone().into());
    p.insert("birthDate".into(), identity.birth_date.clone().into());
    if let Some(died) = &identity.deceased {
        p.insert("deceasedDateTime".into(), died.clone().into());
    }
    let addresses = match &identity.previous {
        Some((old, _)) if v.old_address => vec![address_json(old, "home", None)],
        Some((old, moved)) if org == GP => vec![
            address_json(&identity.home, "home", None),
            address_json(old, "old", Some(*moved)),
        ],
        _ => vec![address_json(&identity.home, "home", None)],
    };
    p.insert("address".into(), addresses.into());
    if let Some(status) = &identity.marital_status {
        p.insert("maritalStatus".into(), status.clone());
    }
    if let Some((key, value)) = &identity.multiple_birth {
        p.insert(key.clone(), value.clone());
    }
    p.insert(
        "communication".into(),
        json!([{
            "language": {"coding": [{"system": "urn:ietf:bcp:47", "code": "en-GB", "display": "English (United Kingdom)"}], "text": "English"},
            "preferred": true,
        }]),
    );
    p.insert("generalPractitioner".into(), json!([org_reference(GP)]));
    p.insert("managingOrganization".into(), org_reference(org));
    Value::Object(p)
}

// ---------------------------------------------------------------------------------------------
// One person's records

/// A Synthea Bundle, moved in time, with what its dropped resources were called.
struct Source {
    urls: Vec<String>,
    resources: Vec<Value>,
    by_url: HashMap<String, usize>,
    patient: Value,
    patient_url: String,
    /// Practitioner fullUrl to the UK clinician's name that replaces them.
    clinicians: HashMap<String, String>,
    /// Organization and Location fullUrls: references to them become the holding organisation.
    places: HashSet<String>,
}

impl Source {
    fn read(builder: &Builder, s: &Summary, offset: i64) -> anyhow::Result<Source> {
        let mut source = Source {
            urls: Vec::new(),
            resources: Vec::new(),
            by_url: HashMap::new(),
            patient: Value::Null,
            patient_url: String::new(),
            clinicians: HashMap::new(),
            places: HashSet::new(),
        };
        for (url, mut resource) in read_entries(&s.path)? {
            shift_dates(&mut resource, offset);
            let kind = resource_type(&resource).to_string();
            match kind.as_str() {
                "Patient" => {
                    source.patient = resource;
                    source.patient_url = url;
                }
                "Practitioner" | "PractitionerRole" => {
                    let name = builder.clinician(&format!("{}{url}", s.key));
                    source.clinicians.insert(url, name);
                }
                "Organization" | "Location" => {
                    source.places.insert(url);
                }
                k if DROPPED.contains(&k) => {}
                _ => {
                    source.by_url.insert(url.clone(), source.urls.len());
                    source.urls.push(url);
                    source.resources.push(resource);
                }
            }
        }
        Ok(source)
    }

    /// The fullUrl a resource's `encounter` (or `context`) names.
    fn encounter_of(&self, i: usize) -> Option<usize> {
        let r = &self.resources[i];
        let target = str_at(r, &["encounter", "reference"])
            .or_else(|| str_at(r, &["context", "reference"]))?;
        self.by_url.get(target).copied()
    }

    fn clinician_of(&self, encounter: &Value) -> Option<String> {
        let target = encounter
            .pointer("/participant/0/individual/reference")
            .and_then(Value::as_str)?;
        self.clinicians.get(target).cloned()
    }
}

/// One organisation's Bundle for one person, being written.
struct OrgBundle<'a> {
    org: usize,
    seed: u64,
    key: &'a str,
    patient: String,
    /// Source resource to its fullUrl in this Bundle.
    local: HashMap<usize, String>,
    entries: Vec<Value>,
}

impl OrgBundle<'_> {
    fn urn(&self, label: &str) -> String {
        format!(
            "urn:uuid:{}",
            uuid(self.seed, &[self.key, ORGS[self.org].id, label])
        )
    }

    fn subject(&self) -> Value {
        json!({"reference": self.patient})
    }

    fn provider(&self) -> Value {
        org_reference(self.org)
    }

    fn add(&mut self, urn: &str, resource: Value) {
        self.entries.push(entry(urn, resource));
    }

    fn add_new(&mut self, label: &str, resource: Value) -> String {
        let urn = self.urn(label);
        self.add(&urn, resource);
        urn
    }

    fn bundle(self) -> Value {
        json!({"resourceType": "Bundle", "type": "transaction", "entry": self.entries})
    }
}

/// A transaction entry that writes the resource under an id derived from its fullUrl (PUT), so
/// that loading the demo twice changes nothing and ids are stable for a seed.
fn entry(urn: &str, resource: Value) -> Value {
    let id = urn.trim_start_matches("urn:uuid:");
    let kind = resource_type(&resource).to_string();
    let mut body = Map::new();
    body.insert("resourceType".into(), kind.clone().into());
    body.insert("id".into(), id.into());
    body.insert(
        "meta".into(),
        json!({"security": [{"system": ACT_REASON, "code": "HTEST", "display": "test health data"}]}),
    );
    if let Value::Object(fields) = resource {
        for (k, v) in fields {
            if !matches!(k.as_str(), "resourceType" | "id" | "meta") {
                body.insert(k, v);
            }
        }
    }
    json!({
        "fullUrl": urn,
        "resource": body,
        "request": {"method": "PUT", "url": format!("{kind}/{id}")},
    })
}

impl Builder {
    /// One person's Bundles (by organisation index) and their summary.
    fn person(
        &mut self,
        s: &Summary,
        plan: &Plan,
    ) -> anyhow::Result<(Vec<(usize, Value)>, DemoPerson)> {
        let mut rng = Rng::new(mix(self.seed, &[&s.key, "person"]));
        // Move the history so that it ends shortly before today (longer ago for the dead).
        let gap = if s.deceased {
            rng.range(60, 900)
        } else {
            rng.range(1, 30)
        };
        let offset = self.today - gap - s.last;
        let source = Source::read(self, s, offset)?;
        let identity = self.identity(s, offset, &source.patient, &mut rng);
        let n = source.resources.len();
        let mut highlights = Vec::new();

        // Encounters go where they happened.
        let emergencies: Vec<usize> = (0..n)
            .filter(|&i| {
                resource_type(&source.resources[i]) == "Encounter"
                    && encounter_class(&source.resources[i]) == "EMER"
                    && !is_mental_health(&type_text(&source.resources[i]))
            })
            .collect();
        // The latest emergency visit happened across the boundary, or the one before it when
        // the ambulance brought the person to the latest.
        let away = if plan.neighbour {
            let skip = usize::from(plan.ambulance && emergencies.len() >= 2);
            emergencies.iter().rev().nth(skip).copied()
        } else {
            None
        };
        let mirrored = if plan.ambulance {
            emergencies.iter().rev().copied().find(|&i| Some(i) != away)
        } else {
            None
        };
        let mut home: Vec<Option<usize>> = vec![None; n];
        for (i, r) in source.resources.iter().enumerate() {
            if resource_type(r) == "Encounter" {
                home[i] = Some(if Some(i) == away {
                    NEIGHBOUR
                } else {
                    encounter_home(r)
                });
            }
        }
        // Everything else goes to the organisation that would have created it.
        for i in 0..n {
            if home[i].is_some() {
                continue;
            }
            let r = &source.resources[i];
            let encounter = source.encounter_of(i).and_then(|e| home[e]);
            home[i] = match resource_type(r) {
                "Immunization" | "AllergyIntolerance" => Some(GP),
                "Goal" => None,
                "DiagnosticReport" | "ImagingStudy" | "Media" | "Specimen" => {
                    Some(laboratory_home(encounter))
                }
                "Observation" if is_lab(r) => Some(laboratory_home(encounter)),
                _ => Some(encounter.unwrap_or(GP)),
            };
        }
        // A goal lives with the first care plan that names it.
        for i in 0..n {
            if resource_type(&source.resources[i]) != "CarePlan" {
                continue;
            }
            for goal in array_at(&source.resources[i], "goal") {
                if let Some(&g) = str_at(goal, &["reference"]).and_then(|u| source.by_url.get(u))
                    && home[g].is_none()
                {
                    home[g] = home[i];
                }
            }
        }
        let home: Vec<usize> = home.into_iter().map(|h| h.unwrap_or(GP)).collect();
        let mut placed: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); ORGS.len()];
        for (i, &org) in home.iter().enumerate() {
            placed[org].insert(i);
        }

        // The mental health trust records the diagnoses it treats, as the GP does.
        let mental_conditions: Vec<usize> = (0..n)
            .filter(|&i| {
                resource_type(&source.resources[i]) == "Condition"
                    && is_mental_health(&code_text(&source.resources[i]))
            })
            .collect();
        if plan.mental_health {
            placed[MENTAL_HEALTH].extend(mental_conditions.iter().copied());
        }
        // Duplicates on purpose: an allergy both the GP and the hospital recorded, and the
        // hospital's latest lab results as the GP received them.
        if plan.allergy_duplicate
            && !plan.invented_allergy
            && let Some(i) =
                (0..n).find(|&i| resource_type(&source.resources[i]) == "AllergyIntolerance")
        {
            placed[ACUTE].insert(i);
            highlights.push(format!(
                "allergy recorded at both the GP and the hospital: {}",
                code_text(&source.resources[i])
            ));
        }
        if plan.lab_duplicate {
            let mut labs: Vec<usize> = placed[ACUTE]
                .iter()
                .copied()
                .filter(|&i| {
                    let r = &source.resources[i];
                    resource_type(r) == "Observation"
                        && is_lab(r)
                        && r.get("valueQuantity").is_some()
                })
                .collect();
            // The latest result of the two most telling tests the person has.
            let code = |i: usize| {
                source.resources[i]
                    .pointer("/code/coding/0/code")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
            };
            labs.sort_by_key(|&i| {
                (
                    KEY_LABS
                        .iter()
                        .position(|k| *k == code(i))
                        .unwrap_or(KEY_LABS.len()),
                    std::cmp::Reverse(
                        str_at(&source.resources[i], &["effectiveDateTime"]).unwrap_or_default(),
                    ),
                    i,
                )
            });
            let mut codes = HashSet::new();
            labs.retain(|&i| codes.insert(code(i)));
            for &i in labs.iter().take(2) {
                placed[GP].insert(i);
                highlights.push(format!(
                    "lab result recorded at both the GP and the hospital: {}",
                    code_text(&source.resources[i])
                ));
            }
        }

        // Who holds a record.
        let mut present: BTreeSet<usize> =
            (0..ORGS.len()).filter(|&o| !placed[o].is_empty()).collect();
        present.insert(GP);
        for (wanted, org) in [
            (plan.mental_health, MENTAL_HEALTH),
            (plan.social_care, SOCIAL_CARE),
            (plan.community, COMMUNITY),
            (plan.ambulance, AMBULANCE),
            (plan.neighbour, NEIGHBOUR),
            (plan.appointment || plan.allergy_duplicate, ACUTE),
        ] {
            if wanted {
                present.insert(org);
            }
        }
        present.extend(plan.end_of_life);
        present.extend(plan.respect);
        let orgs: Vec<usize> = present.into_iter().collect();
        let (variation, notes) = variations(&mut rng, &identity, &orgs, plan);

        let mut bundles = Vec::new();
        for &org in &orgs {
            let mut b = OrgBundle {
                org,
                seed: self.seed,
                key: &s.key,
                patient: String::new(),
                local: HashMap::new(),
                entries: Vec::new(),
            };
            b.patient = b.urn("Patient");
            for &i in &placed[org] {
                let urn = b.urn(&source.urls[i]);
                b.local.insert(i, urn);
            }
            let patient = patient_resource(
                &identity,
                org,
                variation[org],
                local_id(self.seed, &s.key, org),
            );
            let patient_urn = b.patient.clone();
            b.add(&patient_urn, patient);
            for &i in &placed[org] {
                let mut resource = source.resources[i].clone();
                if let Value::Object(map) = &mut resource {
                    map.shift_remove("id");
                    map.shift_remove("meta");
                }
                rewrite_references(&mut resource, &source, &home, &b);
                let urn = b.local[&i].clone();
                b.add(&urn, resource);
            }
            self.add_care(
                &mut b,
                &mut rng,
                Care {
                    source: &source,
                    identity: &identity,
                    plan,
                    mirrored,
                    away,
                    mental_conditions: &mental_conditions,
                    now: self.today - if s.deceased { gap } else { 0 },
                    age: s.age,
                },
                &mut highlights,
            );
            bundles.push((org, b.bundle()));
        }
        if plan.neighbour {
            highlights.push("seen in the neighbouring region".to_string());
        }
        highlights.extend(notes);
        if s.deceased {
            highlights.push("deceased".to_string());
        }
        let person = DemoPerson {
            nhs_number: identity.nhs_number.clone(),
            given: identity.given.clone(),
            family: identity.family.clone(),
            birth_date: identity.birth_date.clone(),
            postcode: identity.home.postcode.clone(),
            orgs: orgs.iter().map(|&o| ORGS[o].id).collect(),
            highlights,
        };
        Ok((bundles, person))
    }
}

/// Where an encounter happened: emergency and inpatient care, maternity and outpatient
/// procedures at the hospital; drug rehabilitation and other mental health care at the mental
/// health trust; the rest (check-ups, problems, follow-ups) at the GP.
fn encounter_home(r: &Value) -> usize {
    let kind = type_text(r).to_lowercase();
    if is_mental_health(&kind) {
        return MENTAL_HEALTH;
    }
    match encounter_class(r) {
        "IMP" | "EMER" | "ACUTE" | "NONAC" | "SS" | "OBSENC" => ACUTE,
        class if class.to_lowercase().contains("urgent") => ACUTE,
        _ if [
            "prenatal",
            "postnatal",
            "obstetric",
            "outpatient procedure",
            "urgent",
        ]
        .iter()
        .any(|w| kind.contains(w)) =>
        {
            ACUTE
        }
        _ => GP,
    }
}

/// Laboratory work is done by the hospital's pathology service, also for GP requests; only the
/// other region's hospital and the mental health trust keep their own.
fn laboratory_home(encounter: Option<usize>) -> usize {
    match encounter {
        Some(org @ (NEIGHBOUR | MENTAL_HEALTH)) => org,
        _ => ACUTE,
    }
}

/// Rewrites one resource's references for the Bundle it goes into: the patient and resources in
/// the same Bundle by their fullUrls; Synthea's clinicians and organisations by a UK clinician's
/// name and the holding organisation; anything held elsewhere by a display only (the edge
/// resolves every `urn:uuid:` within the transaction, so none may point outside it).
fn rewrite_references(value: &mut Value, source: &Source, home: &[usize], b: &OrgBundle<'_>) {
    match value {
        Value::Object(map) => {
            if let Some(target) = map.get("reference").and_then(Value::as_str) {
                let target = target.to_string();
                if target == source.patient_url {
                    map.insert("reference".into(), b.patient.clone().into());
                } else if source.places.contains(&target) {
                    if let Value::Object(org) = b.provider() {
                        *map = org;
                    }
                } else {
                    let display = match source.by_url.get(&target) {
                        Some(i) => match b.local.get(i) {
                            Some(urn) => {
                                map.insert("reference".into(), urn.clone().into());
                                return;
                            }
                            None => describe(&source.resources[*i], home[*i]),
                        },
                        None => source
                            .clinicians
                            .get(&target)
                            .cloned()
                            .unwrap_or_else(|| "Recorded elsewhere".to_string()),
                    };
                    map.shift_remove("reference");
                    map.entry("display").or_insert(display.into());
                }
                return;
            }
            for child in map.values_mut() {
                rewrite_references(child, source, home, b);
            }
        }
        Value::Array(items) => {
            for item in items {
                rewrite_references(item, source, home, b);
            }
        }
        _ => {}
    }
}

/// Words for a resource another organisation holds, for a display-only reference to it.
fn describe(r: &Value, org: usize) -> String {
    let what = match resource_type(r) {
        "Encounter" => format!(
            "{} on {}",
            type_text(r),
            str_at(r, &["period", "start"])
                .map(|s| s.get(..10).unwrap_or(s))
                .unwrap_or("an unknown date")
        ),
        "MedicationRequest" => concept_text(r.get("medicationCodeableConcept")),
        "Goal" => concept_text(r.get("description")),
        "CarePlan" => concept_text(r.pointer("/category/0")),
        _ => code_text(r),
    };
    let what = if what.is_empty() {
        resource_type(r).to_string()
    } else {
        what
    };
    format!("{what} (recorded by {})", ORGS[org].name)
}

/// What the care-adding functions need to know about the person.
struct Care<'a> {
    source: &'a Source,
    identity: &'a Identity,
    plan: &'a Plan,
    /// The hospital emergency encounter an ambulance brought the person to.
    mirrored: Option<usize>,
    /// The emergency encounter moved to the neighbouring region's hospital.
    away: Option<usize>,
    mental_conditions: &'a [usize],
    /// Today, or the day of death: nothing is made up after it.
    now: i64,
    /// Age in years today (or at death).
    age: i64,
}

impl Builder {
    /// Adds the care this organisation gives beyond the Synthea history.
    fn add_care(
        &self,
        b: &mut OrgBundle<'_>,
        rng: &mut Rng,
        c: Care<'_>,
        highlights: &mut Vec<String>,
    ) {
        let plan = c.plan;
        if plan.end_of_life == Some(b.org) {
            self.end_of_life_plan(b, rng, &c);
            highlights.push(format!("end-of-life care plan at {}", ORGS[b.org].name));
        }
        if plan.respect == Some(b.org) {
            self.respect_form(b, rng, &c);
            highlights.push(format!("ReSPECT form at {}", ORGS[b.org].name));
        }
        if plan.invented_allergy && matches!(b.org, GP | ACUTE) {
            // The same allergy, the same day, in both records.
            let day = c.now - 400;
            b.add_new("penicillin-allergy", penicillin_allergy(b, day));
            if b.org == GP {
                highlights.push(
                    "allergy recorded at both the GP and the hospital: Allergy to penicillin"
                        .to_string(),
                );
            }
        }
        match b.org {
            ACUTE => {
                self.discharge_summaries(b, rng, &c, highlights);
                if plan.appointment {
                    let text = self.appointment(b, rng, &c);
                    highlights.push(text);
                }
            }
            MENTAL_HEALTH => {
                self.mental_health(b, rng, &c);
                if plan.crisis {
                    self.crisis_plan(b, rng, &c);
                    highlights.push("mental health crisis plan".to_string());
                } else {
                    highlights.push("known to mental health services".to_string());
                }
            }
            COMMUNITY => {
                let reason = self.district_nursing(b, rng, &c);
                highlights.push(format!("district nursing: {reason}"));
            }
            AMBULANCE => {
                let text = self.ambulance_call(b, rng, &c);
                highlights.push(text);
            }
            SOCIAL_CARE => {
                let text = self.social_care(b, rng, &c);
                highlights.extend(text);
            }
            NEIGHBOUR if c.away.is_none() => self.away_visit(b, rng),
            _ => {}
        }
    }

    fn end_of_life_plan(&self, b: &mut OrgBundle<'_>, rng: &mut Rng, c: &Care<'_>) {
        let start = self.today - rng.range(14, 180);
        let condition = b
            .local
            .iter()
            .filter(|(i, _)| {
                let r = &c.source.resources[**i];
                resource_type(r) == "Condition" && {
                    let text = code_text(r).to_lowercase();
                    LIFE_LIMITING.iter().any(|w| text.contains(w))
                }
            })
            .map(|(i, urn)| (*i, urn.clone()))
            .max();
        let place = *rng.pick(&["home", "home", "the hospice", "their care home"]);
        let mut plan = json!({
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "category": [concept(SNOMED, END_OF_LIFE_PLAN)],
            "title": "End of life care plan",
            "description": format!(
                "Preferred place of care and of death: {place}. Anticipatory medicines are at home. \
                 Family aware and involved. Do not attempt cardiopulmonary resuscitation decision in place."
            ),
            "subject": b.subject(),
            "period": {"start": format_day(start)},
            "created": format_day(start),
            "author": {"display": self.clinician(&format!("{}eol", b.key))},
            "activity": [
                activity("Anticipatory (just in case) medicines prescribed and kept at home", "completed"),
                activity(&format!("Preferred place of death recorded: {place}"), "completed"),
                activity("Weekly review by the district nursing team", "in-progress"),
                activity("Out-of-hours GP and ambulance service told of the plan", "completed"),
            ],
        });
        if let Some((_, urn)) = condition {
            plan["addresses"] = json!([{"reference": urn}]);
        }
        b.add_new("end-of-life-plan", plan);
    }

    fn respect_form(&self, b: &mut OrgBundle<'_>, rng: &mut Rng, c: &Care<'_>) {
        let day = self.today - rng.range(30, 365);
        let not_for_cpr = c.plan.end_of_life.is_some() || rng.chance(60);
        let clinician = self.clinician(&format!("{}respect", b.key));
        let text = format!(
            "ReSPECT: Recommended Summary Plan for Emergency Care and Treatment\n\n\
             1. NHS number: {nhs}\n\
             2. Summary of relevant information: frailty with long-term conditions; see the GP record.\n\
             3. What matters to me: {matters}\n\
             4. Clinical recommendations for emergency care and treatment: {focus}\n\
             CPR: {cpr}\n\
             5. Capacity: has capacity to take part in making this plan.\n\
             6. Involvement: discussed with the person and their family.\n\
             7. Clinician: {clinician}, {date}\n",
            nhs = NhsNumber::parse(&c.identity.nhs_number)
                .map(|n| n.to_string())
                .unwrap_or_default(),
            matters = rng.pick(&[
                "staying at home with my family",
                "being comfortable and free of pain",
                "not going back into hospital unless it is needed",
            ]),
            focus = if not_for_cpr {
                "prioritise comfort; hospital admission only for treatment that can be given nowhere else"
            } else {
                "prioritise sustaining life; all appropriate treatment"
            },
            cpr = if not_for_cpr {
                "not for attempted CPR"
            } else {
                "for attempted CPR"
            },
            date = format_day(day),
        );
        let document = json!({
            "resourceType": "DocumentReference",
            "status": "current",
            "docStatus": "final",
            "type": concept(SNOMED, RESPECT_FORM),
            "category": [concept(SNOMED, CARE_PLAN_DOCUMENT)],
            "subject": b.subject(),
            "date": utc_instant(day, 14 * 3600),
            "author": [{"display": clinician}],
            "custodian": b.provider(),
            "description": "ReSPECT form",
            "content": [text_attachment(&text, "ReSPECT form", day)],
        });
        b.add_new("respect-form", document);
    }

    fn discharge_summaries(
        &self,
        b: &mut OrgBundle<'_>,
        rng: &mut Rng,
        c: &Care<'_>,
        highlights: &mut Vec<String>,
    ) {
        let source = c.source;
        let mut stays: Vec<usize> = b
            .local
            .keys()
            .copied()
            .filter(|&i| {
                let r = &source.resources[i];
                resource_type(r) == "Encounter" && encounter_class(r) == "IMP"
            })
            .collect();
        stays.sort_by_key(|&i| {
            (
                str_at(&source.resources[i], &["period", "start"]).map(str::to_string),
                i,
            )
        });
        // The five latest stays: enough to show, not a pile of letters.
        let latest: Vec<usize> = stays.iter().rev().take(5).copied().collect();
        for &stay in latest.iter().rev() {
            let encounter = &source.resources[stay];
            let admitted = str_at(encounter, &["period", "start"]).unwrap_or_default();
            let discharged = str_at(encounter, &["period", "end"]).unwrap_or(admitted);
            let mut diagnoses: Vec<String> = array_at(encounter, "reasonCode")
                .iter()
                .map(|c| concept_text(Some(c)))
                .collect();
            let mut procedures = Vec::new();
            let mut medicines = Vec::new();
            for (i, r) in source.resources.iter().enumerate() {
                if source.encounter_of(i) != Some(stay) {
                    continue;
                }
                match resource_type(r) {
                    "Condition" => diagnoses.push(code_text(r)),
                    "Procedure" => procedures.push(code_text(r)),
                    "MedicationRequest" => {
                        medicines.push(concept_text(r.get("medicationCodeableConcept")));
                    }
                    _ => {}
                }
            }
            let list = |items: &mut Vec<String>| {
                let mut seen = HashSet::new();
                items.retain(|i| !i.is_empty() && seen.insert(i.clone()));
                items.truncate(8);
                if items.is_empty() {
                    "none recorded".to_string()
                } else {
                    items.join("; ")
                }
            };
            let consultant = source
                .clinician_of(encounter)
                .unwrap_or_else(|| self.clinician(&format!("{}{stay}", b.key)));
            let text = format!(
                "DISCHARGE SUMMARY\n{hospital}\n\n\
                 NHS number: {nhs}\n\
                 Admitted: {admitted}\nDischarged: {discharged}\n\
                 Admission: {kind}\n\
                 Diagnoses: {diagnoses}\n\
                 Procedures: {procedures}\n\
                 Medicines started: {medicines}\n\
                 Follow-up: GP to review within {weeks} weeks; results of outstanding tests will follow.\n\
                 Responsible consultant: {consultant}\n",
                hospital = ORGS[b.org].name,
                nhs = c.identity.nhs_number,
                admitted = admitted.get(..10).unwrap_or(admitted),
                discharged = discharged.get(..10).unwrap_or(discharged),
                kind = type_text(encounter),
                diagnoses = list(&mut diagnoses),
                procedures = list(&mut procedures),
                medicines = list(&mut medicines),
                weeks = rng.range(1, 4),
            );
            let day = parse_day(discharged).unwrap_or(self.today);
            let urn = b.local[&stay].clone();
            let document = json!({
                "resourceType": "DocumentReference",
                "status": "current",
                "docStatus": "final",
                "type": concept(SNOMED, DISCHARGE_SUMMARY),
                "category": [concept(SNOMED, CLINICAL_NOTE)],
                "subject": b.subject(),
                "date": discharged,
                "author": [{"display": consultant}],
                "custodian": b.provider(),
                "description": format!("Discharge summary: {}", type_text(encounter)),
                "content": [text_attachment(&text, "Discharge summary", day)],
                "context": {
                    "encounter": [{"reference": urn}],
                    "period": {"start": admitted, "end": discharged},
                },
            });
            b.add_new(
                &format!("discharge-summary-{}", source.urls[stay]),
                document,
            );
        }
        if !latest.is_empty() {
            highlights.push(format!(
                "discharge {} from {}",
                if latest.len() == 1 {
                    "summary".to_string()
                } else {
                    format!("summaries ({})", latest.len())
                },
                ORGS[b.org].name
            ));
        }
    }

    fn appointment(&self, b: &mut OrgBundle<'_>, rng: &mut Rng, c: &Care<'_>) -> String {
        // Only what the person still has: a healed fracture needs no clinic.
        let conditions: Vec<String> = c
            .source
            .resources
            .iter()
            .filter(|r| resource_type(r) == "Condition" && r.get("abatementDateTime").is_none())
            .map(code_text)
            .collect();
        let found = names::CLINICS.iter().find_map(|(clinic, words)| {
            conditions
                .iter()
                .rev()
                .find(|text| {
                    let text = text.to_lowercase();
                    words.iter().any(|w| text.contains(w))
                })
                .map(|reason| (*clinic, Some(reason.clone())))
        });
        let (clinic, reason) = found.unwrap_or_else(|| (*rng.pick(names::GENERAL_CLINICS), None));
        let mut day = self.today + rng.range(7, 120);
        // Clinics run on weekdays.
        match weekday(day) {
            6 => day += 2,
            0 => day += 1,
            _ => {}
        }
        let minutes = 9 * 60 + 20 * rng.range(0, 20);
        let consultant = self.clinician(&format!("{}{clinic}", b.key));
        let mut appointment = json!({
            "resourceType": "Appointment",
            "status": "booked",
            "serviceType": [{"text": format!("{clinic} outpatient clinic")}],
            "specialty": [{"text": clinic}],
            "description": format!("{clinic} outpatient follow-up"),
            "start": local_instant(day, minutes),
            "end": local_instant(day, minutes + 30),
            "minutesDuration": 30,
            "created": format_day(self.today - rng.range(5, 60)),
            "patientInstruction": "Please arrive 15 minutes early and bring a list of your medicines.",
            "participant": [
                {"actor": b.subject(), "required": "required", "status": "accepted"},
                {"actor": {"display": format!("{consultant}, {clinic}")}, "required": "required", "status": "accepted"},
                {"actor": {"display": format!("{clinic} Outpatients, {}", ORGS[b.org].name)}, "status": "accepted"},
            ],
        });
        if let Some(reason) = reason {
            appointment["reasonCode"] = json!([{"text": reason}]);
        }
        b.add_new("appointment", appointment);
        format!("upcoming {clinic} appointment on {}", format_day(day))
    }

    /// The mental health trust's own records: the referral that brought the person, when
    /// Synthea has no mental health encounter, and a diagnosis, when it has none.
    fn mental_health(&self, b: &mut OrgBundle<'_>, rng: &mut Rng, c: &Care<'_>) {
        let source = c.source;
        let has_encounter = b
            .local
            .keys()
            .any(|&i| resource_type(&source.resources[i]) == "Encounter");
        let held: Vec<String> = c
            .mental_conditions
            .iter()
            .filter_map(|i| b.local.get(i).cloned())
            .collect();
        let day = c.now - rng.range(60, 700);
        let encounter = (!has_encounter).then(|| b.urn("mental-health-referral"));
        let mut reasons: Vec<Value> = held.iter().map(|u| json!({"reference": u})).collect();
        if held.is_empty() {
            let code = *rng.pick(MENTAL_HEALTH_CONDITIONS);
            let mut condition = json!({
                "resourceType": "Condition",
                "clinicalStatus": concept(CONDITION_CLINICAL, ("active", "Active")),
                "verificationStatus": concept(CONDITION_VERIFICATION, ("confirmed", "Confirmed")),
                "category": [concept(CONDITION_CATEGORY, ("encounter-diagnosis", "Encounter Diagnosis"))],
                "code": concept(SNOMED, code),
                "subject": b.subject(),
                "onsetDateTime": format_day(day - rng.range(30, 365)),
                "recordedDate": format_day(day),
            });
            if let Some(urn) = &encounter {
                condition["encounter"] = json!({"reference": urn});
            }
            let urn = b.add_new("mental-health-condition", condition);
            reasons.push(json!({"reference": urn}));
        }
        if let Some(urn) = encounter {
            let mut visit = json!({
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
                "type": [{"coding": [coding(SNOMED, PSYCHIATRY_REFERRAL)], "text": "Community mental health team assessment"}],
                "subject": b.subject(),
                "participant": [{"individual": {"display": self.clinician(&format!("{}mh", b.key))}}],
                "period": {"start": local_instant(day, 10 * 60), "end": local_instant(day, 11 * 60)},
                "serviceProvider": b.provider(),
            });
            if !reasons.is_empty() {
                visit["reasonReference"] = reasons.into();
            }
            b.add(&urn, visit);
        }
    }

    fn crisis_plan(&self, b: &mut OrgBundle<'_>, rng: &mut Rng, c: &Care<'_>) {
        let start = self.today - rng.range(30, 400);
        let signs = *rng.pick(&[
            "not sleeping, stopping eating, withdrawing from friends",
            "hearing voices more often, feeling watched, not answering the phone",
            "racing thoughts, spending large sums, not sleeping for days",
        ]);
        let helps = *rng.pick(&[
            "talking to my sister, walking the dog, a quiet room",
            "music, being outdoors, a visit from my care coordinator",
            "keeping to routine, my medication on time, time with my children",
        ]);
        let plan = json!({
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "category": [concept(SNOMED, CRISIS_PLAN)],
            "title": "Mental health crisis plan",
            "description": format!(
                "Agreed with {} and the community mental health team. Early warning signs: {signs}. \
                 What helps: {helps}.",
                c.identity.given
            ),
            "subject": b.subject(),
            "period": {"start": format_day(start)},
            "created": format_day(start),
            "author": {"display": format!("Crisis Resolution and Home Treatment Team, {}", ORGS[b.org].name)},
            "activity": [
                activity("Early warning signs noticed: contact the care coordinator the same day", "in-progress"),
                activity(&format!("Crisis line, 24 hours: 0113 496 0{:03}", rng.below(1000)), "in-progress"),
                activity("Out of hours: NHS 111, choose the mental health option", "in-progress"),
                activity("Medication reviewed at every contact", "in-progress"),
            ],
        });
        b.add_new("crisis-plan", plan);
    }

    fn district_nursing(&self, b: &mut OrgBundle<'_>, rng: &mut Rng, c: &Care<'_>) -> String {
        let reason = if c.plan.end_of_life.is_some() || c.plan.respect.is_some() {
            "Palliative care support"
        } else {
            *rng.pick(names::DISTRICT_NURSING)
        };
        let visits = rng.range(2, 4);
        let first = self.today - 7 * visits - rng.range(0, 3);
        let nurse = self
            .clinician(&format!("{}district-nurse", b.key))
            .replacen("Dr ", "", 1);
        let plan = json!({
            "resourceType": "CarePlan",
            "status": "active",
            "intent": "plan",
            "category": [{"text": "District nursing care plan"}],
            "title": format!("District nursing: {reason}"),
            "description": format!("{reason}: weekly home visits by the district nursing team."),
            "subject": b.subject(),
            "period": {"start": format_day(first)},
            "created": format_day(first),
            "author": b.provider(),
            "activity": [activity(&format!("{reason}, weekly at home"), "in-progress")],
        });
        b.add_new("district-nursing-plan", plan);
        for visit in 0..visits {
            let day = first + 7 * visit;
            let minutes = 9 * 60 + 30 * rng.range(0, 12);
            b.add_new(
                &format!("district-nursing-visit-{visit}"),
                json!({
                    "resourceType": "Encounter",
                    "status": "finished",
                    "class": {"system": ACT_CODE, "code": "HH", "display": "home health"},
                    "type": [{"coding": [coding(SNOMED, HOME_VISIT)], "text": "District nursing visit"}],
                    "subject": b.subject(),
                    "participant": [{"individual": {"display": format!("{nurse}, District Nurse")}}],
                    "period": {"start": local_instant(day, minutes), "end": local_instant(day, minutes + 40)},
                    "reasonCode": [{"text": reason}],
                    "serviceProvider": b.provider(),
                }),
            );
        }
        reason.to_string()
    }

    /// A 999 call: the ambulance that brought the person to the hospital's emergency department
    /// (the same day and reason as Synthea's visit), or a call of its own.
    fn ambulance_call(&self, b: &mut OrgBundle<'_>, rng: &mut Rng, c: &Care<'_>) -> String {
        let mirrored = c.mirrored.map(|i| &c.source.resources[i]);
        let (day, seconds, reason, conveyed) = match mirrored.and_then(|e| {
            str_at(e, &["period", "start"])
                .and_then(parse_instant)
                .map(|t| (e, t))
        }) {
            Some((e, (day, seconds))) => {
                let diagnosed = (0..c.source.resources.len()).find_map(|i| {
                    let r = &c.source.resources[i];
                    (resource_type(r) == "Condition" && c.source.encounter_of(i) == c.mirrored)
                        .then(|| r.get("code").cloned())
                        .flatten()
                });
                // Why the hospital saw the person: the encounter's reason, a telling encounter
                // type, else what it diagnosed.
                let kind = type_text(e);
                let generic = ["emergency room", "emergency encounter", "encounter for"]
                    .iter()
                    .any(|w| kind.to_lowercase().contains(w));
                let typed = (!generic).then(|| json!({"text": kind}));
                let reason = array_at(e, "reasonCode")
                    .first()
                    .cloned()
                    .or(typed)
                    .or(diagnosed)
                    .unwrap_or_else(|| json!({"text": rng.pick(names::AMBULANCE_CALLS)}));
                (day, seconds - 50 * 60, reason, true)
            }
            None => (
                c.now - rng.range(20, 500),
                rng.range(8 * 3600, 22 * 3600),
                json!({"text": rng.pick(names::AMBULANCE_CALLS)}),
                rng.chance(50),
            ),
        };
        let (day, seconds) = normalise_time(day, seconds);
        let mut call = json!({
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"system": ACT_CODE, "code": "EMER", "display": "emergency"},
            "type": [{"text": "Emergency ambulance response (999 call)"}],
            "subject": b.subject(),
            "participant": [{"individual": {"display": "Paramedic crew"}}],
            "period": {"start": utc_instant(day, seconds), "end": utc_instant(day, seconds + 45 * 60)},
            "reasonCode": [reason.clone()],
            "serviceProvider": b.provider(),
        });
        call["hospitalization"] = if conveyed {
            json!({"destination": {"display": format!("Emergency department, {}", ORGS[ACUTE].name)}})
        } else {
            json!({"dischargeDisposition": {"text": "Treated at scene, not conveyed"}})
        };
        let urn = b.add_new("ambulance-call", call);
        let at = utc_instant(day, seconds + 10 * 60);
        let vital = |code: &str, display: &str, value: i64, unit: &str, ucum: &str| {
            json!({
                "resourceType": "Observation",
                "status": "final",
                "category": [{"coding": [{"system": OBSERVATION_CATEGORY, "code": "vital-signs", "display": "Vital Signs"}]}],
                "code": {"coding": [{"system": LOINC, "code": code, "display": display}], "text": display},
                "subject": b.subject(),
                "encounter": {"reference": urn},
                "effectiveDateTime": at,
                "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": ucum},
            })
        };
        let observations = [
            vital(
                "8867-4",
                "Heart rate",
                rng.range(60, 125),
                "beats/minute",
                "/min",
            ),
            vital(
                "9279-1",
                "Respiratory rate",
                rng.range(12, 28),
                "breaths/minute",
                "/min",
            ),
            vital(
                "59408-5",
                "Oxygen saturation in Arterial blood by Pulse oximetry",
                rng.range(89, 99),
                "%",
                "%",
            ),
        ];
        for (k, observation) in observations.into_iter().enumerate() {
            b.add_new(&format!("ambulance-vital-{k}"), observation);
        }
        format!(
            "999 call: {}{}",
            concept_text(Some(&reason)),
            if conveyed {
                ", taken to hospital"
            } else {
                ", treated at home"
            }
        )
    }

    fn social_care(&self, b: &mut OrgBundle<'_>, rng: &mut Rng, c: &Care<'_>) -> Vec<String> {
        let start = self.today - rng.range(90, 1500);
        let worker = *rng.pick(names::SOCIAL_WORKERS);
        let package = *rng.pick(if c.age >= 65 {
            names::CARE_PACKAGES
        } else {
            names::WORKING_AGE_CARE_PACKAGES
        });
        let episode = b.add_new(
            "social-care-episode",
            json!({
                "resourceType": "EpisodeOfCare",
                "status": "active",
                "type": [{"text": "Adult social care"}],
                "patient": b.subject(),
                "managingOrganization": b.provider(),
                "period": {"start": format_day(start)},
                "careManager": {"display": worker},
            }),
        );
        let assessed = start + rng.range(7, 30);
        b.add_new(
            "care-act-assessment",
            json!({
                "resourceType": "Observation",
                "status": "final",
                "category": [{"text": "Social care assessment"}],
                "code": {"text": "Care Act 2014 needs assessment"},
                "subject": b.subject(),
                "effectiveDateTime": format_day(assessed),
                "valueString": *rng.pick(&[
                    "Eligible needs: personal care, nutrition, maintaining a habitable home",
                    "Eligible needs: personal care, being appropriately clothed",
                    "Eligible needs: nutrition, managing toilet needs, making use of the home safely",
                ]),
                "performer": [{"display": worker}],
            }),
        );
        b.add_new(
            "care-package",
            json!({
                "resourceType": "CarePlan",
                "status": "active",
                "intent": "plan",
                "category": [{"text": "Care package"}],
                "title": package,
                "description": format!("{package}. Reviewed every year by the allocated worker, {worker}."),
                "subject": b.subject(),
                "period": {"start": format_day(assessed + rng.range(7, 30))},
                "author": b.provider(),
                "supportingInfo": [{"reference": episode}],
            }),
        );
        let mut notes = vec![format!("care package: {package}")];
        if c.plan.carer {
            let (code, relationship, sex) = *rng.pick(if c.age >= 50 {
                names::CARERS_OF_OLDER_PEOPLE
            } else {
                names::CARERS_OF_YOUNGER_PEOPLE
            });
            let female = sex.unwrap_or_else(|| rng.chance(50));
            let given = *rng.pick(if female {
                names::BRITISH_FEMALE[1]
            } else {
                names::BRITISH_MALE[1]
            });
            let family = if matches!(code, "NBOR" | "FRND") {
                rng.pick(names::BRITISH_SURNAMES).to_string()
            } else {
                c.identity.family.clone()
            };
            let phone = format!("07700 900{:03}", rng.below(1000));
            b.add_new(
                "carer",
                json!({
                    "resourceType": "RelatedPerson",
                    "active": true,
                    "patient": b.subject(),
                    "relationship": [
                        {"coding": [{"system": ROLE_CODE, "code": code, "display": relationship}]},
                        {"text": "Unpaid carer"},
                    ],
                    "name": [{"family": family, "given": [given]}],
                    "telecom": [{"system": "phone", "value": phone, "use": "mobile"}],
                    "gender": if female { "female" } else { "male" },
                }),
            );
            notes.push(format!("unpaid carer ({relationship})"));
        }
        notes
    }

    /// An emergency visit across the boundary made up for a person whose history has none.
    fn away_visit(&self, b: &mut OrgBundle<'_>, rng: &mut Rng) {
        let day = self.today - rng.range(30, 500);
        let minutes = rng.range(10 * 60, 21 * 60);
        let injury = *rng.pick(AWAY_INJURIES);
        let encounter = b.urn("away-visit");
        b.add_new(
            "away-condition",
            json!({
                "resourceType": "Condition",
                "clinicalStatus": concept(CONDITION_CLINICAL, ("resolved", "Resolved")),
                "verificationStatus": concept(CONDITION_VERIFICATION, ("confirmed", "Confirmed")),
                "category": [concept(CONDITION_CATEGORY, ("encounter-diagnosis", "Encounter Diagnosis"))],
                "code": concept(SNOMED, injury),
                "subject": b.subject(),
                "encounter": {"reference": encounter},
                "onsetDateTime": local_instant(day, minutes - 60),
                "abatementDateTime": format_day(day + 28),
                "recordedDate": local_instant(day, minutes),
            }),
        );
        b.add(
            &encounter,
            json!({
                "resourceType": "Encounter",
                "status": "finished",
                "class": {"system": ACT_CODE, "code": "EMER", "display": "emergency"},
                "type": [{"coding": [coding(SNOMED, EMERGENCY_ADMISSION)], "text": "Emergency department attendance"}],
                "subject": b.subject(),
                "participant": [{"individual": {"display": self.clinician(&format!("{}away", b.key))}}],
                "period": {"start": local_instant(day, minutes), "end": local_instant(day, minutes + 150)},
                "reasonCode": [concept(SNOMED, injury)],
                "serviceProvider": b.provider(),
            }),
        );
    }
}

fn penicillin_allergy(b: &OrgBundle<'_>, day: i64) -> Value {
    json!({
        "resourceType": "AllergyIntolerance",
        "clinicalStatus": concept(ALLERGY_CLINICAL, ("active", "Active")),
        "verificationStatus": concept(ALLERGY_VERIFICATION, ("confirmed", "Confirmed")),
        "type": "allergy",
        "category": ["medication"],
        "criticality": "high",
        "code": concept(SNOMED, PENICILLIN_ALLERGY),
        "patient": b.subject(),
        "recordedDate": format_day(day),
        "reaction": [{"manifestation": [concept(SNOMED, SKIN_ERUPTION)]}],
    })
}

fn coding(system: &str, (code, display): (&str, &str)) -> Value {
    json!({"system": system, "code": code, "display": display})
}

fn concept(system: &str, code: (&str, &str)) -> Value {
    json!({"coding": [coding(system, code)], "text": code.1})
}

fn activity(description: &str, status: &str) -> Value {
    json!({"detail": {"status": status, "description": description}})
}

fn text_attachment(text: &str, title: &str, day: i64) -> Value {
    json!({
        "attachment": {
            "contentType": "text/plain",
            "language": "en-GB",
            "data": base64(text.as_bytes()),
            "title": title,
            "creation": format_day(day),
        }
    })
}

// ---------------------------------------------------------------------------------------------
// Reading resources

fn resource_type(r: &Value) -> &str {
    r.get("resourceType")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn str_at<'a>(r: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(r, |v, key| v.get(*key))
        .and_then(Value::as_str)
}

fn array_at<'a>(r: &'a Value, key: &str) -> &'a [Value] {
    r.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn concept_text(concept: Option<&Value>) -> String {
    let Some(concept) = concept else {
        return String::new();
    };
    concept
        .get("text")
        .and_then(Value::as_str)
        .or_else(|| concept.pointer("/coding/0/display").and_then(Value::as_str))
        .unwrap_or_default()
        .to_string()
}

fn code_text(r: &Value) -> String {
    concept_text(r.get("code"))
}

fn type_text(r: &Value) -> String {
    let text = concept_text(r.pointer("/type/0"));
    if text.is_empty() {
        "Encounter".to_string()
    } else {
        text
    }
}

fn encounter_class(r: &Value) -> &str {
    str_at(r, &["class", "code"]).unwrap_or_default()
}

fn is_lab(r: &Value) -> bool {
    array_at(r, "category").iter().any(|c| {
        array_at(c, "coding")
            .iter()
            .any(|coding| str_at(coding, &["code"]) == Some("laboratory"))
    })
}

/// Whether a condition or encounter is mental health care (including dementia and substance
/// misuse, which mental health trusts treat).
fn is_mental_health(text: &str) -> bool {
    let text = text.to_lowercase();
    [
        "depress",
        "anxiety",
        "schizo",
        "bipolar",
        "psych",
        "dementia",
        "alzheimer",
        "overdose",
        "alcohol",
        "drug abuse",
        "drug rehabilitation",
        "suicid",
        "stress disorder",
        "eating disorder",
    ]
    .iter()
    .any(|w| text.contains(w))
}

// ---------------------------------------------------------------------------------------------
// Dates, without a clock or a date crate: days since 1970-01-01 (proleptic Gregorian).

/// Days since 1970-01-01 of a civil date (after Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * mp + 2) / 5 + 1) as u32;
    let month = (if mp < 10 { mp + 3 } else { mp - 9 }) as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// The day of a `YYYY-MM-DD...` string (anything after the tenth character is ignored).
fn parse_day(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        b[range.clone()].iter().all(u8::is_ascii_digit).then(|| {
            b[range]
                .iter()
                .fold(0u32, |n, d| n * 10 + u32::from(d - b'0'))
        })
    };
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    if !(1..=12).contains(&month) || day == 0 {
        return None;
    }
    let days = days_from_civil(i64::from(year), month, day);
    // A day past the end of its month comes back as another date.
    (civil_from_days(days) == (i64::from(year), month, day)).then_some(days)
}

fn format_day(days: i64) -> String {
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// 0 is Sunday.
fn weekday(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

/// Whole years from one day to a later one.
fn years_between(from: i64, to: i64) -> i64 {
    let (y1, m1, d1) = civil_from_days(from);
    let (y2, m2, d2) = civil_from_days(to);
    y2 - y1 - i64::from((m2, d2) < (m1, d1))
}

/// Whether UK clocks are on British Summer Time that day (last Sunday of March to last Sunday of
/// October; the hour of the change does not matter for clinic times).
fn british_summer_time(days: i64) -> bool {
    let (year, _, _) = civil_from_days(days);
    let last_sunday = |month: u32| {
        let end = days_from_civil(year, month, 31);
        end - weekday(end)
    };
    days >= last_sunday(3) && days < last_sunday(10)
}

/// A UK wall-clock time as an instant with its offset.
fn local_instant(days: i64, minutes: i64) -> String {
    let (days, seconds) = normalise_time(days, minutes * 60);
    let offset = if british_summer_time(days) {
        "+01:00"
    } else {
        "+00:00"
    };
    format!(
        "{}T{:02}:{:02}:00{offset}",
        format_day(days),
        seconds / 3600,
        seconds / 60 % 60
    )
}

fn utc_instant(days: i64, seconds: i64) -> String {
    let (days, seconds) = normalise_time(days, seconds);
    format!(
        "{}T{:02}:{:02}:{:02}+00:00",
        format_day(days),
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

fn normalise_time(days: i64, seconds: i64) -> (i64, i64) {
    (
        days + seconds.div_euclid(86_400),
        seconds.rem_euclid(86_400),
    )
}

/// The day and second of the day of `YYYY-MM-DDThh:mm:ss...` (Synthea writes UTC).
fn parse_instant(text: &str) -> Option<(i64, i64)> {
    let day = parse_day(text)?;
    let time = text.get(11..19)?;
    let mut parts = time.split(':').map(|p| p.parse::<i64>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next()??);
    Some((day, h * 3600 + m * 60 + s))
}

/// Moves every date and dateTime in a resource by `days`, keeping times and offsets. Narrative
/// XHTML is left alone.
fn shift_dates(value: &mut Value, days: i64) {
    match value {
        Value::String(text) => {
            if let Some(shifted) = shift_date_text(text, days) {
                *text = shifted;
            }
        }
        Value::Array(items) => {
            for item in items {
                shift_dates(item, days);
            }
        }
        Value::Object(map) => {
            for (key, child) in map.iter_mut() {
                if key != "div" {
                    shift_dates(child, days);
                }
            }
        }
        _ => {}
    }
}

fn shift_date_text(text: &str, days: i64) -> Option<String> {
    if !(text.len() == 10 || text.as_bytes().get(10) == Some(&b'T')) {
        return None;
    }
    let day = parse_day(text)?;
    Some(format!("{}{}", format_day(day + days), &text[10..]))
}

// ---------------------------------------------------------------------------------------------
// Determinism: a seeded generator and hash of our own, so a seed means the same data on every
// platform and toolchain.

/// SplitMix64: tiny, fast and good enough for choosing demo data.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        finalise(self.0)
    }

    /// A number below `n` (which must not be 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// A number from `low` to `high`, both included.
    fn range(&mut self, low: i64, high: i64) -> i64 {
        low + (self.next() % (high - low + 1).max(1) as u64) as i64
    }

    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

fn finalise(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// FNV-1a over the seed and the parts (each closed by a byte no UTF-8 text contains), finalised.
fn mix(seed: u64, parts: &[&str]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |byte: u8| {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01B3);
    };
    for byte in seed.to_le_bytes() {
        eat(byte);
    }
    for part in parts {
        for &byte in part.as_bytes() {
            eat(byte);
        }
        eat(0xff);
    }
    finalise(hash)
}

/// A version-4-shaped UUID derived from the seed and the parts.
fn uuid(seed: u64, parts: &[&str]) -> String {
    let high = mix(seed, parts);
    let low = finalise(high ^ 0x5DEE_CE66_D1CE_4E5B);
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&high.to_be_bytes());
    bytes[8..].copy_from_slice(&low.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(bytes).to_string()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use concord_fhir::RequestContext;
    use concord_hub::{Hub, HubConfig, SystemClock};
    use concord_mpi::{Decision, Demographics, MatchConfig, MatchIndex, Model};
    use concord_store_sqlite::{SqliteOptions, SqliteStore, Synchronous};

    use super::*;

    const SYNTHEA: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/testdata/synthea"
    );
    const TODAY: &str = "2026-03-10";

    fn synthea() -> &'static Path {
        let dir = Path::new(SYNTHEA);
        assert!(
            dir.is_dir(),
            "the shared Synthea bundles are expected at {SYNTHEA}"
        );
        dir
    }

    #[test]
    fn dates_round_trip_shift_and_know_summer_time() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(weekday(0), 4, "1970-01-01 was a Thursday");
        for days in (-40_000..40_000).step_by(17) {
            assert_eq!(parse_day(&format_day(days)), Some(days));
        }
        assert_eq!(parse_day("2023-02-29"), None);
        assert_eq!(
            parse_day("2024-02-29").map(format_day).as_deref(),
            Some("2024-02-29")
        );
        assert_eq!(parse_day("2024-13-01"), None);
        assert_eq!(
            shift_date_text("2019-12-31T02:43:19.205+00:00", 1).as_deref(),
            Some("2020-01-01T02:43:19.205+00:00")
        );
        assert_eq!(
            shift_date_text("1951-01-24", -24).as_deref(),
            Some("1950-12-31")
        );
        assert_eq!(shift_date_text("999-16-5745", 1), None);
        assert_eq!(shift_date_text("2019-12-31 and more", 1), None);
        let day = |text: &str| parse_day(text).unwrap();
        // 2026: clocks go forward on Sunday 29 March and back on Sunday 25 October.
        assert!(!british_summer_time(day("2026-03-28")));
        assert!(british_summer_time(day("2026-03-29")));
        assert!(british_summer_time(day("2026-10-24")));
        assert!(!british_summer_time(day("2026-10-25")));
        assert_eq!(
            local_instant(day("2026-07-01"), 9 * 60 + 20),
            "2026-07-01T09:20:00+01:00"
        );
        assert_eq!(
            utc_instant(day("2026-01-01"), -60),
            "2025-12-31T23:59:00+00:00"
        );
        assert_eq!(years_between(day("2000-03-10"), day("2026-03-09")), 25);
        assert_eq!(years_between(day("2000-03-10"), day("2026-03-10")), 26);
    }

    #[test]
    fn base64_is_rfc_4648() {
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
    }

    #[test]
    fn nicknames_are_ones_the_matcher_knows() {
        for (formal, nickname) in names::NICKNAMES {
            assert!(
                concord_mpi::nicknames::are_alternatives(
                    &formal.to_lowercase(),
                    &nickname.to_lowercase()
                ),
                "{formal} / {nickname}"
            );
        }
    }

    #[test]
    fn a_missing_folder_says_where_the_content_is_expected() {
        let error = build(Path::new("/nowhere/synthea"), 1, 5, TODAY).unwrap_err();
        let text = format!("{error:#}");
        assert!(text.contains("/nowhere/synthea"), "{text}");
        assert!(text.contains("Synthea"), "{text}");
        let error = build(synthea(), 1, 5, "10/03/2026").unwrap_err();
        assert!(format!("{error:#}").contains("YYYY-MM-DD"));
        let error = build(synthea(), 1, 1000, TODAY).unwrap_err();
        assert!(format!("{error:#}").contains("at most"));
    }

    /// Every resource of every Bundle, with the organisation holding it.
    fn resources(data: &DemoData) -> impl Iterator<Item = (usize, &Value)> {
        data.orgs.iter().enumerate().flat_map(|(org, o)| {
            o.bundles.iter().flat_map(move |b| {
                array_at(b, "entry")
                    .iter()
                    .map(move |e| (org, e.get("resource").unwrap()))
            })
        })
    }

    fn patient_of(bundle: &Value) -> &Value {
        array_at(bundle, "entry")
            .iter()
            .map(|e| &e["resource"])
            .find(|r| resource_type(r) == "Patient")
            .unwrap()
    }

    fn nhs_number_of(patient: &Value) -> Option<&str> {
        array_at(patient, "identifier")
            .iter()
            .find(|i| str_at(i, &["system"]) == Some(NHS_NUMBER_SYSTEM))
            .and_then(|i| str_at(i, &["value"]))
    }

    /// A person's Bundles, by organisation: found by NHS number, or where a record has none,
    /// by family name, birth date and postcode.
    fn bundles_of<'a>(data: &'a DemoData, person: &DemoPerson) -> BTreeMap<usize, &'a Value> {
        let mut found = BTreeMap::new();
        for (org, o) in data.orgs.iter().enumerate() {
            for bundle in &o.bundles {
                let patient = patient_of(bundle);
                let same = match nhs_number_of(patient) {
                    Some(nhs) => nhs == person.nhs_number,
                    None => {
                        str_at(patient, &["birthDate"]) == Some(&person.birth_date)
                            && patient.pointer("/name/0/family").and_then(Value::as_str)
                                == Some(&person.family)
                            && patient
                                .pointer("/address/0/postalCode")
                                .and_then(Value::as_str)
                                == Some(&person.postcode)
                    }
                };
                if same {
                    assert!(
                        found.insert(org, bundle).is_none(),
                        "two Bundles at {} for one person",
                        ORGS[org].id
                    );
                }
            }
        }
        found
    }

    fn entries_of<'a>(bundle: &'a Value, kind: &str) -> Vec<&'a Value> {
        array_at(bundle, "entry")
            .iter()
            .map(|e| &e["resource"])
            .filter(|r| resource_type(r) == kind)
            .collect()
    }

    /// Checks everything that does not need a store.
    fn check(data: &DemoData, people: usize) {
        assert_eq!(data.orgs.len(), ORGS.len());
        assert_eq!(data.people.len(), people);
        assert_eq!(data.orgs[GP].bundles.len(), people, "everyone is at the GP");
        let today = parse_day(TODAY).unwrap();
        let mut numbers = HashSet::new();
        for person in &data.people {
            let number = NhsNumber::parse(&person.nhs_number).expect("valid NHS number");
            assert!(person.nhs_number.starts_with("999"), "test range");
            assert!(numbers.insert(number), "NHS numbers are unique");
            assert_eq!(person.orgs.first(), Some(&"gp"));
            let found = bundles_of(data, person);
            let ids: Vec<&str> = found.keys().map(|&o| ORGS[o].id).collect();
            assert_eq!(ids, person.orgs, "{}", person.nhs_number);
        }
        // Bundles are self-contained transactions of valid resources.
        for o in &data.orgs {
            for bundle in &o.bundles {
                assert_eq!(bundle["type"], "transaction");
                let entries = array_at(bundle, "entry");
                let urls: HashSet<&str> = entries
                    .iter()
                    .map(|e| e["fullUrl"].as_str().unwrap())
                    .collect();
                assert_eq!(urls.len(), entries.len(), "fullUrls are unique");
                assert_eq!(entries_of(bundle, "Patient").len(), 1);
                for e in entries {
                    let r = &e["resource"];
                    let id = r["id"].as_str().unwrap();
                    assert_eq!(e["fullUrl"], format!("urn:uuid:{id}"));
                    assert_eq!(e["request"]["url"], format!("{}/{id}", resource_type(r)));
                    let issues = concord_fhir::validate::validate_resource(r);
                    assert!(issues.is_empty(), "{}: {issues:?}\n{r:#}", resource_type(r));
                    let mut references = Vec::new();
                    collect_references(r, &mut references);
                    for reference in references {
                        assert!(
                            urls.contains(reference.as_str()),
                            "{} at {} names {reference}, not in its Bundle",
                            resource_type(r),
                            o.org.id
                        );
                    }
                }
            }
        }
        // Nothing of Synthea's US identity survives.
        let text = serde_json::to_string(
            &data
                .orgs
                .iter()
                .map(|o| Value::Array(o.bundles.clone()))
                .collect::<Vec<_>>(),
        )
        .unwrap();
        for us in [
            "us-ssn",
            "us-core",
            "us-npi",
            "synthetichealth",
            "smarthealthit",
            "Social Security",
            "2.16.840.1.113883.4.",
            "Massachusetts",
            "en-US",
            "\"555-",
        ] {
            assert!(!text.contains(us), "{us} survived");
        }
        for file in std::fs::read_dir(synthea()).unwrap() {
            let name = file.unwrap().file_name().to_string_lossy().into_owned();
            if let Some(id) = name
                .strip_suffix(".json")
                .and_then(|n| n.rsplit('_').next())
            {
                assert!(!text.contains(id), "Synthea's patient id {id} survived");
            }
        }
        // Appointments are in the future.
        let appointments: Vec<&Value> = resources(data)
            .filter(|(_, r)| resource_type(r) == "Appointment")
            .map(|(_, r)| r)
            .collect();
        assert!(!appointments.is_empty());
        for a in appointments {
            let start = parse_day(a["start"].as_str().unwrap()).unwrap();
            assert!(start > today, "{}", a["start"]);
        }
        // Every kind of record is there.
        let category = |r: &Value, code: &str| {
            [
                r.pointer("/category/0/coding/0/code"),
                r.pointer("/type/coding/0/code"),
            ]
            .iter()
            .any(|c| c.and_then(Value::as_str) == Some(code))
        };
        for (what, kind, code, org) in [
            ("end-of-life care plans or ReSPECT forms", "", "", None),
            (
                "crisis plans",
                "CarePlan",
                CRISIS_PLAN.0,
                Some(MENTAL_HEALTH),
            ),
            (
                "social care episodes",
                "EpisodeOfCare",
                "",
                Some(SOCIAL_CARE),
            ),
            ("care packages", "CarePlan", "", Some(SOCIAL_CARE)),
            ("999 calls", "Encounter", "", Some(AMBULANCE)),
            ("district nursing", "Encounter", "", Some(COMMUNITY)),
            (
                "visits across the boundary",
                "Encounter",
                "",
                Some(NEIGHBOUR),
            ),
        ] {
            let count = resources(data)
                .filter(|(o, r)| {
                    if kind.is_empty() {
                        category(r, END_OF_LIFE_PLAN.0) || category(r, RESPECT_FORM.0)
                    } else {
                        resource_type(r) == kind
                            && (code.is_empty() || category(r, code))
                            && org.is_none_or(|org| *o == org)
                    }
                })
                .count();
            assert!(count > 0, "no {what}");
        }
        // The duplicates the hub's de-duplication should fold: the same allergy, and the same lab
        // result (code, time, value), at the GP and at the hospital.
        let mut allergies = 0;
        let mut labs = 0;
        for person in &data.people {
            let found = bundles_of(data, person);
            let (Some(gp), Some(acute)) = (found.get(&GP), found.get(&ACUTE)) else {
                continue;
            };
            let codes = |b: &Value| -> HashSet<String> {
                entries_of(b, "AllergyIntolerance")
                    .iter()
                    .map(|a| a["code"].to_string())
                    .collect()
            };
            allergies += codes(gp).intersection(&codes(acute)).count();
            let results = |b: &Value| -> HashSet<String> {
                entries_of(b, "Observation")
                    .iter()
                    .filter(|o| is_lab(o))
                    .map(|o| {
                        format!(
                            "{} {} {}",
                            o["code"]["coding"][0]["code"],
                            o["effectiveDateTime"],
                            o["valueQuantity"]["value"]
                        )
                    })
                    .collect()
            };
            labs += results(gp).intersection(&results(acute)).count();
        }
        assert!(allergies > 0, "no allergy at both the GP and the hospital");
        assert!(labs > 0, "no lab result at both the GP and the hospital");
        // Each person's records match one another on what the matcher sees.
        let mut index = MatchIndex::new(Model::default_uk(), MatchConfig::default());
        for (n, (_, r)) in resources(data)
            .filter(|(_, r)| resource_type(r) == "Patient")
            .enumerate()
        {
            index.insert(&n.to_string(), Demographics::from_patient(r));
        }
        for person in &data.people {
            let found = bundles_of(data, person);
            let records: Vec<Demographics> = found
                .values()
                .map(|b| Demographics::from_patient(patient_of(b)))
                .collect();
            for a in &records {
                for b in &records {
                    let comparison = index.compare(a, b);
                    assert_eq!(
                        index.config().decide(&comparison),
                        Decision::Link,
                        "{a:?}\n{b:?}\n{comparison:?}"
                    );
                }
            }
        }
    }

    fn collect_references(value: &Value, out: &mut Vec<String>) {
        match value {
            Value::Object(map) => {
                if let Some(Value::String(reference)) = map.get("reference") {
                    out.push(reference.clone());
                }
                for child in map.values() {
                    collect_references(child, out);
                }
            }
            Value::Array(items) => {
                for item in items {
                    collect_references(item, out);
                }
            }
            _ => {}
        }
    }

    /// Loads every Bundle of every organisation into one hub over SQLite (the checks of the
    /// service layer are the same as at an edge) and returns the golden person of each
    /// organisation's Patient, by person.
    fn load(data: &DemoData) -> Vec<Vec<Option<String>>> {
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions {
            synchronous: Synchronous::Normal,
            ..SqliteOptions::new(dir.path().join("concord.db"))
        };
        let store = SqliteStore::open(&options).unwrap();
        let hub = Hub::new(Arc::new(store), Arc::new(SystemClock), HubConfig::default()).unwrap();
        let ctx = RequestContext::system("demo-test", "load");
        for o in &data.orgs {
            for bundle in &o.bundles {
                if let Err(e) = hub.process_bundle(&ctx, bundle, "urn:concord:demo") {
                    panic!("{} rejected a Bundle: {e}", o.org.id);
                }
            }
        }
        data.people
            .iter()
            .map(|person| {
                bundles_of(data, person)
                    .values()
                    .map(|b| hub.person_of(patient_of(b)["id"].as_str().unwrap()))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn twenty_people_load_into_a_hub_and_link() {
        let data = build(synthea(), 7, 20, TODAY).unwrap();
        check(&data, 20);
        let again = build(synthea(), 7, 20, TODAY).unwrap();
        assert_eq!(again.people, data.people, "deterministic for a seed");
        for (a, b) in again.orgs.iter().zip(&data.orgs) {
            assert!(a.bundles == b.bundles, "{} differs between runs", a.org.id);
        }
        let other = build(synthea(), 8, 20, TODAY).unwrap();
        assert_ne!(other.people, data.people, "another seed, other people");

        let persons = load(&data);
        let mut seen = HashSet::new();
        for (person, golden) in data.people.iter().zip(&persons) {
            let first = golden[0].clone().expect("linked");
            assert!(
                golden.iter().all(|g| g.as_ref() == Some(&first)),
                "{:?}: {golden:?}",
                person.orgs
            );
            assert!(seen.insert(first), "two people share a golden person");
        }
    }

    #[test]
    fn every_synthea_person_loads_into_a_hub() {
        let data = build(synthea(), 20_261_122, 62, TODAY).unwrap();
        check(&data, 62);
        let persons = load(&data);
        for golden in &persons {
            assert!(
                golden.iter().all(|g| g.is_some() && *g == golden[0]),
                "{golden:?}"
            );
        }
    }
}
