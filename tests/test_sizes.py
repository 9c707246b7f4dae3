"""Size discipline (STYLE.md 14): modules of ocrtrain/ under 500 lines, functions under 60."""
import ast
from pathlib import Path

import ocrtrain

PACKAGE = Path(ocrtrain.__file__).parent
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def _sizes():
    for path in sorted(PACKAGE.rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        yield path, text.count("\n"), [
            (node.name, node.end_lineno - node.lineno + 1) for node in ast.walk(ast.parse(text))
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]


def test_no_module_over_500_lines_and_no_function_over_60():
    too_long = []
    for path, lines, functions in _sizes():
        where = path.relative_to(PACKAGE.parent)
        if lines > MAX_MODULE_LINES:
            too_long.append(f"{where}: {lines} lines")
        too_long += [f"{where}:{name}: {n} lines" for name, n in functions if n > MAX_FUNCTION_LINES]
    assert not too_long, "split these:\n" + "\n".join(too_long)
