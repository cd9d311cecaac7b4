#!/usr/bin/env python3
"""Synthetic UK people, and probes of them with the errors real records have, for `concord mpi bench`.

Usage: gen_people.py --count N --seed S [--probes 10000] [--absent 0.15] OUTDIR

Needs Faker and nhs-number (it installs nothing):
    target/bench/rl-venv/bin/pip install faker nhs-number

Writes to OUTDIR:
  people.csv        id,nhs_number,given_name,surname,date_of_birth,sex,address,postcode
  probes.csv        the same columns: records to look up
  probes_truth.csv  probe_id,person_id,changes: the person a probe is (empty when the probe is
                    someone not in people.csv) and what was changed from that person's record

People live in households (shared surname, address and postcode; partners, children, some twins)
on streets in UK post towns, with postcodes of the town's area shared along the street. Names come
from Faker's name lists (en_GB, weighted towards the common ones, with Irish, Indian, Nigerian and
other names as the UK has them); some surnames are double-barrelled. NHS numbers come from the
nhs-number package's generator in its synthetic range (9xx: never issued to a real patient); 3% of
people have none.

A probe of someone in people.csv is a copy of their record with errors drawn independently: no NHS
number, a one-letter typo or a nickname in the given name, middle names dropped, a surname typo or
change (marriage), day and month of birth swapped, a digit of the date wrong, a move to another
address, a postcode typo, a missing field, other case and spacing. A probe of someone not in
people.csv is a new person, a new member of an indexed person's household, or an indexed person's
twin. The output depends only on the arguments (and the Faker and nhs-number versions).
"""

import argparse
import csv
import random
import string
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import nhs_number
from faker.providers.person.de_DE import Provider as DE
from faker.providers.person.en_GB import Provider as GB
from faker.providers.person.en_IE import Provider as IE
from faker.providers.person.en_IN import Provider as IN
from faker.providers.person.en_NZ import Provider as NZ
from faker.providers.person.it_IT import Provider as IT
from faker.providers.person.yo_NG import Provider as NG

COLUMNS = ["id", "nhs_number", "given_name", "surname", "date_of_birth", "sex", "address", "postcode"]
TODAY = date(2026, 1, 1)

