#!/usr/bin/env python3
"""Generates Concord's FHIR R4 tables from the official base StructureDefinitions.

Usage: tools/gen_fhir_tables.py PACKAGE_DIR

PACKAGE_DIR is the extracted `hl7.fhir.r4.examples` (or `hl7.fhir.r4.core`) package, for example
target/testdata/fhir-r4-examples/package (fetched by tools/fetch-testdata.sh). Writes:

  crates/fhir/src/resource_types.rs      the sorted list of concrete resource types
  crates/fhir/src/structure_generated.rs the element table read by crates/fhir/src/structure.rs
  crates/fhir/src/valuesets_generated.rs the code lists of the required bindings it links to

Only the standard library is used, and the output depends only on the package contents, so running
the script twice gives byte-identical files.

The element table is one static slice. The first entries are the roots of every resource and
complex datatype, sorted by name so a type is found by binary search. Every element that has
children of its own (the roots, inline BackboneElement/Element children, and contentReference
elements, which borrow the children of the element they point at) names a contiguous range of the
slice holding its direct children sorted by JSON property name. So does every other non-choice
element whose one type is a complex datatype: it names its datatype's range.

Every element of type `code` with a `required` binding links to the code list of its ValueSet when
that ValueSet is enumerable from the package alone (see `enumerate_value_set`); each list is
emitted once, as a named static, in the ValueSet's own order and sorted for binary search.
"""

import json
import os
import re
import sys

SYSTEM_PREFIX = "http://hl7.org/fhirpath/System."
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"


def load_definitions(package_dir):
    """Returns (specializations, aliases): the base type StructureDefinitions and the constraint
    datatypes (SimpleQuantity, MoneyQuantity) that are used as type names but share their base's
    structure."""
    specializations = {}
    aliases = {}
    for name in sorted(os.listdir(package_dir)):
        if not (name.startswith("StructureDefinition-") and name.endswith(".json")):
            continue
        with open(os.path.join(package_dir, name), encoding="utf-8") as f:
            sd = json.load(f)
        kind = sd.get("kind")
        if kind not in ("resource", "complex-type"):
            continue
        derivation = sd.get("derivation")
        if derivation == "constraint":
            # Constraint datatypes named like a type (SimpleQuantity) are used as type codes in
            # profiles; resource profiles and extension definitions are not types.
            if kind == "complex-type" and sd["type"] != "Extension" and re.fullmatch(r"[A-Z][A-Za-z]*", sd["id"]):
                aliases[sd["id"]] = sd["type"]
            continue
        specializations[sd["type"]] = sd
    return specializations, aliases


def load_terminology(package_dir):
    """Returns (value_sets, code_systems): the package's ValueSet and CodeSystem resources by
    canonical URL."""
    value_sets, code_systems = {}, {}
    for name in sorted(os.listdir(package_dir)):
        for prefix, into in (("ValueSet-", value_sets), ("CodeSystem-", code_systems)):
            if name.startswith(prefix) and name.endswith(".json"):
                with open(os.path.join(package_dir, name), encoding="utf-8") as f:
                    resource = json.load(f)
                if resource.get("url"):
                    into.setdefault(resource["url"], resource)
    return value_sets, code_systems


def flatten_concepts(concepts):
    """The codes of a CodeSystem's concepts, nested (hierarchical) ones included, in order."""
    for concept in concepts:
        yield concept["code"]
        yield from flatten_concepts(concept.get("concept", []))


