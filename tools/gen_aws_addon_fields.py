"""Print the `status` and `action` derived fields of aws.cloudtrail (sources/aws_cloudtrail.yml `aliases:`) from the
Splunk Add-on for AWS's own lookup, so that the expressions are the add-on's definition and not a reading of it.

The add-on (Splunk_TA_aws 7.0.0, default/props.conf, stanza [aws:cloudtrail]) derives them with

    EVAL-errorCode = coalesce('errorCode', if(like('responseElements.ConsoleLogin', "Failure"), "failure", "success"),
                              "success")
    LOOKUP-action-status-for-aws-cloudtrail = aws-cloudtrail-action-status-lookup eventName, errorCode
                                              OUTPUTNEW action, status

and transforms.conf [aws-cloudtrail-action-status-lookup]: `filename = aws_cloudtrail_action_status.csv`,
`match_type = WILDCARD(errorCode)`, `max_matches = 1` (the first matching row, in file order). CSV lookups match
case-sensitively by default. A calculated field (EVAL) runs before a lookup, so the lookup reads the EVAL's errorCode.

Usage: python tools/gen_aws_addon_fields.py PATH/TO/Splunk_TA_aws/lookups/aws_cloudtrail_action_status.csv
(the add-on's file; e.g. from a Splunk_TA_aws 7.0.0 package). Paste the output into `aliases:`.
"""

from __future__ import annotations

import csv
import sys
import textwrap
from collections import defaultdict
from pathlib import Path

# the add-on's errorCode after its EVAL (CloudTrail writes no errorCode for a successful call, and none for a failed
# console sign-in, whose responseElements.ConsoleLogin is "Failure"); on Sentinel an absent string is "", hence isempty
ERROR_CODE = ('iif(isnotempty(errorCode), errorCode,\n'
              '    iif(responseElements.ConsoleLogin == "Failure", "failure", "success"))')


def first_match(rows: list[tuple[str, str, str]], code: str) -> tuple[str, str] | None:
    for pattern, action, status in rows:
        if pattern == code or pattern == "*":
            return action, status
    return None


def names(items: list[str]) -> str:
    return "\n            ".join(textwrap.wrap(", ".join(f'"{n}"' for n in items), 100, break_on_hyphens=False))


def generate(path: Path) -> str:
    table: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    with path.open(newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            table[row["eventName"]].append((row["errorCode"], row["action"], row["status"]))
    for name, rows in table.items():
        codes = [p for p, _, _ in rows]
        odd = [p for p in codes if "*" in p and p != "*"]
        if odd:
            raise SystemExit(f"{name}: a partial wildcard {odd} needs a `like` test this generator does not write")
        # every row for a specific error code must give what the `*` row gives, so that the specific codes need no
        # test of their own (true of 7.0.0's file; checked, not assumed)
        star = first_match([r for r in rows if r[0] == "*"], "*")
        for p, a, s in rows:
            if p not in ("*", "success") and codes.index(p) < codes.index("*") and (a, s) != star:
                raise SystemExit(f"{name}: error code {p} gives {(a, s)}, its `*` row {star}")
    out = []
    for field, pick in (("action", 0), ("status", 1)):
        arms: dict[bool, dict[str, list[str]]] = {True: defaultdict(list), False: defaultdict(list)}
        for name, rows in table.items():
            hit = first_match(rows, "success")
            if hit is not None:
                arms[True][hit[pick]].append(name)
            miss = first_match([r for r in rows if r[0] == "*"], "*")  # any other code: the `*` row (see above)
            if miss is not None:
                arms[False][miss[pick]].append(name)
        cases = []
        for ok in (True, False):
            by_value = sorted(arms[ok].items(), key=lambda kv: (-len(kv[1]), kv[0]))
            cases.append("case(" + ",\n        ".join(f'eventName in ({names(sorted(ns))}), "{v}"'
                                                     for v, ns in by_value) + ",\n        null)")
        out.append(f'{field} = iif({ERROR_CODE} == "success",\n    {cases[0]},\n    {cases[1]})')
    return ",\n".join(out)

if __name__ == "__main__":
    print(generate(Path(sys.argv[1])))
