"""Generate docs/seeds.md: each seed detection's vendor query next to what siemforge emits for its rule on every
binding, with the query lengths and a line on each difference that remains.

    python tools/gen_seeds_doc.py          # rewrite docs/seeds.md
    python tools/gen_seeds_doc.py --check  # exit 1 if docs/seeds.md is not what this would write

Lengths are characters of the query with comments left out (KQL `//` lines, SPL ``` ``` ``` comments), trailing
spaces stripped. "Before" is the length this script measured at commit c6d1436, before issue 16's changes.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT.parent / "shared" / "reference" / "seeds"
OUT = ROOT / "docs" / "seeds.md"


@dataclass(frozen=True)
class Variant:
    """One vendor query of a seed and the rule that is authored from it."""

    title: str
    seed: str  # file name under ../shared/reference/seeds
    language: str  # spl or kql
    occurrence: int  # which query of that language in the file (0: the first)
    rule: str  # folder under rules/
    # (target, binding) -> length before issue 16, and the differences that remain
    emitted: tuple[tuple[str, str, int, tuple[str, ...]], ...]


UTC = ("hours and weekdays are UTC whatever the searching user's time zone: the seed's `date_hour`/`date_wday` (raw) "
       "or `strftime` (ASL) read the event's own or the user's clock (semantics decision 6)")
NULL_KEYS = ("keys that may be null (user, user_agent, src, vendor_account, vendor_region, repository: CloudTrail "
             "records can lack each) are filled before `stats` and made null again after, because `stats by` drops "
             "the events the seed silently loses (decisions 9, 40, 41); signature and vendor_product are not: the "
             "base search requires eventName, and vendor_product is a constant, set after `stats` (decision 46)")
RAW_NAMES = ("the binding reads CloudTrail's own field names and renames them after `stats` (`rename eventName AS "
             "signature, …`), where the seed relies on the add-on's field aliases being installed")
USER = ("`user` is the source's derived field `iif(isnotempty(userIdentity.userName), userIdentity.userName, last "
        "segment of the ARN)`, spelled out (isnotempty is two tests, null and \"\", on a field that holds one value "
        "at most: decision 46)")

VARIANTS = [
    Variant("Cloud Compute Instance Created With Previously Unseen Image", "000_2e3b7a5ccf4f371b.txt", "spl", 0,
            "cloud_instance_created_unseen_image", (
                ("splunk", "cim", 876, (
                    "`tstats … fillnull_value=` keeps the events whose image or user is null as their own group "
                    "(the seed drops them); the two keys are restored to null after",
                    "`where image_id != \"unknown\"` keeps a null image_id, as the IR's two-valued `!=` says "
                    "(`isnull(image_id) OR …`)",
                    "no ESCU macros (`drop_dm_object_name`, `security_content_ctime`, the `_filter` macro): a "
                    "`rename` of the data model names instead, times stay epoch seconds")),
                ("splunk", "raw", 2626, (
                    "the Change data model is expanded over raw CloudTrail: the view's `case` for `action`, the "
                    "instance and image ids from three JSON paths",)),
                ("splunk", "asl", 2717, (
                    "the same expansion over Amazon Security Lake's OCSF names",)),
                ("sentinel", "sentinel", 4692, (
                    "Sentinel has no seen-before lookup table: the baseline is computed by the query itself from "
                    "14 days of AWSCloudTrail (a `let` per stage), then looked up",
                    "the whole-table `eventstats max()` is one `toscalar()` (decision 42)")),
            )),
    Variant("AWS ECR Container Upload Outside Business Hours (raw CloudTrail)", "001_4c018a111b1ccd74.txt", "spl", 0,
            "aws_ecr_upload_outside_business_hours", (
                ("splunk", "raw", 1686, (UTC, NULL_KEYS, RAW_NAMES, USER,
                                         "repository is read with `spath` (the seed's `rename requestParameters.* "
                                         "as *` relies on automatic JSON extraction)")),
                ("sentinel", "sentinel", 726, (
                    UTC, "KQL keeps null (empty) keys as a group: nothing to fill",
                    "repository is read from the parsed RequestParameters column")),
            )),
    Variant("ASL AWS ECR Container Upload Outside Business Hours", "001_4c018a111b1ccd74.txt", "spl", 1,
            "aws_ecr_upload_outside_business_hours", (
                ("splunk", "asl", 1708, (
                    UTC, NULL_KEYS, USER,
                    "the seed's `fillnull` fills every field with 0 before `stats`, so its null keys become \"0\"; "
                    "ours become null again after",
                    "the seed groups by OCSF names and renames after; so do we, and also by `api.service.name` "
                    "only where the rule asks (the seed's extra keys `api.request.data`, `bucketName` are not in "
                    "the rule)")),
            )),
    Variant("Suspicious AWS EC2 Compute Resource Deployments", "002_d5c518c3a92cd542.txt", "kql", 0,
            "aws_ec2_suspicious_compute_deployments", (
                ("sentinel", "sentinel", 1326, (
                    "each JSON column is parsed once (`RequestParametersJson = parse_json(RequestParameters)`) "
                    "where the seed calls `parse_json` at every use",
                    "`datetime_diff('hour', end, Start) < 8` is kept as the seed writes it (decision 7)")),
                ("splunk", "raw", 2633, (
                    "every JSON path is one `spath`; `[-1]` and `[0]` indexes go through `mvindex` (spath is "
                    "1-based, with no index from the end)",
                    "parallel `extend`s that read the column they replace go through temporaries (SPL's `eval` is "
                    "sequential, decision 8)")),
            )),
]


def vendor_query(v: Variant) -> str:
    """The seed's query: SPL after each "Detection logic" heading; KQL from the table name to the rule's YAML."""
    text = (SEEDS / v.seed).read_text(encoding="utf-8")
    if v.language == "spl":
        blocks = re.findall(r"Detection logic\n\n(.*?)(?:\n\n|\Z)", text, flags=re.S)
        return "\n".join(line.rstrip() for line in blocks[v.occurrence].splitlines())
    start = text.index("\nAWSCloudTrail\n") + 1
    end = text.index("\nrelevantTechniques:", start)
    return "\n".join(line.rstrip() for line in text[start:end].splitlines())


def without_comments(query: str) -> str:
    query = re.sub(r"```.*?```", "", query, flags=re.S)
    return "\n".join(line.rstrip() for line in query.splitlines() if not line.lstrip().startswith("//")).strip()


def emitted(rule_dir: str, target: str, binding: str) -> str:
    from siemforge.backends.registry import targets
    from siemforge.compiler.api import compile_file

    folder = ROOT / "rules" / rule_dir
    rule = compile_file(folder / f"{rule_dir}.yml").rule
    assert rule is not None, rule_dir
    return targets()[target].compile(rule, binding)


def render() -> str:
    out = ["# The seed detections, side by side",
           "",
           "Generated by `tools/gen_seeds_doc.py` (tests/test_seeds_doc.py checks it is current); do not edit by hand.",
           "",
           "Each detection the project was created from (`../shared/reference/seeds/`), its vendor query, and what",
           "siemforge emits for the rule authored from it on every binding. Lengths are characters with comments left",
           "out; *before* is what the same rule compiled to before issue 16 (nullability, fills only where a key can",
           "be null, `toscalar`, the string column for a textual test).",
           "",
           "| seed | target | binding | vendor | before | now | now / vendor | now / before |",
           "|---|---|---|---:|---:|---:|---:|---:|"]
    sections: list[str] = []
    for v in VARIANTS:
        vendor = without_comments(vendor_query(v))
        sections += [f"## {v.title}", "", f"Vendor ({v.language.upper()}, `{v.seed}`), {len(vendor)} characters:",
                     "", "```", vendor, "```", ""]
        for target, binding, before, notes in v.emitted:
            query = without_comments(emitted(v.rule, target, binding))
            out.append(f"| {v.title} | {target} | {binding} | {len(vendor)} | {before} | {len(query)} | "
                       f"{len(query) / len(vendor):.2f} | {len(query) / before:.2f} |")
            sections += [f"### siemforge → {target} (`{binding}`), {len(query)} characters (before: {before})", "",
                         "```", query, "```", "", "What remains different, and why:", ""]
            sections += [f"- {n}" for n in notes] + [""]
    return "\n".join([*out, "", *sections]).rstrip() + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if OUT.read_text(encoding="utf-8") != text:
            print(f"{OUT} is out of date: run python tools/gen_seeds_doc.py", file=sys.stderr)
            return 1
        return 0
    OUT.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
