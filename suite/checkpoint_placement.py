"""Where a trial group's checkpoint is, across tracking stores and checkpoint stores.

* A group checkpoints to a local working file (``<checkpoint dir>/<name>.pt``). A remote checkpoint store
  (``--checkpoint-uri``: fsspec URL, the tracking server's artifact store; :mod:`suite.checkpoint_store`) is
  fetched from before a resume (unless the local file of this store is further along: its upload failed) and
  uploaded to after every checkpoint write, before the points it covers are flushed.
* Checkpoints are tied to their tracking store: a checkpoint records the tracking URI (public form, no
  credentials) and experiment of its runs. A resume against another store does not continue it: the checkpoint
  is moved aside, untouched, to ``<checkpoint dir>/other-stores/<key>/`` (``key`` = a hash of its URI and
  experiment; ``targetbench push --checkpoint-dir`` that folder pushes it) and the trial starts fresh. A later
  resume against that store moves it back and continues it. A checkpoint without a recorded store (older
  versions) is continued by whatever store resumes it.
* Files are moved only in :meth:`CheckpointPlacement.settle_files`, called once the tracking store answered: a
  command that fails on its store changes nothing on disk.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Callable, Mapping

from suite.checkpoint import checkpoint_path, load_checkpoint, move_checkpoint, peek_checkpoint
from suite.checkpoint_store import CheckpointStore, store_key
from suite.errors import CheckpointError
from suite.tracking import public_uri
from suite.trial import TrialSpec

__all__ = ["CheckpointPlacement", "OTHER_STORES"]

#: the folder (inside the checkpoint folder) where checkpoints of other tracking stores are moved aside
OTHER_STORES = "other-stores"


class CheckpointPlacement:
    """The checkpoint file of one trial group for one tracking store and experiment: which file to resume, where
    a checkpoint of another store goes, and the mirror in a remote checkpoint store."""

    def __init__(self, trial: TrialSpec, *, tracking_uri: str, experiment: str, checkpoint_dir: Path,
                 store: CheckpointStore, say: Callable[[str], None], label: str) -> None:
        self.trial, self.tracking_uri, self.experiment = trial, tracking_uri, experiment
        self.checkpoint_dir = Path(checkpoint_dir)
        self.path = checkpoint_path(trial, self.checkpoint_dir)
        self.store, self.say, self.label = store, say, label
        self._foreign: tuple[str, str] | None = None  # (uri, experiment) of a checkpoint at `path` to move aside
        self._move_back: Path | None = None  # where this store's checkpoint was kept aside
        self.source = self.path  # the file the resumed state was read from

    def fetch(self) -> None:
        """A remote store's checkpoint becomes the local working file, unless the local one (of this store) is
        further along (its upload failed): the group continues from the furthest checkpoint it can read."""
        incoming = self.path.with_name(self.path.name + ".remote")
        try:
            found = self.store.fetch(self.path.name, incoming)
        except Exception as exc:
            raise CheckpointError(f"cannot read checkpoint {self.path.name} from {self.store.uri}: "
                                  f"{str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}"
                                  ) from None
        if not found:
            return
        keys = ("step", "tracking_uri", "experiment")
        try:
            local = peek_checkpoint(self.path, keys) if self.path.exists() else None
        except CheckpointError:
            local = None
        if local is not None and self.ours(local) and int(local.get("step", -1)) > int(
                peek_checkpoint(incoming, keys).get("step", -1)):
            incoming.unlink()
            return
        os.replace(incoming, self.path)  # its pieces were fetched into this checkpoint's piece folder
        self.say(f"{self.label} fetched checkpoint {self.path.name} from {self.store.uri}")

    def upload(self) -> None:
        """Mirror the checkpoint just written to a remote store, before its points are flushed (so a node that
        dies after the flush leaves a checkpoint that covers them). A store that fails keeps the previous remote
        checkpoint: training goes on (a resume elsewhere re-sends the points; the tracking store ignores those
        it has)."""
        if not self.store.remote:
            return
        try:
            self.store.put(self.path)
        except Exception as exc:
            text = str(exc).strip().splitlines()
            self.say(f"{self.label} could not upload checkpoint {self.path.name} to {self.store.uri} "
                     f"({type(exc).__name__}: {text[0][:200] if text else ''}); kept locally, retrying at the "
                     "next checkpoint")

    def resume_state(self, adopt: bool) -> dict[str, Any] | None:
        """The checkpoint to resume, or None (the trial starts fresh): a remote store's copy is fetched first
        (see :meth:`fetch`); one of another tracking store is not resumed (it is moved aside by
        :meth:`settle_files`) unless ``adopt``; this store's copy kept aside earlier is resumed."""
        if self.store.remote:
            self.fetch()
        return self._load(adopt)

    def fresh(self) -> None:
        """A fresh run (no resume): returns None, after noting a checkpoint of another store to move aside."""
        self._note_foreign()
        return None

    def _note_foreign(self) -> None:
        """A fresh run overwrites its trial's checkpoint at its first checkpoint; one whose runs live in another
        store is moved aside first (unreadable ones are overwritten, as always)."""
        if not self.path.exists():
            return
        try:
            meta = peek_checkpoint(self.path, ("tracking_uri", "experiment"))
        except CheckpointError:
            return
        if not self.ours(meta):
            self._foreign = (str(meta["tracking_uri"]), str(meta["experiment"]))

    def _load(self, adopt: bool) -> dict[str, Any] | None:
        group = self.trial.group_hash()
        state = load_checkpoint(self.path, group) if self.path.exists() else None
        if state is not None and not adopt and not self.ours(state):
            self._foreign = (str(state["tracking_uri"]), str(state["experiment"]))
            state = None
        if state is None:  # a checkpoint of this store moved aside by an earlier run against another store
            kept = self.checkpoint_dir / OTHER_STORES / store_key(self.tracking_uri, self.experiment) / self.path.name
            if kept.exists():
                candidate = load_checkpoint(kept, group)
                if self.ours(candidate):
                    state, self._move_back, self.source = candidate, kept, kept
        if state is None:
            self.say(f"[{self.trial.agent} {self.trial.env}] no checkpoint {self.path.name} to resume from; "
                     "starting fresh")
        return state

    def settle_files(self) -> None:
        """Move a checkpoint of another store aside, and this store's kept one back (the store answered)."""
        if self._foreign is not None and self.path.exists():
            uri, experiment = self._foreign
            aside = self._move_aside(self.path, store_key(uri, experiment))
            self.say(f"{self.label} checkpoint {self.path.name} records its runs in {uri} (experiment "
                     f"{experiment}), not in {public_uri(self.tracking_uri)} (experiment {self.experiment}): kept "
                     f"as {aside}; this store's runs start fresh")
        if self._move_back is not None:
            move_checkpoint(self._move_back, self.path)
            self.say(f"{self.label} continuing checkpoint {self.path.name} of this store (moved back from "
                     f"{self._move_back.parent})")
            self.source = self.path
        self._foreign = self._move_back = None

    def ours(self, state: Mapping[str, Any]) -> bool:
        """Whether a checkpoint's runs live in this store and experiment (one without a recorded store, from
        older versions, belongs to whatever store resumes it)."""
        if "tracking_uri" not in state or "experiment" not in state:
            return True
        return (public_uri(str(state["tracking_uri"])) == public_uri(self.tracking_uri)
                and str(state["experiment"]) == self.experiment)

    def _move_aside(self, path: Path, key: str) -> Path:
        folder = self.checkpoint_dir / OTHER_STORES / key
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / path.name
        n = 1
        while dest.exists():  # never overwrite a checkpoint kept earlier
            dest = folder / f"{path.stem}.{n}{path.suffix}"
            n += 1
        move_checkpoint(path, dest)
        return dest
