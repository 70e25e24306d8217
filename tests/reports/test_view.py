"""What every report shows the same way: the order of findings."""

from __future__ import annotations

import random

from pgwarden.reports.view import most_severe_first, severity_first
from tests.reports.conftest import large_results


def test_most_severe_first_is_a_stable_sort_by_severity() -> None:
    findings = list(large_results(400).findings)
    random.Random(3).shuffle(findings)
    assert most_severe_first(findings) == sorted(findings, key=severity_first)
    assert most_severe_first([]) == []
