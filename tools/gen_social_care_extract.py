#!/usr/bin/env python3
"""Generates examples/social-care/extract.csv: a synthetic adult social care extract shaped like a
council's case management system hands over, for `concord import-csv` (docs/social-care-import.md).

Deterministic (a fixed seed, the standard library only): running it again writes the same file.
Every person is made up; NHS numbers are in the 999 test range with a valid modulus-11 check digit.

Usage: python3 tools/gen_social_care_extract.py [OUT.csv] [--rows N]
"""

import csv
import random
import sys
from pathlib import Path

FORENAMES_F = ["Margaret", "Joan", "Dorothy", "Patricia", "Irene", "Sheila", "Brenda", "Valerie",
               "Eileen", "Maureen", "Jean", "Doreen", "Sandra", "Pauline", "Aisha", "Priya"]
FORENAMES_M = ["John", "Peter", "David", "Brian", "Kenneth", "Roy", "Derek", "Alan", "Raymond",
               "Terence", "Colin", "Dennis", "Ravi", "Tariq", "Gareth", "Stanley"]
SURNAMES = ["Smith", "Jones", "Taylor", "Brown", "Williams", "Wilson", "Johnson", "Davies",
            "Patel", "Robinson", "Wright", "Thompson", "Evans", "Walker", "White", "Roberts",
            "Green", "Hall", "Khan", "Lewis", "Clarke", "Jackson", "Wood", "Hughes"]
STREETS = ["High Street", "Church Lane", "Station Road", "Mill Lane", "Victoria Road",
           "Park Avenue", "Queens Road", "The Crescent", "Orchard Close", "Manor Way"]
WORKERS = ["Sam Okafor (Social Worker)", "Helen Marsh (Social Worker)",
           "Imran Siddiqui (Occupational Therapist)", "Claire Boyd (Care Coordinator)",
           "Tom Ashworth (Social Worker)", "Nadia Rahman (Care Coordinator)"]
PACKAGES = ["Home care: 2 visits a day, personal care", "Home care: 4 visits a day, double-handed",
            "Day centre: 3 days a week", "Residential care", "Nursing care",
            "Direct payment: personal assistant 10 hours a week", "Reablement: 6 weeks",
            "Telecare: pendant alarm and falls sensor", "Meals at home: 7 days a week"]
RELATIONSHIPS_F = ["Daughter", "Wife", "Partner", "Neighbour", "Friend", "Niece"]
RELATIONSHIPS_M = ["Son", "Husband", "Partner", "Neighbour", "Friend", "Nephew"]
STATUSES = ["active"] * 7 + ["finished"] + ["waitlist"]

COLUMNS = ["person_id", "nhs_number", "forename", "surname", "date_of_birth", "sex",
           "address_line", "postcode", "involvement_status", "involvement_start",
           "allocated_worker", "package_description", "package_start", "package_end",
           "package_status", "carer_name", "carer_relationship", "carer_phone",
           "assessment_date", "assessment_score", "needs_eligible", "outcomes_not_achieved",
           "primary_support_reason", "primary_support_reason_text"]

# Primary support reasons as councils report them to NHS England (SALT / CLD), with local codes.
SUPPORT_REASONS = [("PS-PERSONAL", "Physical support: personal care"),
                   ("PS-ACCESS", "Physical support: access and mobility only"),
                   ("MEMORY", "Support with memory and cognition"),
                   ("MENTAL-HEALTH", "Mental health support"),
                   ("LEARNING-DISABILITY", "Learning disability support"),
                   ("SOCIAL", "Social support")]


def nhs_number(rng, used):
    """A 999xxxxxxx number whose tenth digit is the modulus-11 check digit (never 10)."""
    while True:
        digits = [9, 9, 9] + [rng.randrange(10) for _ in range(6)]
        total = sum(d * w for d, w in zip(digits, range(10, 1, -1)))
        check = 11 - total % 11
        if check == 11:
            check = 0
        if check == 10:
            continue
        number = "".join(map(str, digits)) + str(check)
        if number not in used:
            used.add(number)
            return number


def day(rng, first_year, last_year):
    year = rng.randint(first_year, last_year)
    month = rng.randint(1, 12)
    return rng.randint(1, 28), month, year


def uk(d):
    return "%02d/%02d/%04d" % d


def postcode(rng):
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    return "LS%d %d%s%s" % (rng.randint(1, 29), rng.randint(1, 9), rng.choice(letters),
                            rng.choice(letters))


def rows(count):
    rng = random.Random(20261122)
    # The Care Act assessment answers come from a second generator, so that the columns older
    # versions of this script wrote keep their values.
    answers = random.Random(20261203)
    used = set()
    for i in range(count):
        sex = rng.choice("MMFFFU" if i % 17 == 0 else "MF")
        forename = rng.choice(FORENAMES_F if sex == "F" else FORENAMES_M)
        surname = rng.choice(SURNAMES)
        status = rng.choice(STATUSES)
        start = day(rng, 2018, 2025)
        package_status = "completed" if status == "finished" else "active"
        package_end = uk(day(rng, start[2] + 1, 2026)) if status == "finished" else ""
        has_carer = rng.random() < 0.6
        carer_surname = surname if rng.random() < 0.8 else rng.choice(SURNAMES)
        carer_female = rng.random() < 0.6
        carer_forename = rng.choice(FORENAMES_F if carer_female else FORENAMES_M)
        relationship = rng.choice(RELATIONSHIPS_F if carer_female else RELATIONSHIPS_M)
        assessed = rng.random() < 0.85
        eligible = answers.random() < 0.8
        reason = answers.choice(SUPPORT_REASONS)
        outcomes = answers.randint(2, 10) if eligible else answers.randint(0, 1)
        yield {
            "person_id": "ASC%06d" % (100000 + i * 7),
            "nhs_number": nhs_number(rng, used),
            "forename": forename,
            "surname": surname,
            "date_of_birth": uk(day(rng, 1925, 2004)),
            "sex": sex,
            "address_line": "%d %s" % (rng.randint(1, 180), rng.choice(STREETS)),
            "postcode": postcode(rng),
            "involvement_status": status,
            "involvement_start": uk(start),
            "allocated_worker": rng.choice(WORKERS),
            "package_description": rng.choice(PACKAGES),
            "package_start": uk(start),
            "package_end": package_end,
            "package_status": package_status,
            "carer_name": ("%s %s" % (carer_forename, carer_surname)) if has_carer else "",
            "carer_relationship": relationship if has_carer else "",
            "carer_phone": ("07700 9%05d" % rng.randrange(100000)) if has_carer else "",
            "assessment_date": uk(day(rng, start[2], 2026)) if assessed else "",
            "assessment_score": str(rng.randint(0, 100)) if assessed else "",
            "needs_eligible": ("Y" if eligible else "N") if assessed else "",
            "outcomes_not_achieved": str(outcomes) if assessed else "",
            "primary_support_reason": reason[0] if assessed else "",
            "primary_support_reason_text": reason[1] if assessed else "",
        }


def main(argv):
    out = Path(__file__).resolve().parent.parent / "examples" / "social-care" / "extract.csv"
    count = 200
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--rows":
            count = int(args.pop(0))
        else:
            out = Path(arg)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        for row in rows(count):
            writer.writerow(row)
    print("wrote %d rows to %s" % (count, out))


if __name__ == "__main__":
    main(sys.argv[1:])
