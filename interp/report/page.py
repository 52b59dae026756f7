"""HTML pages that open offline: plotly.js once per report folder (``plotly.min.js``, referenced
relatively, so the folder can be zipped and shared), or inline in every page (``self_contained``)."""

from __future__ import annotations

import html
import json
import subprocess
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
from plotly.offline import get_plotlyjs

from interp.files import hold, read_json, write_atomic

PACKAGES = ("interp", "torch", "transformer-lens", "transformers", "plotly")
PLOTLY_FILE = "plotly.min.js"
STYLE = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; } td, th { border: 1px solid #ccc; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } pre { background: #f7f7f7; padding: 8px; white-space: pre-wrap; }
.unfinished { background: #fff3cd; border: 1px solid #e0c060; padding: 8px; }
.meta { font-size: 0.85em; color: #555; } .caption { font-size: 0.9em; color: #444; margin-top: 0; } h2 { border-bottom: 1px solid #ddd; padding-bottom: 4px; }
"""


@dataclass
class Section:
    """A titled block of a page: plain text, then figures and tables, in that order."""

    title: str
    text: str = ""
    raw_html: str = ""
    figures: list[go.Figure] = field(default_factory=list)
    tables: list[tuple[Sequence[str], Sequence[Sequence[Any]]]] = field(default_factory=list)
    preformatted: str = ""


@dataclass(frozen=True)
class Page:
    """A study's report page: file name, title, the one-line finding the index shows, sections."""

    name: str
    title: str
    summary: str
    sections: list[Section]


def run_metadata(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Versions, commit and time, recorded on every page."""
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "commit": _commit(), "packages": versions, **(extra or {}),
    }


def _commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=Path(__file__).parent, timeout=10)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_fmt(cell))}</td>" for cell in row) + "</tr>" for row in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


TEMPLATES = ("hovertemplate", "texttemplate")  # written here, with their own <br> and <extra>


def as_text(value: Any, key: str = "") -> Any:
    """A figure's strings (tokens, variant and category names, titles with parameters: anything a
    file or a prompt can set) escaped for plotly, which reads a subset of HTML in labels, legends
    and titles: ``<b>`` or ``<a href=...>`` in a results folder's names would be drawn as markup,
    and the BOS token ``<s>`` as struck-through text. Plotly turns the entities back into the
    characters, so ``<s>`` reads as itself."""
    if isinstance(value, str):
        return value if key in TEMPLATES else html.escape(value, quote=False)
    if isinstance(value, dict):
        return {k: as_text(v, k) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [as_text(v, key) for v in value]
    if isinstance(value, np.ndarray) and value.dtype.kind in "OUS":
        return [as_text(v, key) for v in value.tolist()]
    return value


def _fmt(cell: Any) -> str:
    return f"{cell:.4g}" if isinstance(cell, float) else str(cell)


def write_page(path: Path, title: str, sections: Sequence[Section], meta: dict[str, Any], back: str | None = "index.html",
               self_contained: bool = False) -> Path:
    """Write one page. Its figures use the folder's ``plotly.min.js`` (written beside it once), or
    with ``self_contained`` carry plotly.js inline in the first figure."""
    parts, embedded = [], not self_contained
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        if section.text:
            parts.append(f"<p>{html.escape(section.text)}</p>")
        parts.append(section.raw_html)
        for fig in section.figures:
            parts.append(pio.to_html(as_text(fig.to_plotly_json()), full_html=False, include_plotlyjs=not embedded,
                                     config={"responsive": True}, validate=False))
            embedded = True
            how_to_read = (fig.layout.meta or {}).get("caption") if isinstance(fig.layout.meta, dict) else None
            if how_to_read:
                parts.append(f'<p class="caption">{html.escape(how_to_read)}</p>')
        for header, rows in section.tables:
            parts.append(_table(header, rows))
        if section.preformatted:
            parts.append(f"<pre>{html.escape(section.preformatted)}</pre>")
    nav = f'<p><a href="{back}">&larr; all studies</a></p>' if back else ""
    meta_html = f'<details class="meta"><summary>Run details</summary><pre>{html.escape(json.dumps(meta, indent=2, default=str))}</pre></details>'
    path.parent.mkdir(parents=True, exist_ok=True)
    script = ""
    if not self_contained and any(section.figures for section in sections):
        library = path.parent / PLOTLY_FILE
        if not library.is_file() or library.stat().st_size == 0:
            write_atomic(library, get_plotlyjs())
        script = f'<script src="{PLOTLY_FILE}" charset="utf-8"></script>'
    write_atomic(path,
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>{script}"
        f"<style>{STYLE}</style></head><body>{nav}<h1>{html.escape(title)}</h1>{''.join(parts)}{meta_html}</body></html>")
    return path


def write_index(folder: Path, title: str, pages: Sequence[tuple[str, str, str]], meta: dict[str, Any],
                unfinished: str | None = None) -> Path:
    """The index, one line per study page ``(file name, title, one-line summary)``. Pages written
    into the same folder by earlier commands stay listed (``pages.json`` remembers them).
    ``unfinished`` says, at the top, why the command that writes this report has not completed."""
    manifest = folder / "pages.json"
    known = read_json(manifest) if manifest.is_file() else {}
    known |= {name: [page_title, summary] for name, page_title, summary in pages}
    known = {name: entry for name, entry in known.items() if (folder / name).is_file()}
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(manifest, json.dumps(known, indent=2))
    rows = "".join(
        f'<tr><td><a href="{html.escape(name)}">{html.escape(page_title)}</a></td><td>{html.escape(summary)}</td></tr>'
        for name, (page_title, summary) in known.items()
    )
    warning = (f'<p class="unfinished"><strong>Unfinished report:</strong> {html.escape(unfinished)}. The pages '
               "listed below are complete (this command's, and any an earlier command wrote into this folder); a "
               "study not listed was not written.</p>") if unfinished else ""
    section = Section("What each study found", "One line per study with its headline numbers; follow a study's link "
                      "for its figures, tables and how to read them. How the report was made is at the bottom.",
                      raw_html=f"{warning}<table><tr><th>study</th><th>what it found</th></tr>{rows}</table>")
    return write_page(folder / "index.html", title + (" (unfinished)" if unfinished else ""), [section], meta, back=None)


class Report:
    """A report folder written as its pages come: the index says the report is unfinished from
    the start until :meth:`finish`, so a command that fails or is killed never leaves a folder
    that looks complete, and the pages that did finish are kept."""

    def __init__(self, folder: Path, title: str, meta: dict[str, Any], *, self_contained: bool = False) -> None:
        self.folder, self.title, self.meta, self.self_contained = Path(folder), title, meta, self_contained
        self.pages: list[tuple[str, str, str]] = []
        self._held = ExitStack()  # the folder, held until finish: two reports never write one folder
        self._held.enter_context(hold(self.folder))
        write_index(self.folder, title, [], meta, unfinished="the command writing it is still running, or it "
                    "was killed")

    def add(self, page: Page) -> Path:
        path = write_page(self.folder / page.name, page.title, page.sections, self.meta,
                          self_contained=self.self_contained)
        self.pages.append((page.name, page.title, page.summary))
        write_index(self.folder, self.title, self.pages, self.meta, unfinished="the command writing it is still "
                    "running, or it was killed")
        return path

    def finish(self, failure: str | None = None) -> Path:
        """The index, marked unfinished when ``failure`` says why the command stopped."""
        try:
            return write_index(self.folder, self.title, self.pages, self.meta, unfinished=failure)
        finally:
            self._held.close()