# Post towns with their postcode area and a rough weight (population, 100,000s).
TOWNS = [
    ("London", "E", 30), ("London", "N", 20), ("London", "SE", 30), ("London", "SW", 30),
    ("London", "W", 15), ("London", "NW", 15), ("Birmingham", "B", 30), ("Manchester", "M", 20),
    ("Leeds", "LS", 15), ("Sheffield", "S", 12), ("Bradford", "BD", 8), ("Liverpool", "L", 12),
    ("Bristol", "BS", 10), ("Newcastle upon Tyne", "NE", 12), ("Sunderland", "SR", 4),
    ("Nottingham", "NG", 10), ("Leicester", "LE", 9), ("Coventry", "CV", 8), ("Hull", "HU", 5),
    ("Stoke-on-Trent", "ST", 8), ("Wolverhampton", "WV", 5), ("Derby", "DE", 7), ("Plymouth", "PL", 5),
    ("Southampton", "SO", 7), ("Portsmouth", "PO", 7), ("Reading", "RG", 8), ("Oxford", "OX", 6),
    ("Cambridge", "CB", 5), ("Norwich", "NR", 7), ("Ipswich", "IP", 6), ("Exeter", "EX", 6),
    ("Bath", "BA", 4), ("Gloucester", "GL", 5), ("Cheltenham", "GL", 2), ("Worcester", "WR", 4),
    ("Hereford", "HR", 2), ("Shrewsbury", "SY", 4), ("Chester", "CH", 5), ("Warrington", "WA", 6),
    ("Preston", "PR", 5), ("Blackburn", "BB", 4), ("Bolton", "BL", 4), ("Oldham", "OL", 5),
    ("Stockport", "SK", 6), ("Wigan", "WN", 3), ("Lancaster", "LA", 3), ("Carlisle", "CA", 3),
    ("York", "YO", 5), ("Harrogate", "HG", 2), ("Huddersfield", "HD", 4), ("Halifax", "HX", 2),
    ("Wakefield", "WF", 5), ("Doncaster", "DN", 6), ("Lincoln", "LN", 3), ("Peterborough", "PE", 7),
    ("Northampton", "NN", 7), ("Milton Keynes", "MK", 5), ("Luton", "LU", 3), ("Bedford", "MK", 2),
    ("Watford", "WD", 3), ("St Albans", "AL", 3), ("Chelmsford", "CM", 6), ("Colchester", "CO", 4),
    ("Southend-on-Sea", "SS", 5), ("Romford", "RM", 5), ("Ilford", "IG", 4), ("Croydon", "CR", 4),
    ("Brighton", "BN", 7), ("Canterbury", "CT", 4), ("Maidstone", "ME", 6), ("Tunbridge Wells", "TN", 5),
    ("Guildford", "GU", 7), ("Kingston upon Thames", "KT", 6), ("Sutton", "SM", 2), ("Slough", "SL", 4),
    ("Swindon", "SN", 5), ("Salisbury", "SP", 2), ("Bournemouth", "BH", 5), ("Dorchester", "DT", 2),
    ("Taunton", "TA", 3), ("Truro", "TR", 3), ("Torquay", "TQ", 3), ("Telford", "TF", 2),
    ("Walsall", "WS", 5), ("Dudley", "DY", 4), ("Cardiff", "CF", 8), ("Swansea", "SA", 7),
    ("Newport", "NP", 5), ("Wrexham", "LL", 4), ("Darlington", "DL", 4), ("Durham", "DH", 3),
    ("Middlesbrough", "TS", 6), ("Enfield", "EN", 3), ("Harrow", "HA", 4), ("Uxbridge", "UB", 4),
    ("Twickenham", "TW", 5), ("Dartford", "DA", 4), ("Bromley", "BR", 3), ("Hemel Hempstead", "HP", 4),
    ("Stevenage", "SG", 4), ("Crewe", "CW", 3), ("Redhill", "RH", 4),
]
STREET_SUFFIXES = [
    ("Road", "Rd"), ("Street", "St"), ("Lane", "Ln"), ("Avenue", "Ave"), ("Close", "Cl"),
    ("Drive", "Dr"), ("Way", "Way"), ("Crescent", "Cres"), ("Gardens", "Gdns"), ("Place", "Pl"),
    ("Court", "Ct"), ("Grove", "Gr"), ("Terrace", "Terr"), ("Walk", "Wlk"), ("Hill", "Hill"),
    ("Park", "Pk"), ("View", "Vw"), ("Mews", "Mews"), ("Square", "Sq"), ("Rise", "Rise"),
]
STREET_SUFFIX_WEIGHTS = [30, 25, 15, 12, 12, 8, 6, 6, 6, 4, 4, 4, 4, 2, 3, 3, 2, 2, 2, 2]
STREET_STEMS = [
    "Church", "Station", "Mill", "School", "Park", "Victoria", "Queens", "Kings", "Manor", "Green",
    "Meadow", "Oak", "Ash", "Beech", "Elm", "Willow", "Chestnut", "Maple", "Cedar", "Birch", "Orchard",
    "Grange", "Bridge", "Castle", "Abbey", "Priory", "Chapel", "Market", "High", "New", "Albert",
    "Windsor", "York", "Clarence", "Nelson", "Wellington", "Highfield", "Springfield", "Fairfield",
    "Mount", "Hillside", "Brook", "Riverside", "Hawthorn", "Holly", "Rowan", "Sycamore", "Lime",
]
NICKNAMES = {
    "William": ["Bill", "Will", "Billy"], "Robert": ["Bob", "Rob", "Bobby"], "Richard": ["Rich", "Richie", "Dick"],
    "James": ["Jim", "Jimmy", "Jamie"], "John": ["Jack", "Johnny"], "Thomas": ["Tom", "Tommy"],
    "Michael": ["Mike", "Mick"], "Christopher": ["Chris"], "Anthony": ["Tony"], "Edward": ["Ed", "Ted", "Eddie"],
    "Alexander": ["Alex", "Sandy"], "Daniel": ["Dan", "Danny"], "David": ["Dave"], "Andrew": ["Andy", "Drew"],
    "Stephen": ["Steve"], "Steven": ["Steve"], "Matthew": ["Matt"], "Joseph": ["Joe"], "Samuel": ["Sam"],
    "Benjamin": ["Ben"], "Nicholas": ["Nick"], "Peter": ["Pete"], "Timothy": ["Tim"], "Philip": ["Phil"],
    "Gregory": ["Greg"], "Jonathan": ["Jon"], "Frederick": ["Fred"], "Henry": ["Harry"], "Charles": ["Charlie"],
    "Ronald": ["Ron"], "Donald": ["Don"], "Kenneth": ["Ken"], "Gerald": ["Gerry"], "Terence": ["Terry"],
    "Lawrence": ["Larry"], "Leonard": ["Len"], "Raymond": ["Ray"], "Joshua": ["Josh"], "Nathan": ["Nat"],
    "Elizabeth": ["Liz", "Beth", "Lizzie"], "Margaret": ["Maggie", "Peggy", "Meg"], "Catherine": ["Cathy", "Kate"],
    "Katherine": ["Kate", "Kathy"], "Jennifer": ["Jenny", "Jen"], "Patricia": ["Pat", "Trish"],
    "Susan": ["Sue", "Susie"], "Deborah": ["Debbie", "Deb"], "Rebecca": ["Becky", "Becca"],
    "Victoria": ["Vicky", "Tori"], "Alexandra": ["Alex"], "Charlotte": ["Charlie", "Lottie"],
    "Jacqueline": ["Jackie"], "Kimberley": ["Kim"], "Samantha": ["Sam"], "Abigail": ["Abby"],
    "Eleanor": ["Ellie"], "Josephine": ["Jo"], "Joanne": ["Jo"], "Gillian": ["Gill"], "Christine": ["Chris"],
    "Pamela": ["Pam"], "Sandra": ["Sandy"], "Amanda": ["Mandy"], "Jessica": ["Jess"], "Natalie": ["Nat"],
    "Stephanie": ["Steph"], "Caroline": ["Carol"], "Frances": ["Fran"], "Judith": ["Judy"], "Dorothy": ["Dot"],
}
LETTERS = string.ascii_lowercase
INWARD_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"  # the inward code never uses C I K M O V


