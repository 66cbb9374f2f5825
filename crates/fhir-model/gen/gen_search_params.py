#!/usr/bin/env python3
"""Generate crates/fhir-model/data/search-parameters.json from the FHIR R4 specification.

Reads the R4 SearchParameter bundle and the Patient CompartmentDefinition (dev-time inputs
only; the crate embeds the generated file and never reads the spec at build/test/run time)
and writes a compact table holding:

* ``params``: every search parameter of the searchable resource types plus the common
  ``Resource`` parameters that are backed by the index, one entry per (resource, code),
  with the FHIRPath expression reduced to that resource type's alternatives;
* ``compartment``: for every resource type in the Patient compartment definition, the
  parameters (by code) that place it in a patient's compartment, with reduced expressions.

Usage: gen_search_params.py [SPEC_DIR] [OUT_FILE]
(defaults: ../../../../shared/spec relative to this script, ../data/search-parameters.json)
"""

import json
import os
import re
import sys

# Every R4 resource type is searchable: the list is read from the R4 JSON schema's resource
# discriminator (see main), so the table covers a type as soon as the standard defines it.

# Common parameters that the index can back. _content, _text, _query, _filter, _list, _has and
# _type are evaluated differently (full text, named queries, joins) and are left out on purpose.
COMMON = ["_id", "_lastUpdated", "_tag", "_profile", "_security", "_source"]

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SPEC = os.path.normpath(os.path.join(HERE, "..", "..", "..", "..", "shared", "spec"))
DEFAULT_OUT = os.path.normpath(os.path.join(HERE, "..", "data", "search-parameters.json"))


def split_union(expr):
    """Split a FHIRPath expression on its top-level ``|`` operators."""
    parts, depth, quote, cur = [], 0, None, []
    for ch in expr:
        if quote:
            cur.append(ch)
            if ch == quote:
                quote = None
            continue
        if ch in "'\"`":
            quote = ch
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            parts.append("".join(cur).strip())
            cur = []
            continue
        cur.append(ch)
    parts.append("".join(cur).strip())
    return [p for p in parts if p]


def reduce_expression(expr, rtype):
    """Keep only the union alternatives that belong to ``rtype``."""
    if expr is None:
        return ""
    keep = []
    for part in split_union(expr):
        body = part.lstrip("(")
        if body == rtype or body.startswith(rtype + ".") or body.startswith(rtype + " "):
            keep.append(part)
        elif body[:1].islower():
            # R4 writes a few expressions without their type (InsurancePlan.name is
            # "name | alias"): such a path is relative to the resource itself.
            keep.append(part.replace(body, rtype + "." + body, 1))
    return " | ".join(keep)


LIST_LINE = re.compile(r"^\*\s*\[([A-Za-z]+)\]\([^)]*\):\s*(.*)$")


# Parameters R4 does not define but a shared care record needs ("active alerts", "safeguarding
# alerts", "active care plans by period" are everyday questions). They are the project's own
# SearchParameters, with canonical URLs under the project's namespace, and are listed in the
# CapabilityStatement like the standard ones.
PROJECT = "https://invicta.example.org/fhir/SearchParameter/"
EXTRA = [
    {"resourceType": "SearchParameter", "url": PROJECT + "Flag-status", "code": "status",
     "base": ["Flag"], "type": "token", "expression": "Flag.status",
     "description": "active | inactive | entered-in-error (Invicta extension: R4 defines no Flag status parameter)"},
    {"resourceType": "SearchParameter", "url": PROJECT + "Flag-category", "code": "category",
     "base": ["Flag"], "type": "token", "expression": "Flag.category",
     "description": "Clinical, administrative or safeguarding category of the alert (Invicta extension)"},
    {"resourceType": "SearchParameter", "url": PROJECT + "Flag-code", "code": "code",
     "base": ["Flag"], "type": "token", "expression": "Flag.code",
     "description": "The coded alert, e.g. SNOMED CT not-for-resuscitation (Invicta extension)"},
    {"resourceType": "SearchParameter", "url": PROJECT + "Encounter-service-type", "code": "service-type",
     "base": ["Encounter"], "type": "token", "expression": "Encounter.serviceType",
     "description": "The service of the contact, e.g. an NHS treatment function (Invicta extension: R4 defines no Encounter service-type parameter)"},
    {"resourceType": "SearchParameter", "url": PROJECT + "AuditEvent-purpose", "code": "purpose",
     "base": ["AuditEvent"], "type": "token", "expression": "AuditEvent.purposeOfEvent | AuditEvent.agent.purposeOfUse",
     "description": "Purpose of use of the access, e.g. BTG for break-glass (Invicta extension: R4 defines no AuditEvent purpose parameter)"},
]


