//! Matching behaviour as a table of pairs with the decision each must get, plus properties:
//! scoring is symmetric, bad data never panics, and `find` picks the right record among many.
//!
//! Owns the engine's integration tests (not `persons*`). Uses the default UK model, the weights
//! a fresh index starts with before any EM.

use concord_mpi::{
    BirthDate, Decision, Demographics, MatchConfig, MatchIndex, Model, NhsNumber, Sex,
};
use proptest::prelude::*;

fn person(given: &str, family: &str, dob: &str, postcode: &str) -> Demographics {
    Demographics {
        given_names: given.split_whitespace().map(str::to_string).collect(),
        family_name: (!family.is_empty()).then(|| family.to_string()),
        birth_date: BirthDate::parse(dob),
        postcode: (!postcode.is_empty()).then(|| postcode.to_string()),
        ..Demographics::default()
    }
}

fn with(mut d: Demographics, f: impl FnOnce(&mut Demographics)) -> Demographics {
    f(&mut d);
    d
}

fn nhs(n: &str) -> Option<NhsNumber> {
    Some(NhsNumber::parse(n).unwrap())
}

/// What a case must get: exactly this decision, or anything but this one.
#[derive(Debug, Clone, Copy)]
enum Expect {
    Is(Decision),
    Not(Decision),
}

/// Compares the pair both ways and checks the decision; returns a message on failure.
fn check(
    index: &MatchIndex,
    name: &str,
    a: &Demographics,
    b: &Demographics,
    expect: Expect,
) -> Option<String> {
    let c = index.compare(a, b);
    let back = index.compare(b, a);
    if c != back {
        return Some(format!("{name}: not symmetric: {c:?} vs {back:?}"));
    }
    let decision = index.config().decide(&c);
    let ok = match expect {
        Expect::Is(d) => decision == d,
        Expect::Not(d) => decision != d,
    };
    (!ok).then(|| {
        format!(
            "{name}: expected {expect:?}, got {decision:?} (p={:.6}, w={:.2}, conflict={}) {:?}",
            c.probability, c.weight, c.nhs_conflict, c.evidence
        )
    })
}

