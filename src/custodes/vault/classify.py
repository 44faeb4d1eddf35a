"""Sensitivity classification: which tier (and so which key scope) a FHIR record gets.

``SensitivityClassifier().classify(resource)`` looks at three kinds of evidence:

1. **codes**: every Coding anywhere in the resource (``code``, ``valueCodeableConcept``,
   ``category``, ``type``, ``reasonCode``, ``medicationCodeableConcept``, claim items...)
   is looked up in the code lists below (SNOMED CT, ICD-10-CM, LOINC, RxNorm);
2. **security labels**: ``meta.security`` codes of HL7 v3 ActCode (HIV, ETH, PSY,
   PSYTHPN, SDV, SEX, STD, GDIS, SUD...) and Confidentiality R and V;
3. **free text** (narrative, ``valueString``, ``note[].text``, text attachments in base64):
   Presidio pattern recognisers for identifiers (SSN, phone, e-mail, MRN) and deny lists
   of sensitive-category terms, over a blank spaCy English pipeline (no model download).

Codes and labels are dictionary look-ups (microseconds); Presidio runs only on
resources that hold free text. Reasons name the evidence (a code, a label, the kind of
identifier found), never the value found. docs/sensitivity.md renders the tables.
"""

from __future__ import annotations

import base64
import binascii
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

from custodes.keys.envelope import Tier

# ---------------------------------------------------------------------------------------
# Categories

HIV = "hiv"
SUBSTANCE_USE = "substance-use"  # 42 CFR Part 2
MENTAL_HEALTH = "mental-health"
PSYCHOTHERAPY_NOTES = "psychotherapy-notes"  # HIPAA 45 CFR 164.508(a)(2)
REPRODUCTIVE_HEALTH = "reproductive-health"  # contraception, pregnancy, STIs, sexuality
GENETICS = "genetics"  # GINA
VIOLENCE = "violence"  # sexual assault, abuse, domestic violence (label SDV, MST)
RESTRICTED = "restricted"  # Confidentiality R or V: the sender says so
PHI_IN_TEXT = "phi-in-text"  # free text holds an identifier

SENSITIVE_CATEGORIES = frozenset({HIV, SUBSTANCE_USE, MENTAL_HEALTH, PSYCHOTHERAPY_NOTES,
                                  REPRODUCTIVE_HEALTH, GENETICS, VIOLENCE, RESTRICTED})  # fmt: skip

# Resource types that describe the organisation, not a patient.
ORGANISATIONAL_TYPES = frozenset({"Organization", "Practitioner", "PractitionerRole", "Location"})

# ---------------------------------------------------------------------------------------
# Code systems

SNOMED = "http://snomed.info/sct"
LOINC = "http://loinc.org"
RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ICD10CM = "http://hl7.org/fhir/sid/icd-10-cm"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"

SYSTEM_NAMES = {SNOMED: "SNOMED CT", LOINC: "LOINC", RXNORM: "RxNorm", ICD10CM: "ICD-10-CM"}

# Other spellings of the same systems (OIDs, FHIR DSTU2/STU3 addresses).
_SYSTEM_ALIASES = {
    "urn:oid:2.16.840.1.113883.6.96": SNOMED,
    "urn:oid:2.16.840.1.113883.6.1": LOINC,
    "urn:oid:2.16.840.1.113883.6.88": RXNORM,
    "urn:oid:2.16.840.1.113883.6.90": ICD10CM,
    "http://hl7.org/fhir/sid/icd-10": ICD10CM,  # WHO ICD-10 shares these chapters
    "http://hl7.org/fhir/v3/ActCode": ACT_CODE,
    "urn:oid:2.16.840.1.113883.5.4": ACT_CODE,
    "http://hl7.org/fhir/v3/Confidentiality": CONFIDENTIALITY,
    "urn:oid:2.16.840.1.113883.5.25": CONFIDENTIALITY,
}

# ---------------------------------------------------------------------------------------
# Code lists, per category and system: code -> short display (used in reasons).
# "Synthea" marks codes the Synthea generator writes (checked against the sample bundles
# in shared/data/synthea-r4); the others are from the code systems' own browsers
# (SNOMED CT International, loinc.org, RxNav) and the SAMHSA C2S / VSAC value sets that
# the HL7 DS4P guides cite. docs/sensitivity.md lists them with sources.

