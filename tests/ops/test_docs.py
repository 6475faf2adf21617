"""The user documentation: generated parts are current, every reason and metric is
explained, links resolve, and the prose is our own."""

from __future__ import annotations

import inspect
import re
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from flokoa_controller.api import reference
from flokoa_controller.api.crdgen import RESOURCES, crd
from flokoa_controller.controllers import conditions
from flokoa_controller.providers import result as probe_result

SPEC = Path("/work/shared/spec/modelprovider.md")

PROVIDER_GUIDES = (
    "openai.md",
    "azure-openai.md",
    "anthropic.md",
    "gemini.md",
    "vertex.md",
    "bedrock.md",
)

PAGES = (
    "index.md",
    "installation.md",
    "reference.md",
    "tls.md",
    "troubleshooting.md",
    "security.md",
    "metrics.md",
    "monitoring.md",
    "runbooks.md",
)


def _docs(ops: SimpleNamespace) -> list[Path]:
    return sorted(ops.DOCS.rglob("*.md"))


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces to dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(text: str) -> set[str]:
    without_code = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
    headings = re.findall(r"^#{1,6} (.+)$", without_code, re.MULTILINE)
    return {_slug(h) for h in headings} | set(re.findall(r'<a id="([^"]+)"></a>', text))


# --- generated reference ---------------------------------------------------------------------


def test_reference_is_current(ops: SimpleNamespace) -> None:
    current = (ops.DOCS / "reference.md").read_text(encoding="utf-8")
    assert current == reference.render(), "docs/reference.md is out of date: run `make docs`"


