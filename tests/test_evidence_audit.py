"""The report's audit section: each tool's last run and its findings, from the evidence script's lines."""

from __future__ import annotations

from gpubox import evidence


def audit_rows(text: str) -> list[tuple[str, str]]:
    found = evidence.parse(f"@@gpubox:audit@@\n{text}\n@@gpubox:end@@\n")
    section = next(item for item in evidence.sections(found, {}, None) if item.title.startswith("Audit tools"))
    return [(row.label, row.value) for row in section.rows]


def test_a_finding_of_the_last_run_is_listed_under_its_tool():
    rows = audit_rows(
        "run chkrootkit.service Result=success|ExecMainExitTimestamp=Mon 2026-12-07 02:00:01 UTC|LoadState=loaded|ConditionResult=yes|\n"
        "line chkrootkit.service The following suspicious files and directories were found:\n"
        "line chkrootkit.service /usr/lib/.planted\n"
        "run dailyaidecheck.service LoadState=loaded|ConditionResult=no|Result=success|ExecMainExitTimestamp=|")
    assert rows[0] == ("chkrootkit", "last run Mon 2026-12-07 02:00:01 UTC: ok, 2 line(s) of findings")
    assert ("chkrootkit finding", "/usr/lib/.planted") in rows
    assert rows[-1][0] == "dailyaidecheck" and "condition is not met" in rows[-1][1]


def test_a_failed_run_and_a_missing_tool_are_said_so():
    rows = audit_rows("run chkrootkit.service LoadState=loaded|ConditionResult=yes|Result=exit-code|ExecMainExitTimestamp=Mon 2026-12-07|\n"
                      "run dailyaidecheck.service LoadState=not-found|ConditionResult=no|Result=success|ExecMainExitTimestamp=|")
    assert rows == [("chkrootkit", "last run Mon 2026-12-07: exit-code, no findings"), ("dailyaidecheck", "not installed")]


def test_nothing_readable_says_why():
    assert audit_rows("") == [("audit tools", "not readable (no passwordless sudo for this login)")]
