"""Evaluation protocols in the analysis: runs of different protocols never share a comparison unless asked.

Each run records its protocol's fields as ``protocol.*`` params and their fingerprint as the ``protocol`` tag
(written by ``suite/protocol.py``). Per environment, every run of one comparison must have the same fingerprint;
otherwise :func:`check_protocols` raises :class:`MixedProtocolsError`, one line naming the environment, the first
field that differs (in :data:`PROTOCOL_FIELDS_ORDER`) and both values, unless mixing is allowed, in which case it
returns notes the report prints. Runs without a ``protocol`` tag (stores older than the fingerprint) are one
:data:`UNKNOWN` protocol, said once.

:func:`first_difference` and the field order live here, with the reader, because the analysis may import nothing
from ``suite``; the recording side re-exports them.
"""
from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

from analysis import record_names as names

__all__ = ["PROTOCOL_FIELDS_ORDER", "UNKNOWN", "MixedProtocolsError", "first_difference", "protocol_fields",
           "protocols_by_env", "check_protocols", "describe_difference", "select_reference"]

#: the order fields are compared and reported in (first difference first); family extras follow, sorted
PROTOCOL_FIELDS_ORDER = ("env_id", "family", "step_unit", "budget_steps", "eval_every", "eval_episodes",
                         "eval_epsilon", "eval_max_steps", "score")
#: the protocol of runs that record none (stores older than the fingerprint)
UNKNOWN = "unknown"
_TAG = f"tag.{names.PROTOCOL}"
_PREFIX = f"param.{names.PROTOCOL_PARAM_PREFIX}"


class MixedProtocolsError(ValueError):
    """Runs of different evaluation protocols in one comparison; the message is one line."""


def _ordered_keys(a: Mapping[str, Any], b: Mapping[str, Any]) -> list[str]:
    keys = set(a) | set(b)
    head = [k for k in PROTOCOL_FIELDS_ORDER if k in keys]
    return head + sorted(keys - set(head))


def first_difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> tuple[str, Any, Any] | None:
    """The first field (in :data:`PROTOCOL_FIELDS_ORDER`, then by name) whose values differ, with both values
    (``None`` where a side lacks it); None when the protocols are the same. Values compare as text, as they are
    recorded."""
    for key in _ordered_keys(a, b):
        va, vb = a.get(key), b.get(key)
        if (None if va is None else str(va)) != (None if vb is None else str(vb)):
            return key, va, vb
    return None


def _fingerprints(runs: pd.DataFrame) -> pd.Series:
    tag = runs[_TAG] if _TAG in runs.columns else pd.Series(None, index=runs.index, dtype=object)
    return tag.where(tag.notna() & (tag.astype(str) != ""), UNKNOWN).astype(str)


def protocol_fields(runs: pd.DataFrame) -> dict[str, str]:
    """The protocol fields recorded by the first of ``runs`` (``protocol.*`` params without the prefix)."""
    if runs.empty:
        return {}
    row = runs.iloc[0]
    return {c[len(_PREFIX):]: str(row[c]) for c in runs.columns if c.startswith(_PREFIX) and pd.notna(row[c])}


def protocols_by_env(runs: pd.DataFrame) -> dict[str, dict[str, pd.DataFrame]]:
    """env → fingerprint → its runs (fingerprints A–Z, :data:`UNKNOWN` for runs without one)."""
    fp = _fingerprints(runs)
    return {env: {f: g for f, g in runs[runs["env"] == env].groupby(fp[runs["env"] == env], sort=True)}
            for env in sorted(runs["env"].unique())}


def describe_difference(fields_a: Mapping[str, Any], fields_b: Mapping[str, Any], name_a: str, name_b: str) -> str:
    """``"budget_steps: 5000 (mine) vs 500000 (reference)"``; a side without recorded fields is "not recorded"."""
    if not fields_a or not fields_b:
        return (f"the runs of {name_a if not fields_a else name_b} record no protocol (older store), "
                f"the runs of {name_b if not fields_a else name_a} do")
    diff = first_difference(fields_a, fields_b)
    if diff is None:
        return "same fields, different fingerprints"
    key, va, vb = diff
    return f"{key}: {'not recorded' if va is None else va} ({name_a}) vs {'not recorded' if vb is None else vb} ({name_b})"


