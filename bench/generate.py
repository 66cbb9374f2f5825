#!/usr/bin/env python3
"""generate.py: a synthetic UK shared-care-record population for search benchmarks.

The generator is deterministic. Patient number i (0-based) gets its own random generator, seeded
from (--seed, i). A patient's resources are therefore the same whichever batch produces them:
`--patients 2000` followed by `--first 2000 --patients 10000` loads the same data as a single
`--patients 10000`. Python 3.11 standard library only.

Each patient has about 50 resources on average (see `stats`), spread over the six searchable
types:

  Patient              1: valid NHS number (999 test range, Modulus 11), UK name (the family
                       names follow a heavy-headed distribution: Smith ~1.1%, a long tail of
                       rarer names), birth date (UK age structure), gender, Kent/Medway address
                       and postcode, registered GP practice (Organization reference).
  Observation         ~40: mostly laboratory results over the 5 years before 2026-11-01 (U&E,
                       FBC, HbA1c, lipids, LFTs, TSH, CRP; LOINC with SNOMED CT, UCUM units,
                       reference ranges and interpretations), some vital signs (blood pressure
                       with components, pulse, weight, SpO2). Older and chronically ill people
                       have many more.
  MedicationStatement ~8: active repeat medicines for their conditions, stopped ones and
                       completed acute courses (SNOMED CT / dm+d codes; those not in examples/
                       are illustrative: the server does not check terminology).
  AllergyIntolerance  ~1: "no known drug allergy" records and real allergies.
  Flag                ~0.15: safeguarding (category flag-category|safeguarding, about 3% of
                       patients), DNACPR, lives alone, interpreter needed, falls risk.
  CarePlan            ~0.25: advance care, end of life, crisis, diabetes plans.

Plus 48 Organizations (GP practices and trusts), written with the first batch (--first 0).

Commands:

  generate.py generate [--patients N] [--first K] [--seed S] [-o FILE]
      NDJSON, one resource per line (fixed ids), to stdout or FILE.
  generate.py load --base-url http://127.0.0.1:8181/fhir [--patients N] [--first K]
                   [--workers 8] [--input FILE]
      PUTs every resource (generated on the fly, or read from an NDJSON FILE) to the server with
      a pool of keep-alive connections; prints progress to stderr and, at the end, one line
      `LOAD resources=N seconds=S rps=R` (and per-type counts) to stdout. Stops at the first
      answer that is not 2xx, printing its status and body, and exits 1.
  generate.py values [--patients N] [--first K] [-o FILE]
      One tab-separated line per patient (with a header): id, NHS number, family name, birth
      date, and how many Observations / active MedicationStatements / active Flags /
      AllergyIntolerances they have, and whether they have an active safeguarding flag. The
      benchmark scripts draw their query values from it.
  generate.py stats [--patients N] [--first K]
      Counts per resource type (as JSON).

Ids: Patient `pat-NNNNNN`, its resources `obs-NNNNNN-KKK`, `med-…`, `alg-…`, `flag-…`,
`cp-…`; Organizations `org-…`.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import math
import queue
import random
import socket
import sys
import threading
import time
import urllib.parse
from datetime import date, datetime, timedelta, timezone

DEFAULT_SEED = 20261124
DEFAULT_PATIENTS = 10_000
# "Today" for the data: everything happens before this date, so the output never depends on
# when it is generated.
REF_DATE = date(2026, 11, 1)
HISTORY_YEARS = 5
HISTORY_START = REF_DATE - timedelta(days=365 * HISTORY_YEARS + 1)

NHS = "https://fhir.nhs.uk/Id/nhs-number"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
OBS_CAT = "http://terminology.hl7.org/CodeSystem/observation-category"
INTERP = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
FLAG_CAT = "http://terminology.hl7.org/CodeSystem/flag-category"
INVICTA_FLAG_CAT = "https://invicta.example.org/fhir/CodeSystem/flag-category"
INVICTA_FLAG_CODE = "https://invicta.example.org/fhir/CodeSystem/flag-code"
MED_CAT = "http://terminology.hl7.org/CodeSystem/medication-statement-category"
ALLERGY_CLIN = "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical"
ALLERGY_VER = "http://terminology.hl7.org/CodeSystem/allergyintolerance-verification"
MARITAL = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
ODS = "https://fhir.nhs.uk/Id/ods-organization-code"

# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------

# Common surnames of England and Wales with approximate frequencies per 100,000 people.
FAMILY_HEAD = """
Smith 1150 Jones 800 Williams 600 Taylor 510 Brown 490 Davies 480 Evans 350 Wilson 340
Thomas 320 Johnson 300 Roberts 300 Robinson 260 Thompson 260 Wright 250 Walker 250 White 240
Edwards 230 Hughes 230 Green 220 Hall 220 Lewis 210 Harris 210 Clarke 200 Patel 200
Jackson 190 Wood 190 Turner 180 Martin 180 Cooper 180 Hill 180 Ward 170 Morris 170 Moore 170
Clark 170 Lee 160 King 160 Baker 160 Harrison 150 Morgan 150 Allen 150 James 150 Scott 150
Phillips 140 Watson 140 Davis 140 Parker 140 Price 130 Bennett 130 Young 130 Griffiths 130
Mitchell 130 Kelly 130 Cook 120 Carter 120 Richardson 120 Bailey 120 Collins 120 Bell 120
Shaw 120 Murphy 110 Miller 110 Cox 110 Richards 110 Khan 110 Marshall 110 Anderson 110
Simpson 100 Ellis 100 Adams 100 Singh 100 Begum 100 Wilkinson 100 Foster 100 Chapman 100
Powell 100 Webb 100 Rogers 95 Gray 95 Mason 95 Ali 95 Hunt 90 Hussain 90 Campbell 90
Matthews 90 Owen 90 Palmer 90 Holmes 85 Mills 85 Barnes 85 Knight 85 Lloyd 85 Butler 85
Russell 85 Barker 80 Fisher 80 Stevens 80 Jenkins 80 Murray 80 Dixon 80 Harvey 80 Graham 75
Pearson 75 Ahmed 75 Fletcher 75 Walsh 75 Kaur 75 Gibson 70 Howard 70 Andrews 70 Stewart 70
Elliott 70 Reynolds 70 Saunders 70 Payne 70 Fox 70 Ford 65 Pearce 65 Day 65 Brooks 65 West 65
Lawrence 65 Cole 65 Atkinson 65 Bradley 60 Spencer 60 Gill 60 Dawson 60 Ball 60 Burton 60
O'Brien 60 Watts 60 Rose 60 Booth 60 Perry 60 Ryan 60 Grant 55 Wells 55 Armstrong 55
Francis 55 Rees 55 Hayes 55 Hart 55 Hudson 55 Newman 55 Barrett 55 Webster 55 Hunter 55
Gregory 55 Carr 55 Lowe 55 Page 55 Marsh 50 Riley 50 Dunn 50 Woods 50 Parsons 50 Berry 50
Stone 50 Reid 50 Holland 50 Hawkins 50 Harding 50 Porter 50 Robertson 50 Newton 50 Oliver 50
Reed 50 Kennedy 50 Williamson 50 Bird 45 Gardner 45 Shah 45 Dean 45 Lane 45 Cooke 45 Bates 45
Henderson 45 Parry 45 Burgess 45 Bishop 45 Walton 45 Burns 45 Nicholson 45 Shepherd 45
Ross 45 Cross 45 Long 45 Freeman 45 Warren 45 Nicholls 45 Hamilton 45 Byrne 40 Sutton 40
McDonald 40 Yates 40 Hodgson 40 Robson 40 Curtis 40 Hopkins 40 O'Connor 40 Harper 40
Coleman 40 Watkins 40 Moss 40 McCarthy 40 Chambers 40 O'Neill 40 Griffin 40 Sharp 40
Hardy 40 Wheeler 40 Potter 40 Osborne 40 Johnston 40 Gordon 40 Doyle 40 Wallace 40 George 40
Jordan 40 Hutchinson 40 Rahman 30 Mohammed 30 Thornton 30 Islam 25 Miah 25 Akhtar 25
Uddin 20 Chowdhury 20 Nowak 20 Mensah 20 Kowalski 15 Okafor 15 Nguyen 15 Wong 15 Chen 15
Ibrahim 15 Adeyemi 10 Kaczmarek 10 Osei 10 Boateng 10 Papadopoulos 8 Ferreira 8 Silva 8
"""

# The long tail: English place-name surnames built from common elements.
TAIL_FIRST = (
    "Ash Black Brad Brom Cal Chad Craw Dal Elling Fair Farn Glad Grims Hal Hart Hather Kings "
    "Lang Lind Mar Mid Mor Nor Pen Ram Red Rush Sal Stan Staple Thorn Wad Well Whit Wind Wins "
    "Wort Bel Cart Dun Ed Hol Kirk Mill New Old Pick Rad Shel Sud Tat Wel Ack Bam Bid Brock "
    "Chal Cher Clay Cot Dray Ever Fel Gos Hack Hock Lax Lock Mans Mers Ock Pad Ply Ros Ship "
    "Tid Tun Wal Wim Yar"
).split()
TAIL_SECOND = (
    "ley ton field worth ford well wood by ham stone more croft bury dale hurst ridge wick "
    "thorpe combe shaw lock land bridge gate hill"
).split()

GIVEN_MALE = (
    "Oliver George Harry Jack Noah Leo Arthur Muhammad Thomas James William David John Michael "
    "Peter Paul Robert Richard Daniel Christopher Andrew Mark Stephen Ian Gary Kevin Alan Brian "
    "Kenneth Dennis Raymond Samuel Joshua Ethan Jacob Charlie Alfie Oscar Adam Liam Ryan "
    "Matthew Luke Ahmed Ali Hassan Tomasz Kwame Harjit Rajesh Keith Colin Graham Roy"
).split()
GIVEN_FEMALE = (
    "Olivia Amelia Isla Ava Mia Ivy Lily Sophia Grace Freya Emily Jessica Chloe Sophie Charlotte "
    "Hannah Lucy Emma Sarah Laura Rebecca Claire Nicola Michelle Karen Susan Julie Helen "
    "Margaret Patricia Elizabeth Mary Jean Joan Barbara Sandra Linda Christine Janet Dorothy "
    "Irene Fatima Aisha Amira Zainab Priya Shirin Agnieszka Ama Gurpreet Sunita Maureen Brenda"
).split()


def _family_table():
    names, weights = [], []
    words = FAMILY_HEAD.split()
    for name, freq in zip(words[0::2], words[1::2]):
        names.append(name)
        weights.append(float(freq))
    head_total = sum(weights)
    tail = [a + b.lower() for a in TAIL_FIRST for b in TAIL_SECOND]
    # Zipf-like weights over the tail (in a fixed shuffled order, so that no prefix owns the
    # heavy end); the tail holds what the head leaves of 100,000.
    random.Random(7).shuffle(tail)
    raw = [1.0 / (rank + 300) for rank in range(len(tail))]
    scale = (100_000 - head_total) / sum(raw)
    seen = set(names)
    for name, w in zip(tail, raw):
        if name not in seen:
            seen.add(name)
            names.append(name)
            weights.append(w * scale)
    cumulative = list(itertools.accumulate(weights))
    return names, cumulative


FAMILY_NAMES, FAMILY_CUM = _family_table()


def family_name(rng: random.Random) -> str:
    x = rng.random() * FAMILY_CUM[-1]
    return FAMILY_NAMES[bisect.bisect_right(FAMILY_CUM, x)]


# ---------------------------------------------------------------------------------------------
# Places and organisations (all invented; phone numbers from Ofcom's drama ranges)
# ---------------------------------------------------------------------------------------------

TOWNS = [  # (town, postcode districts)
    ("Ashford", ["TN23", "TN24", "TN25", "TN26"]),
    ("Maidstone", ["ME14", "ME15", "ME16", "ME17"]),
    ("Canterbury", ["CT1", "CT2", "CT3", "CT4"]),
    ("Rochester", ["ME1", "ME2", "ME3"]),
    ("Chatham", ["ME4", "ME5"]),
    ("Gillingham", ["ME7", "ME8"]),
    ("Tunbridge Wells", ["TN1", "TN2", "TN4"]),
    ("Folkestone", ["CT18", "CT19", "CT20"]),
    ("Dover", ["CT15", "CT16", "CT17"]),
    ("Margate", ["CT9"]),
    ("Dartford", ["DA1", "DA2"]),
    ("Gravesend", ["DA11", "DA12"]),
    ("Sevenoaks", ["TN13", "TN14", "TN15"]),
    ("Sittingbourne", ["ME9", "ME10"]),
    ("Faversham", ["ME13"]),
    ("Whitstable", ["CT5"]),
]
STREETS = (
    "Orchard Close|High Street|Church Road|Station Road|Mill Lane|London Road|Victoria Road|"
    "The Street|Park Avenue|Queens Road|Kings Road|Hythe Road|Canterbury Road|Maidstone Road|"
    "Elm Grove|Oak Drive|Chestnut Avenue|Willow Way|Hop Garden Close|Oast Court|Medway Street|"
    "Pier Road|Castle Hill|Sandgate Road|Cherry Tree Lane|Bramley Gardens|Marsh Lane|"
    "Downs View|Forge Lane|School Lane"
).split("|")
POSTCODE_LETTERS = "ABDEFGHJLNPQRSTUWXYZ"

TRUSTS = [
    ("org-weald-medway", "Weald and Medway Hospitals NHS Foundation Trust", "R9W"),
    ("org-east-kent", "East Kent Coast Hospitals NHS Trust", "R9E"),
    ("org-darent-valley", "Darent Valley Acute NHS Trust", "R9D"),
    ("org-stour-pathology", "Stour Pathology Partnership", "R9P"),
    ("org-kent-downs-mh", "Kent Downs Mental Health NHS Trust", "R9M"),
    ("org-invicta-community", "Invicta Community Health NHS Trust", "R9C"),
    ("org-kent-social-care", "Invicta County Council Adult Social Care", "R9S"),
    ("org-kent-childrens", "Invicta County Council Children's Social Care", "R9K"),
]
LABS = TRUSTS[:4]
GP_COUNT = 40
GP_WORDS = (
    "Stour Valley|Riverside|Orchard|Castle|Downs|Weald|Marsh|Harbour|Oast House|Greensand|"
    "Pilgrims Way|Medway|Hop Garden|Chalk Hill|Bridge|Kingsgate|Elmstone|Northgate|Westgate|"
    "Eastry"
).split("|")
GP_KINDS = ["Medical Practice", "Health Centre", "Surgery", "Medical Centre"]


def gp_practices():
    out = []
    for n in range(GP_COUNT):
        words = GP_WORDS[n % len(GP_WORDS)]
        kind = GP_KINDS[(n // len(GP_WORDS) + n) % len(GP_KINDS)]
        town, districts = TOWNS[n % len(TOWNS)]
        ods = f"G8{3000 + n * 7:04d}"
        name = f"{words} {kind}" + ("" if n < len(GP_WORDS) else f", {town}")
        out.append((f"org-{ods.lower()}", name, ods, town, districts[0]))
    return out


GPS = gp_practices()


def organizations():
    for oid, name, ods, town, district in GPS:
        yield {
            "resourceType": "Organization",
            "id": oid,
            "identifier": [{"system": ODS, "value": ods}],
            "active": True,
            "type": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                "code": "prov", "display": "Healthcare Provider"}]}],
            "name": name,
            "telecom": [{"system": "phone", "value": f"01632 96{int(ods[2:]) % 10000:04d}",
                         "use": "work"}],
            "address": [{"use": "work", "type": "physical", "line": ["1 Surgery Lane"],
                         "city": town, "district": "Kent", "postalCode": f"{district} 1AA",
                         "country": "GB"}],
        }
    for oid, name, ods, in TRUSTS:
        yield {
            "resourceType": "Organization",
            "id": oid,
            "identifier": [{"system": ODS, "value": ods}],
            "active": True,
            "type": [{"coding": [{
                "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                "code": "prov", "display": "Healthcare Provider"}]}],
            "name": name,
        }


# ---------------------------------------------------------------------------------------------
# NHS numbers: 999 test range, Modulus 11, unique per patient index
# ---------------------------------------------------------------------------------------------

NHS_BLOCKS = 99_999  # 999 + five digits of block + one digit chosen in the block
NHS_PER_BLOCK = 9  # a block of ten numbers always holds at least nine valid ones
MAX_PATIENTS = NHS_BLOCKS * NHS_PER_BLOCK


def nhs_check_digit(nine: str):
    total = sum(int(d) * w for d, w in zip(nine, range(10, 1, -1)))
    check = 11 - total % 11
    if check == 11:
        return 0
    if check == 10:
        return None
    return check


def nhs_valid(number: str) -> bool:
    if len(number) != 10 or not number.isdigit() or len(set(number)) == 1:
        return False
    return nhs_check_digit(number[:9]) == int(number[9])


def nhs_number(i: int) -> str:
    block = (i // NHS_PER_BLOCK * 7919 + 12345) % NHS_BLOCKS
    slot = i % NHS_PER_BLOCK
    found = 0
    for d in range(10):
        nine = f"999{block:05d}{d}"
        check = nhs_check_digit(nine)
        if check is None or len(set(nine + str(check))) == 1:
            continue
        if found == slot:
            return nine + str(check)
        found += 1
    raise AssertionError(f"no NHS number for patient {i}")


# ---------------------------------------------------------------------------------------------
# Clinical content
# ---------------------------------------------------------------------------------------------


def coding(system, code, display):
    return {"system": system, "code": code, "display": display}


def cc(system, code, display, text=None):
    out = {"coding": [coding(system, code, display)]}
    if text:
        out["text"] = text
    return out


# Analytes: key -> (LOINC, LOINC display, SNOMED, SNOMED display, short text, UCUM code, unit
# shown, decimals, reference low, reference high)
ANALYTES = {
    "sodium": ("2951-2", "Sodium [Moles/volume] in Serum or Plasma", "1000661000000107",
               "Serum sodium level", "Serum sodium", "mmol/L", "mmol/L", 0, 133, 146),
    "potassium": ("2823-3", "Potassium [Moles/volume] in Serum or Plasma", "1000651000000109",
                  "Serum potassium level", "Serum potassium", "mmol/L", "mmol/L", 1, 3.5, 5.3),
    "creatinine": ("14682-9", "Creatinine [Moles/volume] in Serum or Plasma", "1000731000000107",
                   "Serum creatinine level", "Serum creatinine", "umol/L", "umol/L", 0, 59, 104),
    "egfr_mdrd": ("33914-3", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] "
                  "in Serum or Plasma by Creatinine-based formula (MDRD)", "963601000000106",
                  "Estimated glomerular filtration rate using creatinine Modification of Diet "
                  "in Renal Disease Study equation per 1.73 square metres", "eGFR (MDRD)",
                  "mL/min/{1.73_m2}", "mL/min/1.73m2", 0, 60, None),
    "egfr": ("62238-1", "Glomerular filtration rate/1.73 sq M.predicted [Volume Rate/Area] in "
             "Serum, Plasma or Blood by Creatinine-based formula (CKD-EPI)", "1011481000000105",
             "eGFR (estimated glomerular filtration rate) using creatinine Chronic Kidney "
             "Disease Epidemiology Collaboration equation per 1.73 square metres",
             "eGFR (CKD-EPI)", "mL/min/{1.73_m2}", "mL/min/1.73m2", 0, 60, None),
    "hb": ("718-7", "Hemoglobin [Mass/volume] in Blood", "1022431000000105",
           "Haemoglobin estimation", "Haemoglobin", "g/L", "g/L", 0, 130, 180),
    "wbc": ("6690-2", "Leukocytes [#/volume] in Blood by Automated count", "1022541000000102",
            "Total white cell count", "White cell count", "10*9/L", "10*9/L", 1, 4.0, 11.0),
    "platelets": ("777-3", "Platelets [#/volume] in Blood by Automated count", "1022651000000100",
                  "Platelet count", "Platelets", "10*9/L", "10*9/L", 0, 150, 400),
    "hba1c": ("59261-8", "Hemoglobin A1c/Hemoglobin.total in Blood by IFCC protocol",
              "999791000000106", "Haemoglobin A1c level - International Federation of Clinical "
              "Chemistry and Laboratory Medicine standardised", "HbA1c (IFCC)", "mmol/mol",
              "mmol/mol", 0, 20, 41),
    "hba1c_pct": ("4548-4", "Hemoglobin A1c/Hemoglobin.total in Blood", "1003671000000109",
                  "Haemoglobin A1c level", "HbA1c (DCCT)", "%", "%", 1, 4.0, 5.9),
    "cholesterol": ("2093-3", "Cholesterol [Mass or Moles/volume] in Serum or Plasma",
                    "1005671000000105", "Serum cholesterol level", "Total cholesterol",
                    "mmol/L", "mmol/L", 1, None, 5.0),
    "hdl": ("2085-9", "Cholesterol in HDL [Mass/volume] in Serum or Plasma", "1005681000000107",
            "Serum HDL cholesterol level", "HDL cholesterol", "mmol/L", "mmol/L", 1, 1.0, None),
    "triglycerides": ("2571-8", "Triglyceride [Mass/volume] in Serum or Plasma",
                      "1005691000000109", "Serum triglycerides level", "Triglycerides",
                      "mmol/L", "mmol/L", 1, None, 1.7),
    "alt": ("1742-6", "Alanine aminotransferase [Enzymatic activity/volume] in Serum or Plasma",
            "1018251000000107", "Serum alanine aminotransferase level", "ALT", "U/L", "U/L", 0,
            None, 40),
    "albumin": ("1751-7", "Albumin [Mass/volume] in Serum or Plasma", "1000821000000103",
                "Serum albumin level", "Albumin", "g/L", "g/L", 0, 35, 50),
    "bilirubin": ("1975-2", "Bilirubin.total [Mass/volume] in Serum or Plasma",
                  "999691000000104", "Serum total bilirubin level", "Bilirubin", "umol/L",
                  "umol/L", 0, None, 21),
    "tsh": ("3016-3", "Thyrotropin [Units/volume] in Serum or Plasma", "1022791000000101",
            "Serum TSH level", "TSH", "m[IU]/L", "mU/L", 2, 0.27, 4.2),
    "crp": ("1988-5", "C reactive protein [Mass/volume] in Serum or Plasma", "1001371000000100",
            "Plasma C reactive protein", "CRP", "mg/L", "mg/L", 0, None, 5),
}
PANELS = {
    "ue": ["sodium", "potassium", "creatinine", "EGFR"],
    "fbc": ["hb", "wbc", "platelets"],
    "hba1c": ["HBA1C"],
    "lipids": ["cholesterol", "hdl", "triglycerides"],
    "lft": ["alt", "albumin", "bilirubin"],
    "tsh": ["tsh"],
    "crp": ["crp"],
}
# Labs switched eGFR from MDRD to CKD-EPI in 2023.
EGFR_SWITCH = date(2023, 1, 1)

VITALS = {
    "bp": ("85354-9", "Blood pressure panel with all children optional", "75367002",
           "Blood pressure", "Blood pressure"),
    "pulse": ("8867-4", "Heart rate", "364075005", "Heart rate", "Pulse rate"),
    "weight": ("29463-7", "Body weight", "27113001", "Body weight", "Weight"),
    "spo2": ("59408-5", "Oxygen saturation in Arterial blood by Pulse oximetry", "431314004",
             "Peripheral oxygen saturation", "SpO2"),
}

# Medicines: key -> (SNOMED/dm+d code, display, dosage text)
MEDS = {
    "amlodipine": ("319283006", "Amlodipine 5mg tablets", "One tablet once a day"),
    "ramipril": ("408051007", "Ramipril 5mg capsules", "One capsule once a day"),
    "bisoprolol": ("318590006", "Bisoprolol 2.5mg tablets", "One tablet once a day"),
    "atorvastatin": ("39733011000001106", "Atorvastatin 20mg tablets", "One tablet at night"),
    "metformin": ("325278007", "Metformin 500mg tablets", "One tablet twice a day with food"),
    "gliclazide": ("325242002", "Gliclazide 80mg tablets", "One tablet twice a day"),
    "salbutamol": ("39113611000001102", "Salbutamol 100micrograms/dose inhaler CFC free",
                   "Two puffs when required"),
    "beclometasone": ("39112711000001103", "Clenil Modulite 100micrograms/dose inhaler",
                      "Two puffs twice a day"),
    "tiotropium": ("34949011000001105", "Tiotropium 18microgram inhalation powder capsules",
                   "Inhale the contents of one capsule once a day"),
    "sertraline": ("321959009", "Sertraline 50mg tablets", "One tablet once a day"),
    "fluoxetine": ("321949006", "Fluoxetine 20mg capsules", "One capsule once a day"),
    "levothyroxine": ("315249000", "Levothyroxine sodium 50microgram tablets",
                      "One tablet each morning"),
    "olanzapine": ("42275511000001103", "Olanzapine 10mg tablets", "One tablet at night"),
    "quetiapine": ("42278011000001103", "Quetiapine 100mg tablets", "One tablet twice a day"),
    "furosemide": ("317972000", "Furosemide 40mg tablets", "One tablet each morning"),
    "omeprazole": ("317335002", "Omeprazole 20mg gastro-resistant capsules",
                   "One capsule once a day"),
    "paracetamol": ("322236009", "Paracetamol 500mg tablets",
                    "Two tablets up to four times a day when required"),
    "tramadol": ("322623000", "Tramadol 50mg capsules", "One capsule up to four times a day"),
    "morphine": ("36126511000001106", "Morphine 10mg modified-release tablets",
                 "One tablet twice a day"),
    "diazepam": ("321196004", "Diazepam 2mg tablets", "One tablet up to three times a day"),
    "amoxicillin": ("323509004", "Amoxicillin 500mg capsules",
                    "One capsule three times a day for 5 days"),
    "nitrofurantoin": ("41940011000001105", "Nitrofurantoin 50mg capsules",
                       "One capsule four times a day for 3 days"),
    "doxycycline": ("324699000", "Doxycycline 100mg capsules",
                    "One capsule once a day for 5 days"),
    "flucloxacillin": ("323541003", "Flucloxacillin 500mg capsules",
                       "One capsule four times a day for 7 days"),
    "prednisolone": ("325427002", "Prednisolone 5mg tablets",
                     "Six tablets once a day for 5 days"),
    "naproxen": ("329714003", "Naproxen 250mg tablets", "One tablet twice a day with food"),
}
CHRONIC_MEDS = {
    "hypertension": ["amlodipine", "ramipril", "bisoprolol"],
    "diabetes": ["metformin", "gliclazide"],
    "cvd_risk": ["atorvastatin"],
    "asthma": ["salbutamol", "beclometasone"],
    "copd": ["salbutamol", "tiotropium"],
    "depression": ["sertraline", "fluoxetine"],
    "hypothyroid": ["levothyroxine"],
    "smi": ["olanzapine", "quetiapine"],
    "ckd": ["furosemide"],
    "pain": ["paracetamol", "tramadol", "naproxen", "omeprazole"],
    "eol": ["morphine", "paracetamol"],
}
ACUTE_MEDS = ["amoxicillin", "nitrofurantoin", "doxycycline", "flucloxacillin", "prednisolone",
              "diazepam", "naproxen"]
STOP_REASONS = ["Side effects", "No longer required", "Switched to an alternative",
                "Low blood pressure and falls risk", "Ineffective", "Patient preference"]

ALLERGIES = [  # (code, display, type, category, criticality, reaction code, reaction display)
    ("91936005", "Allergy to penicillin", "allergy", "medication", "low",
     "271807003", "Eruption of skin"),
    ("293586001", "Allergy to aspirin", "allergy", "medication", "low",
     "267038008", "Oedema"),
    ("91935009", "Allergy to peanut", "allergy", "food", "high",
     "39579001", "Anaphylaxis"),
    ("300916003", "Latex allergy", "allergy", "environment", "low",
     "271807003", "Eruption of skin"),
    ("294505008", "Allergy to sulfonamide", "allergy", "medication", "low",
     "271807003", "Eruption of skin"),
    ("418689008", "Allergy to grass pollen", "allergy", "environment", "low",
     "21719001", "Allergic rhinitis"),
    ("235719002", "Intolerance to codeine", "intolerance", "medication", "low",
     "422587007", "Nausea"),
    ("300913006", "Shellfish allergy", "allergy", "food", "high", "39579001", "Anaphylaxis"),
]

# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def poisson(rng: random.Random, lam: float) -> int:
    if lam <= 0:
        return 0
    if lam > 30:
        return max(0, int(round(rng.gauss(lam, math.sqrt(lam)))))
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def rand_date(rng: random.Random, start: date, end: date) -> date:
    span = (end - start).days
    return start + timedelta(days=rng.randint(0, max(span, 0)))


def uk_offset(d: date) -> str:
    # British Summer Time, roughly (April to October).
    return "+01:00" if 4 <= d.month <= 10 else "+00:00"


def instant(d: date, hour: int, minute: int, second: int = 0) -> str:
    return f"{d.isoformat()}T{hour:02d}:{minute:02d}:{second:02d}{uk_offset(d)}"


def num(value: float, decimals: int):
    if decimals == 0:
        return int(round(value))
    return round(value, decimals)


def quantity(value, ucum, unit):
    return {"value": value, "unit": unit, "system": UCUM, "code": ucum}


def age_on(birth: date, d: date) -> int:
    return d.year - birth.year - ((d.month, d.day) < (birth.month, birth.day))


# ---------------------------------------------------------------------------------------------
# One patient
# ---------------------------------------------------------------------------------------------


class PatientData:
    """Everything about one patient: the resources and a few facts for the value lists."""

    def __init__(self, i: int, seed: int):
        self.i = i
        self.rng = random.Random(f"invicta-search-bench:{seed}:{i}")
        self.pid = f"pat-{i:06d}"
        self.ref = {"reference": f"Patient/{self.pid}"}
        self.resources = []
        self.n_obs = 0
        self.n_active_meds = 0
        self.n_active_flags = 0
        self.n_allergies = 0
        self.safeguarding = False
        self._build()

    # -- demographics ------------------------------------------------------------------------
    def _build(self):
        rng = self.rng
        band = rng.random()
        if band < 0.21:
            age = rng.randint(0, 17)
        elif band < 0.49:
            age = rng.randint(18, 39)
        elif band < 0.81:
            age = rng.randint(40, 64)
        elif band < 0.94:
            age = rng.randint(65, 79)
        else:
            age = min(104, 80 + int(rng.expovariate(1 / 6)))
        self.birth = REF_DATE - timedelta(days=age * 365 + rng.randint(0, 364) + age // 4)
        self.age = age_on(self.birth, REF_DATE)
        g = rng.random()
        self.gender = "female" if g < 0.507 else "male" if g < 0.997 else "other"
        self.family = family_name(rng)
        self.nhs = nhs_number(self.i)
        self.gp = GPS[rng.randrange(len(GPS))]
        self.conditions = self._conditions()
        self.resources.append(self._patient())
        self._observations()
        self._medications()
        self._allergies()
        self._flags()
        self._careplans()

    def _conditions(self):
        rng, a = self.rng, self.age
        old, mid, adult = a >= 65, 40 <= a < 65, a >= 18
        c = set()

        def maybe(name, p):
            if rng.random() < p:
                c.add(name)

        maybe("hypertension", 0.5 if old else 0.2 if mid else 0.02 if adult else 0)
        maybe("diabetes", 0.18 if old else 0.09 if mid else 0.01 if adult else 0.002)
        maybe("ckd", 0.2 if old else 0.04 if mid else 0.005)
        maybe("asthma", 0.1)
        maybe("copd", 0.08 if old else 0.02 if mid else 0)
        maybe("depression", 0.12 if adult else 0.02)
        maybe("smi", 0.01 if adult else 0)
        maybe("hypothyroid", (0.05 if self.gender == "female" else 0.01) if adult else 0)
        if "diabetes" in c or "ckd" in c:
            maybe("cvd_risk", 0.8)
        maybe("cvd_risk", 0.4 if old else 0.15 if mid else 0)
        maybe("pain", 0.3 if old else 0.1 if adult else 0)
        maybe("frailty", 0.3 if a >= 80 else 0.05 if old else 0)
        maybe("eol", 0.05 if a >= 80 else 0.01 if old else 0.001)
        return c

    def _patient(self):
        rng = self.rng
        given_pool = GIVEN_FEMALE if self.gender == "female" else GIVEN_MALE
        given = [rng.choice(given_pool)]
        if rng.random() < 0.6:
            second = rng.choice(given_pool)
            if second != given[0]:
                given.append(second)
        if self.age < 16:
            prefix = []
        elif self.gender == "female":
            prefix = [rng.choice(["Mrs", "Ms", "Miss", "Mrs", "Ms"])]
        elif self.gender == "male":
            prefix = ["Mr"]
        else:
            prefix = ["Mx"]
        name = {"use": "official", "family": self.family, "given": given}
        if prefix:
            name["prefix"] = prefix
        town, districts = TOWNS[rng.randrange(len(TOWNS))]
        postcode = (f"{rng.choice(districts)} {rng.randint(1, 9)}"
                    f"{rng.choice(POSTCODE_LETTERS)}{rng.choice(POSTCODE_LETTERS)}")
        gp_id, gp_name = self.gp[0], self.gp[1]
        patient = {
            "resourceType": "Patient",
            "id": self.pid,
            "identifier": [{"use": "official", "system": NHS, "value": self.nhs}],
            "active": True,
            "name": [name],
            "telecom": [{"system": "phone", "value": f"01632 96{rng.randint(0, 9999):04d}",
                         "use": "home"}],
            "gender": self.gender,
            "birthDate": self.birth.isoformat(),
            "address": [{"use": "home", "type": "physical",
                         "line": [f"{rng.randint(1, 180)} {rng.choice(STREETS)}"],
                         "city": town, "district": "Kent", "postalCode": postcode,
                         "country": "GB"}],
            "generalPractitioner": [{"reference": f"Organization/{gp_id}", "display": gp_name}],
            "managingOrganization": {"reference": f"Organization/{gp_id}", "display": gp_name},
        }
        if self.age >= 16 and rng.random() < 0.7:
            patient["telecom"].append({"system": "phone", "use": "mobile",
                                       "value": f"07700 900{rng.randint(0, 999):03d}"})
        if self.age >= 18:
            code, display = rng.choice([("M", "Married"), ("S", "Never Married"),
                                        ("D", "Divorced"), ("W", "Widowed"), ("M", "Married")])
            patient["maritalStatus"] = cc(MARITAL, code, display)
        if rng.random() < 0.3:
            patient["identifier"].append({
                "use": "usual", "system": "https://fhir.weald-medway.example.org/Id/hospital-number",
                "value": f"WMH{1000000 + self.i}"})
        return patient

    # -- observations ------------------------------------------------------------------------
    def _episodes(self, lam):
        start = max(HISTORY_START, self.birth + timedelta(days=1))
        return sorted(rand_date(self.rng, start, REF_DATE - timedelta(days=1))
                      for _ in range(poisson(self.rng, lam)))

    def _observations(self):
        rng, c, a = self.rng, self.conditions, self.age
        lam = 0.6 if a < 18 else 1.8 if a < 40 else 3.7 if a < 65 else 5.5
        for cond, extra in (("diabetes", 8), ("ckd", 7), ("hypertension", 3), ("smi", 4),
                            ("hypothyroid", 4), ("eol", 4), ("frailty", 3)):
            if cond in c:
                lam += extra
        seq = itertools.count(1)
        for day in self._episodes(lam):
            panels = []
            if rng.random() < 0.85:
                panels.append("ue")
            if rng.random() < 0.8:
                panels.append("fbc")
            if "diabetes" in c or rng.random() < 0.12:
                panels.append("hba1c")
            if "cvd_risk" in c or "diabetes" in c or rng.random() < 0.12:
                if rng.random() < 0.6:
                    panels.append("lipids")
            if rng.random() < 0.3:
                panels.append("lft")
            if "hypothyroid" in c or rng.random() < 0.08:
                panels.append("tsh")
            if rng.random() < 0.2:
                panels.append("crp")
            if not panels:
                panels.append("fbc")
            hour, minute = rng.randint(8, 16), rng.randint(0, 59)
            lab = rng.choice(LABS)
            accession = f"{lab[2]}{day.strftime('%y%m%d')}{rng.randint(0, 99999):05d}"
            for panel in panels:
                for key in PANELS[panel]:
                    if key == "EGFR":
                        key = "egfr_mdrd" if day < EGFR_SWITCH else "egfr"
                    elif key == "HBA1C":
                        key = "hba1c_pct" if rng.random() < 0.1 else "hba1c"
                    self.resources.append(self._lab(next(seq), key, day, hour, minute, lab,
                                                    accession))
        # Vital signs: a few, mostly for older and chronically ill people.
        vlam = 0.6 + 0.5 * len(c) + (1.5 if a >= 65 else 0)
        for day in self._episodes(vlam):
            hour, minute = rng.randint(8, 19), rng.randint(0, 59)
            for key in ("bp", "pulse") if rng.random() < 0.7 else (rng.choice(list(VITALS)),):
                self.resources.append(self._vital(next(seq), key, day, hour, minute))

    def _lab_value(self, key, day):
        rng, c = self.rng, self.conditions
        female = self.gender == "female"
        ckd = "ckd" in c
        if key == "sodium":
            return rng.gauss(139.5, 2.5)
        if key == "potassium":
            return rng.gauss(4.6 if ckd else 4.3, 0.45)
        if key == "creatinine":
            base = 68 if female else 85
            return max(25, rng.gauss(base * (1.9 if ckd else 1.0), 14))
        if key in ("egfr", "egfr_mdrd"):
            age = age_on(self.birth, day)
            base = 115 - 0.8 * max(age - 20, 0)
            return max(6, rng.gauss(base * (0.5 if ckd else 1.0), 10))
        if key == "hb":
            return rng.gauss(132 if female else 146, 12)
        if key == "wbc":
            return max(1.5, rng.gauss(7.0, 1.9))
        if key == "platelets":
            return max(40, rng.gauss(270, 65))
        if key in ("hba1c", "hba1c_pct"):
            ifcc = max(25, rng.gauss(60, 12) if "diabetes" in c else rng.gauss(37, 4))
            return ifcc if key == "hba1c" else 0.0915 * ifcc + 2.15
        if key == "cholesterol":
            return max(2.0, rng.gauss(4.2 if "cvd_risk" in c else 5.1, 0.9))
        if key == "hdl":
            return max(0.5, rng.gauss(1.45 if female else 1.2, 0.3))
        if key == "triglycerides":
            return max(0.3, rng.lognormvariate(math.log(1.3), 0.45))
        if key == "alt":
            return max(5, rng.lognormvariate(math.log(22), 0.45))
        if key == "albumin":
            return rng.gauss(41 if "frailty" not in c else 35, 3.5)
        if key == "bilirubin":
            return max(2, rng.lognormvariate(math.log(9), 0.45))
        if key == "tsh":
            return max(0.02, rng.lognormvariate(math.log(3.5 if "hypothyroid" in c else 1.8),
                                                0.5))
        if key == "crp":
            return max(1, rng.lognormvariate(math.log(3), 1.0))
        raise KeyError(key)

    def _lab(self, n, key, day, hour, minute, lab, accession):
        rng = self.rng
        (loinc, loinc_display, sct, sct_display, text, ucum, unit, decimals, low,
         high) = ANALYTES[key]
        if key == "hb" and self.gender == "female":
            low, high = 115, 165
        if key == "creatinine" and self.gender == "female":
            low, high = 45, 84
        value = num(self._lab_value(key, day), decimals)
        vq = quantity(value, ucum, unit)
        interpretation = None
        if key in ("egfr", "egfr_mdrd") and value > 90:
            vq = {"value": 90, "comparator": ">", "unit": unit, "system": UCUM, "code": ucum}
        elif high is not None and value > high:
            interpretation = ("H", "High")
        elif low is not None and value < low:
            interpretation = ("L", "Low")
        rng_range = {}
        if low is not None:
            rng_range["low"] = quantity(low, ucum, unit)
        if high is not None:
            rng_range["high"] = quantity(high, ucum, unit)
        issued = day + timedelta(days=rng.choice([0, 0, 0, 1, 1, 2]))
        obs = {
            "resourceType": "Observation",
            "id": f"obs-{self.i:06d}-{n:03d}",
            "identifier": [{"system": f"https://pathology.example.org/Id/{lab[2].lower()}/result",
                            "value": f"{accession}-{loinc}"}],
            "status": "final" if rng.random() < 0.98 else "amended",
            "category": [cc(OBS_CAT, "laboratory", "Laboratory")],
            "code": {"coding": [coding(LOINC, loinc, loinc_display),
                                coding(SCT, sct, sct_display)], "text": text},
            "subject": self.ref,
            "effectiveDateTime": instant(day, hour, minute),
            "issued": instant(issued, min(hour + rng.randint(1, 6), 23), rng.randint(0, 59),
                              rng.randint(0, 59)),
            "performer": [{"reference": f"Organization/{lab[0]}", "display": lab[1]}],
            "valueQuantity": vq,
        }
        if interpretation:
            obs["interpretation"] = [cc(INTERP, *interpretation)]
        if rng_range:
            obs["referenceRange"] = [rng_range]
        self.n_obs += 1
        return obs

    def _vital(self, n, key, day, hour, minute):
        rng = self.rng
        loinc, loinc_display, sct, sct_display, text = VITALS[key]
        obs = {
            "resourceType": "Observation",
            "id": f"obs-{self.i:06d}-{n:03d}",
            "status": "final",
            "category": [cc(OBS_CAT, "vital-signs", "Vital Signs")],
            "code": {"coding": [coding(LOINC, loinc, loinc_display),
                                coding(SCT, sct, sct_display)], "text": text},
            "subject": self.ref,
            "effectiveDateTime": instant(day, hour, minute),
            "performer": [{"reference": f"Organization/{self.gp[0]}", "display": self.gp[1]}],
        }
        hyper = "hypertension" in self.conditions
        if key == "bp":
            sys_v = int(rng.gauss(146 if hyper else 126, 14))
            dia_v = int(rng.gauss(88 if hyper else 78, 9))
            obs["component"] = [
                {"code": {"coding": [coding(LOINC, "8480-6", "Systolic blood pressure")]},
                 "valueQuantity": quantity(sys_v, "mm[Hg]", "mmHg")},
                {"code": {"coding": [coding(LOINC, "8462-4", "Diastolic blood pressure")]},
                 "valueQuantity": quantity(dia_v, "mm[Hg]", "mmHg")},
            ]
        elif key == "pulse":
            obs["valueQuantity"] = quantity(int(rng.gauss(74, 11)), "/min", "beats/min")
        elif key == "weight":
            base = 14 + 3 * self.age if self.age < 16 else rng.gauss(78, 14)
            obs["valueQuantity"] = quantity(round(max(3.0, base), 1), "kg", "kg")
        else:
            obs["valueQuantity"] = quantity(int(min(100, rng.gauss(96, 2))), "%", "%")
        self.n_obs += 1
        return obs

    # -- medicines ---------------------------------------------------------------------------
    def _medications(self):
        rng, c = self.rng, self.conditions
        seq = itertools.count(1)
        adult_from = max(self.birth + timedelta(days=18 * 365), date(2005, 1, 1))
        for cond, options in CHRONIC_MEDS.items():
            if cond not in c:
                continue
            count = 1 if len(options) == 1 else rng.choice([1, 1, 2])
            for key in rng.sample(options, count):
                start = rand_date(rng, min(adult_from, REF_DATE - timedelta(days=60)),
                                  REF_DATE - timedelta(days=30))
                if rng.random() < 0.2:
                    # Stopped, and often replaced by another medicine of the same kind.
                    end = rand_date(rng, start, REF_DATE - timedelta(days=7))
                    self._med(next(seq), key, "stopped", start, end)
                    if rng.random() < 0.6:
                        other = rng.choice(options)
                        self._med(next(seq), other, "active", end, None)
                else:
                    self._med(next(seq), key, "active", start, None)
        for day in self._episodes(1.5 + 0.1 * self.age + 1.2 * len(c)):
            key = rng.choice(ACUTE_MEDS)
            self._med(next(seq), key, "completed", day, day + timedelta(days=rng.randint(3, 14)))

    def _med(self, n, key, status, start, end):
        rng = self.rng
        code, display, dosage = MEDS[key]
        med = {
            "resourceType": "MedicationStatement",
            "id": f"med-{self.i:06d}-{n:03d}",
            "status": status,
            "category": cc(MED_CAT, "community", "Community"),
            "medicationCodeableConcept": cc(SCT, code, display, display),
            "subject": self.ref,
            "effectivePeriod": {"start": start.isoformat()},
            "dateAsserted": (end or REF_DATE - timedelta(days=rng.randint(1, 120))).isoformat(),
            "informationSource": {"reference": f"Organization/{self.gp[0]}",
                                  "display": self.gp[1]},
            "dosage": [{"text": dosage, "route": cc(SCT, "26643006", "Oral route")
                        if "inhaler" not in display and "inhalation" not in display
                        else cc(SCT, "447694001", "Respiratory tract route")}],
        }
        if end:
            med["effectivePeriod"]["end"] = end.isoformat()
        if status == "stopped":
            med["statusReason"] = [{"text": rng.choice(STOP_REASONS)}]
        if status == "active":
            self.n_active_meds += 1
        self.resources.append(med)

    # -- allergies ---------------------------------------------------------------------------
    def _allergies(self):
        rng = self.rng
        seq = itertools.count(1)
        roll = rng.random()
        recorder = {"reference": f"Organization/{self.gp[0]}", "display": self.gp[1]}
        if roll < 0.42:
            self._allergy(next(seq), {
                "clinicalStatus": cc(ALLERGY_CLIN, "active", "Active"),
                "verificationStatus": cc(ALLERGY_VER, "confirmed", "Confirmed"),
                "code": cc(SCT, "409137002", "No known drug allergy", "No known drug allergy"),
                "patient": self.ref,
                "recordedDate": rand_date(rng, max(self.birth, date(2010, 1, 1)),
                                          REF_DATE).isoformat(),
                "asserter": recorder,
            })
        elif roll < 0.72:
            for allergy in rng.sample(ALLERGIES, rng.choice([1, 1, 1, 2, 2, 3])):
                code, display, typ, cat, crit, r_code, r_display = allergy
                status = rng.choices(["active", "inactive", "resolved"], [0.9, 0.04, 0.06])[0]
                verification = "confirmed" if rng.random() < 0.85 else "unconfirmed"
                onset = rand_date(rng, self.birth, REF_DATE)
                self._allergy(next(seq), {
                    "clinicalStatus": cc(ALLERGY_CLIN, status, status.capitalize()),
                    "verificationStatus": cc(ALLERGY_VER, verification,
                                             verification.capitalize()),
                    "type": typ,
                    "category": [cat],
                    "criticality": crit,
                    "code": cc(SCT, code, display, display),
                    "patient": self.ref,
                    "onsetDateTime": str(onset.year),
                    "recordedDate": rand_date(rng, onset, REF_DATE).isoformat(),
                    "asserter": recorder,
                    "reaction": [{"manifestation": [cc(SCT, r_code, r_display)],
                                  "severity": "severe" if crit == "high" else
                                  rng.choice(["mild", "moderate"])}],
                })

    def _allergy(self, n, fields):
        self.n_allergies += 1
        self.resources.append({"resourceType": "AllergyIntolerance",
                               "id": f"alg-{self.i:06d}-{n:02d}", **fields})

    # -- flags ---------------------------------------------------------------------------------
    def _flags(self):
        rng, a, c = self.rng, self.age, self.conditions
        seq = itertools.count(1)
        if rng.random() < 0.03:
            self.safeguarding = True
            if a < 18:
                code = coding(INVICTA_FLAG_CODE, "child-protection-plan",
                              "Subject of a child protection plan")
            else:
                code = coding(SCT, "766561000000109", "Adult safeguarding concern")
            self._flag(next(seq), "active",
                       [cc(INVICTA_FLAG_CAT, "safeguarding", "Safeguarding"),
                        cc(FLAG_CAT, "safety", "Safety")], code)
        elif rng.random() < 0.01:
            self._flag(next(seq), "inactive",
                       [cc(INVICTA_FLAG_CAT, "safeguarding", "Safeguarding"),
                        cc(FLAG_CAT, "safety", "Safety")],
                       coding(SCT, "766561000000109", "Adult safeguarding concern"),
                       ended=True)
        if "eol" in c or (a >= 80 and rng.random() < 0.15) or (a >= 65 and rng.random() < 0.03):
            self._flag(next(seq), "active", [cc(FLAG_CAT, "advance-directive",
                                                "Advance Directive")],
                       coding(SCT, "304253006", "Not for resuscitation"))
        if a >= 65 and rng.random() < 0.2:
            self._flag(next(seq), "active", [cc(FLAG_CAT, "safety", "Safety")],
                       coding(SCT, "105529008", "Lives alone"))
        if rng.random() < 0.03:
            self._flag(next(seq), "active", [cc(FLAG_CAT, "contact", "Subject Contact")],
                       coding(SCT, "315594003", "Interpreter needed"))
        if "frailty" in c and rng.random() < 0.5:
            self._flag(next(seq), rng.choice(["active", "active", "inactive"]),
                       [cc(FLAG_CAT, "safety", "Safety")],
                       coding(SCT, "129839007", "At risk for falls"))
        if rng.random() < 0.005:
            self._flag(next(seq), "active", [cc(FLAG_CAT, "behavioral", "Behavioral")],
                       coding(SCT, "225826003", "Violent behaviour"))

    def _flag(self, n, status, categories, code, ended=False):
        rng = self.rng
        start = rand_date(rng, max(self.birth, HISTORY_START), REF_DATE - timedelta(days=1))
        period = {"start": start.isoformat()}
        if ended or status == "inactive":
            period["end"] = rand_date(rng, start, REF_DATE).isoformat()
        if status == "active":
            self.n_active_flags += 1
        self.resources.append({
            "resourceType": "Flag",
            "id": f"flag-{self.i:06d}-{n:02d}",
            "status": status,
            "category": categories,
            "code": {"coding": [code], "text": code["display"]},
            "subject": self.ref,
            "period": period,
            "author": {"reference": f"Organization/{self.gp[0]}", "display": self.gp[1]},
        })

    # -- care plans ------------------------------------------------------------------------
    def _careplans(self):
        rng, a, c = self.rng, self.age, self.conditions
        seq = itertools.count(1)
        plans = []
        if "eol" in c:
            plans.append(("736373009", "End of life care plan", "active"))
        if a >= 65 and ("frailty" in c or "copd" in c or rng.random() < 0.12):
            plans.append(("736366004", "Advance care plan",
                          rng.choice(["active", "active", "revoked"])))
        if "smi" in c:
            plans.append(("736253002", "Mental health crisis plan", "active"))
        if "diabetes" in c and rng.random() < 0.6:
            plans.append(("735985000", "Diabetes self-management plan",
                          rng.choice(["active", "completed", "active"])))
        if "asthma" in c and rng.random() < 0.5:
            plans.append(("734163000", "Care plan", rng.choice(["active", "completed"])))
        if rng.random() < 0.08:
            plans.append(("734163000", "Care plan", rng.choice(["completed", "draft"])))
        for code, display, status in plans:
            start = rand_date(rng, max(self.birth, HISTORY_START), REF_DATE - timedelta(days=1))
            period = {"start": start.isoformat()}
            if status in ("completed", "revoked"):
                period["end"] = rand_date(rng, start, REF_DATE).isoformat()
            self.resources.append({
                "resourceType": "CarePlan",
                "id": f"cp-{self.i:06d}-{next(seq):02d}",
                "status": status,
                "intent": "plan",
                "category": [cc(SCT, code, display)],
                "title": display,
                "subject": self.ref,
                "period": period,
                "created": instant(start, rng.randint(9, 17), rng.randint(0, 59)),
                "author": {"reference": f"Organization/{self.gp[0]}", "display": self.gp[1]},
            })


# ---------------------------------------------------------------------------------------------
# Streams
# ---------------------------------------------------------------------------------------------


def check_range(first: int, patients: int):
    if patients < 0 or first < 0 or first > patients:
        raise SystemExit(f"generate.py: need 0 <= --first ({first}) <= --patients ({patients})")
    if patients > MAX_PATIENTS:
        raise SystemExit(f"generate.py: at most {MAX_PATIENTS} patients (NHS number space)")


def patients(first: int, last: int, seed: int):
    for i in range(first, last):
        yield PatientData(i, seed)


def resources(first: int, last: int, seed: int, orgs: bool):
    if orgs:
        yield from organizations()
    for p in patients(first, last, seed):
        yield from p.resources


def dumps(resource) -> bytes:
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode()


def cmd_generate(args):
    out = sys.stdout.buffer if args.output in (None, "-") else open(args.output, "wb")
    try:
        for r in resources(args.first, args.patients, args.seed, args.first == 0):
            out.write(dumps(r))
            out.write(b"\n")
    finally:
        if out is not sys.stdout.buffer:
            out.close()
        else:
            out.flush()


def cmd_values(args):
    out = sys.stdout if args.output in (None, "-") else open(args.output, "w", encoding="utf-8")
    try:
        out.write("id\tnhs\tfamily\tbirthdate\tobservations\tactive_meds\tactive_flags"
                  "\tallergies\tsafeguarding\n")
        for p in patients(args.first, args.patients, args.seed):
            out.write(f"{p.pid}\t{p.nhs}\t{p.family}\t{p.birth.isoformat()}\t{p.n_obs}\t"
                      f"{p.n_active_meds}\t{p.n_active_flags}\t{p.n_allergies}\t"
                      f"{int(p.safeguarding)}\n")
    finally:
        if out is not sys.stdout:
            out.close()


def cmd_stats(args):
    counts = {}
    n = 0
    for r in resources(args.first, args.patients, args.seed, args.first == 0):
        counts[r["resourceType"]] = counts.get(r["resourceType"], 0) + 1
        n += 1
    pts = max(args.patients - args.first, 1)
    print(json.dumps({"patients": args.patients - args.first, "resources": n,
                      "per_patient": round(n / pts, 2), "by_type": counts}, indent=2))


# ---------------------------------------------------------------------------------------------
# Loader
# ---------------------------------------------------------------------------------------------


class LoadError(Exception):
    pass


class HttpConnection:
    """A minimal HTTP/1.1 keep-alive client: much cheaper per request than http.client (whose
    header parsing would take a large share of this 2-core machine from the server)."""

    def __init__(self, host: str, port: int, timeout: float):
        self.host, self.port = host, port
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        self.buf += chunk

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _line(self) -> bytes:
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def request(self, method: str, path: str, headers: bytes, body: bytes):
        """Sends one request; returns (status, body, keep_alive)."""
        self.sock.sendall(b"%s %s HTTP/1.1\r\nHost: %s:%d\r\n%sContent-Length: %d\r\n\r\n%s" % (
            method.encode(), path.encode(), self.host.encode(), self.port, headers, len(body),
            body))
        status_line = self._line()
        parts = status_line.split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1."):
            raise ConnectionError(f"bad status line {status_line[:100]!r}")
        status = int(parts[1])
        length, chunked, keep_alive = None, False, parts[0] == b"HTTP/1.1"
        while True:
            line = self._line()
            if not line:
                break
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding" and b"chunked" in value:
                chunked = True
            elif name == b"connection":
                keep_alive = value != b"close"
        if chunked:
            data = []
            while True:
                size = int(self._line().split(b";")[0], 16)
                if size == 0:
                    while self._line():
                        pass
                    break
                data.append(self._take(size))
                self._take(2)
            payload = b"".join(data)
        elif length is not None:
            payload = self._take(length)
        else:
            # Body up to the end of the connection.
            while True:
                try:
                    self._fill()
                except ConnectionError:
                    break
            payload, self.buf, keep_alive = self.buf, b"", False
        return status, payload, keep_alive


PUT_HEADERS = (b"Content-Type: application/fhir+json\r\nAccept: application/fhir+json\r\n"
               b"Prefer: return=minimal\r\n")


class Loader:
    """PUTs resources with `workers` threads, each holding one keep-alive connection."""

    def __init__(self, base_url: str, workers: int, timeout: float):
        u = urllib.parse.urlsplit(base_url.rstrip("/"))
        if u.scheme != "http" or not u.hostname:
            raise SystemExit(f"generate.py: --base-url must be http://HOST:PORT/PATH, got {base_url}")
        self.host, self.port, self.path = u.hostname, u.port or 80, u.path
        self.workers, self.timeout = workers, timeout
        self.queue: queue.Queue = queue.Queue(maxsize=workers * 64)
        self.failure: str | None = None
        self.lock = threading.Lock()
        self.done = 0
        self.by_type: dict[str, int] = {}
        self.stop = threading.Event()

    def _connect(self):
        return HttpConnection(self.host, self.port, self.timeout)

    def _put(self, conn, rtype, rid, body):
        path = f"{self.path}/{rtype}/{rid}"
        for attempt in range(5):
            try:
                if conn is None:
                    conn = self._connect()
                status, data, keep_alive = conn.request("PUT", path, PUT_HEADERS, body)
            except (OSError, ValueError) as e:
                # Connection dropped (the PUT is idempotent: retry on a new connection).
                if conn is not None:
                    conn.close()
                conn = None
                if attempt == 4:
                    raise LoadError(f"PUT {path}: {e}") from e
                time.sleep(0.2 * (attempt + 1))
                continue
            if not keep_alive:
                conn.close()
                conn = None
            if status == 503 and attempt < 4:
                time.sleep(1.0 * (attempt + 1))
                continue
            if not 200 <= status < 300:
                raise LoadError(f"PUT {path}: HTTP {status}\n"
                                f"{data.decode('utf-8', 'replace')[:4000]}\nbody sent: "
                                f"{body.decode('utf-8', 'replace')[:4000]}")
            return conn
        raise LoadError(f"PUT {path}: still 503 after retries")

    def _worker(self):
        conn = None
        counts: dict[str, int] = {}
        n = 0
        try:
            while True:
                item = self.queue.get()
                if item is None:
                    break
                if self.stop.is_set():
                    continue
                rtype, rid, body = item
                try:
                    conn = self._put(conn, rtype, rid, body)
                except LoadError as e:
                    with self.lock:
                        if self.failure is None:
                            self.failure = str(e)
                    self.stop.set()
                    continue
                counts[rtype] = counts.get(rtype, 0) + 1
                n += 1
                if n % 200 == 0:
                    with self.lock:
                        self.done += n
                        n = 0
        finally:
            if conn is not None:
                conn.close()
            with self.lock:
                self.done += n
                for k, v in counts.items():
                    self.by_type[k] = self.by_type.get(k, 0) + v

    def run(self, items, progress_every: float = 10.0):
        threads = [threading.Thread(target=self._worker, daemon=True) for _ in range(self.workers)]
        for t in threads:
            t.start()
        t0 = time.monotonic()
        last = t0
        try:
            for rtype, rid, body in items:
                if self.stop.is_set():
                    break
                self.queue.put((rtype, rid, body))
                now = time.monotonic()
                if now - last >= progress_every:
                    last = now
                    with self.lock:
                        done = self.done
                    print(f"load: {done} resources, {done / (now - t0):.0f}/s", file=sys.stderr,
                          flush=True)
        finally:
            for _ in threads:
                self.queue.put(None)
            for t in threads:
                t.join()
        elapsed = time.monotonic() - t0
        return elapsed


def ndjson_items(path):
    with open(path, "rb") as f:
        for line in f:
            line = line.strip()
            if not line:
                continue
            r = json.loads(line)
            yield r["resourceType"], r["id"], line


def generated_items(first, last, seed):
    for r in resources(first, last, seed, first == 0):
        yield r["resourceType"], r["id"], dumps(r)


def cmd_load(args):
    loader = Loader(args.base_url, args.workers, args.timeout)
    if args.input:
        items = ndjson_items(args.input)
        what = args.input
    else:
        items = generated_items(args.first, args.patients, args.seed)
        what = f"patients {args.first}..{args.patients - 1} (seed {args.seed})"
    print(f"load: {what} -> {args.base_url} with {args.workers} workers", file=sys.stderr,
          flush=True)
    elapsed = loader.run(items)
    if loader.failure:
        print(f"load: FAILED after {loader.done} resources: {loader.failure}", file=sys.stderr)
        return 1
    rps = loader.done / elapsed if elapsed > 0 else 0.0
    types = " ".join(f"{k}={v}" for k, v in sorted(loader.by_type.items()))
    print(f"LOAD resources={loader.done} seconds={elapsed:.1f} rps={rps:.1f} workers={args.workers}"
          f" {types}", flush=True)
    return 0


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Synthetic UK care-record population (deterministic) and its loader.",
        epilog="See the module docstring (head of this file) for details.")
    sub = parser.add_subparsers(dest="command", required=True)

    def scale(p):
        p.add_argument("--patients", type=int, default=DEFAULT_PATIENTS,
                       help="population size: patients 0..N-1 (default %(default)s, about 50 "
                            "resources each)")
        p.add_argument("--first", type=int, default=0,
                       help="start at patient K (to add a batch on top of an earlier one); "
                            "Organizations are written only when K is 0")
        p.add_argument("--seed", type=int, default=DEFAULT_SEED, help="default %(default)s")

    g = sub.add_parser("generate", help="write NDJSON")
    scale(g)
    g.add_argument("-o", "--output", help="file (default stdout)")
    v = sub.add_parser("values", help="write the per-patient value list (TSV)")
    scale(v)
    v.add_argument("-o", "--output", help="file (default stdout)")
    s = sub.add_parser("stats", help="print counts per type")
    scale(s)
    ld = sub.add_parser("load", help="PUT the resources to a server")
    scale(ld)
    ld.add_argument("--base-url", required=True, help="FHIR base, e.g. http://127.0.0.1:8181/fhir")
    ld.add_argument("--workers", type=int, default=8, help="concurrent connections (default 8)")
    ld.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    ld.add_argument("--input", help="load this NDJSON file instead of generating")
    args = parser.parse_args(argv)
    check_range(args.first, args.patients)
    if args.command == "generate":
        cmd_generate(args)
    elif args.command == "values":
        cmd_values(args)
    elif args.command == "stats":
        cmd_stats(args)
    else:
        if args.workers < 1:
            raise SystemExit("generate.py: --workers must be at least 1")
        return cmd_load(args)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:
        sys.exit(1)
    except KeyboardInterrupt:
        sys.exit(130)
