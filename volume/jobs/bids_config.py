"""The configuration of ``volume bids --config``: rules that match a stack's sidecar fields and
description and give its datatype, suffix, entities and sidecar fields, overriding the guess.

A file holds (JSON, or TOML with the same keys)::

    {"dataset": {"Name": "My study"},
     "rules": [{"name": "rest",
                "match": {"SeriesDescription": "*rest*", "ImageType": ["ORIGINAL"]},
                "datatype": "func", "suffix": "bold",
                "entities": {"task": "rest"},
                "sidecar": {"TaskName": "resting state"}}]}

The first rule whose every ``match`` key matches decides (see :func:`match_value`); stacks no rule
matches get the classifier's guess. ``datatype: "sourcedata"`` sends a stack to ``sourcedata/``;
a rule without ``datatype`` and ``suffix`` keeps the guess and adds its ``entities`` and
``sidecar`` fields (match ``Rule``, the classifier's rule name, to complete what it decided).
A rule's ``sidecar`` fields go into the stack's JSON sidecar (what the files lack, such as ASL's
labelling parameters), ``aslcontext`` lists the volume types of an ASL series.
"""

from __future__ import annotations

import fnmatch
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

try:  # Python 3.11+; tomli (its backport) where installed
    import tomllib
except ImportError:  # pragma: no cover - Python 3.10
    try:
        import tomli as tomllib  # type: ignore[no-redef]
    except ImportError:
        tomllib = None  # type: ignore[assignment]

from ..errors import UsageError
from .bids_spec import FILES, check_entities, entity_value, value_problem

RULE_KEYS = frozenset({"name", "match", "datatype", "suffix", "entities", "sidecar", "aslcontext"})
"""Keys a configuration rule may hold."""

TOP_KEYS = frozenset({"rules", "dataset"})
"""Keys of the configuration file itself."""

FROM_THE_FILES = {
    "RepetitionTime": "the NIfTI's time step is the files' repetition time, and BIDS checks that they agree",
    "SourceStackKey": "volume names the stack a file was converted from",
}
"""Sidecar fields a configuration cannot give, and why."""

DATASET_FIELDS = {"Name": str, "License": str, "Acknowledgements": str, "HowToAcknowledge": str, "DatasetDOI": str,
                  "Authors": list, "Funding": list, "EthicsApprovals": list, "ReferencesAndLinks": list,
                  "Keywords": list}
"""``dataset_description.json`` fields a configuration may give, and their JSON types (lists of
strings); BIDSVersion, DatasetType and GeneratedBy are volume's."""

ASL_VOLUME_TYPES = ("control", "label", "m0scan", "deltam", "cbf", "noRF")
"""The values of aslcontext.tsv's ``volume_type`` column."""

REGEX_PREFIX = "re:"
"""A pattern starting with this is a regular expression (searched); others are shell-style
patterns (``*``, ``?``, ``[...]``) matched whole, case ignored."""


@dataclass(frozen=True)
class ConfigRule:
    """One rule of a configuration file (validated)."""

    name: str
    match: Mapping[str, Any]
    datatype: str
    suffix: str = ""
    entities: Mapping[str, str] = field(default_factory=dict)
    sidecar: Mapping[str, Any] = field(default_factory=dict)
    aslcontext: tuple[str, ...] = ()


@dataclass(frozen=True)
class Config:
    """A configuration: its rules in order, and fields for a new ``dataset_description.json``."""

    rules: tuple[ConfigRule, ...] = ()
    dataset: Mapping[str, Any] = field(default_factory=dict)
    path: str = ""

    def first_match(self, values: Mapping[str, Any]) -> ConfigRule | None:
        """The first rule every ``match`` key of which matches ``values``, or None."""
        for rule in self.rules:
            if all(key in values and match_value(pattern, values[key]) for key, pattern in rule.match.items()):
                return rule
        return None


def _text_matches(pattern: str, value: Any) -> bool:
    text = str(value)
    if pattern.startswith(REGEX_PREFIX):
        return re.search(pattern[len(REGEX_PREFIX):], text) is not None
    return fnmatch.fnmatchcase(text.casefold(), pattern.casefold())


def match_value(pattern: Any, value: Any) -> bool:
    """Whether a sidecar ``value`` matches a rule's ``pattern``.

    A string is a shell-style pattern (case ignored) or a ``re:`` regular expression; against a
    list value (ImageType) it matches when one element does. A number equals the value (to 1e-6
    relative). A list pattern matches when each of its items matches the value (a list: some
    element of it). A boolean equals the value.
    """
    values = list(value) if isinstance(value, (list, tuple)) else [value]
    if isinstance(pattern, list):
        return all(match_value(p, value) for p in pattern)
    if isinstance(pattern, bool):
        return any(v is pattern for v in values)
    if isinstance(pattern, (int, float)):
        return any(isinstance(v, (int, float)) and not isinstance(v, bool)
                   and math.isclose(float(v), float(pattern), rel_tol=1e-6, abs_tol=1e-9) for v in values)
    if isinstance(pattern, str):
        return any(_text_matches(pattern, v) for v in values if v is not None)
    return False


