"""The shape of the code: the pure core does no I/O, and the public API is what __all__ says."""

from __future__ import annotations

import ast
from pathlib import Path

import mailbeacon

CORE = Path(mailbeacon.__file__).parent / "core"
# Modules whose import would mean I/O, a clock, the environment or randomness in the core.
FORBIDDEN = {
    "os",
    "time",
    "socket",
    "ssl",
    "select",
    "asyncio",
    "subprocess",
    "threading",
    "random",
    "secrets",
    "urllib.request",
    "http",
    "requests",
    "httpx",
    "sqlalchemy",
    "starlette",
    "fastapi",
    "uvicorn",
    "django",
    "shutil",
    "tempfile",
    "pathlib",
    "io",
}
FORBIDDEN_PACKAGES = (
    "mailbeacon.server",
    "mailbeacon.store",
    "mailbeacon.worker",
    "mailbeacon.cli",
    "mailbeacon.config",
    "mailbeacon.integrations",
    "mailbeacon.tracker",
    "mailbeacon.pytracking",
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_core_imports_no_io_clock_env_or_outer_layer() -> None:
    offenders = {}
    for path in sorted(CORE.rglob("*.py")):
        bad = {
            name
            for name in _imports(path)
            if name in FORBIDDEN or name.split(".")[0] in FORBIDDEN or name.startswith(FORBIDDEN_PACKAGES)
        }
        if bad:
            offenders[str(path.relative_to(CORE))] = sorted(bad)
    assert offenders == {}


def test_core_has_modules_to_check() -> None:
    assert {"tokens.py", "keys.py", "html.py", "errors.py"} <= {p.name for p in CORE.glob("*.py")}


def test_public_names_are_sorted_and_importable() -> None:
    assert mailbeacon.__all__ == sorted(mailbeacon.__all__)
    for name in mailbeacon.__all__:
        assert hasattr(mailbeacon, name), name


def test_every_error_is_a_mailbeacon_error() -> None:
    for name in (
        "TokenError",
        "MalformedToken",
        "BadSignature",
        "UnknownKey",
        "TokenExpired",
        "KeyConfigError",
        "InvalidDestination",
        "PayloadTooLarge",
        "ConfigError",
    ):
        assert issubclass(getattr(mailbeacon, name), mailbeacon.MailbeaconError)
    for name in ("MalformedToken", "BadSignature", "UnknownKey", "TokenExpired"):
        assert issubclass(getattr(mailbeacon, name), mailbeacon.TokenError)
