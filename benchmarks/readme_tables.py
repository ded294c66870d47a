"""README's result tables, written from the committed JSON, so that README and the files never disagree.

    python benchmarks/readme_tables.py            # rewrite every table in README.md from benchmarks/
    python benchmarks/readme_tables.py --check    # exit 1, naming the table, where README differs

Each table stands in README between `<!-- table: NAME -->` and `<!-- /table -->`; the prose around it
is written by hand, and tests/test_readme_tables.py checks that the tables are what this script
writes. A table whose files are not committed is left out of the check, and named.
"""
from __future__ import annotations

import argparse
import re
import sys

import numpy as np

from helpers import config, generalisation, ladder, metrics, train

README = config.REPO_ROOT / "README.md"
BLOCK = re.compile(r"(<!-- table: (?P<name>[\w-]+) -->\n)(?P<body>.*?)(<!-- /table -->)", re.S)


def _with(value: float, interval, digits: int = 3) -> str:
    """A number and its 95% interval, as README writes them: 0.847 [0.808, 0.882]."""
    low, high = interval
    return f"{value:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _interval(found: dict) -> str:
    return _with(found["value"], found["ci95"])


def ladder_table() -> str:
    """Lesson 04's ladder: per rung and data set, test ROC-AUC [interval]; balanced accuracy / fake recall."""
    results = ladder.load_results()
    lines = ["| rung | change | " + " | ".join(f"`{result['data']}`" for result in results) + " |",
             "| --- | --- | " + " | ".join("---" for _ in results) + " |"]
    for position, rung in enumerate(results[0]["rungs"]):
        cells = []
        for result in results:
            test = result["rungs"][position]["test"]
            cells.append(f"{_interval(test['roc_auc'])}; {test['balanced_accuracy']['value']:.2f} / "
                         f"{test['recall_fake']['value']:.2f}")
        lines.append(f"| {rung['rung']} | {rung['change']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def seeds_table() -> str:
    """Retraining with other seeds: per data set and rung, the spread of ROC-AUC, threshold and balanced accuracy."""
    lines = ["| data | rung | seeds | test ROC-AUC: mean (sd), min-max | threshold chosen on validation: min-max "
             "| test balanced accuracy at the rung's threshold: min-max |",
             "| --- | --- | --- | --- | --- | --- |"]
    for result in ladder.load_seeds():
        for rung, summary in sorted(result["summary"].items()):
            auc, threshold = summary["test_roc_auc"], summary["validation_threshold"]
            balanced = summary["test_balanced_accuracy"]
            sd = "one seed: no sd" if auc["sd"] is None else f"{auc['sd']:.3f}"
            lines.append(f"| `{result['data']}` | {rung} | {len(summary['seeds'])} | {auc['mean']:.3f} "
                         f"({sd}), {auc['min']:.3f}-{auc['max']:.3f} | "
                         f"{threshold['min']:.3f}-{threshold['max']:.3f} | {balanced['min']:.3f}-{balanced['max']:.3f} |")
    return "\n".join(lines) + "\n"


def results_table() -> str:
    """Each set's `real+fake` model (what `deepfake-lessons train` makes) on its own test split."""
    lines = ["| data | test images | ROC-AUC | average precision | recall real / fake at the validation threshold |",
             "| --- | --- | --- | --- | --- |"]
    for result in generalisation.load_results():
        model = next(model for model in result["models"] if model["mode"] == "real+fake")
        images = result["test_sets"][result["data"]]
        summary = metrics.summary(np.asarray(images["test_labels"]),
                                  np.asarray(model["tested"][result["data"]]["test_scores"]), model["threshold"],
                                  intervals=True, groups=images.get("test_groups"))
        recall, ci = summary["at_threshold"]["recall"], summary["ci95"]
        lines.append(f"| `{result['data']}` | {summary['n']} | {_with(summary['roc_auc'], ci['roc_auc'])} | "
                     f"{summary['average_precision']:.3f} | {_with(recall['real'], ci['recall_real'], 2)} / "
                     f"{_with(recall['fake'], ci['recall_fake'], 2)} |")
    return "\n".join(lines) + "\n"


def generalisation_table() -> str:
    """Lesson 08's table: each model on each set's test split, ROC-AUC [interval]."""
    matrix = generalisation.auc_matrix(generalisation.results_table(generalisation.load_results()), intervals=True)
    sets = list(matrix.columns)
    lines = ["| trained on | what it learnt \"fake\" from | " + " | ".join(f"`{name}` test" for name in sets) + " |",
             "| --- | --- | " + " | ".join("---" for _ in sets) + " |"]
    order = sorted(matrix.index, key=lambda key: (key[0], train.MODES.index(key[1])))
    for (trained_on, mode), row in matrix.loc[order].iterrows():
        lines.append(f"| `{trained_on}` | `{mode}` | " + " | ".join(row[name] for name in sets) + " |")
    return "\n".join(lines) + "\n"


TABLES = {"ladder": ladder_table, "seeds": seeds_table, "results": results_table,
          "generalisation": generalisation_table}


def rendered(text: str) -> tuple[str, dict[str, str]]:
    """README's text with every table rewritten, and why each table left as it was could not be written."""
    missing = {}

    def rewrite(match: re.Match) -> str:
        name = match["name"]
        try:
            body = TABLES[name]()
        except FileNotFoundError as err:
            missing[name] = str(err)
            return match.group(0)
        return match.group(1) + body + match.group(4)

    return BLOCK.sub(rewrite, text), missing


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a table differs")
    args = parser.parse_args(argv)
    text = README.read_text(encoding="utf-8")
    new, missing = rendered(text)
    for name, reason in missing.items():
        print(f"{name}: not written ({reason})")
    names = [match["name"] for match in BLOCK.finditer(text)]
    changed = [name for name, old, now in zip(names, BLOCK.finditer(text), BLOCK.finditer(new))
               if old["body"] != now["body"]]
    if args.check:
        for name in changed:
            print(f"{name}: README differs from what the committed files give")
        return 1 if changed else 0
    if changed:
        README.write_text(new, encoding="utf-8")
    print(f"rewrote {', '.join(changed) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
