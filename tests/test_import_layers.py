"""Data flows one way through src/helpers: every module imports only modules listed before it in README's table.

README's module table lists the steps in order, and the modules of each step in order: together one
list. Every import of one helpers module by another is an edge, whether at the top of a file or inside
a function, and so is every command that `helpers.cli` runs (it imports their modules by name, from
its COMMANDS table). Each edge must point to a module earlier in the list. No exception is allowed.
"""
import ast
import re
from pathlib import Path

import pytest

from helpers import cli

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "helpers"


def helpers_imports(path: Path) -> set[str]:
    """The helpers modules that a file imports, anywhere in it (top level, functions, `if` blocks)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            module = node.module or ""
            if node.level and not module:  # from . import x
                found |= {alias.name for alias in node.names}
            elif node.level:  # from .x import y
                found.add(module.split(".")[0])
            elif module == "helpers":  # from helpers import x
                found |= {alias.name for alias in node.names}
            elif module.startswith("helpers."):  # from helpers.x import y
                found.add(module.split(".")[1])
        elif isinstance(node, ast.Import):  # import helpers.x
            found |= {alias.name.split(".")[1] for alias in node.names if alias.name.startswith("helpers.")}
    return found - {"__version__"}


def modules() -> list[str]:
    return sorted(path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__")


def readme_table() -> dict[str, list[str]]:
    """README's module table: {step: [module, ...]}, each module named in backticks at the start of an item."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("Data flows one way through `src/helpers/`:", 1)[1].split("\n\n", 2)[1]
    steps = {}
    for row in table.splitlines()[2:]:  # after the header and its --- line
        step, cell = (part.strip() for part in row.strip().strip("|").split("|"))
        steps[step] = re.findall(r"(?:^|, )`(\w+)`", cell)
    return steps


ORDER = [module for step in readme_table().values() for module in step]
POSITION = {module: position for position, module in enumerate(ORDER)}


def edges() -> set[tuple[str, str]]:
    """(importer, imported) for every import between helpers modules, and cli -> each command's module."""
    found = {(name, imported) for name in modules() for imported in helpers_imports(PACKAGE / f"{name}.py")}
    return found | {("cli", command.module) for command in cli.COMMANDS.values()}


def test_readme_table_lists_every_module_once():
    assert len(ORDER) == len(set(ORDER)), "a module is listed twice"
    assert sorted(ORDER) == modules(), "every module in src/helpers, and nothing else, is in the table"


def test_every_import_points_to_an_earlier_module():
    against = sorted(f"{importer} (#{POSITION[importer] + 1}) imports {imported} (#{POSITION[imported] + 1})"
                     for importer, imported in edges() if POSITION[imported] >= POSITION[importer])
    assert not against, "against README's order:\n" + "\n".join(against)


def test_the_command_line_is_seen_and_only_ways_in_follow_it():
    commands = {module for importer, module in edges() if importer == "cli"}
    assert commands >= {"data", "train", "predict", "evaluate", "export", "web_app"}
    assert ORDER[-2:] == ["cli", "__main__"] and helpers_imports(PACKAGE / "__main__.py") == {"cli"}


def test_no_module_keeps_a_main_block():
    """`python -m helpers COMMAND` is the one way in besides the console script: no module has its own."""
    for name in modules():
        source = (PACKAGE / f"{name}.py").read_text(encoding="utf-8")
        assert '__name__ == "__main__"' not in source, f"{name} has a __main__ block"


def test_the_package_itself_imports_only_settings():
    first_step = next(iter(readme_table().values()))
    assert helpers_imports(PACKAGE / "__init__.py") <= set(first_step)


def test_the_parser_sees_every_form_of_import(tmp_path):
    source = tmp_path / "example.py"
    source.write_text("from . import config\nfrom .data import scan\nfrom helpers import images, model as m\n"
                      "import helpers.saving\n\ndef later():\n    from helpers.train import train\n\n"
                      "if __name__ == '__main__':\n    from helpers import cli\n")
    assert helpers_imports(source) == {"cli", "config", "data", "images", "model", "saving", "train"}


@pytest.mark.parametrize("wrong", ["faces", "train", "__main__"])  # later in its own step, later steps
def test_a_backward_edge_is_caught(wrong, monkeypatch):
    """The check can fail: an import of a later module by an earlier one is reported."""
    real = helpers_imports
    monkeypatch.setitem(globals(), "helpers_imports",
                        lambda path: real(path) | ({wrong} if path.stem == "data" else set()))
    with pytest.raises(AssertionError, match=f"data .* imports {wrong}"):
        test_every_import_points_to_an_earlier_module()
