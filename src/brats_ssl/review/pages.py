"""The review's HTML: the index (the unlabeled pool and the labeled / val cases as sortable
tables) and a case page (NiiVue viewer, layer controls, decision buttons).

The same pages serve two modes: from the review app (scripts, styles and volumes by URL) and
as static files (everything inlined, see :mod:`brats_ssl.review.static_site`).
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any, Callable
from urllib.parse import quote, urlsplit

from brats_ssl.data.conventions import REGIONS, TUMOUR_CLASS_NAMES
from brats_ssl.paths import safe_name
from brats_ssl.review import case_url
from brats_ssl.review.cases import POOL, SELECTION, VAL, ReviewCatalogue

SET_NAMES = {POOL: "unlabeled", VAL: "validation", SELECTION: "selection (chooses the model)"}

ASSETS = ("review.css", "viewer.js", "index.js")
VIEWS = (("multiplanar + render", 3), ("axial", 0), ("coronal", 1), ("sagittal", 2), ("render", 4))
KEYS = (
    "keys: n / p next / previous case · a accept · r reject · u undecided · 1–4 modality · t next labelling "
    "· g ground truth"
)


def asset_text(name: str) -> str:
    return (resources.files("brats_ssl.review") / "assets" / name).read_text(encoding="utf-8")


@dataclass(frozen=True)
class PageMode:
    """How pages link to each other and bring in their styles and scripts."""

    static: bool = False

    def case_href(self, case_id: str) -> str:
        return f"{safe_name(case_id)}.html" if self.static else urlsplit(case_url(case_id)).path

    @property
    def index_href(self) -> str:
        return "index.html" if self.static else "/"

    def style(self) -> str:
        if self.static:
            return f"<style>{asset_text('review.css')}</style>"
        return '<link rel="stylesheet" href="/assets/review.css">'

    def script(self, name: str) -> str:
        if self.static:
            return f'<script type="module">{asset_text(name)}</script>'
        return f'<script type="module" src="/assets/{name}"></script>'


def _page(title: str, header: str, body: str, mode: PageMode, scripts: str = "") -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"{mode.style()}</head><body><header>{header}</header><main>{body}</main>{scripts}</body></html>\n"
    )


def _fmt(value: float | int | None, digits: int = 3) -> str:
    if value is None:
        return "-"
    return str(value) if isinstance(value, int) else f"{value:.{digits}f}"


def _table(headers: list[str], rows: list[list[str]], table_id: str) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f'<table class="sortable" id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def _decision_cell(decision: str) -> str:
    return f'<span class="decision-{html.escape(decision)}">{html.escape(decision)}</span>'


def _scored_model(catalogue: ReviewCatalogue) -> str:
    phase = catalogue.final_phase or "teacher"
    return f"the final model ({phase})" if catalogue.run.summary else f"{phase}, the latest phase so far"


def index_page(catalogue: ReviewCatalogue, rows: list[dict], mode: PageMode) -> str:
    def link(case_id: str) -> str:
        return f'<a href="{html.escape(mode.case_href(case_id))}">{html.escape(case_id)}</a>'

    pool = [r for r in rows if r["set"] == POOL]
    others = [r for r in rows if r["set"] != POOL]
    pool_rows = [
        [
            link(r["case"]),
            _fmt(r["rank"]),
            "never" if r["stage"] == 0 else _fmt(r["stage"]),
            _fmt(r["confidence"]),
            _fmt(r["agreement"]),
            *(_fmt(r["volumes_ml"][k], 1) for k in TUMOUR_CLASS_NAMES),
            _decision_cell(r["decision"]),
        ]
        for r in pool
    ]
    other_rows = [[link(r["case"]), r["set"], *(_fmt((r["dice"] or {}).get(k)) for k in REGIONS)] for r in others]
    run_name = catalogue.run.path.resolve().name
    body = (
        f"<h2>Unlabeled pool ({len(pool)} cases)</h2>"
        + _table(
            [
                "case",
                "rank",
                "stage",
                "confidence",
                "agreement",
                *(f"{k} (ml)" for k in TUMOUR_CLASS_NAMES),
                "decision",
            ],
            pool_rows,
            "pool",
        )
        + '<p class="caption">Ranked as the latest pseudo-label round orders the next stage: rank, the curriculum '
        "stage the rank admits the case to, the pseudo-label's image-level confidence, the teacher–student "
        "agreement (Dice, after a refinement), the predicted class volumes. A rejected case leaves the "
        "pseudo-labeled pool; an accepted one enters the next stage whatever its rank.</p>"
        + f"<h2>Labeled and validation cases ({len(others)})</h2>"
        + _table(["case", "set", *(f"Dice {r}" for r in REGIONS)], other_rows, "labeled")
        + f'<p class="caption">Dice of {html.escape(_scored_model(catalogue))} on the validation cases; labeled '
        "training cases are not scored.</p>"
    )
    header = f"<h1>brats-ssl review: {html.escape(run_name)}</h1>"
    if mode.static:
        header += "<span>static copy: make decisions in <code>brats-ssl review</code></span>"
    return _page(f"review {run_name}", header, body, mode, mode.script("index.js"))


def _json_for_script(data: dict) -> str:
    return json.dumps(data).replace("</", "<\\/")


def resolve_layers(layers: dict, ref_of: Callable[[str], dict]) -> dict:
    """The viewer's volume configuration: every volume name replaced by ``ref_of(name)``."""
    return {
        "modalities": {m: ref_of(name) for m, name in layers["modalities"].items()},
        "sources": [{k: (v if k in ("key", "title") else ref_of(v)) for k, v in s.items()} for s in layers["sources"]],
        "ground_truth": ref_of(layers["ground_truth"]) if layers["ground_truth"] else None,
    }


