#!/usr/bin/env python3
"""gen.py: synthetic people for the ingest benchmark (scripts/bench-ingest.sh).

Every person gets exactly 100 resources: one Patient and 99 clinical resources, all valid FHIR R4:

  Patient              1   NHS number (999 test range, Modulus 11, unique per person), hospital
                           number, name, gender, birth date, address
  Observation         70   10 laboratory requests x 7 results: LOINC code, category laboratory,
                           valueQuantity (UCUM), reference range, interpretation, effective and
                           issued times, the Encounter of the request
  Encounter            8   finished outpatient/inpatient/emergency encounters (status, class,
                           type, period)
  Condition            8   SNOMED CT problems, active or resolved
  MedicationStatement 10   SNOMED CT / dm+d medicines, active, completed or stopped, with a dosage
  AllergyIntolerance   3   medication, food and environment allergies

The output is deterministic: person i uses its own random generator seeded from (--seed, i), so
a run of 20,000 resources is the first 200 people of a run of 500,000.

Commands:

  gen.py bundles --people N [--seed S] -o FILE [--plain-post]
      One transaction Bundle per person, one Bundle per line. Entry 0 is
      `POST Patient` with `ifNoneExist: identifier=https://fhir.nhs.uk/Id/nhs-number|<nhs>`.
      The clinical entries refer to the person through the conditional reference
      `Patient?identifier=https://fhir.nhs.uk/Id/nhs-number|<nhs>` (even entries) or the
      Patient entry's `urn:uuid:` fullUrl (odd entries); Observations refer to their Encounter
      by its `urn:uuid:` fullUrl. So that re-posting a Bundle changes nothing, each entry is
      idempotent: Observation, MedicationStatement and AllergyIntolerance are `POST` with
      `ifNoneExist: identifier=<source system>|<value>` (types the server can search), and
      Encounter and Condition, which it cannot search, are `PUT Type/<source key>`.
      --plain-post: every clinical entry is a plain `POST` without a condition instead (a
      replay then adds resources).

  gen.py ndjson --people N [--seed S] --dir DIR [--split 50000]
      The same people as NDJSON, one resource per line, with ids (`pat-<nhs>`,
      `obs-<nhs>-<k>`, ...) and plain references (`Patient/pat-<nhs>`): loading the files
      twice is an idempotent replay. Files per type, in load order (Patient first), at most
      --split lines each: DIR/01-Patient-001.ndjson, DIR/02-Encounter-001.ndjson, ...

  gen.py nhs --people N
      The NHS numbers, one a line (for checks).

Each writing command prints one line `GEN people=N resources=N bytes=N seconds=S` to stdout.
Python 3.9+ standard library only.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
import uuid
from datetime import date, datetime, timedelta, timezone

DEFAULT_SEED = 20261125
PER_PERSON = 100

NHS_SYSTEM = "https://fhir.nhs.uk/Id/nhs-number"
TRUST = "https://fhir.weald-medway.example.org/Id"
HOSPITAL_SYSTEM = f"{TRUST}/hospital-number"
LAB_SYSTEM = f"{TRUST}/lab-result"
ENCOUNTER_SYSTEM = f"{TRUST}/encounter"
PROBLEM_SYSTEM = f"{TRUST}/problem"
MEDICATION_SYSTEM = f"{TRUST}/medication-statement"
ALLERGY_SYSTEM = f"{TRUST}/allergy"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERP = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
COND_CLIN = "http://terminology.hl7.org/CodeSystem/condition-clinical"
COND_VER = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
COND_CAT = "http://terminology.hl7.org/CodeSystem/condition-category"
MED_CAT = "http://terminology.hl7.org/CodeSystem/medication-statement-category"
ALLERGY_CLIN = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VER = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"

REF_DATE = date(2026, 11, 1)  # everything happens before this day

LAB_REQUESTS = 10
LAB_RESULTS_PER_REQUEST = 7
ENCOUNTERS = 8
CONDITIONS = 8
MEDICATIONS = 10
ALLERGIES = 3
assert 1 + LAB_REQUESTS * LAB_RESULTS_PER_REQUEST + ENCOUNTERS + CONDITIONS + MEDICATIONS + ALLERGIES == PER_PERSON

# ---------------------------------------------------------------------------------------------
# NHS numbers: 999 test range, unique per person
# ---------------------------------------------------------------------------------------------


# The Modulus 11 check digit is the search benchmark's generator's (bench/generate.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from generate import nhs_check_digit  # noqa: E402


def nhs_number(i: int) -> str:
    """The i-th valid number of the form 999BBBBBBd + check: of the ten last digits d of a block
    at most one gives a check of 10, so each block holds at least nine numbers."""
    block, slot = divmod(i, 9)
    if block >= 100_000:
        raise SystemExit(f"gen.py: at most {100_000 * 9} people")
    found = 0
    for d in range(10):
        nine = f"999{block:05d}{d}"
        check = nhs_check_digit(nine)
        if check is None:
            continue
        number = nine + str(check)
        if len(set(number)) == 1:
            continue
        if found == slot:
            return number
        found += 1
    raise AssertionError(f"no NHS number for person {i}")


# ---------------------------------------------------------------------------------------------
# Vocabulary
# ---------------------------------------------------------------------------------------------

FAMILY = (
    "Smith Jones Williams Taylor Brown Davies Evans Wilson Thomas Johnson Roberts Robinson "
    "Thompson Wright Walker White Edwards Hughes Green Hall Lewis Harris Clarke Patel Jackson "
    "Wood Turner Martin Cooper Hill Ward Morris Moore Clark Lee King Baker Harrison Morgan Allen "
    "Khan Ahmed Singh Begum Kaur Okafor Mensah Nowak Kowalski Murphy Kelly O'Brien Campbell"
).split()
GIVEN_F = "Olivia Amelia Isla Ava Emily Sophie Grace Mia Margaret Susan Patricia Janet Fatima Aisha Priya Zofia".split()
GIVEN_M = "Oliver George Harry Jack Noah Leo Arthur Thomas David John Peter Michael Mohammed Daniel Kwame Piotr".split()
TOWNS = [
    ("Ashford", "TN23"), ("Ashford", "TN24"), ("Maidstone", "ME14"), ("Maidstone", "ME15"),
    ("Canterbury", "CT1"), ("Canterbury", "CT2"), ("Chatham", "ME4"), ("Gillingham", "ME7"),
    ("Folkestone", "CT19"), ("Dover", "CT17"), ("Tonbridge", "TN9"), ("Sevenoaks", "TN13"),
]
STREETS = "Orchard Close|High Street|Church Lane|Station Road|Mill Lane|London Road|The Green|Victoria Road|Park Avenue|School Lane".split("|")

# (LOINC code, display, UCUM unit, low, high, mean, sd, decimals)
LAB_TESTS = [
    ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "mmol/L", 133, 146, 139, 3, 0),
    ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "mmol/L", 3.5, 5.3, 4.3, 0.5, 1),
    ("22664-7", "Urea [Moles/volume] in Serum or Plasma", "mmol/L", 2.5, 7.8, 5.8, 2.0, 1),
    ("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "umol/L", 59, 104, 85, 25, 0),
    ("33914-3", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in Serum, Plasma or Blood by Creatinine-based formula (MDRD)", "mL/min/{1.73_m2}", 60, 120, 72, 18, 0),
    ("718-7", "Hemoglobin [Mass/volume] in Blood", "g/L", 115, 165, 135, 15, 0),
    ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "10*9/L", 4.0, 11.0, 7.2, 2.0, 1),
    ("777-3", "Platelets [#/volume] in Blood by Automated count", "10*9/L", 150, 400, 260, 70, 0),
    ("59261-8", "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol", "mmol/mol", 20, 41, 44, 12, 0),
    ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 0, 40, 26, 12, 0),
    ("6768-6", "Alkaline phosphatase [Enzymatic activity/volume] in Serum or Plasma", "U/L", 30, 130, 85, 30, 0),
    ("14631-6", "Bilirubin.total [Moles/volume] in Serum or Plasma", "umol/L", 0, 21, 10, 5, 0),
    ("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "g/L", 35, 50, 41, 4, 0),
    ("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "mg/L", 0, 5, 6, 9, 0),
    ("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "m[IU]/L", 0.27, 4.2, 2.1, 1.1, 2),
    ("14647-2", "Cholesterol [Moles/volume] in Serum or Plasma", "mmol/L", 0, 5.0, 5.1, 1.1, 1),
    ("14646-4", "Cholesterol in HDL [Moles/volume] in Serum or Plasma", "mmol/L", 1.0, 3.0, 1.4, 0.4, 1),
    ("14927-8", "Triglyceride [Moles/volume] in Serum or Plasma", "mmol/L", 0, 1.7, 1.6, 0.8, 1),
    ("15074-8", "Glucose [Moles/volume] in Blood", "mmol/L", 3.9, 7.8, 6.0, 1.8, 1),
    ("2947-0", "Sodium [Moles/volume] in Blood", "mmol/L", 133, 146, 139, 3, 0),
]

ENCOUNTER_KINDS = [
    ("AMB", "ambulatory", "11429006", "Consultation"),
    ("AMB", "ambulatory", "185389009", "Follow-up visit"),
    ("IMP", "inpatient encounter", "32485007", "Hospital admission"),
    ("EMER", "emergency", "4525004", "Emergency department patient visit"),
]

CONDITIONS_SCT = [
    ("38341003", "Hypertensive disorder, systemic arterial"),
    ("44054006", "Diabetes mellitus type 2"),
    ("195967001", "Asthma"),
    ("433144002", "Chronic kidney disease stage 3"),
    ("49436004", "Atrial fibrillation"),
    ("13645005", "Chronic obstructive lung disease"),
    ("35489007", "Depressive disorder"),
    ("396275006", "Osteoarthritis"),
    ("40930008", "Hypothyroidism"),
    ("55822004", "Hyperlipidemia"),
    ("68566005", "Urinary tract infectious disease"),
    ("233604007", "Pneumonia"),
]

MEDICINES = [
    ("319283006", "Amlodipine 5mg tablets", "One tablet to be taken each morning"),
    ("322236009", "Paracetamol 500mg tablets", "Two tablets up to four times a day when required"),
    ("321196004", "Diazepam 2mg tablets", "One tablet at night"),
    ("322623000", "Tramadol 50mg capsules", "One or two capsules up to four times a day"),
    ("39113611000001102", "Salbutamol 100micrograms/dose inhaler CFC free", "Two puffs when required"),
    ("42275511000001103", "Olanzapine 10mg tablets", "One tablet at night"),
    ("42278011000001103", "Quetiapine 100mg tablets", "One tablet twice a day"),
]
MED_STATUSES = ["active", "active", "active", "completed", "stopped"]

ALLERGIES_SCT = [
    ("91936005", "Allergy to penicillin", "medication", "271807003", "Eruption of skin"),
    ("294505008", "Allergy to codeine", "medication", "422587007", "Nausea"),
    ("91935009", "Allergy to peanut", "food", "39579001", "Anaphylaxis"),
    ("300916003", "Latex allergy", "environment", "247472004", "Weal"),
    ("232347008", "Allergy to house dust mite", "environment", "21719001", "Allergic rhinitis"),
]

# ---------------------------------------------------------------------------------------------
# People
# ---------------------------------------------------------------------------------------------


def coding(system, code, display):
    return {"system": system, "code": code, "display": display}


def concept(system, code, display, text=None):
    return {"coding": [coding(system, code, display)], "text": text or display}


def instant(d: date, rng: random.Random) -> str:
    t = datetime(d.year, d.month, d.day, rng.randint(7, 18), rng.randint(0, 59), rng.randint(0, 59),
                 tzinfo=timezone.utc)
    return t.isoformat()


def person(i: int, seed: int) -> dict:
    """The facts of person i: NHS number, demographics and the 99 clinical resources as
    (type, key, resource-without-references, link) where link says how the resource refers to
    the person and which Encounter (by key) it belongs to."""
    rng = random.Random(seed * 1_000_003 + i)
    nhs = nhs_number(i)
    female = rng.random() < 0.51
    given = rng.choice(GIVEN_F if female else GIVEN_M)
    family = rng.choice(FAMILY)
    birth = REF_DATE - timedelta(days=rng.randint(18 * 365, 95 * 365))
    town, district = rng.choice(TOWNS)
    postcode = f"{district} {rng.randint(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
    patient = {
        "resourceType": "Patient",
        "identifier": [
            {"use": "official", "system": NHS_SYSTEM, "value": nhs},
            {
                "use": "usual",
                "type": concept(V2_0203, "MR", "Medical record number"),
                "system": HOSPITAL_SYSTEM,
                "value": f"WMH{1_000_000 + i:07d}",
            },
        ],
        "active": True,
        "name": [{"use": "official", "family": family, "given": [given], "prefix": ["Ms" if female else "Mr"]}],
        "telecom": [{"system": "phone", "value": f"07700 9{i % 100000:05d}", "use": "mobile"}],
        "gender": "female" if female else "male",
        "birthDate": birth.isoformat(),
        "address": [{
            "use": "home",
            "line": [f"{rng.randint(1, 120)} {rng.choice(STREETS)}"],
            "city": town, "district": "Kent", "postalCode": postcode, "country": "GB",
        }],
    }

    items = []  # (type, key, resource, encounter key or None)

    # Encounters: spread over the last five years, in order.
    days = sorted(rng.sample(range(30, 5 * 365), ENCOUNTERS), reverse=True)
    enc_dates = []
    for k, back in enumerate(days, 1):
        cls, cls_display, sct, sct_display = rng.choice(ENCOUNTER_KINDS)
        start = REF_DATE - timedelta(days=back)
        end = start + timedelta(days=rng.randint(1, 6)) if cls == "IMP" else start
        enc_dates.append(start)
        items.append(("Encounter", f"enc-{nhs}-{k}", {
            "resourceType": "Encounter",
            "identifier": [{"system": ENCOUNTER_SYSTEM, "value": f"{nhs}-{k}"}],
            "status": "finished",
            "class": coding(ACT_CODE, cls, cls_display),
            "type": [concept(SCT, sct, sct_display)],
            "period": {"start": instant(start, rng), "end": instant(end, rng)}
            if cls == "IMP" else {"start": instant(start, rng)},
            "serviceProvider": {"display": "Weald and Medway Hospitals NHS Foundation Trust"},
        }, None))

    # Laboratory results: 10 requests of 7 results, each request during one of the encounters.
    for r in range(LAB_REQUESTS):
        enc = r % ENCOUNTERS
        when = enc_dates[enc]
        effective = instant(when, rng)
        issued = instant(when + timedelta(days=1), rng)
        for t, test in enumerate(rng.sample(LAB_TESTS, LAB_RESULTS_PER_REQUEST)):
            code, display, unit, low, high, mean, sd, decimals = test
            value = round(max(0.0, rng.gauss(mean, sd)), decimals)
            if decimals == 0:
                value = int(value)
            interp = ("L", "Low") if value < low else ("H", "High") if value > high else ("N", "Normal")
            key = f"{nhs}-{r + 1:02d}-{t + 1}"
            obs = {
                "resourceType": "Observation",
                "identifier": [{"system": LAB_SYSTEM, "value": key}],
                "status": "final",
                "category": [{"coding": [coding(OBS_CAT, "laboratory", "Laboratory")]}],
                "code": concept(LOINC, code, display),
                "effectiveDateTime": effective,
                "issued": issued,
                "performer": [{"display": "Weald and Medway Pathology"}],
                "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
                "interpretation": [concept(INTERP, interp[0], interp[1])],
                "referenceRange": [{
                    "low": {"value": low, "unit": unit, "system": UCUM, "code": unit},
                    "high": {"value": high, "unit": unit, "system": UCUM, "code": unit},
                }],
            }
            items.append(("Observation", f"obs-{key}", obs, f"enc-{nhs}-{enc + 1}"))

    for k, (code, display) in enumerate(rng.sample(CONDITIONS_SCT, CONDITIONS), 1):
        onset = REF_DATE - timedelta(days=rng.randint(60, 20 * 365))
        resolved = rng.random() < 0.3
        cond = {
            "resourceType": "Condition",
            "identifier": [{"system": PROBLEM_SYSTEM, "value": f"{nhs}-{k}"}],
            "clinicalStatus": concept(COND_CLIN, "resolved" if resolved else "active",
                                      "Resolved" if resolved else "Active"),
            "verificationStatus": concept(COND_VER, "confirmed", "Confirmed"),
            "category": [concept(COND_CAT, "problem-list-item", "Problem List Item")],
            "code": concept(SCT, code, display),
            "onsetDateTime": onset.isoformat(),
            "recordedDate": (onset + timedelta(days=rng.randint(0, 30))).isoformat(),
        }
        if resolved:
            cond["abatementDateTime"] = (onset + timedelta(days=rng.randint(10, 50))).isoformat()
        items.append(("Condition", f"cond-{nhs}-{k}", cond, None))

    for k in range(1, MEDICATIONS + 1):
        code, display, dose = rng.choice(MEDICINES)
        status = rng.choice(MED_STATUSES)
        start = REF_DATE - timedelta(days=rng.randint(30, 8 * 365))
        period = {"start": start.isoformat()}
        if status != "active":
            period["end"] = (start + timedelta(days=rng.randint(7, 400))).isoformat()
        items.append(("MedicationStatement", f"med-{nhs}-{k}", {
            "resourceType": "MedicationStatement",
            "identifier": [{"system": MEDICATION_SYSTEM, "value": f"{nhs}-{k}"}],
            "status": status,
            "category": concept(MED_CAT, "community", "Community"),
            "medicationCodeableConcept": concept(SCT, code, display),
            "effectivePeriod": period,
            "dateAsserted": (REF_DATE - timedelta(days=rng.randint(0, 30))).isoformat(),
            "dosage": [{
                "text": dose,
                "route": concept(SCT, "26643006", "Oral route"),
            }],
        }, None))

    for k, (code, display, category, man_code, man_display) in enumerate(
            rng.sample(ALLERGIES_SCT, ALLERGIES), 1):
        items.append(("AllergyIntolerance", f"alg-{nhs}-{k}", {
            "resourceType": "AllergyIntolerance",
            "identifier": [{"system": ALLERGY_SYSTEM, "value": f"{nhs}-{k}"}],
            "clinicalStatus": concept(ALLERGY_CLIN, "active", "Active"),
            "verificationStatus": concept(ALLERGY_VER, "confirmed", "Confirmed"),
            "type": "allergy",
            "category": [category],
            "criticality": rng.choice(["low", "high"]),
            "code": concept(SCT, code, display),
            "recordedDate": (REF_DATE - timedelta(days=rng.randint(30, 10 * 365))).isoformat(),
            "reaction": [{"manifestation": [concept(SCT, man_code, man_display)],
                          "severity": rng.choice(["mild", "moderate", "severe"])}],
        }, None))

    assert len(items) == PER_PERSON - 1
    return {"i": i, "nhs": nhs, "patient": patient, "items": items, "rng": rng}


# How each type refers to its patient.
PATIENT_ELEMENT = {
    "Observation": "subject",
    "Encounter": "subject",
    "Condition": "subject",
    "MedicationStatement": "subject",
    "AllergyIntolerance": "patient",
}
# Types the server can search (conditional create possible); the others are PUT by key.
CONDITIONAL_TYPES = {"Observation", "MedicationStatement", "AllergyIntolerance"}


def with_refs(resource: dict, patient_ref: str, encounter_ref) -> dict:
    """A copy of resource with its patient (and encounter) reference."""
    out = dict(resource)
    out[PATIENT_ELEMENT[resource["resourceType"]]] = {"reference": patient_ref}
    if encounter_ref:
        out["encounter"] = {"reference": encounter_ref}
    return out


def uuid_from(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def bundle(p: dict, plain_post: bool) -> dict:
    rng = p["rng"]
    nhs = p["nhs"]
    cond_ref = f"Patient?identifier={NHS_SYSTEM}|{nhs}"
    patient_url = f"urn:uuid:{uuid_from(rng)}"
    urls = {key: f"urn:uuid:{uuid_from(rng)}" for _, key, _, _ in p["items"]}
    entries = [{
        "fullUrl": patient_url,
        "resource": p["patient"],
        "request": {"method": "POST", "url": "Patient",
                    "ifNoneExist": f"identifier={NHS_SYSTEM}|{nhs}"},
    }]
    for n, (rtype, key, resource, enc) in enumerate(p["items"], 1):
        patient_ref = cond_ref if n % 2 == 0 else patient_url
        res = with_refs(resource, patient_ref, urls[enc] if enc else None)
        if plain_post:
            request = {"method": "POST", "url": rtype}
        elif rtype in CONDITIONAL_TYPES:
            ident = resource["identifier"][0]
            request = {"method": "POST", "url": rtype,
                       "ifNoneExist": f"identifier={ident['system']}|{ident['value']}"}
        else:
            request = {"method": "PUT", "url": f"{rtype}/{key}"}
            res = {"resourceType": rtype, "id": key, **{k: v for k, v in res.items() if k != "resourceType"}}
        entries.append({"fullUrl": urls[key], "resource": res, "request": request})
    assert len(entries) == PER_PERSON
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


def ndjson_resources(p: dict):
    nhs = p["nhs"]
    pid = f"pat-{nhs}"
    patient = {"resourceType": "Patient", "id": pid}
    patient.update({k: v for k, v in p["patient"].items() if k != "resourceType"})
    yield patient
    for rtype, key, resource, enc in p["items"]:
        res = with_refs(resource, f"Patient/{pid}", f"Encounter/{enc}" if enc else None)
        out = {"resourceType": rtype, "id": key}
        out.update({k: v for k, v in res.items() if k != "resourceType"})
        yield out


def dumps(obj) -> str:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


# ---------------------------------------------------------------------------------------------
# Commands
# ---------------------------------------------------------------------------------------------

def cmd_bundles(args) -> None:
    t0 = time.monotonic()
    size = 0
    tmp = args.output + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for i in range(args.people):
            line = dumps(bundle(person(i, args.seed), args.plain_post)) + "\n"
            size += len(line.encode("utf-8"))
            f.write(line)
    os.replace(tmp, args.output)
    print(f"GEN people={args.people} resources={args.people * PER_PERSON} bytes={size} "
          f"seconds={time.monotonic() - t0:.1f}")


ORDER = ["Patient", "Encounter", "Condition", "MedicationStatement", "AllergyIntolerance", "Observation"]


def cmd_ndjson(args) -> None:
    t0 = time.monotonic()
    os.makedirs(args.dir, exist_ok=True)
    for name in os.listdir(args.dir):
        if name.endswith(".ndjson"):
            os.remove(os.path.join(args.dir, name))
    files = {}  # type -> [file, lines in it, part]
    size = 0
    count = 0

    def out(rtype):
        f = files.get(rtype)
        if f is None or f[1] >= args.split:
            if f is not None:
                f[0].close()
            part = 1 if f is None else f[2] + 1
            path = os.path.join(args.dir, f"{ORDER.index(rtype) + 1:02d}-{rtype}-{part:03d}.ndjson")
            f = files[rtype] = [open(path, "w", encoding="utf-8"), 0, part]
        f[1] += 1
        return f[0]

    for i in range(args.people):
        for res in ndjson_resources(person(i, args.seed)):
            line = dumps(res) + "\n"
            out(res["resourceType"]).write(line)
            size += len(line.encode("utf-8"))
            count += 1
    for f in files.values():
        f[0].close()
    print(f"GEN people={args.people} resources={count} bytes={size} "
          f"seconds={time.monotonic() - t0:.1f}")


def cmd_nhs(args) -> None:
    for i in range(args.people):
        print(nhs_number(i))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("bundles", help="transaction Bundles, one per line")
    b.add_argument("--people", type=int, required=True)
    b.add_argument("--seed", type=int, default=DEFAULT_SEED)
    b.add_argument("-o", "--output", required=True)
    b.add_argument("--plain-post", action="store_true")
    n = sub.add_parser("ndjson", help="NDJSON files with ids")
    n.add_argument("--people", type=int, required=True)
    n.add_argument("--seed", type=int, default=DEFAULT_SEED)
    n.add_argument("--dir", required=True)
    n.add_argument("--split", type=int, default=50_000)
    h = sub.add_parser("nhs", help="the NHS numbers")
    h.add_argument("--people", type=int, required=True)
    args = ap.parse_args(argv)
    if getattr(args, "people", 1) < 1:
        ap.error("--people must be positive")
    {"bundles": cmd_bundles, "ndjson": cmd_ndjson, "nhs": cmd_nhs}[args.cmd](args)


if __name__ == "__main__":
    try:
        main()
    except BrokenPipeError:
        sys.exit(1)