CODE_LISTS: dict[str, dict[str, dict[str, str]]] = {
    HIV: {
        SNOMED: {
            "86406008": "HIV infection",
            "62479008": "AIDS",
            "165816005": "HIV positive",
        },
        LOINC: {
            "55277-8": "HIV status",  # Synthea
            "56888-1": "HIV test",
            "7918-6": "HIV 1+2 antibody test",
            "25836-8": "HIV 1 RNA viral load",
            "20447-9": "HIV 1 RNA viral load",
        },
        RXNORM: {
            "11413": "zidovudine",
            "68244": "lamivudine",
            "195085": "efavirenz",
            "276237": "emtricitabine",
        },
    },
    SUBSTANCE_USE: {
        SNOMED: {
            "66214007": "substance abuse",
            "5602001": "opioid abuse",  # Synthea
            "75544000": "opioid dependence",
            "7200002": "alcoholism",
            "55680006": "drug overdose",  # Synthea
            "56876005": "drug rehabilitation and detoxification",  # Synthea
            "266707007": "drug addiction therapy",  # Synthea
            "60112009": "drug addiction counseling",  # Synthea
            "61480009": "drug detoxification",  # Synthea
            "313071005": "counseling for substance abuse",  # Synthea
            "408935001": "substance abuse prevention education",  # Synthea
            "408936000": "substance abuse prevention management",  # Synthea
        },
        LOINC: {
            "82667-7": "DAST-10 total score",
            "75626-2": "AUDIT-C total score",
        },
        RXNORM: {
            "6813": "methadone",
            "1819": "buprenorphine",
            "7243": "naltrexone",
            "3554": "disulfiram",
        },
    },
    MENTAL_HEALTH: {
        SNOMED: {
            "35489007": "depressive disorder",
            "36923009": "major depression, single episode",
            "370143000": "major depressive disorder",
            "197480006": "anxiety disorder",
            "58214004": "schizophrenia",
            "13746004": "bipolar disorder",
            "47505003": "posttraumatic stress disorder",  # Synthea
            "192127007": "child attention deficit disorder",  # Synthea
            "171207006": "depression screening",  # Synthea
            "79094001": "initial psychiatric interview",  # Synthea
            "405783006": "psychological assessment",  # Synthea
            "736254008": "psychiatry care plan",  # Synthea
            "386522008": "overactivity/inattention behavior management",  # Synthea
        },
        LOINC: {
            "44261-6": "PHQ-9 total score",
            "55758-7": "PHQ-2 total score",
            "70274-6": "GAD-7 total score",
        },
        RXNORM: {
            "328670": "sertraline 100 MG",  # Synthea
            "608139": "atomoxetine 100 MG oral capsule",  # Synthea
            "36437": "sertraline",
            "4493": "fluoxetine",
        },
    },
    PSYCHOTHERAPY_NOTES: {
        SNOMED: {
            "75516001": "psychotherapy",
        },
    },
    REPRODUCTIVE_HEALTH: {
        SNOMED: {
            "72892002": "normal pregnancy",  # Synthea
            "424441002": "prenatal initial visit",  # Synthea
            "424619006": "prenatal visit",  # Synthea
            "183460006": "obstetric emergency hospital admission",  # Synthea
            "134435003": "routine antenatal care",  # Synthea
            "169762003": "postnatal visit",  # Synthea
            "19169002": "miscarriage in first trimester",  # Synthea
            "79586000": "tubal pregnancy",  # Synthea
            "398254007": "preeclampsia",  # Synthea
            "198992004": "antepartum eclampsia",  # Synthea
            "156073000": "fetus with unknown complication",  # Synthea
            "252160004": "pregnancy test",  # Synthea
            "10383002": "counseling for termination of pregnancy",  # Synthea
            "386394001": "pregnancy termination care",  # Synthea
            "714812005": "induced termination of pregnancy",  # Synthea
            "169553002": "insertion of subcutaneous contraceptive",  # Synthea
            "301807007": "removal of subcutaneous contraceptive",  # Synthea
            "755621000000101": "replacement of subcutaneous contraceptive",  # Synthea
            "65200003": "insertion of intrauterine contraceptive device",  # Synthea
            "68254000": "removal of intrauterine device",  # Synthea
            "46706006": "replacement of contraceptive intrauterine device",  # Synthea
            "287664005": "bilateral tubal ligation",  # Synthea
            "165829005": "gonorrhea infection test",  # Synthea
            "269828009": "syphilis infection test",  # Synthea
            "310861008": "chlamydia antigen test",  # Synthea
            "243077000": "recommendation to limit sexual activity",  # Synthea
        },
        LOINC: {
            "2106-3": "pregnancy test (hCG) in urine",
            "82810-3": "pregnancy status",
            "76690-7": "sexual orientation",  # Synthea
        },
        RXNORM: {
            "1000126": "medroxyprogesterone acetate injection",  # Synthea
            "1534809": "ethinyl estradiol / norelgestromin patch",  # Synthea
            "1605257": "Liletta intrauterine system",  # Synthea
            "1856546": "Kyleena intrauterine system",  # Synthea
            "807283": "Mirena intrauterine system",  # Synthea
            "389221": "etonogestrel implant",  # Synthea
            "1367439": "NuvaRing",  # Synthea
            "748856": "Yaz",  # Synthea
            "748879": "Levora",  # Synthea
            "748962": "Camila",  # Synthea
            "749762": "Seasonique",  # Synthea
            "751905": "Trinessa",  # Synthea
            "757594": "Jolivette",  # Synthea
            "831533": "Errin",  # Synthea
            "978950": "Natazia",  # Synthea
        },
    },
    GENETICS: {
        SNOMED: {
            "443529005": "screening for chromosomal aneuploidy",  # Synthea
        },
        LOINC: {
            "51969-4": "genetic analysis report",
            "81247-9": "genetic variant reporting panel",
            "69548-6": "genetic variant assessment",
            "48018-6": "gene studied",
        },
    },
}

