"""Linux audit logs: auditd's text `audit.log`, each record as a row of `linux.auditd`, and each event (the records
sharing one `msg=audit(<time>:<serial>)` id) read once more as a Sigma process_creation, file_event or
network_connection row (docs/sources/linux.md).

A record line is `[node=<host> ]type=<TYPE> msg=audit(<epoch.ms>:<serial>): key=value …`. Values come bare,
`"quoted"`, or hex-encoded (auditd writes an untrusted string in hex when it holds a space, a quote, a control
character or non-ASCII: `exe=2F746D702F…`, `proctitle=617270002D61`); user-space records nest their own list in
`msg='op=… acct="root" res=success'`; the ENRICHED format appends interpreted fields in upper case
(`ARCH=x86_64 SYSCALL=execve UID="root"`) after a 0x1d byte. Records of one event are usually adjacent but need
not be: events stay open until `EOE`, or until WINDOW later records have gone by without one of theirs.

Every row carries `auditd_row` (`record`, `process_creation`, `file_event`, `network_connection`): the Linux
sources' `records:` sections select on it (`select_by_field`).
"""

from __future__ import annotations

import ipaddress
import re
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

WINDOW = 256  # records read after an event's last one before it is taken as complete (no EOE came)
MAX_RECORDS = 4096  # records in one event (an EXECVE of a huge argv is split in many); more are reported

# an audit record at the start of a line (the first lines of a rotated log may be cut: looked for in a file's head)
AUDIT_LINE = re.compile(rb"(?m)^(?:\xef\xbb\xbf)?[ \t]*(?:node=\S+ )?type=[A-Za-z0-9_\[\]]+ msg=")
_HEADER = re.compile(r"(?:node=(?P<node>\S+) )?type=(?P<type>[A-Za-z0-9_\[\]]+) msg=(?:audit\((?P<ts>\d+(?:\.\d+)?)"
                     r":(?P<serial>\d+)\):?|(?P<noid>(?!audit\()\S*))")
# (the audit daemon's own DAEMON_* records write no `:` after the id: `msg=audit(1490239800.477:34) config changed`)
# a record whose `msg=audit(` id does not parse (cut, or a serial without its `):`): reported, not read id-less
_BROKEN_ID = re.compile(r"^(?:node=\S+ )?type=[A-Za-z0-9_\[\]]+ msg=audit\(")
# key=value; a value is "double quoted", 'single quoted' (user-space records' nested msg), {…} (enriched SADDR) or
# bare up to the next space
_PAIR = re.compile(r"""([A-Za-z_][\w\-\[\]]*)=("[^"]*"|'[^']*'|\{[^}]*\}|\S*)""")
# the ENRICHED format's first field where a copy lost the 0x1d separator: an upper-case KEY= glued to the end of the
# last raw bare value (`key=(null)ARCH=x86_64`, `cap_frootid=0OUID="root"`); after a quoted value findall finds it
_ENRICHED_GLUED = re.compile(r"(.*?[^A-Z])([A-Z][A-Z0-9_]*=.*)\Z", re.S)
_HEX = re.compile(r"(?:[0-9A-Fa-f]{2})+")
_ARG = re.compile(r"a(\d+)(?:\[(\d+)\])?")

# fields auditd writes with audit_log_untrustedstring / audit_encode_value (hex when unsafe): audit-userspace's
# AUPARSE_TYPE_ESCAPED fields (lib/typetab.h), go-libaudit's hexDecode list (auparse/auparse.go), EXECVE's aN.
# SYSCALL's a0…a3 are numbers in hex, and id, hostname, addr, terminal, unit are written as they are: not decoded.
_ENCODED = frozenset({
    "exe", "comm", "name", "cwd", "proctitle", "cmd", "key", "path", "data", "acct", "dir", "file", "ocomm",
    "watch", "root_dir", "old-chardev", "new-chardev", "new-disk", "old-disk", "new-fs", "old-fs", "vm", "sw",
    "grp", "new_group", "device", "cgroup",
})

