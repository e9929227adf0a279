"""Where checkpoints live: a local (or shared) folder, an fsspec URL, or the MLflow server's artifact store.

A trial group always checkpoints to a local working file (``<checkpoint dir>/<name>.pt``, written atomically by
:mod:`suite.checkpoint`). A *remote* store mirrors it so that any node can continue the group:

* :class:`LocalStore` (a path, ``--checkpoint-dir``): the folder itself; nothing is copied.
* :class:`FsspecStore` (``file://``, ``memory://``, ``s3://``, ... any fsspec URL) and :class:`MlflowArtifactStore`
  (``--checkpoint-uri tracking``: the tracking server's artifact store, reached through the MLflow client's
  artifact API; or an explicit ``mlflow-artifacts:`` URI).

Remote layout, per checkpoint ``name``: ``<root>/<name>/<random>.pt`` (a new object per write, never
overwritten), ``<root>/<name>/LATEST`` (a one-line pointer to the current object) and ``<root>/<name>/chunks/``
(the content-addressed pieces of its large tensors, see :mod:`suite.checkpoint`: only pieces the store lacks are
uploaded, so a replay buffer costs only its new slots per checkpoint). A write uploads the new
object first and then replaces the pointer, then deletes the object it superseded: a reader sees either the old or
the new checkpoint, never a partial one, and a writer killed mid-upload leaves the previous checkpoint current
(an orphan object at most). One writer per checkpoint (a group is trained by one process at a time: trial leases).

``root``: for ``tracking``, ``<experiment artifact location>/checkpoints`` (so the checkpoints of a store and
experiment are kept with it); for an explicit URL, ``<url>/<store key>`` (a hash of tracking URI and experiment,
so two stores sharing one URL never read each other's checkpoints).
"""
from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import uuid
from pathlib import Path
from typing import Any

from suite.errors import UsageError

__all__ = ["CheckpointStore", "LocalStore", "FsspecStore", "MlflowArtifactStore", "open_checkpoint_store",
           "is_remote_uri", "store_key", "TRACKING"]

#: ``--checkpoint-uri tracking``: the tracking server's artifact store
TRACKING = "tracking"
_POINTER = "LATEST"


def is_remote_uri(uri: str | None) -> bool:
    """Whether ``--checkpoint-uri`` names a remote store (anything but a plain path)."""
    return bool(uri) and (uri == TRACKING or "://" in uri or uri.startswith("mlflow-artifacts:"))


class CheckpointStore:
    """Where a checkpoint is kept besides its local working file. ``remote`` stores are mirrored: ``fetch``
    before a resume, ``put`` after every write."""

    remote = False
    uri = ""

    def fetch(self, name: str, dest: Path) -> bool:
        """Copy the current checkpoint ``name`` to ``dest`` (atomically); False when the store has none."""
        raise NotImplementedError

    def put(self, src: Path) -> None:
        """Make the local file ``src`` the current checkpoint ``src.name`` of this store."""
        raise NotImplementedError

    def names(self) -> list[str]:
        """The checkpoints this store holds (file names)."""
        raise NotImplementedError


