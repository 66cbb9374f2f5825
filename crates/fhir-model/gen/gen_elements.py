#!/usr/bin/env python3
"""Derive the element table used by fhir-model's validator from the official R4 JSON Schema.

Usage: gen_elements.py path/to/fhir.schema.json path/to/fhirbolt-model-0.4.0/src/generated/r4 \
           > crates/fhir-model/data/r4-elements.json

Mandatory elements (min 1) come from two places: the schema's `required` arrays, which list only
complex non-choice elements, and the R4 StructureDefinitions' `min` as fhirbolt-model's generated
types carry it (a field that is neither `Option<..>` nor `Vec<..>` has min 1), which adds the
primitive and choice elements. A mandatory choice is written `name[x]`. (Repeating primitives
with min 1, rare outside conformance resources, are not recoverable from either and are left out.)

The output is compact: for every complex type and resource, each element's type, whether it
repeats, and the codes of a required binding (the schema's `enum`); for every primitive type, its
JSON kind and the spec's regular expression. It is committed; the build never reads the schema.
"""
import json
import os
import re
import sys

FIELD = re.compile(r"^\s*pub r#(\w+): (.+),$")
STRUCT = re.compile(r"^pub struct (\w+) \{")


def fhirbolt_structs(model_dir):
    """Struct name -> [(JSON name, min 1)] of its fields, from fhirbolt-model's generated R4."""
    out = {}
    for sub in ("resources", "types"):
        folder = os.path.join(model_dir, sub)
        for file in sorted(os.listdir(folder)):
            current = None
            for line in open(os.path.join(folder, file)):
                m = STRUCT.match(line)
                if m:
                    current = out.setdefault(m.group(1), [])
                    continue
                if line.startswith("}"):
                    current = None
                    continue
                f = FIELD.match(line)
                if current is not None and f:
                    ty = f.group(2)
                    required = not (ty.startswith("Option<") or ty.startswith("Vec<"))
                    current.append((camel(f.group(1)), required))
    return out


def covers(fields, props):
    """True when a struct's fields are exactly the type's elements (choices expanded in props)."""
    names = [f for f, _ in fields if f != "resourceType"]
    def matches(f, p):
        return p == f or (p.startswith(f) and p[len(f):][:1].isupper() and f not in props)
    return all(any(matches(f, p) for p in props) for f in names) and all(
        any(matches(f, p) for f in names) for p in props)


def struct_for(name, props, structs):
    """fhirbolt names backbone structs by path (BundleEntryRequest), the schema by the last
    step (Bundle_Request): match by name, else by the resource prefix and the same elements."""
    direct = structs.get(name.replace("_", ""))
    if direct is not None:
        return direct
    prefix = name.split("_")[0]
    for struct, fields in structs.items():
        if struct.startswith(prefix) and covers(fields, props):
            return fields
    print(f"note: no fhirbolt struct for {name}; schema `required` only", file=sys.stderr)
    return []


def camel(snake):
    head, *rest = snake.split("_")
    return head + "".join(p[:1].upper() + p[1:] for p in rest)


def mandatory(name, props, schema_required, structs):
    """The type's mandatory elements: schema names, then model names (choices as `name[x]`)."""
    found = [r for r in schema_required if r != "resourceType"]
    fields = struct_for(name, props, structs) if props else []
    for field in [f for f, required in fields if required]:
        if field in ("id", "url") and field not in props:
            continue  # primitive types' own internals
        if field == "resourceType":
            continue  # ExampleScenario.instance.resourceType: the table leaves it out
        if field in props:
            entry = field
            entry = field
        elif any(p.startswith(field) and p[len(field):][:1].isupper() for p in props):
            entry = field + "[x]"
        else:
            raise SystemExit(f"fhirbolt field {name}.{field} matches no element")
        if entry not in found:
            found.append(entry)
    return found


def ref_name(node):
    return node["$ref"].rsplit("/", 1)[1]


def main(path, model_dir):
    schema = json.load(open(path))
    structs = fhirbolt_structs(model_dir)
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
            "required": mandatory(name, props, d.get("required", []), structs),
            "props": props,
        }
    json.dump({"primitives": primitives, "types": types}, sys.stdout, separators=(",", ":"), sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