# ICD-10-CM by category prefix (the three-character categories of the classification).
ICD10CM_PREFIXES: dict[str, tuple[str, str]] = {
    "B20": (HIV, "HIV disease"),
    "Z21": (HIV, "asymptomatic HIV infection status"),
    "R75": (HIV, "inconclusive laboratory evidence of HIV"),
    **{f"F{n}": (SUBSTANCE_USE, "mental and behavioural disorders due to psychoactive substance use")
       for n in (10, 11, 12, 13, 14, 15, 16, 18, 19)},  # F17 nicotine: outside Part 2
    **{f"F{n}": (MENTAL_HEALTH, "mental, behavioural and neurodevelopmental disorders")
       for n in range(20, 100)},
    "Z86.59": (MENTAL_HEALTH, "personal history of other mental and behavioural disorders"),
    **{f"O{n:02d}": (REPRODUCTIVE_HEALTH, "pregnancy, childbirth and the puerperium")
       for n in range(0, 100)},
    "O9A": (REPRODUCTIVE_HEALTH, "pregnancy, childbirth and the puerperium"),
    "Z30": (REPRODUCTIVE_HEALTH, "encounter for contraceptive management"),
    "Z31": (REPRODUCTIVE_HEALTH, "encounter for procreative management"),
    "Z32": (REPRODUCTIVE_HEALTH, "encounter for pregnancy test"),
    "Z33": (REPRODUCTIVE_HEALTH, "pregnant state"),
    "Z34": (REPRODUCTIVE_HEALTH, "supervision of normal pregnancy"),
    "Z3A": (REPRODUCTIVE_HEALTH, "weeks of gestation"),
    "N97": (REPRODUCTIVE_HEALTH, "female infertility"),
    **{f"A{n}": (REPRODUCTIVE_HEALTH, "infections with a predominantly sexual mode of transmission")
       for n in range(50, 65)},
    "Z14": (GENETICS, "genetic carrier"),
    "Z15": (GENETICS, "genetic susceptibility to disease"),
    **{f"Q{n}": (GENETICS, "chromosomal abnormalities") for n in range(90, 100)},
}  # fmt: skip