def enumerate_value_set(url, value_sets, code_systems):
    """Returns (codes, None) for a ValueSet whose members can be listed from the package alone, the
    codes in the order the definitions give them, or (None, reason) for one that cannot.

    Enumerable: a `compose` whose includes each either list their concepts (from any system, UCUM
    included: the list is the membership) or name a whole CodeSystem that is in the package with
    `content: complete`, whose concepts are flattened including nested ones. Abstract
    (`notSelectable`) concepts stay in: they are members of the value set, and rejecting them is a
    rule about their use that this table does not encode.

    Skipped, because membership is not a finite list the package holds: a ValueSet not in the
    package or without a compose; an include of a whole system the package does not define
    (urn:ietf:bcp:13 mime types, urn:iso:std:iso:4217 currencies, BCP-47 languages, UCUM) or
    defines only partly (`content` not-present, example, fragment or supplement); includes with a
    `filter` (is-a and regex need the system's semantics) or that import other ValueSets; and any
    `exclude`. Skipped elements simply keep only the lexical `code` check."""
    vs = value_sets.get(url)
    if vs is None:
        return None, "not in the package"
    compose = vs.get("compose")
    if not compose or not compose.get("include"):
        return None, "no compose"
    if compose.get("exclude"):
        return None, "has an exclude"
    codes = []
    for include in compose["include"]:
        if include.get("filter"):
            return None, f"filters {include.get('system')}"
        if include.get("valueSet"):
            return None, "imports other ValueSets"
        system = include.get("system")
        if not system:
            return None, "an include without a system"
        if include.get("concept"):
            codes += [c["code"] for c in include["concept"]]
            continue
        cs = code_systems.get(system)
        if cs is None:
            return None, f"includes all of {system}, which the package does not define"
        if cs.get("content") != "complete":
            return None, f"includes all of {system}, whose content is {cs.get('content')}"
        codes += list(flatten_concepts(cs.get("concept", [])))
    codes = list(dict.fromkeys(codes))
    if not codes:
        return None, "no codes"
    return codes, None


def resolve_bindings(nodes, value_sets, code_systems):
    """Links every `code` element with a required binding to its enumerable ValueSet, setting
    node["binding"] to the ValueSet's URL. Returns (enumerable, skipped): the code lists by URL and
    the reasons of the ValueSets left out, by URL."""
    enumerable, skipped = {}, {}
    for node in nodes.values():
        url = node.pop("required_vs", None)
        if url is None:
            continue
        if url not in enumerable and url not in skipped:
            codes, reason = enumerate_value_set(url, value_sets, code_systems)
            if codes is None:
                skipped[url] = reason
            else:
                enumerable[url] = codes
        if url in enumerable:
            node["binding"] = url
    return enumerable, skipped


def rust_ident(url, taken):
    """A SCREAMING_SNAKE static name for a ValueSet, from the last segment of its URL."""
    base = re.sub(r"[^A-Za-z0-9]+", "_", url.rstrip("/").rsplit("/", 1)[-1]).strip("_").upper() or "VS"
    if base[0].isdigit():
        base = "VS_" + base
    name, n = base, 2
    while name in taken:
        name, n = f"{base}_{n}", n + 1
    taken.add(name)
    return name


def type_codes(element, resource_names):
    """The FHIR type codes of an element, with the FHIRPath system types of the R4 snapshots mapped
    back to the FHIR primitive they stand for."""
    codes = []
    for t in element.get("type", []):
        code = t["code"]
        if code.startswith(SYSTEM_PREFIX):
            fhir_type = [x.get("valueUrl") for x in t.get("extension", []) if x.get("url") == FHIR_TYPE_EXT]
            code = fhir_type[0] if fhir_type else "string"
        if code not in codes:
            codes.append(code)
    base_path = element.get("base", {}).get("path")
    parts = element["path"].split(".")
    if base_path == "Resource.id" and len(parts) == 2 and parts[0] in resource_names:
        # The R4 snapshots give Resource.id the FHIRPath type System.String with a `string`
        # extension, but resource.html defines the logical id as the `id` primitive.
        codes = ["id"]
    return codes


def rust_str(s):
    return json.dumps(s)