# syscall numbers per audit arch (the kernel's AUDIT_ARCH_*): x86_64, i386, aarch64, and the enriched name
_ARCH = {"c000003e": "x86_64", "40000003": "i386", "c00000b7": "aarch64", "b64": "x86_64", "b32": "i386"}
_SYSCALLS = {
    "x86_64": {"59": "execve", "322": "execveat", "42": "connect", "2": "open", "257": "openat", "85": "creat",
               "82": "rename", "264": "renameat", "316": "renameat2", "83": "mkdir", "133": "mknod", "88": "symlink",
               "86": "link"},
    "i386": {"11": "execve", "358": "execveat", "362": "connect", "5": "open", "295": "openat", "8": "creat",
             "38": "rename", "302": "renameat", "353": "renameat2", "39": "mkdir"},
    "aarch64": {"221": "execve", "281": "execveat", "203": "connect", "56": "openat", "38": "renameat",
                "276": "renameat2", "34": "mkdirat"},
}


def _decode(key: str, raw: str, record_type: str) -> str | None:
    """One value as auditd meant it: quotes removed, hex decoded for the fields that are hex-encoded when unsafe."""
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    if raw in ("(null)", "(none)"):
        return None if key == "key" else raw
    encoded = key in _ENCODED or (record_type == "EXECVE" and _ARG.fullmatch(key) is not None)
    if encoded and _HEX.fullmatch(raw):
        data = bytes.fromhex(raw)
        if key == "proctitle":
            data = data.rstrip(b"\0").replace(b"\0", b" ")
        return data.decode("utf-8", "replace")
    return raw


@lru_cache(maxsize=256)
def _iso_time(epoch: str) -> str:
    """auditd's `<seconds>.<milliseconds>` as ISO-8601 UTC (an event's records share it: cached)."""
    return datetime.fromtimestamp(float(epoch), UTC).isoformat(timespec="milliseconds")


class Truncated(ValueError):
    """A record whose quoted value never closes: the line was cut (a partial write, a rotated or copied log)."""


def parse_record(line: str) -> dict[str, Any] | None:
    """One audit.log line as a record row, None when it is not one; raises Truncated when it was cut mid-value."""
    m = _HEADER.match(line)
    if m is None:
        return None
    rtype = m.group("type")
    row: dict[str, Any] = {"type": rtype}
    if m.group("node"):
        row["node"] = m.group("node")
    ts, serial = m.group("ts"), m.group("serial")
    if ts is not None:
        row["timestamp"] = _iso_time(ts)
        row["serial"] = int(serial)
        row["audit_id"] = f"{ts}:{serial}"
    body = line[m.end():]
    if body.count('"') % 2:  # auditd hex-encodes any value holding a quote, so quotes pair up unless the line was cut
        raise Truncated('truncated record: a quoted value opens with " and never closes')
    raw, sep, enriched = body.partition("\x1d")
    for text in (raw, enriched):
        for key, value in _pairs(text, glued=not sep):
            if key == "msg" and value.startswith("'"):  # a user-space record's own key=value list
                for k2, v2 in _PAIR.findall(value[1:-1]):
                    row.setdefault(k2, _decode(k2, v2, rtype))
                continue
            if key not in row:
                row[key] = _decode(key, value, rtype)
    return row


def _pairs(text: str, glued: bool) -> Iterator[tuple[str, str]]:
    """The key=value pairs of a record's text; with `glued`, a bare value's glued ENRICHED field split off."""
    for key, value in _PAIR.findall(text):
        if glued and value[:1] not in ('"', "'", "{", ""):
            m = _ENRICHED_GLUED.match(value)
            if m:
                yield key, m.group(1)
                yield from _pairs(m.group(2), glued)
                continue
        yield key, value


class _Event:
    __slots__ = ("records", "last")

    def __init__(self, last: int) -> None:
        self.records: list[dict[str, Any]] = []
        self.last = last


