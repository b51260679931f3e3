"""The architecture is enforced, not just described: the core stays pure, layers point one way."""

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_contracts_hold() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint, "import-linter is a test dependency (pip install -e '.[test]')"
    result = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_no_operator_package_shadows_the_stdlib() -> None:
    assert not (ROOT / "operator" / "__init__.py").exists()


# Functions a reader takes in at once (issue 16); ruff's C901 bounds their complexity, this their length.
MAX_FUNCTION_LINES = 60


def test_no_function_in_the_package_is_longer_than_a_screen() -> None:
    import ast

    long = []
    for path in sorted((ROOT / "operator" / "podline").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, "split these functions: " + "; ".join(long)
