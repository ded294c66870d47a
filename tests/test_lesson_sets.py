"""The lesson sets rebuilt from their sources, served by a local HTTP server in the shape of GitHub's raw files.

The server serves ../shared/data-sources/originals/<owner>+<name>/<path> at /<owner>/<name>/<commit>/<path>
(all of dfdc-faces' sources, 40 of ffhq-stylegan2's); the rebuilt files are compared with ../shared/data.
Without those folders (a fresh clone) the tests that need them skip with their reason.
"""
import dataclasses
import hashlib
import http.server
import io
import os
import subprocess
import sys
import threading
import time
import tomllib
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote

import numpy as np
import pandas as pd
import PIL
import pytest
from PIL import Image

from helpers import cli, config, data, lesson_sets
from helpers.errors import FolderExistsError
from tests.conftest import free_port

REFERENCE_PILLOW = 12  # the shared sets were written with Pillow 12: other versions may encode other bytes


@pytest.fixture(scope="session")
def sources(shared_data) -> Path:
    """../shared/data-sources: the manifests as published, and the source files of the shared sets."""
    folder = shared_data.parent / "data-sources"
    if not (folder / "originals").is_dir():
        pytest.skip(f"needs the lesson sets' sources in {folder} (beside the shared face sets)")
    return folder


@pytest.fixture(scope="session")
def originals(sources) -> Path:
    return sources / "originals"


