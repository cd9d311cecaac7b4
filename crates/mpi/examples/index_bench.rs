//! Dev-only benchmark: builds a `MatchIndex` of N synthetic UK people (default 1,000,000), prints
//! the resident memory per record (from /proc/self/status) and the latency of `find` (p50, p99,
//! max) for probes that are typo'd re-sightings of indexed people and for strangers.
//!
//! Usage: `cargo run --release -p concord-mpi --example index_bench -- [N] [PROBES] [--misses]`.

use std::time::Instant;

use concord_mpi::{BirthDate, Demographics, MatchConfig, MatchIndex, Model, NhsNumber, Sex};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    /// Zipf-like pick: index i with weight 1/(i+1).
    fn zipf(&mut self, n: usize) -> usize {
        let h = (n as f64).ln() + 0.5772;
        let x = (self.next() as f64 / u64::MAX as f64) * h;
        ((x - 0.5772).exp().floor() as usize).min(n - 1)
    }
}

const SURNAMES: &[&str] = &[
    "smith",
    "jones",
    "williams",
    "taylor",
    "brown",
    "davies",
    "evans",
    "wilson",
    "thomas",
    "johnson",
    "roberts",
    "robinson",
    "thompson",
    "wright",
    "walker",
    "white",
    "edwards",
    "hughes",
    "green",
    "hall",
    "lewis",
    "harris",
    "clarke",
    "patel",
    "jackson",
    "wood",
    "turner",
    "martin",
    "cooper",
    "hill",
    "ward",
    "morris",
    "moore",
    "clark",
    "lee",
    "king",
    "baker",
    "harrison",
    "morgan",
    "allen",
    "james",
    "scott",
    "phillips",
    "watson",
    "davis",
    "parker",
    "price",
    "bennett",
    "young",
    "griffiths",
    "mitchell",
    "kelly",
    "cook",
    "carter",
    "richardson",
    "bailey",
    "collins",
    "bell",
    "shaw",
    "murphy",
    "miller",
    "cox",
    "richards",
    "khan",
    "marshall",
    "anderson",
    "simpson",
    "ellis",
    "adams",
    "singh",
    "begum",
    "wilkinson",
    "foster",
    "chapman",
    "powell",
    "webb",
    "rogers",
    "gray",
    "mason",
    "ali",
    "hunt",
    "hussain",
    "campbell",
    "matthews",
    "owen",
    "palmer",
    "holmes",
    "mills",
    "barnes",
    "knight",
    "lloyd",
    "butler",
    "russell",
    "barker",
    "fisher",
    "stevens",
    "jenkins",
    "murray",
    "dixon",
    "harvey",
    "ahmed",
    "shah",
];
const GIVEN: &[&str] = &[
    "oliver",
    "george",
    "harry",
    "jack",
    "jacob",
    "noah",
    "charlie",
    "muhammad",
    "thomas",
    "oscar",
    "william",
    "james",
    "leo",
    "alfie",
    "henry",
    "joshua",
    "freddie",
    "archie",
    "ethan",
    "isaac",
    "olivia",
    "amelia",
    "isla",
    "ava",
    "emily",
    "isabella",
    "mia",
    "poppy",
    "ella",
    "lily",
    "margaret",
    "susan",
    "david",
    "john",
    "peter",
    "catherine",
    "stephen",
    "priya",
    "aisha",
    "sarah",
    "elizabeth",
    "mary",
    "michael",
    "paul",
    "andrew",
    "mark",
    "richard",
    "robert",
    "christopher",
    "daniel",
    "matthew",
    "anthony",
    "jennifer",
    "karen",
    "julie",
    "helen",
    "claire",
    "emma",
    "rebecca",
    "laura",
    "jessica",
    "hannah",
    "sophie",
    "chloe",
    "grace",
    "lucy",
    "fatima",
    "zainab",
    "ibrahim",
    "yusuf",
    "adam",
    "ryan",
    "kieran",
    "liam",
    "sean",
    "niamh",
    "siobhan",
];
const SYLLABLES: &[&str] = &[
    "ash", "bar", "ber", "by", "cal", "dal", "den", "ers", "ford", "gate", "ham", "hurst", "ing",
    "kin", "lan", "ley", "lock", "mar", "mer", "ton", "ridge", "son", "stead", "wick", "worth",
];
const AREAS: &[&str] = &["LS", "BD", "WF", "HD", "HX"];

