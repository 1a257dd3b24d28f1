"""The portal's scripts are native ES modules that share nothing through ``window``: each page
loads one entry module (``<script type="module">``) and everything else comes in by an explicit
``import`` — never a ``window.ems…`` global or the order of script tags."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

PORTAL = Path(__file__).resolve().parents[2] / "portal"
STATIC = PORTAL / "static"
TEMPLATES = PORTAL / "templates"
# /static/vendor/uplot/ is served from node_modules (portal/app.py), not from portal/static.
VENDOR = {"/static/vendor/uplot/": PORTAL / "frontend" / "node_modules" / "uplot" / "dist"}

# window.x = …, window.x += …, window["x"] = … (but not window.x === …)
WINDOW_ASSIGNMENT = re.compile(
    r"\bwindow\s*(?:\.\s*[\w$]+|\[[^\]]*\])\s*(?:[-+*/%&|^]|\*\*|<<|>>>?|&&|\|\||\?\?)?=(?!=)"
)
WINDOW_EMS = re.compile(r"\bwindow\s*(?:\.\s*|\[\s*[\"'])ems")
IMPORT = re.compile(r"""\bimport\s*(?:[\w${},*\s]+\bfrom\s*)?\(?\s*["']([^"']+)["']""")
DATA_BLOCKS = {"application/json"}  # not executed: no script as far as the browser is concerned
ENTRY_BLOCK = re.compile(r"{%\s*block\s+entry\s*%}(.*?){%\s*endblock\s*%}")


def scripts() -> list[Path]:
    found = sorted(STATIC.glob("*.js"))
    assert len(found) >= 8
    return found


def served(url: str) -> Path:
    """The file the portal serves at ``url`` (an absolute /static/… path)."""
    for prefix, directory in VENDOR.items():
        if url.startswith(prefix):
            return directory / url.removeprefix(prefix)
    assert url.startswith("/static/"), url
    return STATIC / url.removeprefix("/static/")


def test_no_script_publishes_or_reads_an_ems_global() -> None:
    problems = []
    for script in scripts():
        for number, line in enumerate(script.read_text().splitlines(), start=1):
            if WINDOW_ASSIGNMENT.search(line) or WINDOW_EMS.search(line):
                problems.append(f"{script.name}:{number}: {line.strip()}")
    assert problems == []


def test_the_global_checks_catch_what_they_are_for() -> None:
    # The two patterns above, on the lines the scripts had before they were modules.
    assert WINDOW_ASSIGNMENT.search("  window.emsRealtime = api;")
    assert WINDOW_ASSIGNMENT.search('window["emsChat"] = {open: open};')
    assert WINDOW_EMS.search("  var rt = window.emsRealtime;")
    assert not WINDOW_ASSIGNMENT.search('window.addEventListener("resize", fit);')
    assert not WINDOW_ASSIGNMENT.search("if (window.location === other) {")
    assert not WINDOW_EMS.search("if (question && !window.confirm(question)) stop();")


def test_every_import_names_a_file_the_portal_serves() -> None:
    """ESLint does not resolve imports, and a module whose import 404s never runs at all."""
    problems = []
    for script in scripts():
        specifiers = IMPORT.findall(script.read_text())
        for specifier in specifiers:
            if not specifier.startswith("./"):
                problems.append(f"{script.name}: {specifier!r} is not relative to /static/")
            elif not served("/static/" + specifier.removeprefix("./")).is_file():
                problems.append(f"{script.name}: {specifier!r} does not exist")
    assert problems == []
    assert IMPORT.findall('import {a, b} from "./x.js";\nimport "./y.js";') == ["./x.js", "./y.js"]
    assert IMPORT.findall('const m = await import("./vendor/z.js");') == ["./vendor/z.js"]


class _Scripts(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "script":
            self.tags.append(dict(attrs))


def test_templates_load_only_module_scripts_from_static() -> None:
    problems = []
    sources = []
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert len(templates) > 10
    for template in templates:
        text = template.read_text()
        parser = _Scripts()
        parser.feed(text)
        name = template.relative_to(TEMPLATES)
        for attrs in parser.tags:
            if attrs.get("type") in DATA_BLOCKS:
                continue
            if attrs.get("type") != "module":
                problems.append(f"{name}: <script {attrs}> is not type=module")
            sources.append(ENTRY_BLOCK.sub(r"\1", attrs.get("src") or ""))
        sources += [entry.strip() for entry in ENTRY_BLOCK.findall(text)]
    assert problems == []
    assert "/static/portal.js" in sources  # base.html's default entry
    missing = [src for src in sources if not served(src).is_file()]
    assert missing == []
