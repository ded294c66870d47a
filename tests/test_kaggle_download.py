"""The Kaggle download tries without a token first, and asks for one only when Kaggle refuses (a fake kagglehub)."""
import pytest
import requests
from kagglehub import exceptions
from kagglehub.config import get_kaggle_credentials

from helpers import acquire, cli, config

KAGGLE_SAYS = ("403 Client Error.\n\nYou don't have permission to access resource at URL: "
               "https://www.kaggle.com/datasets/manjilkarki/deepfake-and-real-images. "
               "Please make sure you are authenticated if you are trying to access a private resource.")


@pytest.fixture
def no_token(monkeypatch, tmp_path):
    """No Kaggle token anywhere kagglehub looks (variables, ~/.kaggle, its config folder)."""
    for name in (*config.KAGGLE_ENV, "KAGGLE_API_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "home" / ".kaggle"))
    assert get_kaggle_credentials() is None


@pytest.fixture
def kaggle(monkeypatch):
    """A fake kagglehub.dataset_download: `state["fails"]` is raised, else it writes one file and succeeds."""
    state = {"calls": [], "fails": None, "token_seen": []}

    def dataset_download(handle, path=None, *, force_download=False, output_dir=None):
        state["calls"].append((handle, output_dir))
        state["token_seen"].append(get_kaggle_credentials() is not None)
        if state["fails"] is not None:
            raise state["fails"]
        (acquire.Path(output_dir) / "Dataset" / "Train").mkdir(parents=True)
        return output_dir

    import kagglehub

    monkeypatch.setattr(kagglehub, "dataset_download", dataset_download)
    return state


def refusal(status: int) -> exceptions.KaggleApiHTTPError:
    response = requests.Response()
    response.status_code = status
    return exceptions.KaggleApiHTTPError(KAGGLE_SAYS, response=response)


def test_the_download_needs_no_token(no_token, kaggle, tmp_path):
    assert acquire.download_kaggle(tmp_path / "kaggle") == tmp_path / "kaggle"
    assert kaggle["calls"] == [(acquire.KAGGLE_HANDLE, str(tmp_path / "kaggle"))] and kaggle["token_seen"] == [False]


@pytest.mark.parametrize("refused", [refusal(403), refusal(401), exceptions.UnauthenticatedError()],
                         ids=["403", "401", "unauthenticated"])
def test_only_a_refusal_asks_for_a_token_in_kaggles_words(no_token, kaggle, tmp_path, refused):
    kaggle["fails"] = refused
    with pytest.raises(acquire.DownloadError) as caught:
        acquire.download_kaggle(tmp_path / "kaggle")
    message = str(caught.value)
    assert "\n" not in message and "refused the download" in message and "without an account" in message
    assert f"Kaggle said: \"{type(refused).__name__}: {' '.join(str(refused).split())}\"" in message
    assert "API token" in message and "KAGGLE_USERNAME and KAGGLE_KEY" in message and "deepfake-lessons import" in message
    assert not (tmp_path / "kaggle").exists()


def test_a_refusal_with_a_token_says_to_check_it(no_token, kaggle, tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "learner")
    monkeypatch.setenv("KAGGLE_KEY", "0123")
    kaggle["fails"] = refusal(403)
    with pytest.raises(acquire.DownloadError, match="with the Kaggle token kagglehub found .* check that token"):
        acquire.download_kaggle(tmp_path / "kaggle")
    assert kaggle["token_seen"] == [True]


def test_no_internet_does_not_ask_for_a_token(no_token, kaggle, tmp_path):
    kaggle["fails"] = requests.ConnectionError("no route to host")
    with pytest.raises(acquire.DownloadError) as caught:
        acquire.download_kaggle(tmp_path / "kaggle")
    message = str(caught.value)
    assert "\n" not in message and "check the internet connection" in message and "no route to host" in message
    assert "token" not in message and "deepfake-lessons standin" in message and "deepfake-lessons import" in message


def test_the_command_downloads_kaggle_by_default_to_data_or_to_dest(no_token, kaggle, tmp_path, capsys):
    assert cli.main(["download", "--to", str(tmp_path / "data")]) == 0
    assert kaggle["calls"][-1][1] == str(tmp_path / "data" / acquire.KAGGLE_NAME)
    assert f"Data is in {tmp_path / 'data' / acquire.KAGGLE_NAME}" in capsys.readouterr().out
    assert cli.main(["download", "kaggle", "--dest", str(tmp_path / "here")]) == 0  # as before this change
    assert kaggle["calls"][-1][1] == str(tmp_path / "here")
    kaggle["fails"] = refusal(403)
    assert cli.main(["download", "--dest", str(tmp_path / "there")]) == cli.USER_ERROR_STATUS
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: Kaggle refused the download")
