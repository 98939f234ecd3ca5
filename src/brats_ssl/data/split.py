"""Seeded labeled / unlabeled / validation / selection splits, stratified by site where sites are known.

The validation set is held out from everything and only reported. The remainder is split into an
optional *selection* set (labeled cases kept out of every loss: whatever a run chooses on data -
best checkpoint, promotion of a student, the final model, the post-processing rule - is chosen on
them, never on the val cases whose Dice is reported), a labeled fraction and an unlabeled rest.
Cases without a seg file can only be unlabeled.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from pathlib import Path
from typing import cast

from brats_ssl import atomic
from brats_ssl.data.dataset import CaseRef, Dataset
from brats_ssl.errors import BadInputError
from brats_ssl.paths import read_text_file
from brats_ssl.records import Split

SPLIT_KEYS = ("labeled", "unlabeled", "val")  # required in every split.json
OPTIONAL_KEYS = ("selection",)  # splits made before the selection set existed lack it


def _site_interleaved(cases: list[CaseRef], rng: random.Random) -> list[CaseRef]:
    """Shuffle within each site, then deal sites round-robin: any prefix is stratified by site."""
    by_site: dict[str, list[CaseRef]] = defaultdict(list)
    for case in cases:
        by_site[case.site or ""].append(case)
    queues = []
    for site in sorted(by_site):
        members = sorted(by_site[site], key=lambda c: c.case_id)
        rng.shuffle(members)
        queues.append(members)
    # Larger sites deal more often, so a prefix keeps the site proportions.
    order = []
    total = sum(len(q) for q in queues)
    taken = [0] * len(queues)
    for _ in range(total):
        best = max(
            range(len(queues)),
            key=lambda i: (len(queues[i]) - taken[i]) / len(queues[i]) if taken[i] < len(queues[i]) else -1,
        )
        order.append(queues[best][taken[best]])
        taken[best] += 1
    return order


def make_split(
    dataset: Dataset,
    *,
    labeled: float,
    val: float,
    seed: int = 0,
    min_labeled: int = 1,
    unlabeled_sites: list[str] | None = None,
    selection: int = 0,
) -> Split:
    """A split of ``dataset`` as a JSON-ready dict.

    ``val`` is the share of all cases (taken from cases with labels) held out for validation;
    ``selection`` the number of labeled cases held out for model selection; ``labeled`` the share
    of the remaining cases that keep their labels. ``unlabeled_sites`` forces every case of those
    sites into the unlabeled pool (used by the demo to show unseen sites).
    """
    if not 0 < labeled <= 1:
        raise BadInputError(f"--labeled {labeled}: must be in (0, 1]")
    if not 0 <= val < 1:
        raise BadInputError(f"--val {val}: must be in [0, 1)")
    rng = random.Random(seed)
    with_seg = [c for c in dataset.cases if c.labeled]
    if not with_seg:
        raise BadInputError(f"folder {dataset.root}: no case has a seg file, so nothing can be labeled or validated")
    n_val = min(len(with_seg) - 1, round(val * len(dataset.cases))) if val > 0 else 0
    n_val = max(n_val, 1) if val > 0 and len(with_seg) > 1 else n_val
    ordered = _site_interleaved(with_seg, rng)
    val_cases = ordered[:n_val]
    rest = [c for c in dataset.cases if c not in val_cases]
    forced = set(unlabeled_sites or [])
    candidates = _site_interleaved([c for c in rest if c.labeled and (c.site or "") not in forced], rng)
    candidates, selection_cases = hold_out_selection(candidates, selection)
    n_labeled = min(len(candidates), max(min_labeled, round(labeled * (len(rest) - len(selection_cases)))))
    if n_labeled < 1:
        raise BadInputError("the split leaves no labeled case; raise --labeled or lower --val / --selection")
    labeled_cases = candidates[:n_labeled]
    unlabeled_cases = [c for c in rest if c not in labeled_cases and c not in selection_cases]
    return {
        "seed": seed,
        "labeled_fraction": labeled,
        "val_fraction": val,
        "dataset": str(Path(dataset.root).resolve()),
        "labeled": sorted(c.case_id for c in labeled_cases),
        "unlabeled": sorted(c.case_id for c in unlabeled_cases),
        "val": sorted(c.case_id for c in val_cases),
        "selection": sorted(c.case_id for c in selection_cases),
        **unlabeled_roots_entry(dataset),
        "sites": {c.case_id: c.site for c in dataset.cases if c.site},
    }


def hold_out_selection(ordered: list[CaseRef], n: int) -> tuple[list[CaseRef], list[CaseRef]]:
    """(rest, selection): the last ``n`` of a site-interleaved order become the selection set, so
    the labeled sets stay prefixes of the same draw as splits made without one. At least one case
    stays for training."""
    n = max(0, min(n, len(ordered) - 1))
    return (ordered[: len(ordered) - n], ordered[len(ordered) - n :]) if n else (ordered, [])


def save_split(split: Split, path: str | Path) -> Path:
    return atomic.write_json(path, split)


def load_split(path: str | Path, dataset: Dataset | None = None) -> Split:
    """Read a split.json and check it: disjoint lists; with a dataset, every case present and
    every labeled / val case has a seg file."""
    path = Path(path)
    text = read_text_file(path, what="split file")
    try:
        split = json.loads(text)
    except ValueError as error:
        raise BadInputError(f"file {path}: not a readable split JSON ({error})") from error
    if not isinstance(split, dict) or any(not isinstance(split.get(k), list) for k in SPLIT_KEYS):
        raise BadInputError(f"file {path}: a split needs lists 'labeled', 'unlabeled' and 'val'")
    for key in OPTIONAL_KEYS:
        if not isinstance(split.setdefault(key, []), list):
            raise BadInputError(f"file {path}: '{key}' must be a list of case ids")
    seen: dict[str, str] = {}
    for key in SPLIT_KEYS + OPTIONAL_KEYS:
        for case_id in split[key]:
            if not isinstance(case_id, str):
                raise BadInputError(f"file {path}: {key} holds a non-text entry {case_id!r}")
            if case_id in seen:
                raise BadInputError(f"file {path}: case {case_id} is in both {seen[case_id]} and {key}")
            seen[case_id] = key
    if not split["labeled"]:
        raise BadInputError(f"file {path}: no labeled case")
    if dataset is not None:
        known = {c.case_id: c for c in dataset.cases}
        missing = [c for c in seen if c not in known]
        if missing:
            raise BadInputError(
                f"file {path}: {len(missing)} case(s) not found in {dataset.root}: {', '.join(missing[:10])}"
            )
        for key in ("labeled", "val", "selection"):
            no_seg = [c for c in split[key] if not known[c].labeled]
            if no_seg:
                raise BadInputError(f"file {path}: {key} case(s) without a seg file: {', '.join(no_seg[:10])}")
    return cast(Split, split)  # its keys checked above


def unlabeled_roots_entry(dataset: Dataset) -> dict:
    """The split.json entry naming the ``--unlabeled`` folders of ``dataset`` (none: no entry)."""
    return {"unlabeled_roots": [str(r) for r in dataset.unlabeled_roots]} if dataset.unlabeled_roots else {}


def recorded_unlabeled_roots(path: str | Path) -> list[str]:
    """The ``--unlabeled`` folders a split file names, read before its cases can be checked (the
    dataset they are checked against needs those folders)."""
    try:
        recorded = json.loads(Path(path).read_text(encoding="utf-8")).get("unlabeled_roots", [])
    except (OSError, ValueError, AttributeError):
        return []  # load_split reports what is wrong with the file
    return [str(r) for r in recorded] if isinstance(recorded, list) else []


def with_extra_unlabeled(split: Split, dataset: Dataset) -> Split:
    """``split`` with the cases of ``dataset``'s ``--unlabeled`` folders that it does not name yet
    added to its unlabeled cases (``train DATA --split s.json --unlabeled DIR`` adds a hospital's
    scans to a split made without them)."""
    if not dataset.unlabeled_roots:
        return split
    named = {c for key in SPLIT_KEYS + OPTIONAL_KEYS for c in split.get(key, [])}  # type: ignore[attr-defined]
    roots = [Path(r) for r in dataset.unlabeled_roots]
    extra = [
        c.case_id
        for c in dataset.cases
        if c.case_id not in named and any(root in c.reference_path.resolve().parents for root in roots)
    ]
    result = dict(split)
    result["unlabeled"] = sorted(list(split["unlabeled"]) + extra)
    result.update(unlabeled_roots_entry(dataset))
    return result  # type: ignore[return-value]