def reduce_description(desc, rtype):
    """Cut a ``Multiple Resources:`` markdown list down to the line for ``rtype``."""
    desc = (desc or "").replace("\r\n", "\n").strip()
    if not desc.startswith("Multiple Resources"):
        return desc
    for line in desc.split("\n"):
        m = LIST_LINE.match(line.strip())
        if m and m.group(1) == rtype:
            return m.group(2).strip()
    return desc


def entry(sp, rtype):
    out = {
        "resource": rtype,
        "code": sp["code"],
        "type": sp["type"],
        "expression": reduce_expression(sp.get("expression"), rtype),
        "description": reduce_description(sp.get("description"), rtype),
        "url": sp["url"],
    }
    if sp.get("target"):
        out["targets"] = sorted(sp["target"])
    if sp.get("component"):
        out["components"] = [
            {"definition": c["definition"], "expression": c["expression"]} for c in sp["component"]
        ]
    return out


def main():
    spec_dir = sys.argv[1] if len(sys.argv) > 1 else DEFAULT_SPEC
    out_file = sys.argv[2] if len(sys.argv) > 2 else DEFAULT_OUT
    with open(os.path.join(spec_dir, "search-parameters.json"), encoding="utf-8") as f:
        bundle = json.load(f)
    with open(os.path.join(spec_dir, "compartmentdefinition-patient.json"), encoding="utf-8") as f:
        compartment = json.load(f)

    with open(os.path.join(spec_dir, "fhir.schema.json"), encoding="utf-8") as f:
        searchable = sorted(json.load(f)["discriminator"]["mapping"])

    sps = [e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "SearchParameter"]
    sps += EXTRA

    params = []
    seen = set()

    def add(sp, rtype):
        # Two MolecularSequence composites name components by %resource, which the search
        # dialect of the FHIRPath engine does not evaluate: left out rather than never matching.
        if any("%resource" in c.get("expression", "") for c in sp.get("component") or []):
            return
        key = (rtype, sp["code"])
        if key in seen:
            raise SystemExit("duplicate search parameter %s.%s" % key)
        seen.add(key)
        e = entry(sp, rtype)
        if not e["expression"] and e["type"] not in ("special",):
            raise SystemExit("empty reduced expression for %s.%s" % key)
        params.append(e)

    for sp in sps:
        if sp["base"] == ["Resource"] and sp["code"] in COMMON:
            add(sp, "Resource")
    for rtype in searchable:
        for sp in sps:
            if rtype in sp["base"]:
                add(sp, rtype)
    missing = [c for c in COMMON if ("Resource", c) not in seen]
    if missing:
        raise SystemExit("common parameters not found: %s" % missing)

    order = {t: i for i, t in enumerate(["Resource"] + searchable)}
    params.sort(key=lambda e: (order[e["resource"]], e["code"]))

    members = {}
    for res in compartment["resource"]:
        codes = res.get("param") or []
        if not codes:
            continue
        rtype = res["code"]
        rows = []
        for code in codes:
            matches = [sp for sp in sps if rtype in sp["base"] and sp["code"] == code]
            if len(matches) != 1:
                raise SystemExit("compartment param %s.%s matched %d definitions" % (rtype, code, len(matches)))
            expr = reduce_expression(matches[0].get("expression"), rtype)
            if not expr:
                raise SystemExit("compartment param %s.%s has no expression" % (rtype, code))
            rows.append({"code": code, "expression": expr})
        members[rtype] = rows

    data = {
        "fhirVersion": "4.0.1",
        "types": searchable,
        "params": params,
        "compartment": {"code": compartment["code"], "resources": members},
    }
    os.makedirs(os.path.dirname(out_file), exist_ok=True)
    with open(out_file, "w", encoding="utf-8") as f:
        json.dump(data, f, ensure_ascii=False, separators=(",", ":"))
        f.write("\n")
    per_type = {}
    for e in params:
        per_type[e["resource"]] = per_type.get(e["resource"], 0) + 1
    print("wrote %s: %d params over %d types, %d compartment types" % (out_file, len(params), len(per_type), len(members)))


if __name__ == "__main__":
    main()
