import json

from bench import report
from tests.conftest import REPO_ROOT


def test_readme_shows_the_committed_benchmark_summary():
    results = json.loads((REPO_ROOT / "bench" / "results.json").read_text())
    assert report.readme_block(results) in (REPO_ROOT / "README.md").read_text()
    assert report.render(results) == (REPO_ROOT / "bench" / "RESULTS.md").read_text()


def test_the_readme_block_is_replaced_not_appended():
    results = json.loads((REPO_ROOT / "bench" / "results.json").read_text())
    readme = f"before\n{report.README_START}\nold figures\n{report.README_END}\nafter\n"
    updated = report.with_readme_block(readme, results)
    assert updated.startswith("before\n")
    assert updated.endswith("\nafter\n")
    assert "old figures" not in updated
    assert updated.count(report.README_START) == 1