def zipf_weights(n, offset=8.0):
    return [1.0 / (rank + offset) for rank in range(n)]


class Names:
    """First names by sex and surnames, drawn by origin as the UK has them."""

    def __init__(self):
        gb_last = list(GB.last_names.keys())
        self.origins = [
            # (weight, male first names, female first names, surnames, surname weights)
            (66, GB.first_names_male, GB.first_names_female, gb_last, list(GB.last_names.values())),
            (14, IE.first_names_male, IE.first_names_female, list(IE.last_names), None),
            (6, NZ.first_names_male, NZ.first_names_female, list(NZ.last_names), None),
            (7, IN.first_names_male, IN.first_names_female, list(IN.last_names), None),
            (3, NG.first_names_male, NG.first_names_female, list(NG.last_names), None),
            (2, IT.first_names_male, IT.first_names_female, list(IT.last_names), None),
            (2, DE.first_names_male, DE.first_names_female, list(DE.last_names), None),
        ]
        self.origin_weights = [o[0] for o in self.origins]
        self.cum = []
        for _, male, female, last, last_w in self.origins:
            male, female = list(male), list(female)
            # en_GB's lists are in order of frequency; the others are alphabetical, so uniform.
            mw = zipf_weights(len(male)) if male is GB.first_names_male else None
            fw = zipf_weights(len(female)) if female is GB.first_names_female else None
            self.cum.append((male, cumulative(mw, len(male)), female, cumulative(fw, len(female)),
                             last, cumulative(last_w, len(last))))

    def origin(self, rng):
        return rng.choices(range(len(self.origins)), weights=self.origin_weights)[0]

    def first(self, rng, origin, sex):
        male, mc, female, fc, _, _ = self.cum[origin]
        names, cum = (male, mc) if sex == "M" else (female, fc)
        return rng.choices(names, cum_weights=cum)[0]

    def surname(self, rng, origin):
        _, _, _, _, last, lc = self.cum[origin]
        return rng.choices(last, cum_weights=lc)[0]


