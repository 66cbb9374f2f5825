#!/usr/bin/env python3
"""Derive the element table used by fhir-model's validator from the official R4 JSON Schema.

Usage: gen_elements.py path/to/fhir.schema.json > crates/fhir-model/data/r4-elements.json

The output is compact: for every complex type and resource, each element's type, whether it
repeats, and the codes of a required binding (the schema's `enum`); for every primitive type, its
JSON kind and the spec's regular expression. It is committed; the build never reads the schema.
"""
import json
import sys


def ref_name(node):
    return node["$ref"].rsplit("/", 1)[1]


def main(path):
    schema = json.load(open(path))
    defs = schema["definitions"]
    resources = {ref_name(r) for r in defs["ResourceList"]["oneOf"]}
    primitives, types = {}, {}
    by_pattern = {}
    # Several primitives share a pattern (uri/url/canonical, string/markdown): the first, in this
    # order, names the inline ones; the differences do not matter for validation.
    for prim in ["boolean", "decimal", "integer", "positiveInt", "unsignedInt", "date", "dateTime",
                 "instant", "time", "uri", "string", "code", "id", "oid", "uuid", "base64Binary"]:
        d = defs[prim]
        by_pattern.setdefault((d.get("type", "string"), d.get("pattern")), prim)
    for name, d in sorted(defs.items()):
        if name == "ResourceList":
            continue
        if "properties" not in d:
            kind = d.get("type", "string")
            primitives[name] = {"json": kind, "pattern": d.get("pattern")}
            continue
        props = {}
        for prop, p in d["properties"].items():
            if prop == "resourceType" or prop.startswith("_"):
                continue
            array = p.get("type") == "array"
            node = p["items"] if array else p
            if "$ref" in node:
                entry = [ref_name(node), int(array)]
            elif "enum" in node:
                entry = ["code", int(array), node["enum"]]
            elif node.get("type") in ("boolean", "number", "string"):
                # Choice elements inline their primitive; recover its name from the pattern.
                entry = [by_pattern.get((node["type"], node.get("pattern")), node["type"]), int(array)]
                if entry[0] not in defs:
                    raise SystemExit(f"unknown inline primitive at {name}.{prop}: {node}")
            else:
                raise SystemExit(f"unhandled schema shape at {name}.{prop}: {node}")
            props[prop] = entry
        types[name] = {
            "resource": name in resources,
            "required": [r for r in d.get("required", []) if r != "resourceType"],
            "props": props,
        }
    json.dump({"primitives": primitives, "types": types}, sys.stdout, separators=(",", ":"), sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
