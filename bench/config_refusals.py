"""How long the config loader takes to refuse its known worst inputs, and to load the shipped configs.

    python bench/config_refusals.py [--repeats 5]

The tests check that these inputs are refused with a ConfigError and without growing memory
(tests/schema/test_config.py) and that no fuzzed config ends in another exception (test_config_fuzz.py); how long
the refusal takes depends on the machine and its load, so it is measured here, not asserted there. Each line is
the median of --repeats calls and the target it had in the suite (1 s for the alias bombs, 5 s for anything
else: longer counts as a hang).
"""

from __future__ import annotations

import argparse
import pathlib
import statistics
import tempfile
import time

from invariance_lab.config.load import load_config, parse_config
from invariance_lab.core.errors import ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[1]
LOLS = '["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]'


def alias_bomb(levels: int = 9) -> str:
    """The billion laughs: nine levels of nine aliases, used as a value (9**9 strings if expanded)."""
    lines = [f"a: &a {LOLS}"] + [f"{chr(97 + i)}: &{chr(97 + i)} [{', '.join(['*' + chr(96 + i)] * 9)}]"
                                 for i in range(1, levels)]
    return "\n".join(lines) + f"\nname: *{chr(96 + levels)}\n"


def flow_bomb(levels: int = 9) -> str:
    """The same bomb in one line of flow-style YAML, as a --set value."""
    text = f"&a0 {LOLS}"
    for i in range(1, levels):
        text = f"[{text}, &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]]"
    return text


def shared_structure(levels: int = 9) -> dict:
    """A Python structure whose lists share their parts: small in memory, 9**9 values when walked."""
    lols = ["lol"] * 9
    for _ in range(levels - 1):
        lols = [lols] * 9
    return {"name": lols}


def seconds(call, repeats: int) -> tuple[float, str]:
    """Median wall seconds of `call`, and what it ended in."""
    times, outcome = [], ""
    for _ in range(repeats):
        t0 = time.perf_counter()
        try:
            call()
            outcome = "accepted"
        except ConfigError as e:
            outcome = f"refused: {str(e).splitlines()[0][:70]}"
        times.append(time.perf_counter() - t0)
    return statistics.median(times), outcome


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="config_refusals-"))

    def from_text(name: str, text: str, overrides=()):
        path = tmp / f"{name}.yaml"
        path.write_text(text)
        return lambda: load_config(path, overrides=list(overrides))

    cases = [("10**9 test images", from_text("huge", "data:\n  test_images: 1000000000\n"), 5.0),
             ("alias bomb (file)", from_text("bomb", alias_bomb()), 1.0),
             ("alias bomb (--set)", from_text("flow", "name: x\n", ["data.letters=" + flow_bomb()]), 1.0),
             ("shared Python structure", lambda: parse_config(shared_structure()), 1.0)]
    cases += [(f"configs/{p.name}", (lambda p=p: load_config(p)), 5.0)
              for p in sorted((ROOT / "configs").glob("*.yaml"))]
    for name, call, target in cases:
        s, outcome = seconds(call, args.repeats)
        met = "met" if s < target else "NOT MET"
        print(f"{name:40s} {s * 1000:8.1f} ms  (target < {target:.0f} s: {met})  {outcome}")


if __name__ == "__main__":
    main()
