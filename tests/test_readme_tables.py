"""README's result tables are the ones benchmarks/readme_tables.py writes from the committed JSON."""
import sys

from helpers import config

sys.path.insert(0, str(config.REPO_ROOT / "benchmarks"))
import readme_tables  # noqa: E402  (benchmarks/ is a folder of scripts, not a package)


def test_every_table_in_readme_is_written_from_the_committed_files():
    text = readme_tables.README.read_text(encoding="utf-8")
    names = [match["name"] for match in readme_tables.BLOCK.finditer(text)]
    assert sorted(names) == sorted(readme_tables.TABLES), "each table once, and no other"
    rewritten, missing = readme_tables.rendered(text)
    assert not missing, f"a README table has no committed file behind it: {missing}"
    assert rewritten == text, "README's tables differ from the committed JSON: run python benchmarks/readme_tables.py"


def test_a_changed_number_is_caught():
    text = readme_tables.README.read_text(encoding="utf-8")
    match = next(readme_tables.BLOCK.finditer(text))
    tampered = text.replace(match["body"], match["body"].replace("0.", "1.", 1))
    assert readme_tables.rendered(tampered)[0] != tampered