def iter_auditd(lines: Iterable[bytes | int], name: str, report: Callable[[Any], None]) -> Iterator[dict[str, Any]]:
    """The rows of an audit.log: every record, each event's records together, followed by the event's derived row
    (process_creation, file_event or network_connection) when it has one. A line that is not an audit record is
    reported with its number and skipped."""
    from .reader import MAX_LINE_BYTES, Malformed

    open_events: OrderedDict[str, _Event] = OrderedDict()
    lineno = 0

    def flush(key: str) -> Iterator[dict[str, Any]]:
        ev = open_events.pop(key)
        yield from event_rows(ev.records)

    for raw in lines:
        lineno += 1
        if isinstance(raw, int):
            report(Malformed(name, lineno, f"line longer than {MAX_LINE_BYTES} bytes ({raw} bytes)"))
            continue
        text = raw.decode("utf-8", "replace").strip().lstrip("\ufeff")
        if not text:
            continue
        try:
            rec = parse_record(text)
        except Truncated as exc:
            report(Malformed(name, lineno, str(exc)))
            continue
        if rec is None:
            why = ("broken event id (expected `msg=audit(<seconds>.<ms>:<serial>):`)" if _BROKEN_ID.search(text)
                   else "not an audit record (expected `type=… msg=audit(…):`)")
            report(Malformed(name, lineno, why))
            continue
        key = rec.get("audit_id")
        if key is None:  # no event id (type=UNKNOWN[1329] msg=?): a record on its own
            rec["auditd_row"] = "record"
            yield rec
            continue
        key = f"{rec.get('node', '')}|{key}"
        ev = open_events.get(key)
        if ev is None:
            ev = open_events[key] = _Event(lineno)
        else:
            open_events.move_to_end(key)
            ev.last = lineno
        if len(ev.records) >= MAX_RECORDS:
            report(Malformed(name, lineno, f"event {rec['audit_id']} has more than {MAX_RECORDS} records"))
            continue
        ev.records.append(rec)
        if rec["type"] == "EOE":
            yield from flush(key)
        while open_events:
            oldest_key, oldest = next(iter(open_events.items()))
            if lineno - oldest.last < WINDOW:
                break
            yield from flush(oldest_key)
    while open_events:
        yield from flush(next(iter(open_events)))


