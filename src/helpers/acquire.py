"""Getting the data: download the Kaggle dataset or the lesson sets, or import a zip or folder you already have.

The Kaggle dataset is public: kagglehub downloads it without an account, and a Kaggle API token is
asked for only when Kaggle refuses (its words are quoted). The lesson sets are rebuilt from GitHub
by `helpers.lesson_sets`. Neither download nor import loses anything: they write into a temporary
folder beside the target and rename it into place only when everything went well, and they never
overwrite an existing folder. An import refuses symbolic links (in a zip or a folder alike), paths
that leave the target, and zip bombs.

Command line: `deepfake-lessons download [kaggle|lesson-sets|dfdc-faces|ffhq-stylegan2] [--to DIR]`
and `deepfake-lessons import SOURCE [--dest DIR]` (or `python -m helpers download|import`).
"""
from __future__ import annotations

import argparse
import os
import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path


from helpers import arguments, config, lesson_sets, progress
from helpers.data import DatasetLayoutError, find_layout
from helpers.errors import BadArgumentError, FolderExistsError, UserError

KAGGLE_HANDLE = "manjilkarki/deepfake-and-real-images"
KAGGLE_NAME = "deepfake-and-real-images"
KAGGLE_URL = f"https://www.kaggle.com/datasets/{KAGGLE_HANDLE}"
DOWNLOADS = ("kaggle", "lesson-sets", *lesson_sets.NAMES)  # what `download` fetches
MAX_UNPACKED_GB = 20.0  # the Kaggle dataset unpacks to about 1.7 GB
MAX_FILES = 500_000  # entries in an archive; the Kaggle dataset holds 190,335 files
# A zip bomb guard: JPEG and PNG faces barely compress (about 1:1), so a member, or the whole archive,
# that unpacks to more than 100 times its compressed size is refused, once it is big enough to matter
# (8 MiB unpacked): many small members cannot add up to a bomb either.
MAX_COMPRESSION_RATIO = 100
RATIO_CHECK_BYTES = 8 * 2**20


class ImportRefusedError(UserError, ValueError):
    """An archive or folder refused before anything is in place: it is missing, unsafe, too big or damaged."""


class DownloadError(UserError, RuntimeError):
    """The Kaggle download failed (no internet, or Kaggle said no): the message says what to do."""


IMPORT_HINT = f"or download the zip from {KAGGLE_URL} in a browser and run `deepfake-lessons import PATH/TO/archive.zip`"


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _kaggle_refused(err: Exception) -> bool:
    """True when Kaggle said no (not signed in, or 401/403), rather than the network or anything else failing."""
    from kagglehub import exceptions

    if isinstance(err, (exceptions.UnauthenticatedError, exceptions.CredentialError)):
        return True
    return getattr(getattr(err, "response", None), "status_code", None) in (401, 403)


def _kaggle_token_found() -> bool:
    """True when kagglehub finds a Kaggle token (a file, environment variables, or Colab's secrets)."""
    from kagglehub.config import get_kaggle_credentials

    try:
        return get_kaggle_credentials() is not None
    except ValueError:  # a kaggle.json that does not parse is a token that cannot work
        return True


def download_kaggle(dest: str | os.PathLike) -> Path:
    """Fetch the Kaggle "Deepfake and real images" dataset (~190,000 images) into `dest`; return where it is.

    No account is needed: Kaggle serves public datasets to anyone, and kagglehub uses a token only when
    it finds one. Only when Kaggle refuses does the error ask for a token, quoting Kaggle's words. On
    Colab, kagglehub may mount the dataset from Colab's own cache instead, and return that folder.
    """
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        return dest
    try:
        import kagglehub

        return Path(kagglehub.dataset_download(KAGGLE_HANDLE, output_dir=str(dest)))
    except Exception as err:  # kagglehub raises network, auth and HTTP errors of many types
        said = f"{type(err).__name__}: {_one_line(err)}"
        if not _kaggle_refused(err):
            raise DownloadError(
                f"Could not download {KAGGLE_HANDLE} from Kaggle ({said}): check the internet connection and run "
                f"this again, {IMPORT_HINT}; with no internet at all, `deepfake-lessons standin data/stand-in` "
                "makes a small stand-in set.") from err
        if _kaggle_token_found():
            raise DownloadError(
                f"Kaggle refused the download of {KAGGLE_HANDLE} with the Kaggle token kagglehub found "
                f"(Kaggle said: \"{said}\"): check that token (kaggle.com > Settings > API), {IMPORT_HINT}.") from err
        raise DownloadError(
            f"Kaggle refused the download of {KAGGLE_HANDLE} without an account (Kaggle said: \"{said}\"): create "
            f"an API token (kaggle.com > Settings > API), put it in ~/.kaggle/kaggle.json or set "
            f"{' and '.join(config.KAGGLE_ENV)} (on Colab: in the Secrets panel), then run this again; "
            f"{IMPORT_HINT}.") from err


