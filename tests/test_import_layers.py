"""Data flows one way through src/helpers: no module imports from a later step of README's module table."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "helpers"

# The steps of the course's data flow, in order, as README's module table lists them (checked below).
# A module may import from its own step and from the steps above it.
STEPS = {
    "settings": ["config", "errors", "files", "tensorflow_logs", "plots"],
    "data": ["images", "data", "acquire", "lesson_sets", "sbi", "standin", "faces"],
    "measuring": ["metrics"],
    "looking before training": ["eda", "spectrum", "audit", "augment"],
    "model": ["torch_checkpoint", "backbones", "classifier", "probe", "train", "ladder"],
    "the saved model folder": ["saving"],
    "using it": ["evaluate", "evaluation_plots", "gradcam", "robustness", "generalisation", "predict",
                 "export", "demo", "web_app", "lessons"],
    "ways in": ["notebook", "cli"],
}
# An import against that order, on purpose (README says so under the table).
ALLOWED = {
    ("train", "saving"): "training writes the saved model folder through the contract that everything after reads",
}
STEP_OF = {module: position for position, modules in enumerate(STEPS.values()) for module in modules}


def _is_main_block(node: ast.AST) -> bool:
    """`if __name__ == "__main__":` — the shims that hand `python -m helpers.X` to helpers.cli."""
    return (isinstance(node, ast.If) and isinstance(node.test, ast.Compare)
            and isinstance(node.test.left, ast.Name) and node.test.left.id == "__name__")


def helpers_imports(path: Path) -> set[str]:
    """The helpers modules that a file imports, at the top or inside functions (not in its __main__ block)."""
    found = set()
    tree = ast.parse(path.read_text(encoding="utf-8"))
    pending = [node for node in tree.body if not _is_main_block(node)]
    while pending:
        node = pending.pop()
        pending.extend(ast.iter_child_nodes(node))
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


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return {name: helpers_imports(PACKAGE / f"{name}.py") for name in modules()}


def readme_table() -> dict[str, list[str]]:
    """README's module table: {step: [module, ...]}, each module named in backticks at the start of an item."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    table = text.split("Data flows one way through `src/helpers/`:", 1)[1].split("\n\n", 2)[1]
    steps = {}
    for row in table.splitlines()[2:]:  # after the header and its --- line
        step, cell = (part.strip() for part in row.strip().strip("|").split("|"))
        steps[step] = re.findall(r"(?:^|, )`(\w+)`", cell)
    return steps


def test_readme_table_lists_the_steps_in_order_and_every_module_once():
    assert readme_table() == STEPS
    listed = [module for step in STEPS.values() for module in step]
    assert sorted(listed) == modules(), "every module in src/helpers, and nothing else, is in one step"


def test_no_module_imports_from_a_later_step(graph):
    against = {(module, imported): f"{module} (step {STEP_OF[module] + 1}) imports {imported} "
                                   f"(step {STEP_OF[imported] + 1})"
               for module, imports in graph.items() for imported in imports
               if STEP_OF[imported] > STEP_OF[module]}
    assert not {pair: line for pair, line in against.items() if pair not in ALLOWED}
    assert set(ALLOWED) <= set(against), "an allowed exception that no longer happens is dropped from ALLOWED"


def test_the_package_itself_imports_only_settings():
    assert helpers_imports(PACKAGE / "__init__.py") <= set(STEPS["settings"])


def test_no_two_modules_import_each_other_in_a_circle(graph):
    from graphlib import CycleError, TopologicalSorter

    try:
        list(TopologicalSorter(graph).static_order())
    except CycleError as err:
        pytest.fail(f"import circle: {' -> '.join(err.args[1])}")


def test_the_parser_sees_every_form_of_import(tmp_path):
    source = tmp_path / "example.py"
    source.write_text("from . import config\nfrom .data import scan\nfrom helpers import images, model as m\n"
                      "import helpers.saving\n\ndef later():\n    from helpers.train import train\n\n"
                      "if __name__ == '__main__':\n    from helpers import cli\n")
    assert helpers_imports(source) == {"config", "data", "images", "model", "saving", "train"}