def _walk(node: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every (name, schema) of the properties below ``node``, list items included."""
    found = []
    for name, child in node.get("properties", {}).items():
        found.append((name, child))
        found.extend(_walk(child))
        if isinstance(child.get("items"), dict):
            found.extend(_walk(child["items"]))
    return found


def _validations(node: dict[str, Any]) -> list[dict[str, Any]]:
    rules = list(node.get("x-kubernetes-validations", []))
    for key in ("additionalProperties", "items"):
        if isinstance(node.get(key), dict):
            rules += _validations(node[key])
    for child in node.get("properties", {}).values():
        rules += _validations(child)
    return rules


@pytest.mark.parametrize("resource", [r for r, _ in RESOURCES], ids=lambda r: r.kind)
def test_reference_lists_every_field_default_and_rule(resource: Any, ops: SimpleNamespace) -> None:
    text = (ops.DOCS / "reference.md").read_text(encoding="utf-8")
    root_type = dict(RESOURCES)[resource]
    schema = crd(resource, root_type)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    section = text.split(f"## {resource.kind}\n", 1)[1].split("\n## ", 1)[0]
    for top in ("spec", "status"):
        fields = _walk(schema["properties"][top])
        assert fields
        for name, node in fields:
            assert f"**`{name}`**" in section, f"{resource.kind}: field {name}"
            if "default" in node:
                assert f"default `{node['default']}`".lower() in section.lower(), name
            if "pattern" in node:
                assert node["pattern"] in section, name
    entries = section.count("- **`")
    expected = sum(len(_walk(schema["properties"][t])) for t in ("spec", "status"))
    assert entries == expected
    flat = " ".join(section.split())
    for rule in _validations(schema):
        assert " ".join(rule["message"].split()) in flat, rule["message"]
        assert " ".join(rule["rule"].split()) in flat, rule["rule"]


def test_reference_cli_check_mode(ops: SimpleNamespace, tmp_path: Path) -> None:
    stale = tmp_path / "reference.md"
    stale.write_text("old\n", encoding="utf-8")
    assert reference.main([str(stale), "--check"]) == 1
    assert reference.main([str(stale)]) == 0
    assert reference.main([str(stale), "--check"]) == 0
    assert stale.read_text(encoding="utf-8") == reference.render()


# --- reasons ---------------------------------------------------------------------------------


def _constants(cls: type) -> set[str]:
    return {
        value
        for name, value in inspect.getmembers(cls)
        if name.isupper() and isinstance(value, str)
    }


def _event_reasons(ops: SimpleNamespace) -> set[str]:
    found: set[str] = set()
    for path in (ops.REPO / "flokoa_controller" / "controllers").glob("*.py"):
        source = path.read_text(encoding="utf-8")
        found |= set(re.findall(r'\.event\(\s*\w+,\s*"(?:Normal|Warning)",\s*"(\w+)"', source))
    return found


def test_troubleshooting_explains_every_reason(ops: SimpleNamespace) -> None:
    reasons = _constants(conditions.Reason) | {r.value for r in probe_result.Reason}
    types = _constants(conditions.Type)
    events = _event_reasons(ops)
    # The sources must really have been found (a test that cannot fail is a defect).
    assert {"SecretNotFound", "InvalidCredentials", "ProviderNotReady"} <= reasons
    assert {"Ready", "SecretResolved", "ModelAvailable"} <= types
    assert {"ProviderReady", "InsecureTLS", "ProbeFailed", "ModelReady"} <= events
    text = (ops.DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    missing = sorted(r for r in reasons | types | events if f"`{r}`" not in text)
    assert not missing, f"docs/troubleshooting.md does not mention {missing}"


def test_every_failure_reason_has_its_own_section(ops: SimpleNamespace) -> None:
    text = (ops.DOCS / "troubleshooting.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^#### `(\w+)`$", text, re.MULTILINE))
    failures = {
        v for n, v in inspect.getmembers(conditions.Reason) if n.isupper() and isinstance(v, str)
    } - {
        conditions.Reason.PROBE_SUCCEEDED,
        conditions.Reason.RATE_LIMITED,
        conditions.Reason.SECRET_FOUND,
        conditions.Reason.NO_SECRET_REFERENCED,
        conditions.Reason.CREDENTIALS_ACCEPTED,
        conditions.Reason.ENDPOINT_RESPONDED,
        conditions.Reason.MODEL_FOUND,
        conditions.Reason.PROVIDER_IS_READY,
        conditions.Reason.NOT_PROBED,
        conditions.Reason.NOT_CHECKED,
        conditions.Reason.NOT_VERIFIED,
    }
    assert len(failures) >= 15
    assert failures <= headings, sorted(failures - headings)


# --- metrics ---------------------------------------------------------------------------------


def test_metrics_reference_covers_rules_and_dashboard(ops: SimpleNamespace) -> None:
    text = (ops.DOCS / "metrics.md").read_text(encoding="utf-8")
    used: set[str] = set()
    for rule in ops.alert_rules():
        used |= ops.metric_names(rule["expr"])
    for _, expr in ops.dashboard_expressions():
        used |= ops.metric_names(expr)
    families = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used} - ops.PROMETHEUS_SYNTHETIC
    missing = sorted(f for f in families if f"`{f}`" not in text)
    assert not missing, f"docs/metrics.md does not document {missing}"


# --- structure and links ---------------------------------------------------------------------


def test_pages_and_provider_guides_exist(ops: SimpleNamespace) -> None:
    for page in PAGES:
        assert (ops.DOCS / page).is_file(), page
    index = (ops.DOCS / "index.md").read_text(encoding="utf-8")
    for guide in PROVIDER_GUIDES:
        assert (ops.DOCS / "providers" / guide).is_file(), guide
        assert f"(providers/{guide})" in index, guide
    for page in PAGES[1:]:
        assert f"({page})" in index, page


_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")


def test_relative_links_and_anchors_resolve(ops: SimpleNamespace) -> None:
    broken = []
    checked = 0
    for page in _docs(ops):
        text = page.read_text(encoding="utf-8")
        prose = re.sub(r"```.*?```", "", text, flags=re.DOTALL)
        prose = re.sub(r"(`+).*?\1", "", prose)  # inline code spans
        for target in _LINK.findall(prose):
            if re.match(r"[a-z]+:", target):
                continue
            path_part, _, anchor = target.partition("#")
            destination = (page.parent / path_part).resolve() if path_part else page
            checked += 1
            if not destination.is_file():
                broken.append(f"{page.name}: {target} (no such file)")
                continue
            if anchor and anchor not in _anchors(destination.read_text(encoding="utf-8")):
                broken.append(f"{page.name}: {target} (no such anchor)")
    assert checked >= 50
    assert not broken, broken


def test_runbook_urls_in_rules_point_into_these_docs(ops: SimpleNamespace) -> None:
    anchors = _anchors((ops.DOCS / "runbooks.md").read_text(encoding="utf-8"))
    for rule in ops.alert_rules():
        page, _, anchor = rule["annotations"]["runbook_url"].partition("#")
        assert page.endswith("docs/runbooks.md")
        assert anchor in anchors, rule["alert"]


# --- own words -------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def test_docs_do_not_copy_the_specification_prose(ops: SimpleNamespace) -> None:
    if not SPEC.is_file():
        pytest.skip("the user specification is not available here")
    spec_words = _words(SPEC.read_text(encoding="utf-8"))
    size = 9
    spec_grams = {tuple(spec_words[i : i + size]) for i in range(len(spec_words) - size + 1)}
    copied = []
    for page in _docs(ops):
        if page.name == "architecture.md":
            continue
        prose = re.sub(r"```.*?```", "", page.read_text(encoding="utf-8"), flags=re.DOTALL)
        words = _words(prose)
        for i in range(len(words) - size + 1):
            if tuple(words[i : i + size]) in spec_grams:
                copied.append(f"{page.name}: {' '.join(words[i : i + size])}")
    assert not copied, copied[:10]