# meta.security labels: (system, code) -> (category, description for the reason).
SECURITY_LABELS: dict[tuple[str, str], tuple[str, str]] = {
    (ACT_CODE, "HIV"): (HIV, "HIV/AIDS information sensitivity"),
    (ACT_CODE, "ETH"): (SUBSTANCE_USE, "substance abuse information sensitivity"),
    (ACT_CODE, "SUD"): (SUBSTANCE_USE, "substance use disorder information sensitivity"),
    (ACT_CODE, "PSY"): (MENTAL_HEALTH, "psychiatry information sensitivity"),
    (ACT_CODE, "BH"): (MENTAL_HEALTH, "behavioral health information sensitivity"),
    (ACT_CODE, "PSYTHPN"): (PSYCHOTHERAPY_NOTES, "psychotherapy note information sensitivity"),
    (ACT_CODE, "SEX"): (REPRODUCTIVE_HEALTH, "sexuality and reproductive health information sensitivity"),
    (ACT_CODE, "STD"): (REPRODUCTIVE_HEALTH, "sexually transmitted disease information sensitivity"),
    (ACT_CODE, "GDIS"): (GENETICS, "genetic disease information sensitivity"),
    (ACT_CODE, "SCA"): (GENETICS, "sickle cell anemia information sensitivity"),
    (ACT_CODE, "SDV"): (VIOLENCE, "sexual assault, abuse or domestic violence information sensitivity"),
    (ACT_CODE, "MST"): (VIOLENCE, "military sexual trauma information sensitivity"),
    (CONFIDENTIALITY, "R"): (RESTRICTED, "confidentiality restricted"),
    (CONFIDENTIALITY, "V"): (RESTRICTED, "confidentiality very restricted"),
}  # fmt: skip

# Terms that, in free text, place a record in a category (Presidio deny lists; whole
# words, case-insensitive).
DENY_TERMS: dict[str, tuple[str, ...]] = {
    HIV: ("HIV", "human immunodeficiency virus", "acquired immunodeficiency syndrome",
          "antiretroviral"),
    SUBSTANCE_USE: ("methadone", "buprenorphine", "suboxone", "naltrexone", "opioid use disorder",
                    "substance use disorder", "substance abuse", "alcohol use disorder",
                    "alcoholism", "drug addiction", "detoxification", "heroin", "overdose"),
    MENTAL_HEALTH: ("depression", "depressive", "schizophrenia", "bipolar", "psychiatric",
                    "psychiatry", "suicidal", "suicide", "PTSD", "posttraumatic stress",
                    "anxiety disorder", "antidepressant"),
    PSYCHOTHERAPY_NOTES: ("psychotherapy", "psychotherapist"),
    REPRODUCTIVE_HEALTH: ("pregnancy", "pregnant", "abortion", "miscarriage", "contraception",
                          "contraceptive", "intrauterine device", "chlamydia", "gonorrhea",
                          "syphilis", "sexually transmitted", "infertility", "IVF"),
    GENETICS: ("genetic test", "genetic testing", "BRCA1", "BRCA2", "genome sequencing",
               "gene variant", "chromosomal"),
}  # fmt: skip

# What Presidio looks for, by entity name.
PHI_ENTITIES = ("US_SSN", "PHONE_NUMBER", "EMAIL_ADDRESS", "MRN")
_TERM_ENTITY = {category: f"TERM_{category.upper().replace('-', '_')}" for category in DENY_TERMS}
_CATEGORY_OF_ENTITY = {entity: category for category, entity in _TERM_ENTITY.items()}

SCORE_THRESHOLD = 0.4  # Presidio's pattern scores: weak bare numbers stay below it
MAX_TEXT_CHARS = 200_000  # per text; the rest of a longer text is not scanned
_TEXT_TYPES = ("text/", "application/json", "application/xml", "application/fhir+")

# ---------------------------------------------------------------------------------------
# The look-up tables, built once from the lists above.

_CODE_INDEX: dict[tuple[str, str], list[tuple[str, str]]] = {}
for _category, _systems in CODE_LISTS.items():
    for _system, _codes in _systems.items():
        for _code, _display in _codes.items():
            _reason = f"{SYSTEM_NAMES[_system]} {_code} ({_display})"
            _CODE_INDEX.setdefault((_system, _code), []).append((_category, _reason))
_SYSTEMS_OF_INTEREST = frozenset({SNOMED, LOINC, RXNORM, ICD10CM, *_SYSTEM_ALIASES})
_TAG = re.compile(r"<[^>]*>")
_ID_CHARS = re.compile(r"[0-9@]")
# The deny lists' own shape (Presidio's): a whole term, any case.
_ANY_TERM = re.compile(
    r"(?:^|(?<=\W))(?:" + "|".join(re.escape(t) for ts in DENY_TERMS.values() for t in ts)
    + r")(?:(?=\W)|$)", re.IGNORECASE)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Classification:
    tier: Tier
    categories: frozenset[str]
    reasons: tuple[str, ...]  # plain words; never the value found

    @property
    def sensitive(self) -> bool:
        return self.tier is Tier.SENSITIVE