def cumulative(weights, n):
    weights = weights or [1.0] * n
    total, out = 0.0, []
    for w in weights:
        total += w
        out.append(total)
    return out


class Places:
    """Streets in post towns, each with one to three postcodes along it."""

    def __init__(self, rng, count):
        town_cum = cumulative([t[2] for t in TOWNS], len(TOWNS))
        suffix_cum = cumulative(STREET_SUFFIX_WEIGHTS, len(STREET_SUFFIXES))
        surnames = list(GB.last_names.keys())
        self.streets = []
        for _ in range(count):
            town, area, _ = rng.choices(TOWNS, cum_weights=town_cum)[0]
            stem = rng.choice(STREET_STEMS) if rng.random() < 0.5 else rng.choice(surnames)
            suffix = rng.choices(STREET_SUFFIXES, cum_weights=suffix_cum)[0]
            district = f"{area}{rng.randint(1, 30 if len(area) == 2 else 20)}"
            postcodes = [
                f"{district} {rng.randint(0, 9)}{rng.choice(INWARD_LETTERS)}{rng.choice(INWARD_LETTERS)}"
                for _ in range(rng.randint(1, 3))
            ]
            self.streets.append((stem, suffix, town, postcodes, [0]))

    def household(self, rng):
        """A new address: the next house number on a random street."""
        stem, suffix, town, postcodes, used = rng.choice(self.streets)
        used[0] += 1 + (rng.random() < 0.3)
        number = used[0]
        postcode = postcodes[min(len(postcodes) - 1, (number - 1) * len(postcodes) // 80)]
        flat = f"Flat {rng.randint(1, 12)}, " if rng.random() < 0.1 else ""
        return {"flat": flat, "number": number, "stem": stem, "suffix": suffix, "town": town,
                "postcode": postcode}


def address_text(a, abbreviate=False, town=True):
    suffix = a["suffix"][1] if abbreviate else a["suffix"][0]
    text = f"{a['flat']}{a['number']} {a['stem']} {suffix}"
    return f"{text}, {a['town']}" if town else text


class NhsNumbers:
    """Unique NHS numbers from nhs-number's generator, in its synthetic (never issued) range."""

    def __init__(self, seed):
        self.used = set()
        self.pool = []
        random.seed(seed)  # nhs_number.generate draws from the module-level generator

    def take(self):
        while not self.pool:
            for n in nhs_number.generate(valid=True, for_region=nhs_number.REGION_SYNTHETIC, quantity=50_000):
                if n not in self.used:
                    self.used.add(n)
                    self.pool.append(n)
            self.pool.reverse()
        return self.pool.pop()


def birth_date(rng, age_low, age_high):
    age_days = rng.randint(int(age_low * 365.25), int(age_high * 365.25))
    return TODAY - timedelta(days=age_days)


def adult_age(rng):
    # Roughly the UK's adult age pyramid: flat to 60, thinning after.
    band = rng.choices([(18, 40), (40, 60), (60, 75), (75, 90), (90, 102)], weights=[36, 33, 19, 10, 2])[0]
    return rng.uniform(*band)


def make_person(rng, names, nhs, origin, sex, surname, dob, address):
    given = [names.first(rng, origin, sex)]
    r = rng.random()
    if r < 0.45:
        given.append(names.first(rng, origin, sex))
    elif r < 0.50:
        given += [names.first(rng, origin, sex), names.first(rng, origin, sex)]
    given = dedupe_names(given)
    return {
        "nhs_number": nhs.take() if rng.random() < 0.97 else "",
        "given": given,
        "surname": surname,
        "dob": dob,
        "sex": sex if rng.random() > 0.002 else "U",
        "address": address,
        "origin": origin,
    }


def dedupe_names(names):
    out = []
    for n in names:
        if n not in out:
            out.append(n)
    return out


def household(rng, names, nhs, places):
    """One household's people: one or two adults and their children, sharing an address."""
    size = rng.choices([1, 2, 3, 4, 5, 6], weights=[30, 34, 15, 13, 6, 2])[0]
    address = places.household(rng)
    origin = names.origin(rng)
    surname = names.surname(rng, origin)
    if rng.random() < 0.03:
        surname = f"{surname}-{names.surname(rng, origin)}"
    first_age = adult_age(rng)
    first_sex = rng.choice("MF")
    people = [make_person(rng, names, nhs, origin, first_sex, surname, birth_date(rng, first_age, first_age), address)]
    if size == 1:
        return people
    partner_age = first_age + rng.uniform(-6, 6)
    if partner_age < 18:
        partner_age = 18 + rng.uniform(0, 4)
    partner_sex = ("F" if first_sex == "M" else "M") if rng.random() < 0.95 else first_sex
    partner_surname = surname if rng.random() < 0.75 else names.surname(rng, origin)
    people.append(make_person(rng, names, nhs, origin, partner_sex, partner_surname,
                              birth_date(rng, partner_age, partner_age), address))
    youngest_parent = min(first_age, partner_age)
    child_surname = surname
    if partner_surname != surname and rng.random() < 0.3:
        child_surname = f"{surname}-{partner_surname}"
    previous = None
    for _ in range(size - 2):
        if previous is not None and rng.random() < 0.03:
            dob = previous  # twins
        else:
            dob = birth_date(rng, 0, min(25.0, youngest_parent - 16))
        previous = dob
        people.append(make_person(rng, names, nhs, origin, rng.choice("MF"), child_surname, dob, address))
    return people


def row(pid, p, address_style=(False, True)):
    a = p["address"]
    return {
        "id": pid,
        "nhs_number": p["nhs_number"],
        "given_name": " ".join(p["given"]),
        "surname": p["surname"],
        "date_of_birth": p["dob"].isoformat() if p["dob"] else "",
        "sex": p["sex"],
        "address": address_text(a, *address_style) if a else "",
        "postcode": a["postcode"] if a else "",
    }


def typo(rng, text):
    """One keying error: a letter substituted, dropped, doubled or swapped with the next."""
    if len(text) < 3:
        return text
    i = rng.randrange(1, len(text))
    kind = rng.randrange(4)
    if kind == 0:
        c = rng.choice(LETTERS)
        c = c.upper() if text[i].isupper() else c
        return text[:i] + c + text[i + 1:] if c != text[i].lower() else text[:i] + text[i + 1:]
    if kind == 1:
        return text[:i] + text[i + 1:]
    if kind == 2:
        return text[:i] + text[i] + text[i:]
    if i + 1 < len(text) and text[i] != text[i + 1]:
        return text[:i] + text[i + 1] + text[i] + text[i + 2:]
    return text[:i] + text[i + 1:]


def postcode_typo(rng, postcode):
    chars = list(postcode)
    positions = [i for i, c in enumerate(chars) if c != " "]
    i = rng.choice(positions)
    chars[i] = rng.choice(string.digits) if chars[i].isdigit() else rng.choice(string.ascii_uppercase)
    return "".join(chars)


def corrupt(rng, person, names, places):
    """A copy of a person's record as another source might hold it, and what was changed."""
    p = dict(person)
    p["given"] = list(person["given"])
    changes = []
    out_address, abbreviate, town, postcode = person["address"], False, True, None

    def happens(probability, name):
        if rng.random() < probability:
            changes.append(name)
            return True
        return False

    if p["nhs_number"] and happens(0.25, "no-nhs-number"):
        p["nhs_number"] = ""
    if len(p["given"]) > 1 and happens(0.3, "middle-names-dropped"):
        p["given"] = p["given"][:1]
    first = p["given"][0]
    if first in NICKNAMES and happens(0.25, "nickname"):
        p["given"][0] = rng.choice(NICKNAMES[first])
    elif happens(0.06, "given-name-typo"):
        p["given"][0] = typo(rng, first)
    if "-" in p["surname"] and happens(0.4, "one-part-of-double-surname"):
        p["surname"] = rng.choice(p["surname"].split("-"))
    elif p["sex"] == "F" and happens(0.03, "surname-changed"):
        p["surname"] = names.surname(rng, p["origin"])
    elif happens(0.06, "surname-typo"):
        p["surname"] = typo(rng, p["surname"])
    dob = p["dob"]
    if dob.day <= 12 and dob.day != dob.month and happens(0.04, "day-month-swapped"):
        p["dob"] = date(dob.year, dob.day, dob.month)
    elif happens(0.02, "date-digit-wrong"):
        p["dob"] = date_digit_wrong(rng, dob)
    elif happens(0.01, "no-date-of-birth"):
        p["dob"] = None
    if p["sex"] != "U" and happens(0.03, "no-sex"):
        p["sex"] = ""
    if happens(0.08, "moved"):
        out_address = places.household(rng)
    elif happens(0.03, "no-address"):
        out_address = None
    else:
        abbreviate = happens(0.15, "street-abbreviated")
        town = not happens(0.15, "no-town")
        if happens(0.04, "postcode-typo"):
            postcode = postcode_typo(rng, out_address["postcode"])
        elif happens(0.03, "no-postcode"):
            postcode = ""
        elif happens(0.1, "postcode-unspaced"):
            postcode = out_address["postcode"].replace(" ", "").lower()
    p["address"] = out_address
    r = row("", p, (abbreviate, town))
    if postcode is not None:
        r["postcode"] = postcode
    if happens(0.1, "surname-upper-case"):
        r["surname"] = r["surname"].upper()
    return r, changes


def date_digit_wrong(rng, dob):
    for _ in range(20):
        part = rng.randrange(3)
        try:
            if part == 0:
                candidate = date(dob.year + rng.choice([-10, -1, 1, 10]), dob.month, dob.day)
            elif part == 1:
                candidate = date(dob.year, rng.randint(1, 12), dob.day)
            else:
                candidate = date(dob.year, dob.month, rng.randint(1, 28))
        except ValueError:
            continue
        if candidate != dob and candidate <= TODAY:
            return candidate
    return dob


def absent_person(rng, people, names, nhs, places):
    """Someone not in the index: a new person, a new household member, or a twin."""
    kind = rng.choices(["new-person", "new-household-member", "twin"], weights=[50, 35, 15])[0]
    if kind == "new-person":
        p = rng.choice(household(rng, names, nhs, places))
    else:
        relative = rng.choice(people)
        sex = rng.choice("MF")
        if kind == "twin":
            dob = relative["dob"]
        else:
            dob = birth_date(rng, 0, 90)
        p = make_person(rng, names, nhs, relative["origin"], sex, relative["surname"], dob, relative["address"])
        while p["given"][0] in relative["given"]:
            p["given"] = [names.first(rng, relative["origin"], sex)]
    if p["nhs_number"] and rng.random() < 0.25:
        p["nhs_number"] = ""
    return row("", p), [kind]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, required=True, help="people in people.csv")
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--probes", type=int, default=10_000, help="rows of probes.csv")
    parser.add_argument("--absent", type=float, default=0.15, help="share of probes not in people.csv")
    parser.add_argument("outdir", type=Path)
    args = parser.parse_args()
    started = time.time()
    rng = random.Random(args.seed)
    names = Names()
    nhs = NhsNumbers(args.seed)
    places = Places(rng, max(10, args.count // 40))

    people = []
    while len(people) < args.count:
        people.extend(household(rng, names, nhs, places))
    del people[args.count:]
    rng.shuffle(people)  # households spread through the file, as registration order would

    args.outdir.mkdir(parents=True, exist_ok=True)
    ids = [f"P{i:07d}" for i in range(1, len(people) + 1)]
    with open(args.outdir / "people.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(row(pid, p) for pid, p in zip(ids, people))

    with open(args.outdir / "probes.csv", "w", newline="") as f, \
            open(args.outdir / "probes_truth.csv", "w", newline="") as t:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        tw = csv.writer(t)
        tw.writerow(["probe_id", "person_id", "changes"])
        absent = 0
        for i in range(1, args.probes + 1):
            probe_id = f"Q{i:07d}"
            if rng.random() < args.absent:
                r, changes = absent_person(rng, people, names, nhs, places)
                person_id = ""
                absent += 1
            else:
                k = rng.randrange(len(people))
                r, changes = corrupt(rng, people[k], names, places)
                person_id = ids[k]
            r["id"] = probe_id
            w.writerow(r)
            tw.writerow([probe_id, person_id, " ".join(changes)])
    print(f"{len(people)} people, {args.probes} probes ({absent} of people not in people.csv) "
          f"in {args.outdir} ({time.time() - started:.1f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