fn cases() -> Vec<(&'static str, Demographics, Demographics, Expect)> {
    use Decision::*;
    use Expect::*;
    let jane = person("Jane", "Smith", "1980-03-07", "LS6 2AB");
    let address = |d: Demographics, a: &str| with(d, |d| d.address = Some(a.into()));
    vec![
        (
            "nickname, same date of birth and postcode",
            person("Bill", "Hartley", "1970-05-12", "LS6 2AB"),
            person("William", "Hartley", "1970-05-12", "LS6 2AB"),
            Is(Link),
        ),
        (
            "Peggy is Margaret",
            person("Peggy", "Ward", "1941-11-30", "BD7 1DP"),
            person("Margaret", "Ward", "1941-11-30", "BD7 1DP"),
            Is(Link),
        ),
        (
            "Mohammed / Muhammad",
            person("Mohammed", "Khan", "1988-01-15", "BD8 7QP"),
            person("Muhammad", "Khan", "1988-01-15", "BD8 7QP"),
            Is(Link),
        ),
        (
            "Catherine / Kathryn, postcode sector only",
            person("Catherine", "Doyle", "1975-06-02", "LS6 2AB"),
            person("Kathryn", "Doyle", "1975-06-02", "LS6 2XY"),
            Is(Link),
        ),
        (
            "twins: same surname, date of birth, address; different first names",
            address(
                person("Oliver", "Brown", "2001-09-14", "LS6 2AB"),
                "22 High Street Leeds",
            ),
            address(
                person("Harry", "Brown", "2001-09-14", "LS6 2AB"),
                "22 High Street Leeds",
            ),
            Not(Link),
        ),
        (
            "twins with sex recorded",
            with(
                address(
                    person("Emily", "Clark", "1995-02-01", "M1 1AA"),
                    "3 Mill Lane",
                ),
                |d| d.sex = Some(Sex::Female),
            ),
            with(
                address(
                    person("Jack", "Clark", "1995-02-01", "M1 1AA"),
                    "3 Mill Lane",
                ),
                |d| d.sex = Some(Sex::Male),
            ),
            Not(Link),
        ),
        (
            "father and son (Jr): same name and address, different date of birth",
            address(
                person("John", "Walker Jr", "1990-04-21", "S10 2TN"),
                "7 Oak Road Sheffield",
            ),
            address(
                person("John", "Walker", "1962-08-03", "S10 2TN"),
                "7 Oak Road Sheffield",
            ),
            Not(Link),
        ),
        (
            "same NHS number, different date of birth and name",
            with(person("Susan", "Taylor", "1950-01-01", "LS1 4AP"), |d| {
                d.nhs_number = nhs("9434765919")
            }),
            with(person("Kevin", "Moore", "1987-10-23", "LS1 4AP"), |d| {
                d.nhs_number = nhs("9434765919")
            }),
            Is(Review),
        ),
        (
            "same NHS number, baby given the mother's: different date of birth and first name",
            with(person("Amira", "Hussain", "1991-03-05", "BD3 9AA"), |d| {
                d.nhs_number = nhs("9434765919")
            }),
            with(person("Zara", "Hussain", "2024-06-11", "BD3 9AA"), |d| {
                d.nhs_number = nhs("9434765919")
            }),
            Is(Review),
        ),
        (
            "same NHS number and date of birth, married name",
            with(person("Jane", "Smith", "1980-03-07", ""), |d| {
                d.nhs_number = nhs("9434765919")
            }),
            with(person("Jane", "Okafor", "1980-03-07", ""), |d| {
                d.nhs_number = nhs("9434765919")
            }),
            Is(Link),
        ),
        (
            "different NHS numbers, same name and date of birth",
            with(person("Jane", "Smith", "1980-03-07", ""), |d| {
                d.nhs_number = nhs("9434765919")
            }),
            with(person("Jane", "Smith", "1980-03-07", ""), |d| {
                d.nhs_number = nhs("9434765870")
            }),
            Not(Link),
        ),
        (
            "day/month swapped, everything else equal",
            address(
                person("Jane", "Smith", "1980-03-07", "LS6 2AB"),
                "22 High Street",
            ),
            address(
                person("Jane", "Smith", "1980-07-03", "LS6 2AB"),
                "22 High Street",
            ),
            Is(Link),
        ),
        (
            "double-barrelled surname after marriage, same date of birth, postcode, first name",
            jane.clone(),
            person("Jane", "Smith-Jones", "1980-03-07", "LS6 2AB"),
            Not(New),
        ),
        (
            "given and family names swapped",
            person("Jane", "Smith", "1980-03-07", "LS6 2AB"),
            person("Smith", "Jane", "1980-03-07", "LS6 2AB"),
            Is(Link),
        ),
        (
            "typing slip in the surname",
            person("Robert", "Fothergill", "1955-12-30", "HX1 5ER"),
            person("Robert", "Fothergil", "1955-12-30", "HX1 5ER"),
            Is(Link),
        ),
        (
            "Jon / John, Steven / Stephen",
            person("Jon Steven", "Price", "1968-07-19", "WF1 2PT"),
            person("John Stephen", "Price", "1968-07-19", "WF1 2PT"),
            Is(Link),
        ),
        (
            "initial only",
            person("J", "Fairbairn", "1979-02-28", "HD1 3DH"),
            person("Julia", "Fairbairn", "1979-02-28", "HD1 3DH"),
            Not(New),
        ),
        (
            "name and date of birth, moved house",
            person("Priya", "Raman", "1993-10-10", "LS6 2AB"),
            person("Priya", "Raman", "1993-10-10", "M14 5RF"),
            Is(Link),
        ),
        (
            "same common name, different dates of birth and postcodes",
            person("David", "Jones", "1970-01-01", "LS6 2AB"),
            person("David", "Jones", "1984-06-13", "M14 5RF"),
            Is(New),
        ),
        (
            "different people",
            person("Ann", "Lee", "1945-05-05", "LS6 2AB"),
            person("Tom", "Brady", "1999-09-09", "EX1 1AA"),
            Is(New),
        ),
        (
            "NHS number and date of birth only",
            with(person("", "", "1980-03-07", ""), |d| {
                d.nhs_number = nhs("9434765919")
            }),
            with(person("", "", "1980-03-07", ""), |d| {
                d.nhs_number = nhs("9434765919")
            }),
            Is(Link),
        ),
        (
            "two empty records",
            Demographics::default(),
            Demographics::default(),
            Is(New),
        ),
    ]
}

