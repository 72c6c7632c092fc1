"""Which serialization should a token body use? The measurement behind msgpack.

A token body is a short list, ``[message_id, recipient, url, metadata]``. This
compares the candidates on that shape, in one run, on the same payloads:

- compact JSON: ``json.dumps(separators=(",", ":"), ensure_ascii=False)``, UTF-8;
- msgpack: ``msgpack.packb`` / ``msgpack.unpackb``;
- CBOR: ``cbor2.dumps`` / ``cbor2.loads`` (skipped, and said so, if cbor2 is not installed).

Size is what the token pays in URL characters (base64url: 4 chars per 3 bytes);
time is the best of several interleaved repeats, in µs per call. Run with
``.venv/bin/python benchmarks/payload_formats.py``.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import platform
import sys
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import msgpack

REPEAT = 7
TARGET_SECONDS = 0.05  # per timed run; the best of REPEAT runs is kept

PAYLOADS: dict[str, list[Any]] = {
    "click": [
        "m-2024-05-17-000123",
        "r-8f3a9c41",
        "https://shop.example.com/spring-sale/shoes?utm_source=newsletter&utm_medium=email"
        "&utm_campaign=spring_2024&utm_content=hero",
        {"campaign": "spring-2024", "variant": "b", "list": 42},
    ],
    "click, non-ASCII": [
        "m-2024-05-17-000123",
        "r-8f3a9c41",
        "https://例え.jp/ürünler/çanta?kategori=büyük&şehir=İstanbul",
        {"kampanya": "bahar-2024", "sürüm": "b", "liste": 42},
    ],
    "open": ["m-2024-05-17-000123", "r-8f3a9c41", None, {"campaign": "spring-2024"}],
}


@dataclass(frozen=True)
class Codec:
    name: str
    encode: Callable[[Any], bytes]
    decode: Callable[[bytes], Any]


def _json_encode(payload: Any) -> bytes:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _describe(distribution: str, core: object) -> str:
    """The package's version, and whether its ``core`` object is compiled (C against C is a fair fight)."""
    path = getattr(sys.modules[getattr(core, "__module__", "")], "__file__", "") or ""
    kind = "pure Python" if path.endswith(".py") else "compiled"
    return f"{distribution} {importlib.metadata.version(distribution)} ({kind})"


def available_codecs() -> tuple[list[Codec], list[str]]:
    """The codecs to compare, and a note on each package (version, C or pure Python, or skipped)."""
    notes = [_describe("msgpack", msgpack.Packer)]
    codecs = [
        Codec("json (compact, UTF-8)", _json_encode, json.loads),
        Codec("msgpack", msgpack.packb, msgpack.unpackb),
    ]
    try:
        import cbor2
    except ImportError:
        return codecs, [*notes, "cbor2: skipped (not importable; this benchmark installs nothing)"]
    codecs.append(Codec("cbor2", cbor2.dumps, cbor2.loads))
    return codecs, [*notes, _describe("cbor2", cbor2.dumps)]


def _number_for(func: Callable[[], object]) -> int:
    """Calls per timed run so that one run lasts about TARGET_SECONDS."""
    number, elapsed = timeit.Timer(func).autorange()
    return max(1, int(number * TARGET_SECONDS / elapsed))


def best_us(funcs: list[Callable[[], object]], repeat: int) -> list[float]:
    """Best-of-``repeat`` µs per call for each function, the functions' runs interleaved."""
    numbers = [_number_for(f) for f in funcs]
    best = [float("inf")] * len(funcs)
    for _ in range(repeat):
        for i, (func, number) in enumerate(zip(funcs, numbers, strict=True)):
            best[i] = min(best[i], timeit.Timer(func).timeit(number) / number)
    return [seconds * 1e6 for seconds in best]


def measure(payload: list[Any], codecs: list[Codec], repeat: int) -> list[dict[str, Any]]:
    encoded = [codec.encode(payload) for codec in codecs]
    for codec, data in zip(codecs, encoded, strict=True):
        if codec.decode(data) != payload:
            raise SystemExit(f"{codec.name} does not round-trip the payload")
    encode_us = best_us([lambda c=c: c.encode(payload) for c in codecs], repeat)
    decode_us = best_us([lambda c=c, d=d: c.decode(d) for c, d in zip(codecs, encoded, strict=True)], repeat)
    return [
        {
            "format": c.name,
            "bytes": len(d),
            "base64url_chars": -(-len(d) * 4 // 3),
            "encode_us": e,
            "decode_us": r,
        }
        for c, d, e, r in zip(codecs, encoded, encode_us, decode_us, strict=True)
    ]


def print_table(name: str, rows: list[dict[str, Any]]) -> None:
    print(f"\npayload: {name}")
    print(f"  {'format':<24}{'bytes':>7}{'b64 chars':>11}{'encode µs':>12}{'decode µs':>12}")
    for row in rows:
        print(
            f"  {row['format']:<24}{row['bytes']:>7}{row['base64url_chars']:>11}"
            f"{row['encode_us']:>12.3f}{row['decode_us']:>12.3f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print machine-readable results only")
    parser.add_argument("--repeat", type=int, default=REPEAT, help="timed runs per measurement (best kept)")
    args = parser.parse_args()
    codecs, notes = available_codecs()
    results = {name: measure(payload, codecs, args.repeat) for name, payload in PAYLOADS.items()}
    if args.json:
        env = {"python": sys.version, "cpu_count": os.cpu_count(), "packages": notes}
        print(json.dumps({**env, "results": results}, indent=2, ensure_ascii=False))
        return
    print(f"Python {platform.python_version()} ({platform.python_implementation()}), {os.cpu_count()} CPUs")
    print(f"best of {args.repeat} interleaved runs; µs per call; lower is better")
    print("; ".join(notes))
    for name, rows in results.items():
        print_table(name, rows)


if __name__ == "__main__":
    main()