def case_page(
    catalogue: ReviewCatalogue,
    case_id: str,
    volumes: dict,
    *,
    mode: PageMode,
    niivue: str | dict,
    decision: dict | None,
) -> str:
    """``niivue``: the module's URL, or ``{"gzip_base64": ...}`` holding it (static pages)."""
    kind = catalogue.require_case(case_id)
    previous, following = catalogue.neighbours(case_id)
    decide_url = None if mode.static or kind != POOL else f"/api/cases/{quote(case_id, safe='')}/decision"
    config: dict[str, Any] = {
        "case": case_id,
        "set": kind,
        "niivue": niivue,
        "volumes": volumes,
        "label_colours": catalogue.label_colours(case_id),
        "decide_url": decide_url,
        "uncertainty_floor": round(1 - catalogue.run.config.ssl.tau_start, 4),
        "previous_url": mode.case_href(previous) if previous else None,
        "next_url": mode.case_href(following) if following else None,
    }
    current = (decision or {}).get("decision", "undecided")
    sources = volumes["sources"]
    controls = [
        '<fieldset><legend>Image</legend><select id="modality">'
        + "".join(f'<option value="{m}">{m.upper()}</option>' for m in volumes["modalities"])
        + '</select> <select id="view">'
        + "".join(f'<option value="{value}">{name}</option>' for name, value in VIEWS)
        + "</select></fieldset>",
    ]
    if sources:
        with_uncertainty = any("confidence" in s for s in sources)
        controls.append(
            f"<fieldset><legend>{'Pseudo-label' if kind == POOL else 'Prediction'}</legend>"
            + '<select id="source">'
            + "".join(f'<option value="{i}">{html.escape(s["title"])}</option>' for i, s in enumerate(sources))
            + "</select>"
            + '<label><input type="checkbox" id="show-label" checked> show labels</label>'
            + '<label>opacity <input type="range" id="label-opacity" min="0" max="1" step="0.05" value="0.5"></label>'
            + (
                '<label>uncertainty <select id="uncertainty"><option value="entropy">entropy (1 − confidence)</option>'
                '<option value="mutual_information">mutual information</option><option value="off">off</option>'
                '</select></label><label>opacity <input type="range" id="uncertainty-opacity" min="0" max="1" '
                'step="0.05" value="0.7"></label>'
                if with_uncertainty
                else '<p class="keys">no uncertainty map: validation predictions are deterministic</p>'
            )
            + "</fieldset>"
        )
    if volumes["ground_truth"]:
        controls.append(
            '<fieldset><legend>Ground truth</legend><label><input type="checkbox" id="show-truth"> '
            "show the expert labels</label></fieldset>"
        )
    legend = "".join(
        f'<span><i style="background: rgb({",".join(map(str, c["rgb"]))})"></i>{c["name"]}</span>'
        for c in config["label_colours"]
    )
    controls.append(f'<p class="legend">{legend}</p>')
    if kind == POOL:
        disabled = " disabled" if mode.static else ""
        note = html.escape((decision or {}).get("note", ""))
        controls.append(
            f'<fieldset><legend>Decision: <span id="decision" class="decision-{current}">{current}</span></legend>'
            f'<button data-decision="accept" id="accept"{disabled}>accept</button>'
            f'<button data-decision="reject" id="reject"{disabled}>reject</button>'
            f'<button data-decision="undecided" id="undecided"{disabled}>undecided</button>'
            f'<textarea id="note" rows="2" placeholder="note"{disabled}>{note}</textarea>'
            + ("<p class='keys'>static copy: decide in <code>brats-ssl review</code></p>" if mode.static else "")
            + "</fieldset>"
        )
    controls.append(f'<p class="keys">{KEYS}</p>')
    nav = " ".join(
        f'<a href="{html.escape(mode.case_href(c))}">{label}</a>'
        for c, label in ((previous, "← previous"), (following, "next →"))
        if c
    )
    header = (
        f'<a href="{mode.index_href}">all cases</a><h1>{html.escape(case_id)}</h1>'
        f"<span>{SET_NAMES.get(kind, 'labeled')}</span>{nav}"
    )
    body = (
        f'<div class="case"><div class="controls">{"".join(controls)}</div>'
        '<div class="viewer"><div class="canvas-box"><canvas id="viewer"></canvas></div>'
        '<p id="viewer-status">starting the viewer …</p></div>'
        f'</div><script type="application/json" id="review-config">{_json_for_script(config)}</script>'
    )
    return _page(f"review {case_id}", header, body, mode, mode.script("viewer.js"))