#[test]
fn match_cases() {
    let index = MatchIndex::new(Model::default_uk(), MatchConfig::default());
    let failures: Vec<String> = cases()
        .iter()
        .filter_map(|(name, a, b, expect)| check(&index, name, a, b, *expect))
        .collect();
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn nhs_conflict_is_flagged_and_explained() {
    let index = MatchIndex::new(Model::default_uk(), MatchConfig::default());
    let a = with(person("Susan", "Taylor", "1950-01-01", ""), |d| {
        d.nhs_number = nhs("9434765919")
    });
    let b = with(person("Kevin", "Moore", "1987-10-23", ""), |d| {
        d.nhs_number = nhs("9434765919")
    });
    let c = index.compare(&a, &b);
    assert!(c.nhs_conflict);
    assert_eq!(c.grade, concord_mpi::MatchGrade::Probable);
    let nhs_evidence = c.evidence.iter().find(|e| e.field == "nhs_number").unwrap();
    assert_eq!(nhs_evidence.level, "exact");
    assert!(nhs_evidence.weight > 10.0);
}

/// A deterministic synthetic population for the index tests.
fn population(n: usize) -> Vec<Demographics> {
    const GIVEN: &[&str] = &[
        "Oliver",
        "George",
        "Harry",
        "Jack",
        "Jacob",
        "Noah",
        "Charlie",
        "Muhammad",
        "Thomas",
        "Oscar",
        "Olivia",
        "Amelia",
        "Isla",
        "Ava",
        "Emily",
        "Isabella",
        "Mia",
        "Poppy",
        "Ella",
        "Lily",
        "Margaret",
        "Susan",
        "David",
        "John",
        "Peter",
        "Catherine",
        "Stephen",
        "William",
        "Priya",
        "Aisha",
    ];
    const FAMILY: &[&str] = &[
        "Smith",
        "Jones",
        "Williams",
        "Taylor",
        "Brown",
        "Davies",
        "Evans",
        "Wilson",
        "Thomas",
        "Johnson",
        "Roberts",
        "Robinson",
        "Thompson",
        "Wright",
        "Walker",
        "White",
        "Edwards",
        "Hughes",
        "Green",
        "Hall",
        "Khan",
        "Patel",
        "Ahmed",
        "Begum",
        "Featherstonehaugh",
        "Okafor",
        "Nowak",
        "Murphy",
        "Kelly",
        "Shah",
    ];
    let mut state: u64 = 42;
    let mut next = move |m: u64| {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 33) % m
    };
    (0..n)
        .map(|_| Demographics {
            given_names: vec![GIVEN[next(GIVEN.len() as u64) as usize].to_string()],
            family_name: Some(FAMILY[next(FAMILY.len() as u64) as usize].to_string()),
            birth_date: Some(BirthDate {
                year: 1930 + next(90) as u16,
                month: 1 + next(12) as u8,
                day: 1 + next(28) as u8,
            }),
            postcode: Some(format!(
                "LS{} {}{}{}",
                1 + next(28),
                next(10),
                ['A', 'B', 'D', 'E'][next(4) as usize],
                ['F', 'G', 'H', 'J'][next(4) as usize]
            )),
            address: Some(format!(
                "{} {} Street",
                1 + next(200),
                FAMILY[next(30) as usize]
            )),
            ..Demographics::default()
        })
        .collect()
}

