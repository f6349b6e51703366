"""dslc's DVC glue and `dslc reproduce` against a stand-in `dvc` (fakedvc.py) that records
the commands dslc runs (test_dvc_reads.py and the template's tests run the real thing)."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from conftest import age
from fakedvc import FakeDvc
from opens import watch

from dslc import _dvc as dvc
from dslc import _reproduce as reproduce
from dslc import cli


@pytest.fixture
def dvc_project(project: Path) -> Path:
    (project / ".dvc").mkdir()
    (project / "dvc.yaml").write_text(
        "stages:\n  features:\n    cmd: python -m demo.features\n"
        "    outs:\n      - data/processed/train.parquet\n"
        "    metrics:\n      - models/train.json:\n          cache: true\n",
        encoding="utf-8",
    )
    return project


@pytest.fixture
def fake(tmp_path: Path, monkeypatch) -> FakeDvc:
    return FakeDvc(tmp_path / "fake-dvc", monkeypatch)


def test_first_error_keeps_dvcs_message_on_one_line() -> None:
    output = (
        "WARNING: Some of the cache files do not exist\nmd5: 1234\n"
        "ERROR: failed to pull data from the cloud - Checkout failed for following targets:\n"
        "data/raw/b.csv\nIs your cache up to date?\n<https://error.dvc.org/missing-files>\n"
    )
    assert dvc._first_error(output) == (
        "failed to pull data from the cloud - Checkout failed for following targets:"
        " data/raw/b.csv Is your cache up to date?"
    )
    assert dvc._first_error("just this\n\n") == "just this"


def test_stage_outputs_are_left_to_dvc_repro(dvc_project: Path, fake) -> None:
    assert dvc.stage_outputs(dvc_project) == {"data/processed/train.parquet", "models/train.json"}
    dvc.track(dvc_project, dvc_project / "data/processed/train.parquet")
    dvc.track(dvc_project, dvc_project / "data/raw/iris.csv")
    assert fake.calls == [("add", "data/raw/iris.csv")]


def test_data_add_in_a_dvc_project_runs_dvc_add(dvc_project: Path, fake) -> None:
    age(dvc_project / "data/raw/iris.csv")
    assert cli.main(["data", "add", "iris", "raw/iris.csv", "--replace"]) == 0
    assert fake.calls == [("add", "data/raw/iris.csv")]


def test_a_failing_dvc_add_leaves_the_catalog_alone(dvc_project: Path, fake, capsys):
    fake.answers["add data/raw/iris.csv"] = "FAIL:no space"
    before = (dvc_project / "data/catalog.yml").read_text()
    assert cli.main(["data", "add", "iris", "raw/iris.csv", "--replace"]) == 1
    errors = capsys.readouterr().err.splitlines()
    assert errors[-1] == "dslc: error: dvc add data/raw/iris.csv failed: no space"
    assert (dvc_project / "data/catalog.yml").read_text() == before


def test_data_add_outside_dvc_runs_no_dvc(project: Path, fake) -> None:
    assert cli.main(["data", "add", "iris", "raw/iris.csv", "--replace"]) == 0
    assert fake.calls == []


def _remote(fake: FakeDvc, url: str) -> FakeDvc:
    return fake.reset({"config --list": f"core.remote=storage\nremote.storage.url={url}\n"})


def test_the_remote_is_read_from_every_config_level_in_one_dvc_start(dvc_project, fake):
    listed = (
        "remote.storage.url=/team/share\ncore.analytics=false\ncore.remote=storage\n"
        "remote.storage.url=/mnt/mine\n"  # config.local, listed last, wins
    )
    fake.reset({"config --list": listed})
    assert dvc.remote(dvc_project) == dvc.Remote("storage", "/mnt/mine", Path("/mnt/mine"))
    assert fake.calls == [("config", "--list")]
    for listed, error in (
        ("core.analytics=false\n", "no DVC remote is set"),
        ("core.remote=storage\n", "no DVC remote is set"),
    ):
        fake.reset({"config --list": listed})
        with pytest.raises(dvc.DvcError, match=error):
            dvc.remote(dvc_project)


def test_pull_from_a_remote_folder_that_does_not_exist_is_one_line(dvc_project, fake):
    _remote(fake, "../../nowhere")
    with pytest.raises(dvc.DvcError, match=r"is /.*/nowhere, a folder that does not exist"):
        dvc.pull(dvc_project)


def test_pull_of_data_the_remote_lacks_changes_nothing(dvc_project, tmp_path, fake):
    _remote(fake, str(tmp_path))
    fake.answers["status --cloud --json"] = json.dumps(
        {"data/raw/b.csv": "missing", "data/raw/a.csv": "deleted"}
    )
    with pytest.raises(dvc.DvcError, match=r"lacks data this commit records: data/raw/b.csv;"):
        dvc.pull(dvc_project)
    assert ("fetch",) not in fake.calls and ("checkout",) not in fake.calls


def test_pull_refuses_a_corrupted_cache_file(dvc_project, tmp_path, fake):
    good = b"a,b\n1,2\n"
    md5 = hashlib.md5(good).hexdigest()
    (dvc_project / "data/raw/new.csv.dvc").write_text(f"outs:\n- md5: {md5}\n  path: new.csv\n")
    cached = dvc.cache_file(dvc_project, md5)
    cached.parent.mkdir(parents=True)
    cached.write_bytes(b"a,b\n1,3\n")
    _remote(fake, str(tmp_path))
    with pytest.raises(dvc.DvcError, match=r"for data/raw/new.csv is corrupted"):
        dvc.pull(dvc_project)
    assert ("checkout",) not in fake.calls

    cached.write_bytes(good)
    assert dvc.pull(dvc_project) == "1 output(s) restored, 0 already in place"
    # By path: a stage of dvc.yaml that never ran has no version to check out.
    assert fake.calls[-1] == ("checkout", "data/raw/new.csv")


def test_a_damaged_object_fetched_from_the_remote_is_the_remotes_to_mend(
    dvc_project, tmp_path, fake, monkeypatch
):
    """Deleting the cache file and pulling again would fetch the same bad copy: the error
    names the remote's object instead, and the bad copy does not stay in the cache."""
    md5 = hashlib.md5(b"good").hexdigest()
    (dvc_project / "data/raw/new.csv.dvc").write_text(f"outs:\n- md5: {md5}\n  path: new.csv\n")
    cached = dvc.cache_file(dvc_project, md5)
    _remote(fake, str(tmp_path))
    real_run = dvc.run

    def fetch_bad_copy(root, *args, what=None):
        if args[:1] == ("fetch",):
            cached.parent.mkdir(parents=True, exist_ok=True)
            cached.write_bytes(b"damaged")
        return real_run(root, *args, what=what)

    monkeypatch.setattr(dvc, "run", fetch_bad_copy)
    said = rf"damaged copy of data/raw/new.csv \(its files/md5/{md5[:2]}/{md5[2:]} does not.*push"
    with pytest.raises(dvc.DvcError, match=said):
        dvc.pull(dvc_project)
    assert not cached.exists() and not (dvc_project / "data/raw/new.csv").exists()