def build(specializations, aliases, value_sets, code_systems):
    resource_names = {n for n, sd in specializations.items() if sd["kind"] == "resource"}
    # Per type: the snapshot elements by path, and each path's direct children in snapshot order.
    nodes = {}  # path -> dict
    order = []
    for type_name in sorted(specializations):
        sd = specializations[type_name]
        for el in sd["snapshot"]["element"]:
            path = el["path"]
            if path in nodes:
                raise SystemExit(f"duplicate element path {path}")
            mx = el.get("max", "1")
            if mx not in ("1", "*"):
                raise SystemExit(f"{path}: unexpected max {mx!r}")
            cref = el.get("contentReference")
            binding = el.get("binding", {})
            node_types = type_codes(el, resource_names) if "." in path else []
            required_vs = None
            if node_types == ["code"] and binding.get("strength") == "required" and binding.get("valueSet"):
                required_vs = binding["valueSet"].split("|", 1)[0]
            nodes[path] = {
                "path": path,
                "name": path.rsplit(".", 1)[-1].removesuffix("[x]"),
                "min": int(el.get("min", 0)),
                "many": mx == "*",
                "summary": bool(el.get("isSummary", False)),
                "types": node_types,
                "cref": cref[1:] if cref else None,
                "children": [],
                "required_vs": required_vs,
                "binding": None,
            }
            order.append(path)
            if "." in path:
                parent = path.rsplit(".", 1)[0]
                if parent not in nodes:
                    raise SystemExit(f"{path}: parent {parent} not defined before it")
                nodes[parent]["children"].append(path)
    enumerable, skipped = resolve_bindings(nodes, value_sets, code_systems)
    for path, node in nodes.items():
        if node["cref"] and node["cref"] not in nodes:
            raise SystemExit(f"{path}: contentReference to unknown {node['cref']}")

    roots = sorted(list(specializations) + list(aliases))
    index = {}  # path -> position in the output table (roots and child blocks)
    table = []  # list of (node, alias_name or None)
    for root in roots:
        index[root] = len(table)
        table.append(nodes[aliases.get(root, root)] | ({"path": root, "name": root} if root in aliases else {}))
    # Child blocks, breadth first, each sorted by JSON property name.
    block = {}  # path -> (start, len)
    queue = [r for r in sorted(specializations)]
    while queue:
        path = queue.pop(0)
        children = sorted(nodes[path]["children"], key=lambda p: nodes[p]["name"])
        block[path] = (len(table), len(children))
        for child in children:
            index[child] = len(table)
            table.append(nodes[child])
        queue.extend(c for c in children if nodes[c]["children"])

    def children_of(node):
        """The range of an element's members: its own block, its contentReference's, or, for a
        non-choice element of one complex datatype, the datatype's, so the validator follows
        HumanName or Quantity without a lookup by name."""
        if node["path"] in aliases:
            return block[aliases[node["path"]]]
        if node["cref"]:
            return block[node["cref"]]
        if node["path"] in block:
            return block[node["path"]]
        types = node["types"]
        if len(types) == 1 and not node["path"].endswith("[x]"):
            datatype = aliases.get(types[0], types[0])
            if datatype in specializations and datatype not in resource_names:
                return block[datatype]
        return (0, 0)

    for node in table:
        names = [nodes[c]["name"] for c in node["children"]]
        if len(names) != len(set(names)):
            raise SystemExit(f"{node['path']}: duplicate child names")
    return roots, table, children_of, resource_names, enumerable, skipped