#[test]
fn find_returns_the_right_record_among_many() {
    let people = population(5_000);
    let mut index = MatchIndex::new(Model::default_uk(), MatchConfig::default());
    for (i, p) in people.iter().enumerate() {
        index.insert(&format!("p{i}"), p.clone());
    }
    assert_eq!(index.len(), 5_000);
    for k in [0usize, 17, 999, 2_500, 4_999] {
        // A new sighting of person k: nickname-free typo in the surname, postcode sector only.
        let mut probe = people[k].clone();
        let fam = probe.family_name.clone().unwrap();
        probe.family_name = Some(format!("{}{}", &fam[..fam.len() - 1], "e"));
        let found = index.find(&probe, 5, false);
        assert!(!found.is_empty(), "nothing found for p{k}");
        assert_eq!(found[0].key, format!("p{k}"), "{:?}", found.first());
        for w in found.windows(2) {
            assert!(w[0].comparison.probability >= w[1].comparison.probability);
        }
        let exact = index.find(&people[k], 1, false);
        assert_eq!(exact[0].key, format!("p{k}"));
        assert_eq!(index.config().decide(&exact[0].comparison), Decision::Link);
    }
    // Nobody like this is in the index.
    let stranger = person("Zebedee", "Quayle", "1901-01-01", "ZE1 0AA");
    assert!(index.find(&stranger, 5, false).is_empty());
    assert!(index.find(&stranger, 5, true).len() <= 5);
}

#[test]
fn insert_replace_remove() {
    let mut index = MatchIndex::new(Model::default_uk(), MatchConfig::default());
    assert!(index.is_empty());
    let a = person("Jane", "Smith", "1980-03-07", "LS6 2AB");
    let b = person("Jane", "Smith-Jones", "1980-03-07", "LS6 2AB");
    index.insert("a", a.clone());
    index.insert("a", b.clone());
    assert_eq!(index.len(), 1);
    assert_eq!(index.get("a"), Some(&b));
    assert_eq!(index.find(&a, 10, false)[0].key, "a");
    assert_eq!(index.remove("a"), Some(b));
    assert_eq!(index.remove("a"), None);
    assert!(index.find(&a, 10, true).is_empty());
    assert!(index.is_empty());
}

#[test]
fn reestimate_learns_from_the_records_held() {
    let people = population(3_000);
    let mut index = MatchIndex::new(Model::default_uk(), MatchConfig::default());
    for (i, p) in people.iter().enumerate() {
        index.insert(&format!("p{i}"), p.clone());
        if i % 10 == 0 {
            // Every tenth person recorded twice, with a typo in the first name.
            let mut dup = p.clone();
            dup.given_names[0].push('e');
            index.insert(&format!("d{i}"), dup);
        }
    }
    index.reestimate();
    let found = index.find(index.get("d10").unwrap(), 3, false);
    assert!(found.iter().any(|c| c.key == "p10"), "{found:?}");
    assert!(index.model().prior() > 0.0 && index.model().prior() < 0.01);
}

#[test]
fn link_records_dedupes_and_links() {
    let people = population(2_000);
    let mut left = people.clone();
    for (i, p) in people.iter().enumerate().step_by(7) {
        let mut dup = p.clone();
        if i % 2 == 0 {
            let b = dup.birth_date.unwrap();
            if b.day <= 12 {
                dup.birth_date = Some(BirthDate {
                    year: b.year,
                    month: b.day,
                    day: b.month,
                });
            }
        } else {
            dup.given_names[0].insert(1, 'x');
        }
        left.push(dup);
    }
    let config = MatchConfig::default();
    let pairs = concord_mpi::link_records(&left, None, None, &config);
    let linked: Vec<_> = pairs
        .iter()
        .filter(|p| p.probability >= config.link_threshold)
        .collect();
    let expected = people.len().div_ceil(7);
    let correct = linked
        .iter()
        .filter(|p| p.right >= people.len() && (p.right - people.len()) * 7 == p.left)
        .count();
    assert!(
        correct as f64 >= 0.95 * expected as f64,
        "{correct} of {expected}"
    );
    assert!(
        linked.len() - correct <= expected / 50,
        "{} wrong links",
        linked.len() - correct
    );
    assert!(pairs.iter().all(|p| p.left < p.right));
    for w in pairs.windows(2) {
        assert!(w[0].probability >= w[1].probability);
    }
    // Linkage: the duplicates against the originals.
    let dups = &left[people.len()..];
    let pairs = concord_mpi::link_records(&people, Some(dups), None, &config);
    let correct = pairs
        .iter()
        .filter(|p| p.probability >= config.link_threshold && p.left == p.right * 7)
        .count();
    assert!(
        correct as f64 >= 0.95 * expected as f64,
        "{correct} of {expected}"
    );
}

