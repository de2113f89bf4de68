"""MkDocs hook: renders the configuration reference from the settings dataclasses at build time.

`docs/configuration.md` holds the marker `<!-- config-reference -->`; this hook replaces it with one table
per section (key, type, default, description), read from `worker.config.settings` and the connectors' settings
dataclasses. Descriptions come from an attribute docstring or a comment on the field in the source, else
from the key's comment in `config/default.toml` (or, for a connector, `config/examples/<crm>.toml`); the
connector pages describe every connector key in prose. Nothing generated is
committed, so the reference cannot drift from the code.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
import re
import textwrap
from pathlib import Path
from typing import Any

MARKER = "<!-- config-reference -->"
ROOT = Path(__file__).resolve().parent.parent


def _toml_comments(*names: str) -> dict[tuple[str, str], str]:
    """(section, key) -> the inline comment on that key in the given files under config/."""
    comments: dict[tuple[str, str], str] = {}
    for path in (ROOT / "config" / name for name in names):
        section = ""
        for line in path.read_text(encoding="utf-8").splitlines():
            header = re.match(r"^\[([^\]]+)\]", line)
            if header:
                section = header.group(1)
                if section.startswith("connections."):
                    section = "connections"
                continue
            entry = re.match(r"^(\w+)\s*=.*?\s#\s*(.+)$", line)
            if entry:
                comments.setdefault((section, entry.group(1)), entry.group(2).strip())
    return comments


def _source_notes(cls: type) -> dict[str, str]:
    """Field name -> its attribute docstring or trailing comment in the class source."""
    source = textwrap.dedent(inspect.getsource(cls))
    lines = source.splitlines()
    body = ast.parse(source).body[0]
    assert isinstance(body, ast.ClassDef)
    notes: dict[str, str] = {}
    for i, node in enumerate(body.body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            continue
        name = node.target.id
        nxt = body.body[i + 1] if i + 1 < len(body.body) else None
        doc = nxt.value.value if isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant) else None
        if isinstance(doc, str):
            notes[name] = " ".join(doc.split())
            continue
        comment = lines[node.lineno - 1].partition("  #")[2].strip()
        if comment:
            notes[name] = comment
    return notes


def _default(f: dataclasses.Field[Any]) -> str:
    if f.default is not dataclasses.MISSING:
        value = f.default
    elif f.default_factory is not dataclasses.MISSING:
        value = f.default_factory()
    else:
        return "–"
    if isinstance(value, dict) and len(repr(value)) > 60:
        return f"{len(value)} entries (see the connector page)"
    if value == "":
        return '`""`'
    return f"`{value!r}`" if not isinstance(value, str) else f'`"{value}"`'


def _type(f: dataclasses.Field[Any]) -> str:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return f"`{kind}`"


def _table(title: str, cls: type, section: str, comments: dict[tuple[str, str], str]) -> str:
    notes = _source_notes(cls)
    rows = [f"### `{title}`", ""]
    if cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "("):
        rows += [" ".join(cls.__doc__.split()), ""]
    rows += [f"From `{cls.__module__}.{cls.__qualname__}`.", ""]
    rows += ["| key | type | default | description |", "|---|---|---|---|"]
    for f in dataclasses.fields(cls):
        if f.metadata.get("secret"):
            continue  # a secret is not a setting: see the Secrets section
        note = notes.get(f.name) or comments.get((section, f.name), "")
        note = note.replace("|", "\\|")
        rows.append(f"| `{f.name}` | {_type(f)} | {_default(f)} | {note} |")
    return "\n".join(rows) + "\n"


def render() -> str:
    from connectors.hubspot.settings import HubSpotSettings
    from connectors.salesforce.settings import SalesforceSettings
    from worker.config import settings as ws

    shipped = _toml_comments("default.toml")
    salesforce = _toml_comments("examples/salesforce.toml")
    hubspot = _toml_comments("examples/hubspot.toml")
    sections: list[tuple[str, type, str, dict[tuple[str, str], str]]] = [
        ("[logging]", ws.LoggingSettings, "logging", shipped),
        ("[state]", ws.StateSettings, "state", shipped),
        ("[rules]", ws.RulesSettings, "rules", shipped),
        ("[run]", ws.RunSettings, "run", shipped),
        ("[ops_api]", ws.OpsApiSettings, "ops_api", shipped),
        ("[digest]", ws.DigestSettings, "digest", shipped),
        ("[[digest.teams]]", ws.TeamSettings, "digest.teams", shipped),
        ("[smtp]", ws.SmtpSettings, "smtp", shipped),
        ("[slack]", ws.SlackSettings, "slack", shipped),
        ("[connections.NAME] schedule keys", ws.ScheduleSettings, "connections", {**salesforce, **hubspot}),
        ('[connections.NAME] with crm = "salesforce"', SalesforceSettings, "connections", salesforce),
        ('[connections.NAME] with crm = "hubspot"', HubSpotSettings, "connections", hubspot),
    ]
    return "\n".join(_table(title, cls, section, notes) for title, cls, section, notes in sections)


def on_page_markdown(markdown: str, **kwargs: Any) -> str:
    if MARKER in markdown:
        return markdown.replace(MARKER, render())
    return markdown


if __name__ == "__main__":
    print(render())
