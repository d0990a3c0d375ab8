"""ATT&CK coverage of a rule set: which techniques the rules' `attack.*` tags name, under which tactics, and how many
rules each; written as an ATT&CK Navigator layer (format 4.5, layers/spec/v4.5/layerformat.md in
mitre-attack/attack-navigator) and read by the HTML report (cli/coverage.py).

Tags follow Sigma's convention (sigmahq.io, "Tags"): `attack.t1059.001` names a technique or sub-technique,
`attack.<tactic>` a tactic by its ATT&CK short name (`attack.credential-access`; our rules write
`attack.credential_access`, the same tactic), `attack.g0001`/`attack.s0001` a group or a piece of software.

Technique names and the tactics each technique belongs to come from an ATT&CK STIX bundle when the user gives one
(`--attack-data enterprise-attack.json`, MITRE's attack-stix-data); no bundle ships with siemforge or with any
package it depends on, so without one techniques are shown by ID and placed under the tactics their rules name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

LAYER_VERSION = "4.5"
NAVIGATOR_VERSION = "5.2.0"  # the spec: "must be at least 4.9.0"; 5.2.0 is the version its own 4.5 example names
DOMAIN = "enterprise-attack"

_TECHNIQUE = re.compile(r"t(\d{4})(?:\.(\d{3}))?")
_OTHER = re.compile(r"[gs]\d{4}")  # groups and software: not placed on the matrix, listed with the rule

# The enterprise matrix's tactics, left to right, by short name: the order of the report's columns when no STIX
# bundle gives it. `stealth` and `defense-impairment` are the two tactics SigmaHQ's rules tag in place of
# `defense-evasion` (ATT&CK's split of that tactic); all three are kept so rules written either way are read.
TACTICS = (
    "reconnaissance",
    "resource-development",
    "initial-access",
    "execution",
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "stealth",
    "defense-impairment",
    "credential-access",
    "discovery",
    "lateral-movement",
    "collection",
    "command-and-control",
    "exfiltration",
    "impact",
)


def tactic_title(shortname: str) -> str:
    """`command-and-control` → `Command and Control`, as ATT&CK writes its tactics' names."""
    small = {"and", "of", "or", "the"}
    words = shortname.split("-")
    return " ".join(w if (w in small and i) else w.capitalize() for i, w in enumerate(words))


