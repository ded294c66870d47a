"""Every lesson reads like a chapter: goals, prerequisites and time up front; recap, exercises,
questionnaire and linked references at the end."""
import json
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))
CLOSING_SECTIONS = ["## Recap", "## Exercises", "## Questionnaire", "## References"]


def markdown_cells(path: Path) -> list[str]:
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    return ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "markdown"]


def section(cells: list[str], heading: str) -> str:
    """The text of the markdown cell that opens with `heading`; fails when there is none."""
    found = [cell for cell in cells if cell.lstrip().startswith(heading)]
    assert len(found) == 1, f"expected one cell starting with {heading!r}, found {len(found)}"
    return found[0]


def numbered_items(text: str) -> list[str]:
    """The items of a numbered markdown list, each with its continuation lines."""
    return [item.strip() for item in re.split(r"^\d+\.\s", text, flags=re.MULTILINE)[1:]]


def test_every_lesson_is_checked():
    assert [path.name[:2] for path in NOTEBOOKS] == [f"{i:02d}" for i in range(10)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_opening_states_goals_prerequisites_and_time(path):
    cells = markdown_cells(path)
    opening = section(cells, "## What you will learn")
    assert cells.index(opening) <= 2, "the goals come right after the title"
    bullets = [line for line in opening.splitlines() if line.startswith("- ")]
    assert 3 <= len(bullets) <= 5, f"3-5 goals, found {len(bullets)}"
    assert "**Prerequisites:**" in opening
    times = next((paragraph for paragraph in opening.split("\n\n") if paragraph.startswith("**Time per profile:**")), "")
    for profile in ("smoke", "cpu", "full"):
        assert f"`{profile}`" in times, f"the time paragraph names the {profile} profile"
    assert "measured" in times and "estimate" in times, "say which times are measured, which estimated"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_closing_sections_come_last_and_in_order(path):
    cells = markdown_cells(path)
    positions = [cells.index(section(cells, heading)) for heading in CLOSING_SECTIONS]
    assert positions == sorted(positions)
    assert positions[-1] == len(cells) - 1, "the references close the lesson"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_exercises_say_what_to_expect(path):
    exercises = numbered_items(section(markdown_cells(path), "## Exercises"))
    assert 3 <= len(exercises) <= 5, f"3-5 exercises, found {len(exercises)}"
    for exercise in exercises:
        assert "*Expect:*" in exercise, f"no expected outcome in: {exercise[:60]}..."


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_questionnaire_and_linked_references(path):
    cells = markdown_cells(path)
    assert len(numbered_items(section(cells, "## Questionnaire"))) >= 5
    links = re.findall(r"\]\((https?://[^)\s]+)\)", section(cells, "## References"))
    assert len(links) >= 2, "at least two linked references"