class SensitivityClassifier:
    """Chooses a record's tier from its codes, security labels and free text.

    ``free_text=False`` skips Presidio (codes and labels only). The Presidio engine is
    built once per process, on first use, and shared.
    """

    def __init__(self, *, free_text: bool = True) -> None:
        self._free_text = free_text
        self._analyzer = _analyzer() if free_text else None

    def classify(self, resource: dict) -> Classification:
        categories: set[str] = set()
        reasons: list[str] = []
        self._labels(resource, categories, reasons)
        for system, code in _codings(resource):
            _look_up(system, code, categories, reasons)
        found_phi = False
        if self._analyzer is not None:
            for where, text in _free_texts(resource, reasons):
                found_phi |= self._scan(where, text, categories, reasons)

        organisational = resource.get("resourceType") in ORGANISATIONAL_TYPES
        sensitive = bool(categories & SENSITIVE_CATEGORIES)
        if organisational and not found_phi:
            tier = Tier.ORGANISATIONAL  # names no patient, whatever its subject matter
        elif sensitive:
            tier = Tier.SENSITIVE
        else:
            tier = Tier.STANDARD
        return Classification(tier, frozenset(categories), tuple(dict.fromkeys(reasons)))

    @staticmethod
    def _labels(resource: dict, categories: set[str], reasons: list[str]) -> None:
        meta = resource.get("meta")
        if not isinstance(meta, dict):
            return
        for label in meta.get("security") or ():
            if not isinstance(label, dict):
                continue
            system = label.get("system")
            system = _SYSTEM_ALIASES.get(system, system)
            found = SECURITY_LABELS.get((system, label.get("code")))
            if found:
                categories.add(found[0])
                reasons.append(f"security label {label['code']} ({found[1]})")

    def _scan(self, where: str, text: str, categories: set[str], reasons: list[str]) -> bool:
        if len(text) > MAX_TEXT_CHARS:
            reasons.append(f"{where}: only the first {MAX_TEXT_CHARS:,} characters scanned")
            text = text[:MAX_TEXT_CHARS]
        # Every identifier holds a digit or an @, every term is in one regex: a text with
        # neither cannot match, so Presidio runs only the recognisers that might.
        entities = [*(PHI_ENTITIES if _ID_CHARS.search(text) else ()),
                    *(_TERM_ENTITY.values() if _ANY_TERM.search(text) else ())]  # fmt: skip
        if not entities:
            return False
        found_phi = False
        results = self._analyzer.analyze(text=text, language="en", entities=entities,
                                         score_threshold=SCORE_THRESHOLD)  # fmt: skip
        for entity in sorted({result.entity_type for result in results}):
            category = _CATEGORY_OF_ENTITY.get(entity)
            if category is not None:
                categories.add(category)
                reasons.append(f"{where} mentions a {category} term")
            else:
                found_phi = True
                categories.add(PHI_IN_TEXT)
                article = "an" if entity in ("EMAIL_ADDRESS", "MRN") else "a"
                reasons.append(f"{where} holds {article} {entity}")
        return found_phi


def _look_up(system: Any, code: Any, categories: set[str], reasons: list[str]) -> None:
    system = _SYSTEM_ALIASES.get(system, system)
    code = str(code).strip()
    for category, reason in _CODE_INDEX.get((system, code), ()):
        categories.add(category)
        reasons.append(reason)
    if system == ICD10CM:
        upper = code.upper()
        for prefix in (upper, upper[:6], upper[:3]):
            found = ICD10CM_PREFIXES.get(prefix)
            if found:
                categories.add(found[0])
                reasons.append(f"ICD-10-CM {upper} ({found[1]})")
                break


def _codings(node: Any) -> Iterator[tuple[str, str]]:
    """Every (system, code) of a Coding anywhere in the resource, but its meta and text."""
    stack = [value for key, value in node.items() if key not in ("meta", "text")]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            system = item.get("system")
            if system in _SYSTEMS_OF_INTEREST and "code" in item:
                yield system, item["code"]
            stack.extend(value for value in item.values() if isinstance(value, dict | list))
        elif isinstance(item, list):
            stack.extend(value for value in item if isinstance(value, dict | list))