def event_rows(records: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """An event's record rows, then its derived Sigma-category row, if any."""
    for r in records:
        if r["type"] != "EOE":
            r["auditd_row"] = "record"
            yield r
    yield from derived_rows(records)


def _first(records: list[dict[str, Any]], rtype: str) -> dict[str, Any] | None:
    return next((r for r in records if r["type"] == rtype), None)


def syscall_name(sc: dict[str, Any]) -> str | None:
    """The syscall's name: the enriched SYSCALL field, or the number looked up for the record's arch."""
    named = sc.get("SYSCALL")
    if isinstance(named, str):
        return named
    arch = _ARCH.get(str(sc.get("arch", "")).lower())
    return _SYSCALLS.get(arch or "", {}).get(str(sc.get("syscall", "")))


def command_line(execve: dict[str, Any]) -> str | None:
    """EXECVE's arguments joined by spaces (an argument split in chunks, `a1[0]=… a1[1]=…`, joined first)."""
    args: dict[int, list[tuple[int, str]]] = {}
    for k, v in execve.items():
        m = _ARG.fullmatch(k)
        if m and isinstance(v, str):
            args.setdefault(int(m.group(1)), []).append((int(m.group(2) or 0), v))
    if not args:
        return None
    try:
        argc = int(execve.get("argc", len(args)))
    except (TypeError, ValueError):
        argc = len(args)
    return " ".join("".join(p for _, p in sorted(args[i])) for i in range(max(argc, 0)) if i in args)


def _user(sc: dict[str, Any]) -> str | None:
    """The user name: the enriched UID field; without it, uid 0 is root by definition, any other uid is unknown."""
    if isinstance(sc.get("UID"), str):
        return str(sc["UID"])
    return "root" if sc.get("uid") == "0" else None


def _common(records: list[dict[str, Any]], sc: dict[str, Any], kind: str) -> dict[str, Any]:
    row: dict[str, Any] = {"auditd_row": kind}
    for k in ("node", "timestamp", "serial", "audit_id"):
        if k in sc:
            row[k] = sc[k]
    if "node" in sc:
        row["Computer"] = sc["node"]
    if isinstance(sc.get("exe"), str):
        row["Image"] = sc["exe"]
    for k, out in (("pid", "ProcessId"), ("ppid", "ParentProcessId")):
        v = sc.get(k)
        if isinstance(v, str) and v.isdigit():
            row[out] = int(v)
    user = _user(sc)
    if user is not None:
        row["User"] = user
    for k in ("uid", "auid", "euid", "comm", "key", "syscall", "success"):
        if sc.get(k) is not None:
            row[k] = sc[k]
    return row


def derived_rows(records: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The Sigma-category rows an event yields: an execve (an EXECVE record) is a process_creation; a file created
    (a PATH record with nametype=CREATE) a file_event per path; a connect with an inet SOCKADDR a
    network_connection."""
    sc = _first(records, "SYSCALL")
    execve = _first(records, "EXECVE")
    cwd_rec = _first(records, "CWD")
    cwd = cwd_rec.get("cwd") if cwd_rec else None
    if execve is not None:  # without its SYSCALL (a partial event) still a command line
        row = _common(records, sc or execve, "process_creation")
        cmd = command_line(execve)
        if cmd is None:
            title = _first(records, "PROCTITLE")
            cmd = title.get("proctitle") if title else None
        if cmd is not None:
            row["CommandLine"] = cmd
        if isinstance(cwd, str):
            row["CurrentDirectory"] = cwd
        yield row
        return
    if sc is None:
        return
    if syscall_name(sc) == "connect":
        sock = _first(records, "SOCKADDR")
        dest = _sockaddr(sock) if sock else None
        if dest is not None:
            row = _common(records, sc, "network_connection")
            row["DestinationIp"], row["DestinationPort"] = dest
            row["Initiated"] = "true"
            yield row
        return
    for p in records:
        if p["type"] == "PATH" and str(p.get("nametype", "")).upper() == "CREATE" and isinstance(p.get("name"), str):
            row = _common(records, sc, "file_event")
            target = p["name"]
            if not target.startswith("/") and isinstance(cwd, str):
                target = cwd.rstrip("/") + "/" + target
            row["TargetFilename"] = target
            yield row


def _sockaddr(sock: dict[str, Any]) -> tuple[str, int] | None:
    """(address, port) of an AF_INET / AF_INET6 `saddr` (hex struct sockaddr, as the kernel passed it)."""
    saddr = sock.get("saddr")
    if not isinstance(saddr, str) or not _HEX.fullmatch(saddr):
        return None
    data = bytes.fromhex(saddr)
    if len(data) < 2:
        return None
    family = int.from_bytes(data[:2], "little")
    if family == 2 and len(data) >= 8:
        return str(ipaddress.IPv4Address(data[4:8])), int.from_bytes(data[2:4], "big")
    if family == 10 and len(data) >= 24:
        return str(ipaddress.IPv6Address(data[8:24])), int.from_bytes(data[2:4], "big")
    return None


def select_by_field(selectors: Iterable[Any], rows: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The rows of a source whose `records:` entries select by field values (`match: {auditd_row: [record]}`): a
    row is kept when an entry's every field holds one of its values; a row with none of the entries' fields at all
    is not a record of these logs as far as anyone can tell (a hand-made test event) and is kept as it is."""
    sels = list(selectors)
    fields = {f for s in sels for f, _ in s.match}
    for row in rows:
        if not any(f in row for f in fields):
            yield row
            continue
        for sel in sels:
            if all(str(row.get(f)) in allowed for f, allowed in sel.match):
                yield row
                break