class SourceServer(http.server.BaseHTTPRequestHandler):
    """GitHub's raw files, from a folder: GET /<owner>/<name>/<commit>/<path>. Counts requests; breaks on demand."""

    originals: Path
    commits: dict  # repository -> the one commit served
    requests: list  # source paths asked for, in order
    broken: dict  # source path -> "cut" (stops mid-file) | "404" | "changed" (other bytes)

    def do_GET(self):
        owner, name, commit, path = unquote(self.path).lstrip("/").split("/", 3)
        self.requests.append(path)
        source = self.originals / f"{owner}+{name}" / path
        how = self.broken.get(path)
        if how == "404" or self.commits.get(f"{owner}/{name}") != commit or not source.is_file():
            self.send_error(404)
            return
        body = source.read_bytes() + (b"\0" if how == "changed" else b"")
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body[: len(body) // 2] if how == "cut" else body)  # then HTTP/1.0 closes the connection

    def log_message(self, *args):
        pass


@contextmanager
def serving(originals: Path, broken: dict | None = None):
    """(base URL, the list of source paths requested) of a server running for the `with` block."""
    commits = {repository: commit for name in lesson_sets.NAMES
               for repository, commit in lesson_sets.manifest(name)[["repository", "commit"]].drop_duplicates().values}
    seen = []
    handler = type("Handler", (SourceServer,), dict(originals=originals, commits=commits, requests=seen,
                                                      broken=broken or {}))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


def tree_hashes(folder: Path) -> dict[str, str]:
    """{path: sha256} of every file below `folder` (hidden ones included)."""
    return {path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def pixels(data_bytes: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data_bytes)) as image:
        return np.asarray(image.convert("RGB"))


def compare_with_shared(rebuilt_root: Path, shared_data: Path, rows: pd.DataFrame) -> int:
    """Assert identical pixels for every file; return how many are also byte-identical."""
    identical = 0
    for file, path in zip(rows["file"], lesson_sets.in_set(rows)):
        mine, theirs = (rebuilt_root / path).read_bytes(), (shared_data / file).read_bytes()
        identical += mine == theirs
        if mine != theirs:
            np.testing.assert_array_equal(pixels(mine), pixels(theirs), err_msg=file)
    return identical


def one_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got {lines}"
    return lines[0]


# ----------------------------------------------------------------------------- manifests, without any server
def test_the_manifests_ship_with_the_package_and_list_every_file():
    for name, count in (("dfdc-faces", 2000), ("ffhq-stylegan2", 800)):
        rows = lesson_sets.manifest(name)
        assert len(rows) == count and rows["file"].is_unique and rows["source_git_blob"].str.len().eq(40).all()
        assert list(rows.columns) == ["file", "repository", "commit", "source_path", "source_git_blob", "note",
                                      "sha256"]
        assert rows["commit"].nunique() == 1 and (rows["file"].str.split("/").str[0] == name).all()
    notes = lesson_sets.manifest("dfdc-faces")["note"]
    assert notes.str.startswith("source video ").all() and notes.nunique() == 1000


def test_the_git_blob_id_is_gits():
    assert lesson_sets.git_blob_id(b"hello\n") == "ce013625030ba8dba906f756967f9e9ca394464a"  # git hash-object


def test_the_manifests_are_the_shared_ones_with_the_shared_files_sha256(shared_data, sources):
    for name in lesson_sets.NAMES:
        rows = lesson_sets.manifest(name)
        shared = pd.read_csv(sources / f"{name}.csv", dtype=str, keep_default_na=False)
        pd.testing.assert_frame_equal(rows.drop(columns="sha256"), shared)
        assert [hashlib.sha256((shared_data / file).read_bytes()).hexdigest() for file in rows["file"]] == \
            rows["sha256"].tolist()


# ----------------------------------------------------------------------------- dfdc-faces, rebuilt whole
@pytest.fixture(scope="module")
def rebuilt_dfdc(originals, tmp_path_factory):
    """dfdc-faces downloaded once from the local server: (data folder, cache, seconds, requests, printed)."""
    top = tmp_path_factory.mktemp("rebuilt")
    with serving(originals) as (url, seen):
        started = time.perf_counter()
        roots = lesson_sets.download(["dfdc-faces"], top / "data", base_url=url, cache=top / "cache")
        seconds = time.perf_counter() - started
    assert roots == [top / "data" / "dfdc-faces"]
    return top / "data", top / "cache", seconds, list(seen)


def test_dfdc_faces_is_rebuilt_exactly(rebuilt_dfdc, shared_data, capsys):
    folder, cache, seconds, seen = rebuilt_dfdc
    rows = lesson_sets.manifest("dfdc-faces")
    root = folder / "dfdc-faces"
    assert sorted(seen) == sorted(rows["source_path"])  # each source fetched once
    identical = compare_with_shared(root, shared_data, rows)  # every file: identical pixels
    record = lesson_sets.read_provenance(root)
    assert record["files"] == record["of"] == 2000 and record["differing_files"] == 2000 - identical
    if PIL.__version__.startswith(f"{REFERENCE_PILLOW}."):
        assert identical == 2000 and record["identical_to_reference"]
    assert sorted(p.name for p in folder.iterdir()) == ["dfdc-faces"]  # no staging folder left
    assert len(list(cache.iterdir())) == 2000
    assert len(data.index_dataset(root)) == 2000
    assert lesson_sets.identify(root) == "dfdc-faces" and lesson_sets.is_complete(root, "dfdc-faces")
    assert "byte for byte" in lesson_sets.describe(root) or identical < 2000
    with capsys.disabled():
        print(f"\n[lesson sets] dfdc-faces rebuilt from the local server in {seconds:.1f} s: 2,000 files, "
              f"{identical:,} byte-identical to the shared set (Pillow {PIL.__version__}), all pixel-identical")


def test_a_whole_set_already_there_is_kept_and_nothing_fetched(rebuilt_dfdc, originals, capsys):
    folder, cache, _, _ = rebuilt_dfdc
    before = tree_hashes(folder)
    with serving(originals) as (url, seen):
        assert lesson_sets.download(["dfdc-faces"], folder, base_url=url, cache=cache) == [folder / "dfdc-faces"]
    assert seen == [] and "already in" in capsys.readouterr().out
    assert tree_hashes(folder) == before


def test_the_source_videos_come_from_the_manifest(rebuilt_dfdc, dfdc):
    for root in (rebuilt_dfdc[0] / "dfdc-faces", dfdc):  # known by its provenance file; the shared copy by content
        frame = data.index_dataset(root)
        groups = lesson_sets.source_groups(frame)
        assert groups.index.equals(frame.index) and groups.nunique() == 1000
        number = frame["relpath"].str.extract(r"_(\d+)\.jpg$")[0]
        assert (groups.groupby(number).nunique() == 1).all(), "the real and the fake of one number share a video"
        assert groups.groupby(number).size().eq(2).all()
        one = frame.index[frame["relpath"] == "Train/Real/real_00000.jpg"][0]
        assert groups[one] == "tvdlpqwnzl.mp4"
        subset = data.subset(frame, config.get_profile("smoke"))  # a new index: groups follow the files
        by_file = dict(zip(frame["relpath"], groups))
        assert lesson_sets.source_groups(subset).tolist() == [by_file[path] for path in subset["relpath"]]


def test_only_a_lesson_set_gets_groups(dfdc, ffhq, flat_root, tmp_path):
    assert lesson_sets.identify(dfdc) == "dfdc-faces" and lesson_sets.identify(ffhq) == "ffhq-stylegan2"
    assert lesson_sets.describe(dfdc).startswith("the lesson set dfdc-faces: its files are those")
    assert lesson_sets.source_groups(data.index_dataset(ffhq)) is None  # every image stands alone
    assert lesson_sets.source_groups(data.index_dataset(flat_root)) is None and lesson_sets.identify(flat_root) is None
    copy = tmp_path / "dfdc-copy"
    for path in ("Train/Real/real_00000.jpg", "Train/Fake/fake_00000.jpg", "Test/Real/real_00999.jpg",
                 "Test/Fake/fake_00999.jpg", "Validation/Real/real_00750.jpg", "Validation/Fake/fake_00750.jpg"):
        (copy / path).parent.mkdir(parents=True, exist_ok=True)
        (copy / path).write_bytes((dfdc / path).read_bytes())
    frame = data.index_dataset(copy)
    assert lesson_sets.source_groups(frame).nunique() == 3  # the files are the set's: their videos are known
    assert lesson_sets.identify(copy) is None  # but not the whole set
    (copy / "Test/Real/real_00999.jpg").write_bytes((dfdc / "Test/Real/real_00998.jpg").read_bytes())
    assert lesson_sets.source_groups(frame) is None  # same names, other bytes: not the lesson set


# ----------------------------------------------------------------------------- ffhq-stylegan2: the 40 sources there are
def test_ffhq_stylegan2_files_are_rebuilt_exactly(originals, shared_data, tmp_path):
    rows = lesson_sets.manifest("ffhq-stylegan2")
    have = rows[[(originals / f"{r.repository.replace('/', '+')}" / r.source_path).is_file()
                 for r in rows.itertuples()]]
    assert len(have) == 40 and have["file"].str.contains("/real/").sum() == 20
    with serving(originals) as (url, seen):
        lesson_sets.download(["ffhq-stylegan2"], tmp_path / "data", base_url=url, cache=tmp_path / "cache",
                             files_wanted=set(have["file"]))
    root = tmp_path / "data" / "ffhq-stylegan2"
    assert len(seen) == 40
    identical = compare_with_shared(root, shared_data, have)
    if PIL.__version__.startswith(f"{REFERENCE_PILLOW}."):
        assert identical == 40
    assert lesson_sets.identify(root) is None  # 40 of 800 files: not the set the README measured
    assert lesson_sets.describe(root).startswith("part of the lesson set ffhq-stylegan2 (40 of 800 files)")
    assert lesson_sets.is_complete(root, "ffhq-stylegan2", set(have["file"]))
    assert not lesson_sets.is_complete(root, "ffhq-stylegan2")


# ----------------------------------------------------------------------------- failures: one line, nothing half-written
SOME = 24  # a few dfdc-faces files, for the failure tests


@pytest.fixture
def some_rows():
    return lesson_sets.manifest("dfdc-faces").head(SOME)


def download_some(rows, to, url, cache):
    return lesson_sets.download(["dfdc-faces"], to, base_url=url, cache=cache, files_wanted=set(rows["file"]), workers=4)


@pytest.mark.parametrize("how, says", [
    ("changed", r"the source of dfdc-faces/Train/Real/real_00005.jpg has changed: .* now has git blob"),
    ("404", r"the source of dfdc-faces/Train/Real/real_00005.jpg is gone: .* answered 404"),
    ("cut", r"the download of dfdc-faces/Train/Real/real_00005.jpg was cut short 4 times"),
])
def test_a_broken_source_is_one_line_and_leaves_no_half_set(how, says, originals, some_rows, tmp_path):
    broken = some_rows.iloc[10]  # Train/Real/real_00005.jpg
    with serving(originals, {broken.source_path: how}) as (url, seen):
        with pytest.raises(lesson_sets.LessonSetDownloadError, match=says) as caught:
            download_some(some_rows, tmp_path / "data", url, tmp_path / "cache")
    assert "\n" not in str(caught.value) and "nothing was written to" in str(caught.value)
    assert list((tmp_path / "data").iterdir()) == []  # no set, no staging folder
    assert not (tmp_path / "cache" / broken.source_git_blob).exists()  # only verified sources are kept
    assert seen.count(broken.source_path) == (4 if how == "cut" else 1)  # a cut is retried, the others not


def test_a_second_run_fetches_only_what_the_first_did_not_get(originals, some_rows, tmp_path):
    broken = some_rows.iloc[10]
    with serving(originals, {broken.source_path: "cut"}) as (url, first):
        with pytest.raises(lesson_sets.LessonSetDownloadError):
            download_some(some_rows, tmp_path / "data", url, tmp_path / "cache")
    cached = {path.name for path in (tmp_path / "cache").iterdir()}
    assert cached and broken.source_git_blob not in cached
    with serving(originals) as (url, second):
        download_some(some_rows, tmp_path / "data", url, tmp_path / "cache")
    missing = set(some_rows.loc[~some_rows["source_git_blob"].isin(cached), "source_path"])
    assert sorted(second) == sorted(missing) and broken.source_path in second
    assert lesson_sets.is_complete(tmp_path / "data" / "dfdc-faces", "dfdc-faces", set(some_rows["file"]))


def test_ctrl_c_keeps_what_was_fetched_and_the_next_run_finishes(originals, some_rows, tmp_path, monkeypatch):
    calls = []
    real = lesson_sets.SETS["dfdc-faces"]

    def interrupted(source):
        calls.append(1)
        if len(calls) == 8:
            raise KeyboardInterrupt
        return real.prepare(source)

    monkeypatch.setitem(lesson_sets.SETS, "dfdc-faces", dataclasses.replace(real, prepare=interrupted))
    with serving(originals) as (url, first):
        with pytest.raises(KeyboardInterrupt, match="nothing was written to .*the same command fetches only the rest"):
            download_some(some_rows, tmp_path / "data", url, tmp_path / "cache")
    assert list((tmp_path / "data").iterdir()) == [] and len(first) < SOME
    monkeypatch.setitem(lesson_sets.SETS, "dfdc-faces", real)
    with serving(originals) as (url, second):
        download_some(some_rows, tmp_path / "data", url, tmp_path / "cache")
    assert not set(first) & set(second) and len(first) + len(second) == SOME  # nothing fetched twice


def test_the_package_ships_the_manifests():
    declared = tomllib.loads((config.REPO_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "manifests/*.csv" in declared["helpers"]
    shipped = sorted(path.name for path in (Path(lesson_sets.__file__).parent / "manifests").glob("*.csv"))
    assert shipped == sorted(f"{name}.csv" for name in lesson_sets.NAMES)


def test_a_damaged_cached_source_is_fetched_again(originals, some_rows, tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    damaged = some_rows.iloc[3]
    (cache / damaged.source_git_blob).write_bytes(b"half a file")
    with serving(originals) as (url, seen):
        download_some(some_rows, tmp_path / "data", url, cache)
    assert len(seen) == SOME and lesson_sets.git_blob_id((cache / damaged.source_git_blob).read_bytes()) == \
        damaged.source_git_blob


def test_no_network_is_one_line(some_rows, tmp_path):
    nowhere = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(lesson_sets.LessonSetDownloadError, match=r"cannot reach .*Connection refused") as caught:
        download_some(some_rows, tmp_path / "data", nowhere, tmp_path / "cache")
    assert "\n" not in str(caught.value)
    assert list((tmp_path / "data").iterdir()) == []


def test_a_folder_in_the_way_is_refused_before_anything_is_fetched(originals, some_rows, tmp_path):
    (tmp_path / "data" / "dfdc-faces" / "Train").mkdir(parents=True)
    (tmp_path / "data" / "dfdc-faces" / "Train" / "mine.jpg").write_bytes(b"my own")
    with serving(originals) as (url, seen):
        with pytest.raises(FolderExistsError, match="is not the lesson set dfdc-faces"):
            download_some(some_rows, tmp_path / "data", url, tmp_path / "cache")
    assert seen == [] and (tmp_path / "data" / "dfdc-faces" / "Train" / "mine.jpg").read_bytes() == b"my own"


# ----------------------------------------------------------------------------- the command line, in a subprocess
def run_cli(*args, env_extra: dict) -> subprocess.CompletedProcess:
    env = {**os.environ, **env_extra}
    return subprocess.run([sys.executable, "-m", "helpers", "download", *args], capture_output=True, text=True,
                          timeout=300, env=env)


def test_the_command_downloads_then_refuses_what_it_did_not_make(originals, rebuilt_dfdc, shared_data, tmp_path):
    storage = tmp_path / "storage"
    with serving(originals) as (url, seen):
        env = {config.LESSON_SETS_URL_ENV: url, config.STORAGE_ENV: str(storage)}
        done = run_cli("dfdc-faces", env_extra=env)  # into data/ under the storage root, cache in its .cache
        assert done.returncode == 0, done.stderr
        assert "terms: DFDC data, for research and non-commercial use only" in done.stdout
        assert f"{config.DATA_ENV}={storage / 'data' / 'dfdc-faces'}" in done.stdout
        root = storage / "data" / "dfdc-faces"
        assert tree_hashes(root) == tree_hashes(rebuilt_dfdc[0] / "dfdc-faces")  # the same set, provenance included
        assert len(seen) == 2000

        again = run_cli("dfdc-faces", env_extra=env)
        assert again.returncode == 0 and "already in" in again.stdout and len(seen) == 2000

        taken = tmp_path / "taken"
        (taken / "ffhq-stylegan2" / "real").mkdir(parents=True)
        (taken / "ffhq-stylegan2" / "real" / "mine.jpg").write_bytes(b"my own photo")
        before = tree_hashes(taken)
        refused = run_cli("lesson-sets", "--to", str(taken), env_extra=env)
        assert refused.returncode == cli.USER_ERROR_STATUS and "Traceback" not in refused.stderr
        assert one_line(refused.stderr).startswith(f"error: {taken / 'ffhq-stylegan2'} already exists")
        assert tree_hashes(taken) == before and len(seen) == 2000  # refused before anything was fetched

    offline = run_cli("ffhq-stylegan2", "--to", str(tmp_path / "offline"),
                      env_extra={config.LESSON_SETS_URL_ENV: f"http://127.0.0.1:{free_port()}",
                                 config.STORAGE_ENV: str(storage)})
    assert offline.returncode == cli.USER_ERROR_STATUS
    errors = [line for line in offline.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "cannot reach" in errors[0] and offline.stderr.rstrip().endswith(errors[0])
    assert list((tmp_path / "offline").iterdir()) == []


def test_dest_is_for_the_kaggle_dataset_only(tmp_path, capsys):
    assert cli.main(["download", "lesson-sets", "--dest", str(tmp_path / "x")]) == cli.USER_ERROR_STATUS
    assert one_line(capsys.readouterr().err).startswith("error: --dest names the Kaggle dataset's folder")
    assert not (tmp_path / "x").exists()