def test_partial_files_of_a_killed_dvc_are_swept_unless_dvc_runs(dvc_project: Path) -> None:
    """dslc recognises DVC's partial files by their name, which DVC does not document:
    the names here are made by DVC's own function, so a change upstream fails this test."""
    import fcntl

    from dvc_objects.fs.utils import tmp_fname  # private to DVC: the name dslc relies on

    processed = dvc_project / "data/processed"
    partial = [Path(tmp_fname(str(processed / "train.parquet"))) for _ in range(2)]
    in_cache = Path(tmp_fname(str(dvc.cache_file(dvc_project, "ab" * 16))))  # DVC's own
    kept = [processed / "notes.tmp", processed / "x.csv", in_cache]
    for file in partial + kept:
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text("x")
    (dvc_project / ".dvc/tmp").mkdir()
    with (dvc_project / ".dvc/tmp/lock").open("a") as lock:  # DVC running: left alone
        fcntl.flock(lock, fcntl.LOCK_EX)
        assert dvc.sweep(dvc_project) == 0
    assert dvc.sweep(dvc_project) == 2, "DVC names its partial files otherwise now"
    assert [f.exists() for f in partial + kept] == [False, False, True, True, True]


def test_an_interrupted_pull_leaves_no_partial_file(dvc_project, tmp_path, fake, monkeypatch):
    _remote(fake, str(tmp_path))
    partial = dvc_project / "data/processed/train.parquet.0123456789abcdefABCD_-.tmp"
    real_run = dvc.run

    def killed_checkout(root, *args, what=None):
        if args[:1] == ("fetch",):
            partial.write_bytes(b"half a file")  # what DVC leaves when it is killed
            raise KeyboardInterrupt
        return real_run(root, *args, what=what)

    monkeypatch.setattr(dvc, "run", killed_checkout)
    with pytest.raises(KeyboardInterrupt):
        dvc.pull(dvc_project)
    assert not partial.exists()


