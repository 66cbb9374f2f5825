#!/usr/bin/env python3
"""gen.py: people with a whole record for `make bench-record` (scripts/bench-record.sh).

Each person has exactly 200 resources from 6 source organisations, as a regional record would:

  BENCHGP     the registered GP practice: Patient, 20 consultations, 10 problems, 20 prescriptions,
              3 allergies, 5 immunisations, 1 alert (60)
  BENCHACUTE  the acute trust: 10 A&E attendances and admissions, 40 lab results, 8 pathology
              reports, 5 procedures, 5 referrals (68)
  BENCHMH     the mental health trust: 8 contacts, an episode, a crisis plan, 3 scores (13)
  BENCHSC     social care: 6 visits, an episode, 2 care plans, 2 referrals (11)
  BENCHPHARM  a community pharmacy: 20 dispensings (20)
  BENCHCOMM   community nursing: 12 home visits, 16 observations (28)

  gen.py --people K --dir DIR
      writes DIR/<ODS>/NN-<Type>.ndjson for each source (ids `rec-<n>-<k>`, Patient `rec-<n>`),
      so `invicta load --org <ODS> DIR/<ODS>` loads each source's part as that source.

Deterministic (seeded per person); Python 3.9+ standard library only.
"""

import argparse
import json
import os
import random
from datetime import datetime, timedelta, timezone

ODS = "https://fhir.nhs.uk/Id/ods-organization-code"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
START = datetime(2016, 1, 1, tzinfo=timezone.utc)


def nhs_number(n):
    """A valid Modulus 11 NHS number in the 999 test range, unique per n: person n owns the ten
    numbers 99920nnnn0–9 (at most one of ten has a check digit of 10), above those
    bench/ingest/gen.py gives its people."""
    base = 999_200_000 + 10 * n
    while True:
        digits = [int(c) for c in f"{base:09d}"]
        total = sum(d * (10 - i) for i, d in enumerate(digits))
        check = 11 - total % 11
        if check == 11:
            check = 0
        if check != 10:
            return f"{base:09d}{check}"
        base += 1


def cc(system, code, text):
    return {"coding": [{"system": system, "code": code, "display": text}], "text": text}


