"""The HTML report lists the servers' Microsoft Entra principals under the access matrix."""

from __future__ import annotations

from pgwarden.model.results import EntraRole, Results
from pgwarden.reports.html import render_html
from tests.reports.conftest import HOSTILE


def _with_entra(results: Results, *roles: EntraRole) -> Results:
    first = results.servers[0].model_copy(update={"entra_roles": roles})
    return results.model_copy(update={"servers": (first, *results.servers[1:])})


def test_entra_principals_are_listed_with_kind_object_id_and_app(results: Results) -> None:
    html = render_html(
        _with_entra(
            results,
            EntraRole(role="secai-radar-mi", kind="service", object_id="6f1b8c1e", app="radar"),
            EntraRole(role=HOSTILE["secai-radar"], kind="user", object_id=None),
        )
    ).decode("utf-8")
    assert "2 roles are Microsoft Entra principals" in html
    assert (
        '<tr><th scope="row">secai-radar-mi</th><td>service</td><td><code>6f1b8c1e</code></td>'
        "<td>radar</td></tr>"
    ) in html
    assert HOSTILE["secai-radar"] not in html  # escaped like every other name
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html


def test_no_entra_principals_no_table(results: Results) -> None:
    assert "Microsoft Entra principal" not in render_html(results).decode("utf-8")
