"""The templates need nothing the Content-Security-Policy (portal.security_headers) forbids:
no inline script, no inline event handler, no inline style, no javascript: URL."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[2] / "portal" / "templates"
DATA_BLOCKS = {"application/json"}  # not executed, so not script as far as CSP is concerned


class _InlineCode(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self._in_inline_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        names = dict(attrs)
        for name, value in attrs:
            if name.startswith("on"):
                self.found.append(f"<{tag} {name}=…> (inline event handler)")
            if name == "style":
                self.found.append(f"<{tag} style=…> (inline style)")
            if name in {"href", "src", "action"} and (value or "").lower().startswith(
                "javascript:"
            ):
                self.found.append(f"<{tag} {name}=javascript:…>")
        if tag == "script" and "src" not in names and names.get("type") not in DATA_BLOCKS:
            self._in_inline_script = True

    def handle_endtag(self, tag: str) -> None:
        if tag == "script" and self._in_inline_script:
            self.found.append("<script> without src (inline script)")
            self._in_inline_script = False


def test_templates_have_no_inline_script_handler_or_style() -> None:
    problems = []
    templates = sorted(TEMPLATES.rglob("*.html"))
    assert len(templates) > 10
    for template in templates:
        parser = _InlineCode()
        parser.feed(template.read_text())
        problems += [f"{template.relative_to(TEMPLATES)}: {p}" for p in parser.found]
    assert problems == []