class AttackDataError(Exception):
    """An ATT&CK STIX bundle that cannot be read: `where` is the file (with line:column where there is one)."""

    def __init__(self, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.where, self.message = where, message


@dataclass(frozen=True, slots=True)
class AttackData:
    """What an ATT&CK STIX bundle says about techniques and tactics (revoked and deprecated objects left out)."""

    version: str | None
    technique_names: dict[str, str]
    technique_tactics: dict[str, tuple[str, ...]]
    tactic_names: dict[str, str]
    tactic_order: tuple[str, ...]


_SOURCES = ("mitre-attack", "mitre-mobile-attack", "mitre-ics-attack")  # the STIX external references of ATT&CK IDs


def _external_id(obj: dict[str, Any]) -> str | None:
    for ref in obj.get("external_references") or ():
        if isinstance(ref, dict) and ref.get("source_name") in _SOURCES:
            ext = ref.get("external_id")
            return str(ext) if ext else None
    return None


def load_attack_data(path: Path) -> AttackData:
    """Read an ATT&CK STIX 2.x bundle (enterprise-attack.json): technique names, each technique's tactics (its
    `mitre-attack` kill-chain phases) and the matrix's tactic order (its `x-mitre-matrix` tactic_refs)."""
    try:
        bundle = orjson.loads(path.read_bytes())
    except OSError as exc:
        raise AttackDataError(str(path), f"cannot read: {exc.strerror or exc}") from None
    except orjson.JSONDecodeError as exc:
        raise AttackDataError(f"{path}:{exc.lineno}:{exc.colno}", f"not JSON: {exc.msg}") from None
    objects = bundle.get("objects") if isinstance(bundle, dict) else None
    if not isinstance(objects, list):
        raise AttackDataError(str(path), "not a STIX bundle (no `objects` list)")
    names: dict[str, str] = {}
    tactics_of: dict[str, tuple[str, ...]] = {}
    tactic_names: dict[str, str] = {}
    tactic_by_ref: dict[str, str] = {}
    matrix_refs: list[str] = []
    version: str | None = None
    for obj in objects:
        if not isinstance(obj, dict) or obj.get("revoked") or obj.get("x_mitre_deprecated"):
            continue
        kind = obj.get("type")
        if kind == "x-mitre-collection":
            version = str(obj.get("x_mitre_version") or "") or version
        elif kind == "x-mitre-matrix" and not matrix_refs:
            matrix_refs = [str(r) for r in obj.get("tactic_refs") or ()]
        elif kind == "x-mitre-tactic" and obj.get("x_mitre_shortname"):
            short = str(obj["x_mitre_shortname"])
            tactic_names[short] = str(obj.get("name") or tactic_title(short))
            tactic_by_ref[str(obj.get("id"))] = short
        elif kind == "attack-pattern":
            tid = _external_id(obj)
            if tid is None or not _TECHNIQUE.fullmatch(tid.lower()):
                continue
            names[tid] = str(obj.get("name") or tid)
            tactics_of[tid] = tuple(
                str(p["phase_name"]) for p in obj.get("kill_chain_phases") or ()
                if isinstance(p, dict) and p.get("kill_chain_name") == "mitre-attack" and p.get("phase_name")
            )
    if not names:
        raise AttackDataError(str(path), "a STIX bundle without ATT&CK techniques (no attack-pattern objects)")
    order = tuple(tactic_by_ref[r] for r in matrix_refs if r in tactic_by_ref)
    order += tuple(t for t in TACTICS if t in tactic_names and t not in order)
    order += tuple(sorted(t for t in tactic_names if t not in order))
    return AttackData(version, names, tactics_of, tactic_names, order)


@dataclass(frozen=True, slots=True)
class RuleAttack:
    """One rule and what its tags say about ATT&CK."""

    path: str
    line: int
    title: str
    rule_id: str
    level: str
    techniques: tuple[str, ...]  # T1059.001, as ATT&CK writes it
    tactics: tuple[str, ...]  # short names: credential-access
    other: tuple[str, ...]  # groups, software, and attack.* tags that are none of these, as written


def read_tags(tags: Iterable[object], known_tactics: Iterable[str] = TACTICS) -> tuple[
        tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """A rule's `attack.*` tags as (techniques, tactics, others), each without repeats, in the order written.
    Tags of other namespaces (cve., detection., car.) are not ATT&CK and are left out."""
    known = set(known_tactics)
    techniques: list[str] = []
    tactics: list[str] = []
    other: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            continue
        namespace, _, name = tag.strip().partition(".")
        if namespace.lower() != "attack" or not name:
            continue
        name = name.lower()
        m = _TECHNIQUE.fullmatch(name)
        short = name.replace("_", "-")
        if m:
            tid = f"T{m[1]}" + (f".{m[2]}" if m[2] else "")
            if tid not in techniques:
                techniques.append(tid)
        elif short in known:
            if short not in tactics:
                tactics.append(short)
        else:
            shown = name.upper() if _OTHER.fullmatch(name) else tag.strip()
            if shown not in other:
                other.append(shown)
    return tuple(techniques), tuple(tactics), tuple(other)


@dataclass(slots=True)
class Cell:
    """A technique under one tactic (None: the tactic is not known) and the rules that cover it there. `guessed`:
    every rule here is placed only because it names this tactic among several, with nothing (ATT&CK data, the other
    rules) to tell which of them the technique belongs to."""

    technique: str
    tactic: str | None
    rules: list[RuleAttack] = field(default_factory=list)
    guessed: bool = True

    @property
    def score(self) -> int:
        return len(self.rules)


@dataclass(frozen=True, slots=True)
class Coverage:
    rules: tuple[RuleAttack, ...]
    cells: tuple[Cell, ...]  # sorted by tactic (matrix order, unknown last), then technique
    tactic_order: tuple[str, ...]  # the tactics that have cells, in matrix order
    data: AttackData | None

    @property
    def techniques(self) -> set[str]:
        return {c.technique for c in self.cells}

    @property
    def max_score(self) -> int:
        return max((c.score for c in self.cells), default=0)

    def technique_name(self, tid: str) -> str | None:
        return self.data.technique_names.get(tid) if self.data else None

    def tactic_name(self, short: str) -> str:
        if self.data and short in self.data.tactic_names:
            return self.data.tactic_names[short]
        return tactic_title(short)


def _placements(rule: RuleAttack, tid: str, data: AttackData | None,
                evidence: dict[str, set[str]]) -> tuple[tuple[str | None, ...], bool]:
    """The tactics a rule's technique is placed under, and whether that is a guess. With ATT&CK data: the tactics
    the rule names that the technique belongs to (all the technique's when it names none of them). Without: the
    rule's tactic when it names one; of several, those the rule set itself pairs with the technique (`evidence`);
    else each of them, a guess."""
    if data is not None and tid in data.technique_tactics:
        belongs = data.technique_tactics[tid]
        named = tuple(t for t in rule.tactics if t in belongs)
        return (named or belongs or (None,)), False
    if len(rule.tactics) <= 1:
        return (rule.tactics or (None,)), False
    seen = tuple(t for t in rule.tactics if t in evidence.get(tid, ()))
    return (seen, False) if seen else (rule.tactics, True)


def tactic_evidence(rules: Iterable[RuleAttack]) -> dict[str, set[str]]:
    """The tactics each technique is paired with by rules that name one tactic (which places all their techniques
    under it): where the rule set itself says which tactic a technique is under."""
    found: dict[str, set[str]] = {}
    for rule in rules:
        if len(rule.tactics) == 1:
            for tid in rule.techniques:
                found.setdefault(tid, set()).add(rule.tactics[0])
    return found


def build_coverage(rules: Sequence[RuleAttack], data: AttackData | None = None) -> Coverage:
    """Every (technique, tactic) the rules cover. A rule whose technique has no known tactic adds itself to every
    cell of that technique that has one, or to a cell of no tactic when there is none (the Navigator shows a
    technique without a tactic under every tactic it belongs to)."""
    cells: dict[tuple[str, str | None], Cell] = {}
    untacticked: dict[str, list[RuleAttack]] = {}
    evidence = tactic_evidence(rules)
    for rule in rules:
        for tid in rule.techniques:
            placed, guessed = _placements(rule, tid, data, evidence)
            for tactic in placed:
                if tactic is None:
                    untacticked.setdefault(tid, []).append(rule)
                    continue
                cell = cells.setdefault((tid, tactic), Cell(tid, tactic))
                cell.rules.append(rule)
                cell.guessed &= guessed
    for tid, rs in untacticked.items():
        placed_cells = [c for (t, _), c in cells.items() if t == tid]
        for cell in placed_cells or [cells.setdefault((tid, None), Cell(tid, None, guessed=False))]:
            cell.rules.extend(r for r in rs if r not in cell.rules)
    base = data.tactic_order if data else TACTICS
    present = {t for _, t in cells if t is not None}
    order = tuple(t for t in base if t in present) + tuple(sorted(present - set(base)))
    rank = {t: i for i, t in enumerate(order)}

    def key(c: Cell) -> tuple[int, tuple[int, int]]:
        major, _, minor = c.technique[1:].partition(".")
        return (rank[c.tactic] if c.tactic is not None else len(rank), (int(major), int(minor or 0)))

    for cell in cells.values():
        cell.rules.sort(key=lambda r: (r.title.lower(), r.path, r.line))
    return Coverage(tuple(rules), tuple(sorted(cells.values(), key=key)), order, data)


def navigator_layer(cov: Coverage, name: str, description: str = "") -> dict[str, Any]:
    """The coverage as an ATT&CK Navigator layer (format 4.5): one technique object per cell, scored by its number
    of rules, the rules' titles in the comment and their files in the metadata; a gradient from white (0) to red
    (the highest score)."""
    techniques: list[dict[str, Any]] = []
    for cell in cov.cells:
        entry: dict[str, Any] = {"techniqueID": cell.technique}
        if cell.tactic is not None:
            entry["tactic"] = cell.tactic
        entry["score"] = cell.score
        entry["comment"] = "\n".join(r.title for r in cell.rules)
        entry["enabled"] = True
        entry["metadata"] = [{"name": r.title, "value": f"{r.path}:{r.line}"} for r in cell.rules]
        techniques.append(entry)
    tagged = sum(bool(r.techniques) for r in cov.rules)
    versions: dict[str, str] = {"navigator": NAVIGATOR_VERSION, "layer": LAYER_VERSION}
    if cov.data is not None and cov.data.version:
        versions = {"attack": cov.data.version, **versions}
    return {
        "name": name,
        "versions": versions,
        "domain": DOMAIN,
        "description": description,
        "sorting": 3,  # techniques by score, highest first
        "layout": {"layout": "side", "showID": True, "showName": True, "expandedSubtechniques": "annotated"},
        "hideDisabled": False,
        "techniques": techniques,
        "gradient": {"colors": ["#ffffff", "#fcae91", "#de2d26"], "minValue": 0, "maxValue": max(cov.max_score, 1)},
        "legendItems": [],
        "metadata": [{"name": "rules", "value": str(len(cov.rules))},
                     {"name": "rules with an ATT&CK technique", "value": str(tagged)}],
        "showTacticRowBackground": False,
        "selectTechniquesAcrossTactics": True,
        "selectSubtechniquesWithParent": False,
        "selectVisibleTechniques": False,
    }