def person(n, rnd):
    pid = f"rec-{n}"
    subject = {"reference": f"Patient/{pid}"}
    k = 0

    def rid():
        nonlocal k
        k += 1
        return f"rec-{n}-{k}"

    def when():
        return (START + timedelta(minutes=rnd.randrange(0, 10 * 365 * 24 * 60))).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )

    def enc(cls, text):
        t = when()
        return {"resourceType": "Encounter", "id": rid(), "status": "finished",
                "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": cls},
                "type": [cc(SCT, "11429006", text)], "subject": subject,
                "period": {"start": t, "end": t}}

    def obs(category, code, unit, low, high):
        return {"resourceType": "Observation", "id": rid(), "status": "final",
                "category": [cc("http://terminology.hl7.org/CodeSystem/observation-category", category, category)],
                "code": cc(LOINC, code, code), "subject": subject, "effectiveDateTime": when(),
                "valueQuantity": {"value": round(rnd.uniform(low, high), 1), "unit": unit,
                                  "system": "http://unitsofmeasure.org", "code": unit}}

    out = {s: [] for s in ["BENCHGP", "BENCHACUTE", "BENCHMH", "BENCHSC", "BENCHPHARM", "BENCHCOMM"]}
    gp = out["BENCHGP"]
    gp.append({"resourceType": "Patient", "id": pid,
               "identifier": [{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs_number(n)}],
               "name": [{"family": f"Record{n}", "given": ["Bench"]}], "gender": "female",
               "birthDate": "1950-05-05",
               "generalPractitioner": [{"identifier": {"system": ODS, "value": "BENCHGP"}}]})
    gp += [enc("AMB", "GP consultation") for _ in range(20)]
    gp += [{"resourceType": "Condition", "id": rid(), "subject": subject,
            "clinicalStatus": cc("http://terminology.hl7.org/CodeSystem/condition-clinical", "active", "Active"),
            "code": cc(SCT, str(44054006 + i), "Problem"), "onsetDateTime": when()} for i in range(10)]
    gp += [{"resourceType": "MedicationRequest", "id": rid(), "status": "active", "intent": "order",
            "medicationCodeableConcept": cc(SCT, "322236009", "Paracetamol 500mg tablets"),
            "subject": subject, "authoredOn": when()} for _ in range(20)]
    gp += [{"resourceType": "AllergyIntolerance", "id": rid(), "patient": subject,
            "code": cc(SCT, "91936005", "Allergy to penicillin"), "recordedDate": when()} for _ in range(3)]
    gp += [{"resourceType": "Immunization", "id": rid(), "status": "completed", "patient": subject,
            "vaccineCode": cc(SCT, "1119349007", "COVID-19 mRNA vaccine"), "occurrenceDateTime": when()}
           for _ in range(5)]
    gp.append({"resourceType": "Flag", "id": rid(), "status": "active", "subject": subject,
               "code": cc(SCT, "15188001", "Hearing impaired"), "period": {"start": when()}})
    acute = out["BENCHACUTE"]
    acute += [enc(rnd.choice(["EMER", "IMP"]), "Hospital attendance") for _ in range(10)]
    acute += [obs("laboratory", rnd.choice(["2823-3", "2951-2", "718-7", "33914-3"]), "mmol/L", 1, 150)
              for _ in range(40)]
    acute += [{"resourceType": "DiagnosticReport", "id": rid(), "status": "final",
               "code": cc(LOINC, "24362-6", "Renal panel"), "subject": subject,
               "effectiveDateTime": when()} for _ in range(8)]
    acute += [{"resourceType": "Procedure", "id": rid(), "status": "completed", "subject": subject,
               "code": cc(SCT, "80146002", "Appendectomy"), "performedDateTime": when()} for _ in range(5)]
    acute += [{"resourceType": "ServiceRequest", "id": rid(), "status": "active", "intent": "order",
               "subject": subject, "code": cc(SCT, "306206005", "Referral to service"),
               "authoredOn": when()} for _ in range(5)]
    mh = out["BENCHMH"]
    mh += [enc("AMB", "Mental health contact") for _ in range(8)]
    mh.append({"resourceType": "EpisodeOfCare", "id": rid(), "status": "active", "patient": subject,
               "type": [cc("https://invicta.example.org/fhir/CodeSystem/episode-type", "mental-health", "Mental health")],
               "period": {"start": when()}})
    mh.append({"resourceType": "CarePlan", "id": rid(), "status": "active", "intent": "plan",
               "subject": subject, "category": [cc(SCT, "736253002", "Mental health crisis plan")],
               "period": {"start": when()}})
    mh += [obs("survey", "44261-6", "{score}", 0, 27) for _ in range(3)]
    sc = out["BENCHSC"]
    sc += [enc("HH", "Social care visit") for _ in range(6)]
    sc.append({"resourceType": "EpisodeOfCare", "id": rid(), "status": "active", "patient": subject,
               "type": [cc("https://invicta.example.org/fhir/CodeSystem/episode-type", "social-care-adults", "Adult social care")],
               "period": {"start": when()}})
    sc += [{"resourceType": "CarePlan", "id": rid(), "status": "active", "intent": "plan",
            "subject": subject, "period": {"start": when()}} for _ in range(2)]
    sc += [{"resourceType": "ServiceRequest", "id": rid(), "status": "active", "intent": "order",
            "subject": subject, "code": cc(SCT, "308440001", "Referral to social worker"),
            "authoredOn": when()} for _ in range(2)]
    out["BENCHPHARM"] += [{"resourceType": "MedicationDispense", "id": rid(), "status": "completed",
                           "medicationCodeableConcept": cc(SCT, "322236009", "Paracetamol 500mg tablets"),
                           "subject": subject, "whenHandedOver": when()} for _ in range(20)]
    comm = out["BENCHCOMM"]
    comm += [enc("HH", "District nurse visit") for _ in range(12)]
    comm += [obs("vital-signs", "8867-4", "/min", 50, 110) for _ in range(16)]
    assert sum(len(v) for v in out.values()) == 200, {s: len(v) for s, v in out.items()}
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--people", type=int, required=True)
    ap.add_argument("--dir", required=True)
    a = ap.parse_args()
    files = {}
    total = 0
    for n in range(1, a.people + 1):
        for source, resources in person(n, random.Random(f"record-{n}")).items():
            for r in resources:
                # Patients first in each source's folder, so a load finds them.
                order = "01" if r["resourceType"] == "Patient" else "02"
                key = (source, f"{order}-{r['resourceType']}")
                if key not in files:
                    os.makedirs(os.path.join(a.dir, source), exist_ok=True)
                    files[key] = open(os.path.join(a.dir, source, key[1] + ".ndjson"), "w")
                files[key].write(json.dumps(r, separators=(",", ":")) + "\n")
                total += 1
    for f in files.values():
        f.close()
    print(f"GEN people={a.people} resources={total}")


if __name__ == "__main__":
    main()