def write_value_sets(path, enumerable, skipped):
    """Writes one static per enumerable ValueSet; returns the static names by URL."""
    taken = set()
    names = {url: rust_ident(url, taken) for url in sorted(enumerable)}
    lines = [
        "//! Generated by `tools/gen_fhir_tables.py` from the FHIR R4 4.0.1 ValueSets and CodeSystems;",
        "//! do not edit. Owns: the code lists of the enumerable ValueSets that `code` elements are bound",
        "//! to with strength `required` (see [`super::ValueSet`]). Does not: interpret them.",
        "//!",
        f"//! {len(enumerable)} ValueSets are listed. Skipped, as not enumerable from the package alone:",
    ]
    for url in sorted(skipped):
        lines.append(f"//! - {url}: {skipped[url]}")
    lines += [
        "",
        "use super::ValueSet;",
        "",
        "/// Every ValueSet below, sorted by URL.",
        "#[rustfmt::skip]",
        "pub(super) static ALL: &[&ValueSet] = &[",
    ]
    lines += [f"    &{names[url]}," for url in sorted(enumerable)]
    lines.append("];")
    for url in sorted(enumerable):
        codes = enumerable[url]
        listed = ", ".join(rust_str(c) for c in codes)
        by_bytes = ", ".join(rust_str(c) for c in sorted(codes, key=lambda c: c.encode("utf-8")))
        lines += [
            "",
            "#[rustfmt::skip]",
            f"pub(super) static {names[url]}: ValueSet = ValueSet {{ url: {rust_str(url)},",
            f"    codes: &[{listed}],",
            f"    sorted: &[{by_bytes}] }};",
        ]
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    return names


def write_structure(path, roots, table, children_of, vs_names):
    lines = [
        "//! Generated by `tools/gen_fhir_tables.py` from the FHIR R4 4.0.1 base StructureDefinitions;",
        "//! do not edit. Owns: the element table described in [`super`]. Does not: interpret it.",
        "",
        "use super::valuesets as vs;",
        "use super::{ElementDef, def};",
        "",
        f"/// The number of type roots at the start of [`ELEMENTS`], sorted by type name.",
        f"pub(super) const ROOTS: usize = {len(roots)};",
        "",
        "/// Every element of every R4 resource and complex datatype.",
        "#[rustfmt::skip]",
        "pub(super) static ELEMENTS: &[ElementDef] = &[",
    ]
    for node in table:
        start, count = children_of(node)
        types = ", ".join(rust_str(t) for t in node["types"])
        cref = f"Some({rust_str(node['cref'])})" if node["cref"] else "None"
        binding = f"Some(&vs::{vs_names[node['binding']]})" if node.get("binding") else "None"
        lines.append(
            f"    def({rust_str(node['path'])}, {rust_str(node['name'])}, {node['min']}, {str(node['many']).lower()}, {str(node['summary']).lower()}, "
            f"&[{types}], {cref}, {start}, {count}, {binding}),"
        )
    lines.append("];")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def write_resource_types(path, resource_names, specializations):
    concrete = sorted(n for n in resource_names if not specializations[n].get("abstract"))
    lines = [
        f"//! The {len(concrete)} concrete resource types of FHIR R4 4.0.1, generated from the base StructureDefinitions",
        "//! (`tools/gen_fhir_tables.py`). Sorted, so membership is a binary search.",
        "",
        "/// Every concrete R4 resource type, sorted.",
        "pub const RESOURCE_TYPES: &[&str] = &[",
    ]
    lines += [f"    {rust_str(n)}," for n in concrete]
    lines.append("];")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")


def main():
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    specializations, aliases = load_definitions(sys.argv[1])
    if not specializations:
        raise SystemExit(f"no StructureDefinitions found in {sys.argv[1]}")
    value_sets, code_systems = load_terminology(sys.argv[1])
    roots, table, children_of, resource_names, enumerable, skipped = build(
        specializations, aliases, value_sets, code_systems
    )
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "crates", "fhir", "src")
    vs_names = write_value_sets(os.path.join(src, "valuesets_generated.rs"), enumerable, skipped)
    write_structure(os.path.join(src, "structure_generated.rs"), roots, table, children_of, vs_names)
    write_resource_types(os.path.join(src, "resource_types.rs"), resource_names, specializations)
    bound = sum(1 for node in table if node.get("binding"))
    print(
        f"{len(roots)} types, {len(table)} table entries, {bound} with a required code binding; "
        f"{len(enumerable)} ValueSets enumerable, {len(skipped)} skipped",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