def _free_texts(resource: dict, reasons: list[str]) -> Iterator[tuple[str, str]]:
    """(where, text) for each free text of the resource, attachments decoded."""
    narrative = resource.get("text")
    if isinstance(narrative, dict) and isinstance(narrative.get("div"), str):
        yield "narrative", html.unescape(_TAG.sub(" ", narrative["div"]))
    for field in ("valueString", "conclusion", "description"):
        if isinstance(resource.get(field), str):
            yield field, resource[field]
    for component in resource.get("component") or ():
        if isinstance(component, dict) and isinstance(component.get("valueString"), str):
            yield "component.valueString", component["valueString"]
    for note in resource.get("note") or ():
        if isinstance(note, dict) and isinstance(note.get("text"), str):
            yield "note", note["text"]
    attachments: list[tuple[str, Any]] = []
    if resource.get("resourceType") == "DocumentReference":
        attachments = [("content.attachment", content.get("attachment"))
                       for content in resource.get("content") or () if isinstance(content, dict)]  # fmt: skip
    elif resource.get("resourceType") == "DiagnosticReport":
        attachments = [("presentedForm", form) for form in resource.get("presentedForm") or ()]
    for where, attachment in attachments:
        if not isinstance(attachment, dict) or not isinstance(attachment.get("data"), str):
            continue
        content_type = str(attachment.get("contentType") or "text/plain").lower()
        if not content_type.startswith(_TEXT_TYPES):
            reasons.append(f"{where} of type {content_type} not scanned")
            continue
        try:
            raw = base64.b64decode(attachment["data"], validate=True)
        except (binascii.Error, ValueError):
            reasons.append(f"{where} is not valid base64, not scanned")
            continue
        yield where, raw.decode("utf-8", errors="replace")


@cache
def _analyzer() -> Any:
    """The Presidio engine: pattern and deny-list recognisers over a blank spaCy pipeline.

    Built once per process (about a second); imported lazily so that the code and label
    path does not pay for spaCy.
    """
    import spacy
    from presidio_analyzer import AnalyzerEngine, Pattern, PatternRecognizer, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NlpArtifacts, SlimSpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import PhoneRecognizer, UsSsnRecognizer

    class BlankEnglish(SlimSpacyNlpEngine):
        """Tokenisation only, from ``spacy.blank("en")``: nothing to download.

        A blank pipeline has no lemmatiser, so the lower-cased token stands in for the
        lemma; Presidio's context words (``ssn``, ``mrn``, ``phone``) then still count.
        """

        def __init__(self) -> None:
            super().__init__(models=[{"lang_code": "en", "model_name": "blank"}],
                             auto_download=False)  # fmt: skip

        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}

        def _doc_to_nlp_artifact(self, doc: Any, language: str) -> NlpArtifacts:
            return NlpArtifacts(entities=[], tokens=doc, tokens_indices=[t.idx for t in doc],
                                lemmas=[t.lower_ for t in doc], nlp_engine=self,
                                language=language, scores=[])  # fmt: skip

    engine = BlankEnglish()
    engine.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.add_recognizer(UsSsnRecognizer())
    # US national formats; numbers written with a +country code are found in any case.
    # (Each extra region costs a full pass of the phonenumbers matcher.)
    registry.add_recognizer(PhoneRecognizer(supported_regions=("US",)))
    # Presidio's own EmailRecognizer validates with tldextract, which fetches the public
    # suffix list over the network; a plain pattern keeps the scan offline.
    registry.add_recognizer(PatternRecognizer(
        supported_entity="EMAIL_ADDRESS",
        patterns=[Pattern("email", r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b", 0.85)],
    ))  # fmt: skip
    registry.add_recognizer(PatternRecognizer(
        supported_entity="MRN",
        patterns=[
            # "MRN: 123456", "MRN 12-34567", "medical record number #1234567"
            Pattern("mrn labelled",
                    r"(?i)\b(?:MRN|medical record (?:number|no\.?))\s*[:#]?\s*[A-Z]{0,3}\d{2}-?\d{4,8}\b",
                    0.85),
            # a bare number in the MRN shapes: counts only beside a context word
            Pattern("mrn shaped", r"\b\d{2}-\d{5,7}\b", 0.1),
        ],
        context=["mrn", "medical", "record", "chart", "patient"],
    ))  # fmt: skip
    for category, terms in DENY_TERMS.items():
        registry.add_recognizer(
            PatternRecognizer(supported_entity=_TERM_ENTITY[category], deny_list=list(terms))
        )
    return AnalyzerEngine(nlp_engine=engine, registry=registry, supported_languages=["en"])