fn surname(rng: &mut Rng) -> String {
    if rng.below(100) < 60 {
        SURNAMES[rng.zipf(SURNAMES.len())].to_string()
    } else {
        // A long tail of rarer surnames.
        let n = 2 + rng.below(2);
        (0..n)
            .map(|_| SYLLABLES[rng.below(SYLLABLES.len())])
            .collect()
    }
}

fn person(rng: &mut Rng, i: u64) -> Demographics {
    let nine: [u8; 9] =
        std::array::from_fn(|k| ((i / 10u64.pow(k as u32) + k as u64 * 7) % 10) as u8);
    let postcode = format!(
        "{}{} {}{}{}",
        AREAS[rng.below(AREAS.len())],
        1 + rng.below(30),
        rng.below(10),
        (b'A' + rng.below(26) as u8) as char,
        (b'A' + rng.below(26) as u8) as char
    );
    Demographics {
        nhs_number: if rng.below(10) < 8 {
            NhsNumber::from_first_nine(nine)
        } else {
            None
        },
        given_names: vec![GIVEN[rng.zipf(GIVEN.len())].to_string()],
        family_name: Some(surname(rng)),
        birth_date: Some(BirthDate {
            year: 1925 + rng.below(100) as u16,
            month: 1 + rng.below(12) as u8,
            day: 1 + rng.below(28) as u8,
        }),
        sex: Some(if rng.below(2) == 0 {
            Sex::Male
        } else {
            Sex::Female
        }),
        address: Some(format!("{} {} road", 1 + rng.below(300), surname(rng))),
        postcode: Some(postcode),
        phone: (rng.below(2) == 0).then(|| format!("07{:09}", rng.next() % 1_000_000_000)),
        other_identifier: None,
    }
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let show_misses = std::env::args().any(|a| a == "--misses");
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let n = args.first().copied().unwrap_or(1_000_000);
    let probes = args.get(1).copied().unwrap_or(10_000);
    let mut rng = Rng(7);
    let people: Vec<Demographics> = (0..n as u64).map(|i| person(&mut rng, i)).collect();
    let before = rss_kib();
    let started = Instant::now();
    let mut index = MatchIndex::new(Model::default_uk(), MatchConfig::default());
    for (i, p) in people.iter().enumerate() {
        index.insert(&format!("Patient/{i}"), p.clone());
    }
    let build = started.elapsed();
    let after = rss_kib();
    println!(
        "built index of {n} in {:.1} s; RSS {} MiB before, {} MiB after: ~{} bytes per record (index incl. its copy of each record)",
        build.as_secs_f64(),
        before / 1024,
        after / 1024,
        (after.saturating_sub(before)) * 1024 / n as u64
    );
    let mut times = Vec::with_capacity(probes);
    let mut hits = 0;
    let mut tops = 0;
    for k in 0..probes {
        let target = rng.below(n);
        let mut probe = people[target].clone();
        match k % 4 {
            0 => probe.nhs_number = None,
            1 => {
                let f = probe.family_name.as_mut().unwrap();
                f.insert(1, 'x');
                probe.nhs_number = None;
            }
            2 => {
                // Day and month transposed where that is a date, else a one-digit slip in the year.
                let b = probe.birth_date.unwrap();
                probe.birth_date = Some(if b.day <= 12 {
                    BirthDate {
                        year: b.year,
                        month: b.day,
                        day: b.month,
                    }
                } else {
                    BirthDate {
                        year: b.year ^ 1,
                        ..b
                    }
                });
            }
            _ => {
                probe = person(&mut rng, u64::MAX - k as u64);
                probe.nhs_number = None;
            }
        }
        let t = Instant::now();
        let found = index.find(&probe, 10, false);
        times.push(t.elapsed().as_secs_f64() * 1e3);
        if k % 4 != 3 {
            hits += 1;
            if found.first().map(|c| c.key.as_str()) == Some(format!("Patient/{target}").as_str()) {
                tops += 1;
            } else if show_misses {
                println!(
                    "miss kind {} probe {:?}\n  target {:?}\n  found {:?}",
                    k % 4,
                    probe,
                    people[target],
                    found
                        .first()
                        .map(|c| (&c.key, c.comparison.probability, index.get(&c.key)))
                );
            }
        }
    }
    times.sort_by(f64::total_cmp);
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    println!(
        "find over {probes} probes: p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms; right record first for {tops} of {hits} re-sightings",
        pct(0.5),
        pct(0.99),
        pct(1.0)
    );
}