class LocalStore(CheckpointStore):
    """A local or shared folder: the working file is the checkpoint (nothing to copy)."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.uri = str(self.folder)

    def fetch(self, name: str, dest: Path) -> bool:
        return (self.folder / name).exists()

    def put(self, src: Path) -> None:
        pass

    def names(self) -> list[str]:
        return sorted(p.name for p in self.folder.glob("*.pt")) if self.folder.is_dir() else []


class _VersionedStore(CheckpointStore):
    """The object + pointer layout of the module docstring over three primitives (write, read, delete)."""

    remote = True

    def __init__(self) -> None:
        self._current: dict[str, str] = {}  # name -> object written or read last (deleted when superseded)
        self._pieces: dict[str, set[str]] = {}  # name -> pieces known to be in the store

    # primitives: paths are relative to the store's root, '/'-separated
    def _write(self, rel: str, local: Path) -> None:
        raise NotImplementedError

    def _read(self, rel: str, local: Path) -> bool:
        raise NotImplementedError

    def _delete(self, rel: str) -> None:
        raise NotImplementedError

    def _list(self) -> list[str]:
        raise NotImplementedError

    def _list_pieces(self, name: str) -> set[str]:
        raise NotImplementedError

    def fetch(self, name: str, dest: Path) -> bool:
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
            pointer = Path(tmp) / _POINTER
            for _ in range(3):  # the pointer may move between reading it and reading its object: read again
                if not self._read(f"{name}/{_POINTER}", pointer):
                    return False
                obj = pointer.read_text().strip()
                local = Path(tmp) / "object.pt"
                if obj and self._read(f"{name}/{obj}", local):
                    self._fetch_pieces(name, dest.parent / f"{name}.chunks")
                    os.replace(local, dest)
                    self._current[name] = obj
                    return True
        return False

    def _fetch_pieces(self, name: str, folder: Path) -> None:
        remote = self._list_pieces(name)
        self._pieces[name] = set(remote)
        missing = [p for p in remote if not (folder / p).exists()]
        if missing:
            folder.mkdir(parents=True, exist_ok=True)
        for piece in missing:
            part = folder / f"{piece}.part.tmp"
            if self._read(f"{name}/chunks/{piece}", part):
                os.replace(part, folder / piece)

    def put(self, src: Path) -> None:
        src = Path(src)
        name = src.name
        from suite.checkpoint import chunk_dir

        local_pieces = {p.name for p in chunk_dir(src).iterdir() if not p.name.endswith(".tmp")} \
            if chunk_dir(src).is_dir() else set()
        known = self._pieces.get(name)
        if known is None:
            known = self._pieces[name] = set(self._list_pieces(name))
        for piece in sorted(local_pieces - known):  # pieces first: the object that references them comes after
            self._write(f"{name}/chunks/{piece}", chunk_dir(src) / piece)
            known.add(piece)
        obj = f"{uuid.uuid4().hex[:16]}.pt"
        with tempfile.TemporaryDirectory(dir=src.parent) as tmp:
            staged = Path(tmp) / obj  # the object's own name (artifact repositories upload under the file's name)
            try:
                os.link(src, staged)  # no copy of a large checkpoint
            except OSError:
                shutil.copyfile(src, staged)
            self._write(f"{name}/{obj}", staged)
            pointer = Path(tmp) / _POINTER
            pointer.write_text(obj + "\n")
            self._write(f"{name}/{_POINTER}", pointer)
        old = self._current.get(name)
        self._current[name] = obj
        try:  # tidying only: an orphan object or piece costs space, not correctness
            if old and old != obj:
                self._delete(f"{name}/{old}")
            for piece in sorted(known - local_pieces):
                self._delete(f"{name}/chunks/{piece}")
                known.discard(piece)
        except Exception:
            pass

    def names(self) -> list[str]:
        return sorted(self._list())


class FsspecStore(_VersionedStore):
    """Any fsspec URL (``file://``, ``memory://``, ``s3://`` with its package installed, ...)."""

    def __init__(self, root: str, given: str | None = None) -> None:
        super().__init__()
        import fsspec

        try:
            self.fs, self.root = fsspec.core.url_to_fs(root)
        except (ValueError, ImportError) as exc:
            raise UsageError(f"--checkpoint-uri {given or root!r} is not valid ({str(exc).splitlines()[0]}); allowed: a "
                             "path, an fsspec URL (file://, memory://, s3://, ...), mlflow-artifacts:/... or "
                             f"{TRACKING!r}") from None
        self.uri = root

    def _path(self, rel: str) -> str:
        return f"{self.root.rstrip('/')}/{rel}"

    def _write(self, rel: str, local: Path) -> None:
        path = self._path(rel)
        self.fs.makedirs(path.rsplit("/", 1)[0], exist_ok=True)
        self.fs.put_file(str(local), path)

    def _read(self, rel: str, local: Path) -> bool:
        path = self._path(rel)
        if not self.fs.exists(path):
            return False
        try:
            self.fs.get_file(path, str(local))
        except FileNotFoundError:
            return False
        return True

    def _delete(self, rel: str) -> None:
        self.fs.rm(self._path(rel))

    def _list_pieces(self, name: str) -> set[str]:
        folder = self._path(f"{name}/chunks")
        if not self.fs.exists(folder):
            return set()
        return {p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(folder, detail=False)}

    def _list(self) -> list[str]:
        if not self.fs.exists(self.root):
            return []
        return [p.rstrip("/").rsplit("/", 1)[-1] for p in self.fs.ls(self.root, detail=False)
                if p.rstrip("/").endswith(".pt")]


class MlflowArtifactStore(_VersionedStore):
    """The artifact store of an MLflow tracking server, through the MLflow client's artifact repositories.

    ``root=None``: ``<artifact location of experiment>/checkpoints``, resolved when first needed (the experiment
    may not exist yet when a trial starts; then there is no checkpoint either)."""

    def __init__(self, tracking_uri: str, experiment: str, root: str | None = None) -> None:
        super().__init__()
        # MLflow draws a progress bar per download on stderr: one per piece would drown the progress lines
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        self.tracking_uri, self.experiment, self._root = tracking_uri, experiment, root
        self.uri = root or TRACKING
        self._repos: dict[str, Any] = {}

    def _base(self, create: bool) -> str | None:
        if self._root is None:
            from suite.tracking import _import_mlflow

            client = _import_mlflow().MlflowClient(self.tracking_uri)
            exp = client.get_experiment_by_name(self.experiment)
            if exp is None:
                if not create:
                    return None
                raise RuntimeError(f"experiment {self.experiment!r} does not exist in {self.tracking_uri}")
            self._root = exp.artifact_location.rstrip("/") + "/checkpoints"
        return self._root

    def _repo(self, folder: str) -> Any:
        if folder not in self._repos:
            from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

            self._repos[folder] = get_artifact_repository(f"{self._base(True)}/{folder}",
                                                          tracking_uri=self.tracking_uri)
        return self._repos[folder]

    def _write(self, rel: str, local: Path) -> None:
        folder, leaf = rel.rsplit("/", 1)
        assert local.name == leaf
        self._repo(folder).log_artifact(str(local))

    def _read(self, rel: str, local: Path) -> bool:
        if self._base(False) is None:
            return False
        folder, leaf = rel.rsplit("/", 1)
        repo = self._repo(folder)
        if leaf not in {Path(f.path).name for f in repo.list_artifacts()}:
            return False
        with tempfile.TemporaryDirectory(dir=local.parent) as tmp:
            got = repo.download_artifacts(leaf, dst_path=tmp)
            os.replace(got, local)
        return True

    def _delete(self, rel: str) -> None:
        folder, leaf = rel.rsplit("/", 1)
        self._repo(folder).delete_artifacts(leaf)

    def _list_pieces(self, name: str) -> set[str]:
        if self._base(False) is None:
            return set()
        return {Path(f.path).name for f in self._repo(name).list_artifacts("chunks") if not f.is_dir}

    def _list(self) -> list[str]:
        base = self._base(False)
        if base is None:
            return []
        from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

        repo = get_artifact_repository(base, tracking_uri=self.tracking_uri)
        return [Path(f.path).name for f in repo.list_artifacts() if f.is_dir and f.path.endswith(".pt")]


def store_key(tracking_uri: str, experiment: str) -> str:
    """A short, stable folder name for (tracking store, experiment): the checkpoints of other stores are kept
    under it (``checkpoints/other-stores/<key>``), and so are a shared URL's checkpoints (``<url>/<key>``)."""
    from suite.tracking import public_uri

    return hashlib.sha256(f"{public_uri(tracking_uri)}\n{experiment}".encode()).hexdigest()[:12]


def open_checkpoint_store(uri: str | None, *, tracking_uri: str, experiment: str,
                          checkpoint_dir: Path) -> CheckpointStore:
    """The store ``--checkpoint-uri`` names: ``None`` or a path: the local folder ``checkpoint_dir`` (or that
    path); ``tracking``: the tracking server's artifact store; ``mlflow-artifacts:...``: that location of the
    server's artifact store; any other URL: fsspec. Explicit URLs get a per-(store, experiment) subfolder."""
    if not is_remote_uri(uri):
        return LocalStore(Path(uri) if uri else checkpoint_dir)
    if uri == TRACKING:
        return MlflowArtifactStore(tracking_uri, experiment)
    sub = f"{uri.rstrip('/')}/{store_key(tracking_uri, experiment)}"
    if uri.startswith("mlflow-artifacts:"):
        return MlflowArtifactStore(tracking_uri, experiment, root=sub)
    return FsspecStore(sub, given=uri)
