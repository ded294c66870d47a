"""The lesson sets: the two small face sets every number of the course was measured on, rebuilt by anyone.

`dfdc-faces` (2,000 DFDC face crops, face swaps, Kaggle layout) and `ffhq-stylegan2` (600 FFHQ
photos and 200 StyleGAN2 faces, flat layout) were cut from public GitHub repositories at fixed
commits. `manifests/<name>.csv` (package data) lists every file of a set: `file` (its path in the
set), `repository`, `commit`, `source_path`, `source_git_blob` (the git blob id of the source:
sha1 of b"blob <size>\\0" + its bytes), `note` (dfdc-faces: the source video) and `sha256` (the
prepared file as in the sets the README measured, made with Pillow 12).

`download(names, to)` fetches each source file over HTTPS from its repository at the pinned commit,
checks its blob id, prepares it (`prepare_dfdc`, `prepare_ffhq`) and writes the set to `to/<name>`:

- verified sources are kept in `.cache/lesson-sets/<blob id>`, so a run that stops (offline, Ctrl-C)
  fetches only what is missing when it runs again;
- the set is written into a hidden folder beside the target and renamed into place only when every
  file is there, so there is never half a set; a target that exists is used when it is this lesson
  set, complete (`is_complete`), and refused otherwise;
- the set gets a provenance file, LESSON-SET.json: where it came from, its terms, a digest of its
  files, and whether they are byte-identical to the sets the README measured (`describe` reads it).

`identify(root)` and `source_groups(frame)` tell whether images are a lesson set, either from that
provenance file or, for a copy without one, from the files' sha256.

Command line: `deepfake-lessons download lesson-sets|dfdc-faces|ffhq-stylegan2 [--to DIR]` (helpers.acquire).
"""
from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import shutil
import threading
import uuid
from collections.abc import Callable, Collection, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pandas as pd
import PIL
import requests
from PIL import Image, ImageOps
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from helpers import config, files, progress
from helpers.errors import FolderExistsError, UserError

RAW_BASE_URL = "https://raw.githubusercontent.com"  # serves <repository>/<commit>/<path> of a public repository
PROVENANCE_FILE = "LESSON-SET.json"
CACHE_NAME = "lesson-sets"  # the verified sources, under config.CACHE_DIR
TIMEOUT_S = (10, 60)  # to connect, and between two reads of an answer
RETRIES = 3  # urllib3 retries a failed connection or a 429/5xx answer this often; a body cut short too
BACKOFF_S = 0.5  # urllib3 waits 0, 1, 2 s ... between retries
WORKERS = 8
JPEG_QUALITY = 90


class LessonSetDownloadError(UserError, RuntimeError):
    """A lesson set could not be built (offline, a source gone, changed or cut short): nothing half-written is left."""


# ----------------------------------------------------------------------------- preparing a source
def prepare_dfdc(source: bytes) -> bytes:
    """A DFDC crop as in the set: decoded, RGB, JPEG at quality 90 (the crops are already 224x224)."""
    with Image.open(io.BytesIO(source)) as image:
        return _jpeg(image.convert("RGB"))


FFHQ_KEEP = 0.88  # the fakes carry a watermark in the bottom 12% of their height: it is cut from every image
FFHQ_SIZE = 256


def prepare_ffhq(source: bytes) -> bytes:
    """An FFHQ or StyleGAN2 picture as in the set: upright, RGB, its bottom 12% cut away, the square that
    ends at the bottom of the rest (centred left to right), 256x256 Lanczos, JPEG at quality 90, optimized."""
    with Image.open(io.BytesIO(source)) as image:
        image = ImageOps.exif_transpose(image).convert("RGB")
    width, height = image.size
    kept = round(height * FFHQ_KEEP)
    side = min(width, kept)
    left = (width - side) // 2
    square = image.crop((left, kept - side, left + side, kept))
    return _jpeg(square.resize((FFHQ_SIZE, FFHQ_SIZE), Image.Resampling.LANCZOS), optimize=True)


def _jpeg(image: Image.Image, **options) -> bytes:
    out = io.BytesIO()
    image.save(out, format="JPEG", quality=JPEG_QUALITY, **options)
    return out.getvalue()


# ----------------------------------------------------------------------------- the two sets
@dataclass(frozen=True)
class LessonSet:
    name: str
    what: str  # one line: what the images are
    terms: str  # the data's terms, as the learner must read them before downloading
    prepare: Callable[[bytes], bytes]
    groups: str | None  # what the manifest's `note` groups the images by (None: every image stands alone)


