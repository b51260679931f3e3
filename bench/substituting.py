"""What Drone's ``${…}`` substitution adds to planning a run (``runs.plan_of``, done at every reconcile).

For pipelines of 10 and 100 steps whose commands, image and settings hold Drone expressions, it times the
plan with substitution and the plan of the same spec substituted beforehand, with substitution replaced by
the identity (the floor, measured in the same run, interleaved), and the first plan after the parse cache is emptied. Pure CPU, no cluster::

    .venv/bin/python -m bench.substituting [--repeats 41]

Prints medians with min–max and the ratio to the floor; writes bench/results/substitution-latest.json.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import platform
import statistics
import time
from collections.abc import Callable
from typing import Any

from podline.core import compiling, environs, models, policies, substitution

RESULTS = pathlib.Path(__file__).resolve().parent / "results" / "substitution-latest.json"
CONTEXT = compiling.RunContext(
    namespace="ci",
    pipeline="bench",
    uid="u",
    generation=1,
    build=models.BuildInfo(tag="v1.4.2", commit="89abcdef0123456789abcdef", branch="feature/x", repo="o/app"),
)


def spec(steps: int) -> dict[str, Any]:
    return {
        "steps": [
            {
                "name": f"s{i:03d}",
                "image": "registry.local/app:${DRONE_TAG##v}",
                "commands": [
                    f"echo {i} ${{DRONE_COMMIT_SHA:0:8}} ${{DRONE_BRANCH/\\//-}} $${{HOME}}",
                    'test -n "$HOME" && echo plain text without expressions',
                    f"echo ${{DRONE_SEMVER_MAJOR}}.${{DRONE_SEMVER_MINOR}} {i}",
                ],
                "environment": {"VERSION": "${DRONE_SEMVER}", "PLAIN": "value"},
            }
            for i in range(steps)
        ]
    }


def _time(plan: Callable[[], object]) -> float:
    start = time.perf_counter()
    plan()
    return (time.perf_counter() - start) * 1000


def measure(steps: int, repeats: int) -> dict[str, Any]:
    raw, policy = spec(steps), policies.Policy()
    real = substitution.apply
    variables = environs.variables(CONTEXT.build, stage=CONTEXT.pipeline, stage_type="kubernetes")
    done = real(raw, environs.substitution_lookup(variables))  # the same spec, substituted beforehand

    def with_substitution() -> object:
        return compiling.compile_spec(raw, CONTEXT, policy)

    def floor() -> object:
        substitution.apply = lambda value, lookup, root="spec": value  # type: ignore[misc]
        try:
            return compiling.compile_spec(done, CONTEXT, policy)
        finally:
            substitution.apply = real

    substitution._parsed.cache_clear()
    first = _time(with_substitution)
    on: list[float] = []
    off: list[float] = []
    for _ in range(repeats):  # interleaved, so load on the machine falls on both alike
        on.append(_time(with_substitution))
        off.append(_time(floor))

    def stats(samples: list[float]) -> dict[str, float]:
        return {"median_ms": statistics.median(samples), "min_ms": min(samples), "max_ms": max(samples)}

    return {
        "steps": steps,
        "repeats": repeats,
        "first_plan_ms": first,
        "with_substitution": stats(on),
        "floor_without_substitution": stats(off),
        "ratio_of_medians": statistics.median(on) / statistics.median(off),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.substituting", description=__doc__.split("\n")[0])
    parser.add_argument("--repeats", type=int, default=41)
    args = parser.parse_args(argv)
    results = [measure(steps, args.repeats) for steps in (10, 100)]
    for r in results:
        on, off = r["with_substitution"], r["floor_without_substitution"]
        print(
            f"{r['steps']:>3} steps: plan {on['median_ms']:.1f} ms [{on['min_ms']:.1f}–{on['max_ms']:.1f}] with "
            f"substitution, {off['median_ms']:.1f} ms [{off['min_ms']:.1f}–{off['max_ms']:.1f}] without "
            f"(floor): ×{r['ratio_of_medians']:.2f}; first plan (parse cache empty) {r['first_plan_ms']:.1f} ms"
        )
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    document = {"machine": platform.machine(), "python": platform.python_version(), "results": results}
    RESULTS.write_text(json.dumps(document, indent=2) + "\n")
    print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
