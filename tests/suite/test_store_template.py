"""New SQLite stores are copies of a migrated empty store built once per machine and MLflow version
(suite/tracking.py ``_copy_schema_template``): the same schema and rows MLflow's own migrations give."""
import sqlite3
from contextlib import closing

import mlflow

from suite.tracking import ensure_store, schema_template_dir


def _clauses(sql):
    """A CREATE statement as a set of its lines: MLflow's batch migrations write a table's constraints in set
    order, which differs between processes, so the text is compared clause by clause."""
    return frozenset(line.strip().rstrip(",").strip() for line in (sql or "").split("\n"))


def dump(db):
    with closing(sqlite3.connect(db)) as con:
        schema = sorted(((t, n, _clauses(sql)) for t, n, sql in
                         con.execute("SELECT type, name, sql FROM sqlite_master")), key=lambda x: (x[0], x[1]))
        version = con.execute("SELECT version_num FROM alembic_version").fetchall()
        experiments = con.execute("SELECT experiment_id, name, artifact_location, lifecycle_stage "
                                  "FROM experiments").fetchall()
    return schema, version, experiments


def test_store_from_template_equals_a_migrated_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TARGETBENCH_CACHE", str(tmp_path / "cache"))
    migrated = tmp_path / "migrated.db"
    mlflow.MlflowClient(f"sqlite:///{migrated}").search_experiments(max_results=1)

    first, second = tmp_path / "a" / "m.db", tmp_path / "b" / "m.db"
    ensure_store(f"sqlite:///{first}")  # builds the template, then copies it
    assert (schema_template_dir() / f"mlflow-{mlflow.__version__}-sqlite.db").exists()
    ensure_store(f"sqlite:///{second}")  # copies only
    assert dump(first) == dump(second) == dump(migrated)
    # and the copy is a working store
    client = mlflow.MlflowClient(f"sqlite:///{second}")
    run = client.create_run(client.create_experiment("e"))
    client.log_metric(run.info.run_id, "x", 1.0)
    assert client.get_run(run.info.run_id).data.metrics == {"x": 1.0}


def test_unwritable_cache_falls_back_to_migrations(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    monkeypatch.setenv("TARGETBENCH_CACHE", str(blocker / "cache"))
    db = tmp_path / "s" / "m.db"
    ensure_store(f"sqlite:///{db}")
    assert dump(db)[1]  # migrated: has an alembic version
    assert not (tmp_path / "s" / "m.db.init").exists()