def _label(runs: pd.DataFrame) -> str:
    if "experiment" in runs.columns and runs["experiment"].nunique() == 1:
        return f"experiment {runs['experiment'].iloc[0]}"
    return f"{len(runs)} runs"


def check_protocols(runs: pd.DataFrame, *, allow_mixed: bool = False) -> list[str]:
    """Check that, per environment, all ``runs`` share one protocol. Returns the notes a report prints (runs
    without a recorded protocol, said once; with ``allow_mixed``, each environment whose runs mix protocols).

    Raises:
        MixedProtocolsError: an environment's runs have two or more fingerprints and ``allow_mixed`` is false;
            the message names the environment, the first differing field and both values.
    """
    notes: list[str] = []
    if runs.empty:
        return notes
    unknown = int((_fingerprints(runs) == UNKNOWN).sum())
    if unknown:
        notes.append(f"{unknown} of {len(runs)} runs record no evaluation protocol (a store older than the "
                     "fingerprint): they are treated as one unknown protocol.")
    for env, by_fp in protocols_by_env(runs).items():
        if len(by_fp) < 2:
            continue
        (fa, ra), (fb, rb) = sorted(by_fp.items(), key=lambda kv: -len(kv[1]))[:2]
        what = describe_difference(protocol_fields(ra) if fa != UNKNOWN else {},
                                   protocol_fields(rb) if fb != UNKNOWN else {}, _label(ra), _label(rb))
        msg = f"{env}: runs of {len(by_fp)} evaluation protocols in one comparison; first difference {what}"
        if not allow_mixed:
            raise MixedProtocolsError(msg + "; allowed: runs of one protocol per environment, or "
                                            "--allow-mixed-protocols")
        notes.append(f"Mixed protocols allowed (--allow-mixed-protocols): {msg}.")
    return notes


def select_reference(own: pd.DataFrame, reference: pd.DataFrame, *, allow_mixed: bool = False,
                     own_name: str = "yours", ref_name: str = "reference") -> tuple[pd.DataFrame, list[str]]:
    """The reference runs that may stand next to ``own``: per environment of ``own``, the reference runs of the
    same protocol. Returns them and the notes for the report.

    ``own`` must have one protocol per environment (:func:`check_protocols`). An environment of ``own`` whose
    reference runs all have other protocols raises :class:`MixedProtocolsError`, naming the first differing field
    against the reference protocol closest to it (fewest differing fields, then most runs), unless
    ``allow_mixed``: then that environment's reference runs of every protocol are kept and a note says so.
    Environments without any reference run get a note."""
    notes = check_protocols(own, allow_mixed=allow_mixed)
    if reference.empty:
        return reference, notes + [f"The {ref_name} has no runs."]
    ref_fp, keep = _fingerprints(reference), []
    for env, by_fp in protocols_by_env(own).items():
        ref_env = reference["env"] == env
        if not ref_env.any():
            notes.append(f"{env}: the {ref_name} has no runs of this environment.")
            continue
        for fp, runs in by_fp.items():
            same = ref_env & (ref_fp == fp)
            if same.any():
                keep.append(reference[same])
                continue
            mine = protocol_fields(runs) if fp != UNKNOWN else {}
            candidates = []
            for rfp, rruns in reference[ref_env].groupby(ref_fp[ref_env], sort=True):
                theirs = protocol_fields(rruns) if rfp != UNKNOWN else {}
                differing = sum(1 for k in set(mine) | set(theirs) if str(mine.get(k)) != str(theirs.get(k)))
                candidates.append((differing, -len(rruns), rfp, theirs))
            _, _, _, theirs = min(candidates, key=lambda c: c[:3])
            what = describe_difference(mine, theirs, own_name, ref_name)
            msg = f"{env}: no {ref_name} run has the evaluation protocol of {own_name}; first difference {what}"
            if not allow_mixed:
                raise MixedProtocolsError(msg + "; allowed: runs of a protocol the reference has, or "
                                                "--allow-mixed-protocols")
            notes.append(f"Mixed protocols allowed (--allow-mixed-protocols): {msg}; every {ref_name} run of "
                         f"{env} is shown.")
            keep.append(reference[ref_env])
    selected = pd.concat(keep).drop_duplicates("run_id") if keep else reference.iloc[:0]
    return selected, notes
