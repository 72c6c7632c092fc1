"""pytracking2's own test suite, run against mailbeacon.pytracking with only its imports changed.

The sdist (``make test`` downloads it to ``.cache/sdist``) is unpacked into a
temporary directory, every line starting ``from pytracking`` / ``import
pytracking`` is pointed at ``mailbeacon.pytracking``, a ``conftest.py`` that
configures Django settings is added, and the suite runs in a subprocess. Every
other line of every test module must stay byte-identical to the sdist's.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import tarfile
from collections.abc import Mapping
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SDIST = REPO / ".cache" / "sdist" / "pytracking2-0.4.6.tar.gz"
TESTS_IN_SDIST = "pytracking2-0.4.6/tests/"

CONFTEST = '''\
"""Test infrastructure added by mailbeacon: Django settings for test_django.py."""

from django.conf import settings

if not settings.configured:
    settings.configure()
'''

_IMPORT_LINE = re.compile(rb"(?:from|import) pytracking\b")
_REWRITTEN_LINE = re.compile(rb"(?:from|import) mailbeacon\b")


def rewrite_import_line(line: bytes) -> bytes:
    """Point one pytracking import line at mailbeacon.pytracking; other lines are returned as is.

    ``import pytracking.webhook`` also binds ``pytracking`` so that the test
    bodies' ``pytracking.webhook.send_webhook`` still resolves.
    """
    if line.startswith(b"from pytracking"):
        return b"from mailbeacon.pytracking" + line[len(b"from pytracking") :]
    if line.startswith(b"import pytracking"):
        rest = line[len(b"import pytracking") :]
        rewritten = b"import mailbeacon.pytracking" + rest
        if b" as " in rest:
            return rewritten
        return b"from mailbeacon import pytracking\n" + rewritten
    return line


def rewrite_module(source: bytes) -> bytes:
    return b"".join(rewrite_import_line(line) for line in source.splitlines(keepends=True))


def _without_imports(source: bytes, pattern: re.Pattern[bytes]) -> list[bytes]:
    return [line for line in source.splitlines(keepends=True) if not pattern.match(line)]


def _count_tests(source: bytes) -> int:
    tree = ast.parse(source)
    count = 0
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            assert not node.decorator_list, f"{node.name} is decorated; counting it would be a guess"
            count += 1
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            count += sum(
                isinstance(item, ast.FunctionDef) and item.name.startswith("test") for item in node.body
            )
    return count


def test_rewrite_changes_only_the_module_path() -> None:
    assert rewrite_import_line(b"from pytracking import (\n") == b"from mailbeacon.pytracking import (\n"
    assert rewrite_import_line(b"import pytracking.django as tracking_django\n") == (
        b"import mailbeacon.pytracking.django as tracking_django\n"
    )
    assert rewrite_import_line(b"import pytracking.webhook\n") == (
        b"from mailbeacon import pytracking\nimport mailbeacon.pytracking.webhook\n"
    )
    # Only lines that start with the import: strings and indented code stay.
    line = b'    with patch("pytracking.webhook.requests.post") as mocked_post:\n'
    assert rewrite_import_line(line) == line


def require_sdist(path: Path, environ: Mapping[str, str]) -> Path:
    """``path`` if it exists; otherwise skip, or fail on CI (where ``make test`` must have fetched it)."""
    if path.exists():
        return path
    message = (
        f"{path} is missing; `make test` downloads it "
        "(pip download --no-deps --no-binary :all: pytracking2==0.4.6 -d .cache/sdist)"
    )
    if environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


def test_missing_sdist_skips_locally_and_fails_on_ci(tmp_path: Path) -> None:
    missing = tmp_path / "pytracking2-0.4.6.tar.gz"
    with pytest.raises(pytest.skip.Exception, match="make test"):
        require_sdist(missing, {})
    with pytest.raises(pytest.fail.Exception, match="make test"):
        require_sdist(missing, {"CI": "true"})


@pytest.fixture
def sdist() -> Path:
    return require_sdist(SDIST, os.environ)


@pytest.mark.slow
def test_pytracking2_suite_passes_against_mailbeacon(sdist: Path, tmp_path: Path) -> None:
    suite = tmp_path / "tests"
    suite.mkdir()
    originals: dict[str, bytes] = {}
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            if not member.isfile() or not member.name.startswith(TESTS_IN_SDIST):
                continue
            name = member.name[len(TESTS_IN_SDIST) :]
            assert "/" not in name, f"unexpected file in the sdist: {member.name}"
            assert name.endswith(".py"), f"unexpected file in the sdist: {member.name}"
            extracted = archive.extractfile(member)
            assert extracted is not None
            originals[name] = extracted.read()
    assert {
        "test_pytracking.py",
        "test_crypto.py",
        "test_html.py",
        "test_django.py",
        "test_webhook.py",
    } <= set(originals)
    assert "__init__.py" not in originals
    assert "conftest.py" not in originals

    for name, source in originals.items():
        (suite / name).write_bytes(rewrite_module(source))
    (suite / "__init__.py").write_bytes(b"")
    (suite / "conftest.py").write_text(CONFTEST)

    # Only imports changed: every other line of every module is byte-identical.
    for name, source in originals.items():
        rewritten = (suite / name).read_bytes()
        assert _without_imports(rewritten, _REWRITTEN_LINE) == _without_imports(source, _IMPORT_LINE), name
        assert not re.search(rb"^(?:from|import) pytracking\b", rewritten, re.MULTILINE), name

    expected = sum(_count_tests(source) for name, source in originals.items() if name.startswith("test_"))
    assert expected >= 26

    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST_", "DJANGO_"))}
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(suite)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output
    summary = completed.stdout.strip().splitlines()[-1]
    assert re.fullmatch(rf"{expected} passed(?:, \d+ warnings?)? in [0-9.]+s(?: \([0-9:]+\))?", summary), (
        output
    )