fn arb_person() -> impl Strategy<Value = Demographics> {
    let name = prop::sample::select(vec![
        "Jon",
        "John",
        "Jonathan",
        "J",
        "Smith",
        "Smyth",
        "Smith-Jones",
        "Jones",
        "Bill",
        "William",
        "Mohammed",
        "Muhammad",
        "",
        "Zoë",
        "O'Brien",
        "Kathryn",
        "Catherine",
        "Lee",
        "Leigh",
    ]);
    let opt_text = prop::option::of(prop::sample::select(vec![
        "LS6 2AB",
        "LS6 2AD",
        "LS6 3AB",
        "LS5 2AB",
        "4223",
        "4232",
        "",
        "22 High St",
        "22 High Street",
        "1234567",
        "1234576",
        "+44 113 496 0000",
    ]));
    (
        prop::collection::vec(name.clone(), 0..3),
        prop::option::of(name),
        prop::option::of((1979u16..1982, 1u8..13, 1u8..13)),
        prop::option::of(prop::sample::select(vec![
            Sex::Male,
            Sex::Female,
            Sex::Unknown,
        ])),
        (
            opt_text.clone(),
            opt_text.clone(),
            opt_text.clone(),
            opt_text,
        ),
        prop::option::of(prop::sample::select(vec![
            "9434765919",
            "9434765870",
            "4010232137",
        ])),
    )
        .prop_map(
            |(given, family, dob, sex, (address, postcode, phone, other), nhs_text)| Demographics {
                nhs_number: nhs_text.and_then(|t| NhsNumber::parse(t).ok()),
                given_names: given.into_iter().map(str::to_string).collect(),
                family_name: family.map(str::to_string),
                birth_date: dob.map(|(year, month, day)| BirthDate { year, month, day }),
                sex,
                address: address.map(str::to_string),
                postcode: postcode.map(str::to_string),
                phone: phone.map(str::to_string),
                other_identifier: other.map(str::to_string),
            },
        )
}

proptest! {
    #[test]
    fn scoring_is_symmetric(a in arb_person(), b in arb_person()) {
        let index = MatchIndex::new(Model::default_uk(), MatchConfig::default());
        prop_assert_eq!(index.compare(&a, &b), index.compare(&b, &a));
        let c = index.compare(&a, &b);
        prop_assert!((0.0..=1.0).contains(&c.probability));
        prop_assert!(c.weight.is_finite());
    }

    #[test]
    fn bad_data_never_panics(given in ".{0,40}", family in ".{0,40}", other in ".{0,80}", y in any::<u16>(), m in any::<u8>(), d in any::<u8>()) {
        let a = Demographics {
            given_names: vec![given.clone(), other.clone()],
            family_name: Some(family.clone()),
            birth_date: Some(BirthDate { year: y, month: m, day: d }),
            address: Some(other.clone()),
            postcode: Some(family.clone()),
            phone: Some(other.clone()),
            other_identifier: Some(given.clone()),
            ..Demographics::default()
        };
        let b = Demographics { given_names: vec![family.clone()], family_name: Some(given), ..a.clone() };
        let mut index = MatchIndex::new(Model::default_uk(), MatchConfig::default());
        index.insert("a", a.clone());
        index.insert("b", b.clone());
        let _ = index.find(&b, 5, true);
        prop_assert_eq!(index.compare(&a, &b), index.compare(&b, &a));
        let _ = concord_mpi::link_records(&[a.clone(), b.clone()], Some(&[b, a]), None, &MatchConfig::default());
    }
}

#[test]
fn the_index_can_be_shared_across_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<MatchIndex>();
    send_sync::<Model>();
}