def test_an_interrupted_dvc_command_is_stopped(dvc_project: Path, fake, monkeypatch) -> None:
    """Ctrl-C or SIGTERM (cli turns it into the same) stops DVC too, not only dslc."""
    started: list[subprocess.Popen] = []
    popen = subprocess.Popen

    class Interrupted(popen):  # type: ignore[misc,valid-type]
        def __init__(self, *args, **kwargs) -> None:
            super().__init__([sys.executable, "-c", "import time; time.sleep(60)"], **{
                k: v for k, v in kwargs.items() if k != "cwd"})  # fmt: skip
            started.append(self)

        def communicate(self, *args, **kwargs):
            raise KeyboardInterrupt

    monkeypatch.setattr(subprocess, "Popen", Interrupted)
    with pytest.raises(KeyboardInterrupt):
        dvc.run(dvc_project, "fetch")
    assert started[0].poll() is not None


STATUS = "data status --json --granular data/raw/iris.csv"


def test_file_md5_is_the_pointers_while_dvc_says_the_file_matches(dvc_project, fake, request):
    file = dvc_project / "data/raw/iris.csv"
    age(file)
    pointer = file.with_name("iris.csv.dvc")
    pointer.write_text("outs:\n- md5: " + "a" * 32 + "\n  path: iris.csv\n")
    fake.answers[STATUS] = "{}"
    reads = watch(request, file)
    assert dvc.file_md5(dvc_project, file) == "a" * 32
    assert dvc.file_md5(dvc_project, file) == "a" * 32  # DVC's answer kept for this stamp
    assert fake.calls == [tuple(STATUS.split())]

    pointer.write_text("outs:\n- md5: " + "b" * 32 + "\n  path: iris.csv\n")  # git checkout
    fake.answers[STATUS] = json.dumps({"uncommitted": {"modified": ["data/raw/iris.csv"]}})
    assert dvc.file_md5(dvc_project, file) is None  # the file is not what the pointer says
    assert len(fake.calls) == 2
    pointer.unlink()
    assert dvc.file_md5(dvc_project, file) is None  # not versioned: DVC is not asked
    assert len(fake.calls) == 2
    assert reads == []  # nothing was read to hash


def test_file_md5_of_a_file_in_a_tracked_folder_comes_from_its_manifest(dvc_project, fake, request):
    folder = dvc_project / "data/raw/images"
    folder.mkdir()
    (folder / "0.bin").write_bytes(b"0")
    manifest = [{"md5": "c" * 32, "relpath": "0.bin"}]
    (dvc_project / "data/raw/images.dvc").write_text(
        "outs:\n- md5: " + "d" * 32 + ".dir\n  path: images\n"
    )
    cached = dvc.cache_file(dvc_project, "d" * 32 + ".dir")
    cached.parent.mkdir(parents=True)
    cached.write_text(json.dumps(manifest))
    reads = watch(request, folder)
    assert dvc.file_md5(dvc_project, folder / "0.bin") == "c" * 32
    assert reads == []