def _too_compressed(unpacked: int, packed: int) -> bool:
    return unpacked > max(RATIO_CHECK_BYTES, MAX_COMPRESSION_RATIO * packed)


def _safe_members(archive: zipfile.ZipFile, target: Path, max_bytes: int,
                  max_files: int = MAX_FILES) -> list[zipfile.ZipInfo]:
    """Check every member before unpacking anything: no path traversal, no links, no zip bomb.

    A bomb is refused by each member's size and compression, by the whole archive's, and by its count of
    entries. Members are checked by the sizes their headers declare; zipfile never unpacks more than that.
    """
    members = archive.infolist()
    if len(members) > max_files:
        raise ImportRefusedError(f"Refusing the archive: it holds {len(members):,} entries, more than {max_files:,} "
                                 "(raise the limit with --max-files if you trust it).")
    total = packed = 0
    for member in members:
        resolved = (target / member.filename).resolve()
        if member.filename.startswith(("/", "\\")) or not resolved.is_relative_to(target.resolve()):
            raise ImportRefusedError(f"Refusing the archive: member {member.filename!r} would land "
                                     f"outside {target}.")
        if (member.external_attr >> 16) & 0o170000 == 0o120000:
            raise ImportRefusedError(f"Refusing the archive: member {member.filename!r} is a symbolic link.")
        if _too_compressed(member.file_size, member.compress_size):
            raise ImportRefusedError(f"Refusing the archive: member {member.filename!r} would unpack to "
                                     f"{member.file_size / 2**20:.0f} MiB from {member.compress_size:,} bytes, "
                                     f"more than {MAX_COMPRESSION_RATIO}:1 (a zip bomb?).")
        total += member.file_size
        packed += member.compress_size
        if total > max_bytes:
            raise ImportRefusedError(f"Refusing the archive: it would unpack to more than "
                                     f"{max_bytes / 2**30:.1f} GB (raise the limit with --max-gb if you trust it).")
    if _too_compressed(total, packed):
        raise ImportRefusedError(f"Refusing the archive: its {len(members):,} members would unpack to "
                                 f"{total / 2**20:.0f} MiB from {packed:,} bytes, more than "
                                 f"{MAX_COMPRESSION_RATIO}:1 (a zip bomb?).")
    return members


def _not_a_zip(source: Path) -> str | None:
    """Why `source` is no zip file at all (another kind of archive, or no archive), or None when it may be one."""
    with open(source, "rb") as handle:
        start = handle.read(4)
    if start.startswith(b"PK") or zipfile.is_zipfile(source):
        return None
    if tarfile.is_tarfile(source):
        return (f"{source} is a tar archive, not a zip: unpack it yourself (tar -xf {source.name}) and import "
                "the folder it makes.")
    return f"{source} is not a zip file (nor any archive this program knows): import a zip or a folder."


def _unzip(source: Path, target: Path, max_bytes: int, max_files: int = MAX_FILES) -> None:
    why_not = _not_a_zip(source)
    if why_not:
        raise ImportRefusedError(why_not)
    try:
        with zipfile.ZipFile(source) as archive:
            members = _safe_members(archive, target, max_bytes, max_files)
            for member in progress.bar(members, desc=f"unpacking {source.name}", unit="file"):
                archive.extract(member, target)
    except zipfile.BadZipFile as err:
        raise ImportRefusedError(f"{source} is not a complete zip file ({err}); if it was downloaded, "
                                 "the download may have been cut short: download it again.") from err
    except EOFError as err:
        raise ImportRefusedError(f"{source} ends early: the download was probably cut short.") from err


def _tree_files(source: Path) -> list[Path]:
    """Every regular file below `source`; a symbolic link anywhere is refused, as in a zip."""
    files = []

    def unreadable(err: OSError) -> None:
        raise err

    for top, folders, names in os.walk(source, onerror=unreadable):
        for path in (Path(top) / name for name in folders + names):
            if path.is_symlink():
                raise ImportRefusedError(f"Refusing the folder {source}: {path} is a symbolic link "
                                         "(copy what it points to into the folder instead).")
            if path.is_file():
                files.append(path)
    return files