SETS = {
    "dfdc-faces": LessonSet(
        "dfdc-faces", "2,000 face crops (224 px) from videos of the Deepfake Detection Challenge (DFDC): "
        "real faces and face swaps, in Train/Validation/Test",
        "DFDC data, for research and non-commercial use only (the DFDC data licence)",
        prepare_dfdc, groups="source video"),
    "ffhq-stylegan2": LessonSet(
        "ffhq-stylegan2", "600 photos from FFHQ (Flickr) and 200 StyleGAN2 faces (256 px), flat real/ + fake/",
        "FFHQ is CC BY-NC-SA 4.0 (NVIDIA; each photo also under its own Flickr licence), StyleGAN2 faces "
        "by NVIDIA: non-commercial use, with attribution to FFHQ and StyleGAN2",
        prepare_ffhq, groups=None),
}
NAMES = tuple(SETS)


def manifest(name: str) -> pd.DataFrame:
    """One row per file of the set (columns: see the module docstring), every value a string."""
    with resources.files("helpers").joinpath("manifests", f"{name}.csv").open(encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    return pd.DataFrame(rows, dtype=str)


def in_set(rows: pd.DataFrame) -> pd.Series:
    """Each row's path inside its set's folder (`file` without the set's name in front)."""
    return rows["file"].str.split("/", n=1).str[1]


def source_url(row, base_url: str = RAW_BASE_URL) -> str:
    return f"{base_url.rstrip('/')}/{row.repository}/{row.commit}/{row.source_path}"


def git_blob_id(data: bytes) -> str:
    """The id git gives these bytes as a file (what `git hash-object` prints)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def content_digest(pairs: Iterable[tuple[str, str]]) -> str:
    """One sha256 over (path in the set, the file's sha256) pairs, in path order."""
    digest = hashlib.sha256()
    for path, sha in sorted(pairs):
        digest.update(files.text_bytes(f"{path}\0{sha}\n"))
    return digest.hexdigest()


# ----------------------------------------------------------------------------- provenance
def read_provenance(root: str | os.PathLike) -> dict | None:
    """The provenance file a download wrote into `root`, or None when there is none (or it is not one)."""
    try:
        record = json.loads((Path(root) / PROVENANCE_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and record.get("lesson_set") in SETS else None


def is_complete(root: str | os.PathLike, name: str, files_wanted: Collection[str] | None = None) -> bool:
    """True when `root` holds the lesson set `name` as a download wrote it: its provenance file says so,
    it holds the files wanted (default: all), and their bytes are those the provenance file recorded."""
    record = read_provenance(root)
    rows = _rows(name, files_wanted)
    if record is None or record["lesson_set"] != name or record.get("files") != len(rows):
        return False
    try:
        found = [(path, files.sha256_of(Path(root) / path)) for path in in_set(rows)]
    except OSError:
        return False
    return content_digest(found) == record.get("content_sha256")


def identify(root: str | os.PathLike) -> str | None:
    """The name of the lesson set `root` holds whole, else None.

    Known by the provenance file a download writes, or, for a copy without one (a read-only shared
    folder), by content: every file of a set's manifest is there with the sha256 the manifest lists.
    """
    root = Path(root)
    record = read_provenance(root)
    if record is not None:
        return record["lesson_set"] if record.get("files") == record.get("of") else None
    for name in SETS:
        rows = manifest(name)
        if _same_content(root, in_set(rows), rows["sha256"]):
            return name
    return None


def describe(root: str | os.PathLike) -> str | None:
    """One line saying which lesson set `root` is and how it relates to the README's numbers, or None."""
    root = Path(root)
    record = read_provenance(root)
    if record is None:
        name = identify(root)
        return (f"the lesson set {name}: its files are those the README's numbers were measured on"
                if name else None)
    name, made = record["lesson_set"], record.get("files", 0)
    if made != record.get("of"):
        return f"part of the lesson set {name} ({made:,} of {record.get('of', 0):,} files): not comparable to the README"
    source = f"rebuilt from {record['repository']} at {record['commit'][:7]}"
    if record.get("identical_to_reference"):
        return f"the lesson set {name} ({source}): byte for byte the files the README's numbers were measured on"
    return (f"the lesson set {name} ({source} with Pillow {record.get('pillow')}): {record.get('differing_files')} "
            "of its files differ in their bytes from those the README measured, so its numbers may differ slightly")


def source_groups(frame: pd.DataFrame) -> pd.Series | None:
    """Each image's source group, for intervals that resample whole sources; None when none is known.

    `frame` has a `relpath` column (from the data root) and `attrs["root"]` (as `helpers.data`
    indexes it). For `dfdc-faces` the group is the source video (a real crop and the fake made from
    the same video share one), when the root is that lesson set: it holds the provenance file a
    download wrote, or the frame's files have the sha256 the manifest lists. None for
    `ffhq-stylegan2` (every photo and every generated face stands alone, so each image is its own
    group) and for any other data, the Kaggle set included: its faces come from videos too, but
    nothing in it says which video each one comes from, so no grouping is known.
    """
    root = Path(frame.attrs["root"])
    record = read_provenance(root)
    names = [record["lesson_set"]] if record is not None else list(SETS)
    for name in names:
        if SETS[name].groups is None:
            continue
        rows = manifest(name)
        rows.index = in_set(rows)
        if not frame["relpath"].isin(rows.index).all():
            continue
        if record is None and not _same_content(root, frame["relpath"], rows.loc[frame["relpath"], "sha256"]):
            continue
        notes = rows.loc[frame["relpath"], "note"].str.removeprefix(f"{SETS[name].groups} ")
        return pd.Series(notes.to_numpy(), index=frame.index, name="group")
    return None


def _same_content(root: Path, paths: Iterable[str], shas: Iterable[str]) -> bool:
    """True when every file `root/path` exists and has the sha256 listed."""
    for path, sha in zip(paths, shas):
        try:
            if files.sha256_of(root / path) != sha:
                return False
        except OSError:
            return False
    return True


# ----------------------------------------------------------------------------- downloading
def _rows(name: str, files_wanted: Collection[str] | None) -> pd.DataFrame:
    rows = manifest(name)
    if files_wanted is not None:
        rows = rows[rows["file"].isin(files_wanted)].reset_index(drop=True)
    return rows


def _session(workers: int) -> requests.Session:
    """A session that retries failed connections and 429/5xx answers, with one pooled connection per worker."""
    retry = Retry(total=RETRIES, backoff_factor=BACKOFF_S, status_forcelist=(429, 500, 502, 503, 504),
                  allowed_methods=("GET",), raise_on_status=False)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry, pool_connections=workers, pool_maxsize=workers)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session


def _deepest_reason(err: BaseException) -> str:
    """The innermost cause of a requests error, e.g. "Connection refused", "Name or service not known"."""
    seen = err
    while True:
        nested = getattr(seen, "reason", None)
        if not isinstance(nested, BaseException):
            nested = seen.__cause__ or seen.__context__
        if nested is None:
            break
        seen = nested
    return getattr(seen, "strerror", None) or str(seen) or type(seen).__name__


@dataclass
class _Fetcher:
    """Gets verified sources: from the cache when it holds them, else over HTTP (then into the cache)."""

    session: requests.Session
    base_url: str
    cache: Path
    name: str
    target: Path

    def cached(self, blob: str) -> bytes | None:
        try:
            data = (self.cache / blob).read_bytes()
        except OSError:
            return None
        return data if git_blob_id(data) == blob else None  # a damaged cached file is fetched again

    def source(self, row) -> tuple[bytes, bool]:
        """The verified bytes of the row's source, and whether they were fetched (False: from the cache)."""
        data = self.cached(row.source_git_blob)
        if data is not None:
            return data, False
        data = self._get(row)
        if git_blob_id(data) != row.source_git_blob:
            raise LessonSetDownloadError(
                f"the source of {row.file} has changed: {source_url(row, self.base_url)} now has git blob "
                f"{git_blob_id(data)}, the manifest lists {row.source_git_blob}, so {self.name} cannot be "
                f"rebuilt as the course measured it; nothing was written to {self.target}.")
        files.write_atomically(self.cache / row.source_git_blob, lambda temporary: Path(temporary).write_bytes(data))
        return data, True

    def _get(self, row) -> bytes:
        url = source_url(row, self.base_url)
        kept = f"nothing was written to {self.target}, and the sources already fetched are kept in {self.cache}"
        attempts = 0
        while True:
            attempts += 1
            try:
                response = self.session.get(url, timeout=TIMEOUT_S, stream=True)
            except requests.RequestException as err:  # urllib3 has retried the connection already
                raise LessonSetDownloadError(
                    f"cannot reach {self.base_url} ({_deepest_reason(err)}) to download {self.name}: check the "
                    f"internet connection and run the command again; {kept}.") from err
            with response:
                if response.status_code in (404, 410):
                    raise LessonSetDownloadError(
                        f"the source of {row.file} is gone: {url} answered {response.status_code} {response.reason} "
                        f"(the repository or its commit may have been removed); {kept}.")
                if response.status_code != 200:
                    raise LessonSetDownloadError(
                        f"{url} (the source of {row.file}) answered {response.status_code} {response.reason}: "
                        f"run the command again later; {kept}.")
                try:
                    return response.content  # urllib3 checks the length the server announced
                except requests.RequestException as err:
                    if attempts > RETRIES:
                        raise LessonSetDownloadError(
                            f"the download of {row.file} was cut short {attempts} times ({_deepest_reason(err)}): "
                            f"check the connection and run the command again; {kept}.") from err


def _build(name: str, rows: pd.DataFrame, target: Path, fetcher: _Fetcher, workers: int) -> tuple[dict, int]:
    """Write the prepared set into `target` (a new folder); return its provenance record and how many
    sources were fetched (the others came from the cache)."""
    lesson = SETS[name]
    paths = in_set(rows)

    stopping = threading.Event()  # set by the first failure (or Ctrl-C): the tasks not yet started do nothing

    def one(row, path: str) -> tuple[str, str, bool] | None:
        if stopping.is_set():
            return None
        try:
            data, fetched = fetcher.source(row)
            prepared = lesson.prepare(data)
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            (target / path).write_bytes(prepared)
        except BaseException:
            stopping.set()
            raise
        return path, hashlib.sha256(prepared).hexdigest(), fetched

    done, fetched = [], 0
    pool = ThreadPoolExecutor(max_workers=workers)
    try:
        futures = [pool.submit(one, row, path) for row, path in zip(rows.itertuples(index=False), paths)]
        with progress.bar(total=len(futures), desc=name, unit="file") as bar:
            for future in as_completed(futures):
                result = future.result()  # a task's error is raised here, so all are done after the loop
                if result is not None:
                    done.append(result[:2])
                    fetched += result[2]
                bar.update()
    finally:
        stopping.set()
        pool.shutdown(wait=True, cancel_futures=True)  # let the running ones end, start no more
    reference = dict(zip(paths, rows["sha256"]))
    differing = sum(sha != reference[path] for path, sha in done)
    first = rows.iloc[0]
    record = {
        "lesson_set": name, "what": lesson.what, "terms": lesson.terms,
        "repository": first.repository, "commit": first.commit,
        "source": f"https://github.com/{first.repository}/tree/{first.commit}",
        "manifest": f"helpers/manifests/{name}.csv",
        "files": len(done), "of": len(manifest(name)),
        "content_sha256": content_digest(done),
        "identical_to_reference": differing == 0, "differing_files": differing,
        "pillow": PIL.__version__,
    }
    return record, fetched


def terms_text(names: Iterable[str]) -> str:
    """What each set is, where it comes from and its terms: printed before a download starts."""
    lines = []
    for name in names:
        lesson, first = SETS[name], manifest(name).iloc[0]
        lines += [f"{name}: {lesson.what}.",
                  f"  source: https://github.com/{first.repository} at commit {first.commit}",
                  f"  terms: {lesson.terms}."]
    return "\n".join(lines)


def download(names: Iterable[str] = NAMES, to: str | os.PathLike | None = None, *, base_url: str = RAW_BASE_URL,
             cache: str | os.PathLike | None = None, files_wanted: Collection[str] | None = None,
             workers: int = WORKERS) -> list[Path]:
    """Build each lesson set named into `to/<name>` (default: data/); return their folders.

    A set already there whole is kept as it is; any other folder in the way is refused before anything
    is fetched. `files_wanted` (manifest `file` values) builds part of a set (for tests).
    """
    to = Path(to or config.DATA_DIR)
    cache = Path(cache or config.CACHE_DIR / CACHE_NAME)
    names = list(dict.fromkeys(names))
    for name in names:
        if name not in SETS:
            raise LessonSetDownloadError(f"there is no lesson set {name!r}: choose {' or '.join(NAMES)}.")
    targets, todo = [], []
    for name in names:
        target = to / name
        targets.append(target)
        if not target.exists():
            todo.append(name)
        elif is_complete(target, name, files_wanted):
            print(f"{name} is already in {target}, whole (its files checked).")
        else:
            raise FolderExistsError(f"{target} already exists and is not the lesson set {name} as a download "
                                    "writes it; move it away or choose another --to.")
    if not todo:
        return targets
    print(terms_text(todo))
    to.mkdir(parents=True, exist_ok=True)
    cache.mkdir(parents=True, exist_ok=True)
    with _session(workers) as session:
        for name in todo:
            target = to / name
            rows = _rows(name, files_wanted)
            staging = to / f".{name}-downloading-{uuid.uuid4().hex[:8]}"
            staging.mkdir()  # the usual permissions, unlike tempfile.mkdtemp's owner-only folder
            try:
                try:
                    record, fetched = _build(name, rows, staging, _Fetcher(session, base_url, cache, name, target),
                                             workers)
                except KeyboardInterrupt:  # helpers.cli prints this message on its one line
                    raise KeyboardInterrupt(f"nothing was written to {target}; the sources already fetched are kept "
                                            f"in {cache}, and the same command fetches only the rest.") from None
                files.write_json(staging / PROVENANCE_FILE, record)
                if target.exists():
                    raise FolderExistsError(f"{target} appeared while {name} was downloading; it was left as it is.")
                staging.rename(target)
            finally:
                if staging.exists():
                    shutil.rmtree(staging)
            print(f"{name}: {record['files']:,} files in {target} ({fetched:,} sources fetched, "
                  f"{record['files'] - fetched:,} from {cache}); {describe(target)}.")
    return targets