def test_file_md5_is_none_when_dvc_cannot_answer(dvc_project, fake, caplog) -> None:
    file = dvc_project / "data/raw/iris.csv"
    file.with_name("iris.csv.dvc").write_text("outs:\n- md5: " + "a" * 32 + "\n  path: iris.csv\n")
    fake.answers[STATUS] = "FAIL:broken"
    assert dvc.file_md5(dvc_project, file) is None
    assert "could not ask DVC whether data/raw/iris.csv" in caplog.text


CLEAN = {
    "mlflow.source.git.commit": "abc1234567" * 4,
    "dslc.git.dirty": "false",
    "dslc.entry_point": "python -m demo.train",
    "dslc.dvc.md5.data/processed/train.parquet": "0" * 32,
}


def test_plan_reads_commit_command_and_data_versions() -> None:
    commit, command, versions = reproduce.plan(CLEAN, "r1")
    assert commit == CLEAN["mlflow.source.git.commit"] and command == "python -m demo.train"
    assert versions == {"data/processed/train.parquet": "0" * 32}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"dslc.git.dirty": "true"}, "the run did not record"),
        ({"dslc.git.dirty": None}, "the run did not record"),
        ({"mlflow.source.git.commit": None}, "no git commit"),
        ({"dslc.entry_point": None}, "no command"),
        # Tags from a shared store that a teammate (or anyone with write access) can set:
        ({"mlflow.source.git.commit": "--orphan=x"}, "not a git commit id"),
        ({"mlflow.source.git.commit": "-b"}, "not a git commit id"),
        ({"mlflow.source.git.commit": "HEAD~1"}, "not a git commit id"),
        ({"mlflow.source.git.commit": "ABC" + "0" * 37}, "not a git commit id"),
        ({"dslc.entry_point": 'bash -c "touch /tmp/owned"'}, "runs only a module"),
        ({"dslc.entry_point": "python -m demo.train; rm -rf ~"}, "runs only a module"),
        ({"dslc.entry_point": "python -c 'import os'"}, "runs only a module"),
        ({"dslc.dvc.md5./abs/path/src/demo/predict.py": "0" * 32}, "names no file"),
        ({"dslc.dvc.md5.data/../../outside.csv": "0" * 32}, "names no file"),
        ({"dslc.dvc.md5.data/raw/iris.csv": "../../x"}, "names no file"),
    ],
)
def test_plan_refuses_in_one_line(change: dict, reason: str) -> None:
    tags = {k: v for k, v in {**CLEAN, **change}.items() if v is not None}
    with pytest.raises(reproduce.ReproduceError, match=reason) as caught:
        reproduce.plan(tags, "r1")
    assert "\n" not in str(caught.value)


def test_a_dirty_run_is_reproducible_when_it_recorded_its_changes() -> None:
    tags = {**CLEAN, "dslc.git.dirty": "true", "dslc.git.changes": '["src/demo/train.py"]'}
    with pytest.raises(reproduce.ReproduceError, match="uncommitted code"):
        reproduce.plan(tags, "r1")
    tags["dslc.git.patch"] = "dslc/changes.patch"  # recorded: reproducible
    assert reproduce.plan(tags, "r1")[1] == "python -m demo.train"