def _read(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix.lower() == ".toml":
        if tomllib is None:
            raise UsageError(f"{path}: reading TOML needs Python 3.11 or the tomli package; "
                             "write the configuration as JSON")
        try:
            return tomllib.loads(text)
        except ValueError as exc:
            raise UsageError(f"{path}: not valid TOML: {exc}") from None
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{path}: not valid JSON ({exc}); TOML files must end in .toml") from None


def _refuse_unknown(raw: Mapping[str, Any], known: frozenset[str] | set[str], at: str, what: str) -> None:
    """Refuse a table with keys other than ``known``, naming them and the ones ``what`` takes."""
    unknown = sorted(set(raw) - known)
    if unknown:
        raise UsageError(f"{at}: unknown key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} "
                         f"({what} takes {', '.join(sorted(known))})")


def _rule(raw: Any, k: int, where: str) -> ConfigRule:
    at = f"{where}: rule {k + 1}"
    if not isinstance(raw, Mapping):
        raise UsageError(f"{at}: a rule is a table of keys ({', '.join(sorted(RULE_KEYS))})")
    _refuse_unknown(raw, RULE_KEYS, at, "a rule")
    name = str(raw.get("name") or f"rule {k + 1}")
    at = f"{where}: rule {name!r}"
    match = raw.get("match")
    if not isinstance(match, Mapping) or not match:
        raise UsageError(f"{at}: 'match' must name at least one sidecar field and its pattern")
    datatype = str(raw.get("datatype", ""))
    suffix = str(raw.get("suffix", ""))
    entities = raw.get("entities") or {}
    sidecar = raw.get("sidecar") or {}
    if not isinstance(entities, Mapping) or not isinstance(sidecar, Mapping):
        raise UsageError(f"{at}: 'entities' and 'sidecar' are tables of keys and values")
    for key, value in sidecar.items():
        if key in FROM_THE_FILES:
            raise UsageError(f"{at}: sidecar {key} comes from the files ({FROM_THE_FILES[key]})")
        why = value_problem(str(key), value)
        if why:
            raise UsageError(f"{at}: sidecar {key} {value!r} {why}")
    aslcontext = tuple(str(v) for v in (raw.get("aslcontext") or ()))
    bad = [v for v in aslcontext if v not in ASL_VOLUME_TYPES]
    if bad:
        raise UsageError(f"{at}: aslcontext values must be {', '.join(ASL_VOLUME_TYPES)}; got {', '.join(bad)}")
    if datatype == "sourcedata":
        return ConfigRule(name, dict(match), datatype)
    if not datatype and not suffix:  # refines the guess: its entities and sidecar fields are added
        values = {str(key): entity_value(str(key), value) for key, value in entities.items()}
        return ConfigRule(name, dict(match), "", "", values, dict(sidecar), aslcontext)
    if datatype not in FILES:
        raise UsageError(f"{at}: datatype must be one of {', '.join(FILES)} or sourcedata, got {datatype!r}")
    if any(key in ("sub", "ses") for key in entities):
        raise UsageError(f"{at}: sub- and ses- come from --subject and --session, not from rules")
    values = {str(key): entity_value(str(key), value) for key, value in entities.items()}
    check_entities(datatype, suffix, {**values, **_implied(datatype, suffix)}, at)
    return ConfigRule(name, dict(match), datatype, suffix, values, dict(sidecar), aslcontext)


def _implied(datatype: str, suffix: str) -> dict[str, str]:
    """Required entities volume sets itself (``task-`` from the description for func files,
    ``dir-`` from the phase encoding for epi field maps)."""
    if datatype == "func":
        return {"task": "x"}
    return {"dir": "x"} if datatype == "fmap" and suffix in ("epi", "m0scan") else {}


def load_config(path: str | Path) -> Config:
    """Read and check a configuration file (JSON, or TOML for ``.toml``).

    Raises
    ------
    UsageError
        The file is missing or unreadable, or a rule is malformed (the message names the rule).
    """
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{p}: no such configuration file")
    raw = _read(p)
    if not isinstance(raw, Mapping):
        raise UsageError(f"{p}: the configuration is a table with 'rules' (and optionally 'dataset')")
    _refuse_unknown(raw, TOP_KEYS, str(p), "it")
    rules = raw.get("rules") or []
    if not isinstance(rules, Sequence) or isinstance(rules, (str, bytes)):
        raise UsageError(f"{p}: 'rules' is a list of rules")
    dataset = raw.get("dataset") or {}
    if not isinstance(dataset, Mapping):
        raise UsageError(f"{p}: 'dataset' is a table of dataset_description.json fields")
    for key, value in dataset.items():
        kind = DATASET_FIELDS.get(key)
        if kind is None:
            raise UsageError(f"{p}: dataset field {key!r} is not one a configuration gives "
                             f"({', '.join(DATASET_FIELDS)})")
        if not isinstance(value, kind) or (kind is list and not all(isinstance(v, str) for v in value)):
            raise UsageError(f"{p}: dataset field {key} must be {'a list of texts' if kind is list else 'text'}")
        if key == "Authors" and any(author.count(",") > 1 for author in value):
            raise UsageError(f"{p}: dataset Authors holds one author per entry (npm's bids-validator refuses an "
                             "entry with several commas)")
    return Config(tuple(_rule(r, k, str(p)) for k, r in enumerate(rules)), dict(dataset), str(p))


__all__ = ["ASL_VOLUME_TYPES", "DATASET_FIELDS", "FROM_THE_FILES", "Config", "ConfigRule", "load_config",
           "match_value"]