def _copy_tree(source: Path, target: Path) -> None:
    files = _tree_files(source)
    for path in progress.bar(files, desc=f"copying {source.name}", unit="file"):
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, destination)


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it: put it straight back
    os.umask(mask)
    return mask


def import_data(source: str | os.PathLike, dest: str | os.PathLike | None = None,
                max_bytes: int = int(MAX_UNPACKED_GB * 2**30), max_files: int = MAX_FILES) -> Path:
    """Unpack a zip (or copy a folder) into `dest` (default: data/<name>), checking its layout first.

    A zip is refused before anything is unpacked when it would unpack to more than `max_bytes` or hold
    more than `max_files` entries, or when it looks like a zip bomb (`_safe_members`).
    """
    source = Path(source).expanduser()
    if not source.exists():
        raise ImportRefusedError(f"{source} does not exist.")
    target = Path(dest) if dest else config.DATA_DIR / source.name.removesuffix(".zip")
    if target.exists():
        raise FolderExistsError(f"{target} already exists; choose another --dest or remove it yourself.")
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".importing-", dir=target.parent))
    try:
        if source.is_dir():
            find_layout(source)  # a wrong layout fails here, before anything is copied
            _copy_tree(source, staging)
        else:
            _unzip(source, staging, max_bytes, max_files)
            try:
                find_layout(staging)  # a wrong layout fails here, before anything is in place
            except DatasetLayoutError as err:  # name the zip, not the temporary folder about to be deleted
                raise DatasetLayoutError(str(err).replace(str(staging), str(source))) from None
        staging.chmod(0o777 & ~_umask())  # mkdtemp makes an owner-only folder; the data is meant to be shared
        staging.rename(target)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return target


# ----------------------------------------------------------------------------- command line
def add_download_arguments(parser: argparse.ArgumentParser) -> None:
    """`download`'s arguments (helpers.cli runs the command)."""
    parser.add_argument("what", nargs="?", default="kaggle", choices=DOWNLOADS,
                        help="kaggle (the default): the capstone's Kaggle dataset, 1.7 GB, no account needed; "
                             "lesson-sets: dfdc-faces and ffhq-stylegan2, the two small sets every number of the "
                             "course was measured on (about 180 MB, from GitHub); or one of those two")
    parser.add_argument("--to", help="the folder to put the data in, each set in a folder of its name (default: data/)")
    parser.add_argument("--dest", help="kaggle only: the folder to download it into "
                                       f"(default: data/{KAGGLE_NAME}; --to DIR means DIR/{KAGGLE_NAME})")


def run_download(args: argparse.Namespace) -> None:
    to = Path(args.to) if args.to else config.DATA_DIR
    if args.what == "kaggle":
        if args.to and args.dest:
            raise BadArgumentError("Give --to or --dest, not both.")
        print(f"Data is in {download_kaggle(args.dest or to / KAGGLE_NAME)}")
        return
    if args.dest:
        raise BadArgumentError(f"--dest names the Kaggle dataset's folder; a lesson set goes into --to DIR "
                               f"(as DIR/{args.what if args.what in lesson_sets.SETS else '<its name>'}).")
    names = lesson_sets.NAMES if args.what == "lesson-sets" else (args.what,)
    base_url = os.environ.get(config.LESSON_SETS_URL_ENV) or lesson_sets.RAW_BASE_URL
    roots = lesson_sets.download(names, to, base_url=base_url)
    print(f"Use it: {config.DATA_ENV}={roots[0]}" + (f" {config.CROSS_DATA_ENV}={roots[1]} (lessons 07 and 08 "
          "compare the two)" if len(roots) > 1 else "") + "; the README says which command reproduces which table.")


def add_import_arguments(parser: argparse.ArgumentParser) -> None:
    """`import`'s arguments."""
    parser.add_argument("source", help="a zip file, or a folder, in either layout (see helpers.data)")
    parser.add_argument("--dest", help="target folder (default: data/<name of the source>)")
    parser.add_argument("--max-gb", type=arguments.positive_float, default=MAX_UNPACKED_GB,
                        help=f"refuse archives that would unpack to more than this (default {MAX_UNPACKED_GB:g})")
    parser.add_argument("--max-files", type=arguments.positive_int, default=MAX_FILES,
                        help=f"refuse archives of more entries than this (default {MAX_FILES:,})")


def run_import(args: argparse.Namespace) -> None:
    target = import_data(args.source, args.dest, max_bytes=int(args.max_gb * 2**30), max_files=args.max_files)
    print(f"Data is in {target}; use it with {config.DATA_ENV}={target}")