def test_recorded_changes_apply_only_when_asked(
    project: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from tracking_support import git, make_repo

    from dslc._gitinfo import changes_patch

    make_repo(project)
    (project / ".git/info/exclude").write_text("data/raw/\n")  # data is DVC's
    git(project, "add", "-f", "data/catalog.yml")
    git(project, "commit", "-qm", "catalog")
    clean = tmp_path / "clean"
    git(project, "worktree", "add", "--detach", "--quiet", str(clean), "HEAD")
    patch = tmp_path / "changes.patch"

    (project / "data/catalog.yml").write_text("datasets: {}\n")  # bookkeeping only
    patch.write_bytes(changes_patch(project))
    reproduce.apply_changes(clean, patch, "r1", allowed=False)  # nothing to apply
    assert git(clean, "status", "--porcelain") == ""

    (project / "src").mkdir(exist_ok=True)
    (project / "src/new.py").write_text("print('new')\n")  # untracked: recorded too
    with (project / "src/big.bin").open("wb") as big:  # untracked data: left out
        big.truncate((10 << 20) + 1)
    (project / "src/big.link").symlink_to("big.bin")  # a link is recorded as a link
    (project / "pyproject.toml").write_text("[tool.dslc]\n# changed\n")
    patch.write_bytes(changes_patch(project / "src"))  # from any folder of the repository
    with pytest.raises(reproduce.ReproduceError, match="--apply-changes") as refused:
        reproduce.apply_changes(clean, patch, "r1", allowed=False)
    assert "src/new.py" in str(refused.value) and "pyproject.toml" in str(refused.value)
    assert "big.bin" not in str(refused.value) and b"b/src/big.bin" not in patch.read_bytes()
    assert b"new file mode 120000" in patch.read_bytes() and "src/big.link" in str(refused.value)
    assert "src/big.bin (untracked, 10 MiB) is not in the run's recorded" in caplog.text
    assert git(clean, "status", "--porcelain") == ""
    reproduce.apply_changes(clean, patch, "r1", allowed=True)
    assert (clean / "src/new.py").read_text() == "print('new')\n"
    assert (clean / "data/catalog.yml").read_text() == "datasets: {}\n"

    # A hand-made patch from the store that reaches outside the worktree is refused by git.
    outside = "--- /dev/null\n+++ b/../outside.txt\n@@ -0,0 +1 @@\n+x\n"
    patch.write_text(
        "diff --git a/../outside.txt b/../outside.txt\nnew file mode 100644\n" + outside
    )
    with pytest.raises(reproduce.ReproduceError):
        reproduce.apply_changes(clean, patch, "r1", allowed=True)
    assert not (tmp_path / "outside.txt").exists()


def test_compare_within_tolerance() -> None:
    recorded = {"acc": 0.9, "zero": 0.0}
    lines, same = reproduce.compare(recorded, {"acc": 0.9 + 1e-9, "zero": 0.0}, 1e-6)
    assert same and lines[0].split() == ["METRIC", "RECORDED", "NEW", "MATCH"]
    _, same = reproduce.compare({"acc": 0.9}, {"acc": 0.91}, 1e-6)
    assert not same
    lines, same = reproduce.compare({"acc": 0.9}, {}, 1e-6)
    assert not same and lines[1].split() == ["acc", "0.9", "-", "NO"]


@pytest.mark.parametrize(
    ("run_id", "says"),
    [
        ("zz", "is not a run id"),
        ("abc", "is not a run id"),  # too short to name one run
        ("../../etc", "is not a run id"),
        ("a" * 33, "is not a run id"),
        ("abcdef", "no run with id 'abcdef'"),
    ],
)
def test_reproduce_takes_only_a_run_id_or_its_prefix(tproj: Path, capsys, run_id, says) -> None:
    (tproj / ".dvc").mkdir()
    assert cli.main(["reproduce", run_id]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and says in err, err


def test_reproduce_outside_dvc_is_one_line(project: Path, capsys) -> None:
    assert cli.main(["reproduce", "abc"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "data_versioning=none" in err


def test_data_add_runs_dvc_add_before_it_fingerprints(dvc_project, fake, request) -> None:
    """dvc add puts a copy of its cache object in place: dslc fingerprints that copy."""
    reads = watch(request, dvc_project / "data/raw/iris.csv")
    assert cli.main(["data", "add", "iris", "raw/iris.csv", "--replace"]) == 0
    [(added, args)] = fake.log()
    assert args == ("add", "data/raw/iris.csv")
    assert len(reads) == 1 and added < reads[0][1]


PATHS = ("processed/train.parquet", "interim/plain.csv")


def test_a_stage_output_is_fingerprinted_at_its_first_read_not_at_save(dvc_project, request):
    """DVC rewrites a stage's outputs when the stage ends: reading one at save is wasted."""
    import pandas as pd
    import yaml

    from dslc import data

    catalog = dvc_project / "data/catalog.yml"
    catalog.write_text(
        catalog.read_text()
        + "  train:\n    location: processed/train.parquet\n"
        + f"    fingerprint: sha256:{'0' * 64}\n"
    )
    reads = watch(request, *(dvc_project / "data" / p for p in PATHS))
    data.save(pd.DataFrame({"a": [1, 2]}), "train")
    assert reads == []
    recorded = yaml.safe_load(catalog.read_text())["datasets"]["train"]
    assert "fingerprint" not in recorded  # cleared: the old content is gone
    fp = data.fingerprint("train")  # the next step's read records it
    assert len(reads) == 1
    assert yaml.safe_load(catalog.read_text())["datasets"]["train"]["fingerprint"] == fp
    data.save(pd.DataFrame({"a": [3]}), "interim/plain.csv")  # no catalog entry: nothing
    assert len(reads) == 1


def test_saving_a_file_dvc_tracks_updates_its_pointer(dvc_project: Path, fake) -> None:
    import pandas as pd

    from dslc import data

    frame = pd.DataFrame({"a": [1, 2]})
    data.save(frame, "interim/plain.csv")
    assert fake.calls == []  # not under DVC: nothing to update
    (dvc_project / "data/interim/plain.csv.dvc").write_text("outs:\n- md5: 0\n  path: plain.csv\n")
    data.save(frame, "interim/plain.csv")
    assert fake.calls == [("add", "data/interim/plain.csv")]


def test_a_worktree_left_by_a_killed_reproduce_is_removed(project: Path) -> None:
    from tracking_support import git, make_repo

    make_repo(project)
    gone = subprocess.Popen(["true"])
    gone.wait()  # its process id now names no process, as a reproduce killed with -9
    stale = Path(tempfile.gettempdir()) / f"dslc-reproduce-{gone.pid}-left" / "project"
    git(project, "worktree", "add", "--detach", "--quiet", str(stale), "HEAD")
    commit = git(project, "rev-parse", "HEAD")
    with reproduce.worktree(project, commit) as tree:
        listed = git(project, "worktree", "list")
        assert str(stale) not in listed and not stale.parent.exists(), listed
        assert str(tree) in listed
    assert git(project, "worktree", "list").count("\n") == 0, "only the project's own"


def test_sigterm_stops_dslc_and_the_dvc_it_runs(dvc_project: Path, tmp_path: Path) -> None:
    import os
    import signal
    import time

    fake = tmp_path / "slow-dvc"
    (fake / "dvc").mkdir(parents=True)
    (fake / "dvc/__init__.py").write_text("")
    pid_file = tmp_path / "dvc.pid"
    (fake / "dvc/__main__.py").write_text(
        f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))\ntime.sleep(60)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(fake), "DSLC_PROJECT_ROOT": str(dvc_project)}
    dslc = subprocess.Popen([sys.executable, "-m", "dslc.cli", "data", "pull"], env=env,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline, "DVC never started"
        time.sleep(0.05)
    dslc.send_signal(signal.SIGTERM)
    assert dslc.wait(10) == 130 and "interrupted" in dslc.stderr.read()
    child = int(pid_file.read_text())
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left running
        os.kill(child, 0)


def test_a_stage_script_runs_only_as_dvcs_stage(dvc_project: Path, monkeypatch) -> None:
    from dslc import data

    monkeypatch.delenv("DVC_STAGE", raising=False)
    with pytest.raises(SystemExit) as stopped:
        data.require_stage("train")
    message = str(stopped.value.code)
    assert message.startswith("error: train writes outputs that dvc.lock records")
    assert "`make train` (dvc repro train)" in message and "\n" not in message
    monkeypatch.setenv("DVC_STAGE", "train")  # what DVC sets for a stage's command
    data.require_stage("train")


def test_a_stage_script_runs_directly_without_dvc(project: Path, monkeypatch) -> None:
    from dslc import data

    monkeypatch.delenv("DVC_STAGE", raising=False)
    data.require_stage("train")
