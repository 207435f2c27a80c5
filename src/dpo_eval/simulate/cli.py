"""The command line of the generator: ``python -m dpo_eval.simulate``, ``dpo-simulate`` and
``dpo-eval simulate`` (which hands its arguments to ``main``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from dpo_eval.core.codebook import load_codebook
from dpo_eval.simulate.design import DEMO_SEED, Contamination, SimulationSpec
from dpo_eval.simulate.exports import FILES
from dpo_eval.simulate.generator import simulate_study


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dpo_eval.simulate",
        description="Write a simulated DPO evaluation study (raw survey exports) and its ground truth.")
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help="random seed (demo: %(default)s)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the raw exports")
    parser.add_argument("--truth", type=Path, help="ground-truth JSON (default: OUT/../truth.json)")
    parser.add_argument("--codebook", type=Path, default=Path("config/codebook.yaml"))
    parser.add_argument("--schools", type=int, default=60, help="number of schools")
    parser.add_argument("--municipalities", type=int, default=14, choices=range(1, 17),
                        metavar="1..16", help="number of municipalities")
    parser.add_argument("--team-size", type=float, default=4.0, help="mean team size per school (>= 2)")
    parser.add_argument("--needs", type=int, default=300, help="needs-assessment respondents")
    parser.add_argument("--contamination", type=float, default=1.0,
                        help="multiplier of all defect rates: 0 gives clean data, 2 doubles them")
    parser.add_argument("--effect-scale", type=float, default=1.0,
                        help="multiplier of the true program effects (0 gives a null study)")
    parser.add_argument("--small-institution", type=int, default=None,
                        help="give the first school exactly this many participants")
    parser.add_argument("--intercept-shift", action="append", default=[], metavar="ITEM=SHIFT",
                        help="shift the intercept of ITEM at the exit wave by SHIFT scale points "
                             "(non-invariance; repeatable)")
    return parser


def _intercept_shifts(parser: argparse.ArgumentParser, values: list[str]) -> dict[str, float]:
    shifts = {}
    for value in values:
        item, _, shift = value.partition("=")
        try:
            shifts[item.strip()] = float(shift)
        except ValueError:
            parser.error(f"--intercept-shift {value!r}: expected ITEM=SHIFT, e.g. pk3=0.8")
    return shifts


def main(argv: list[str] | None = None) -> None:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.schools < args.municipalities:
        parser.error(f"--schools {args.schools} is fewer than --municipalities {args.municipalities}: every "
                     f"municipality gets at least one school; give --municipalities {max(1, args.schools)} "
                     "or fewer")
    spec = SimulationSpec(seed=args.seed, n_schools=args.schools,
                          n_municipalities=args.municipalities, team_size_mean=args.team_size,
                          n_needs=args.needs, small_institution_size=args.small_institution,
                          contamination=Contamination().scaled(args.contamination),
                          intercept_shift=_intercept_shifts(parser, args.intercept_shift))
    spec.did = {d: v * args.effect_scale for d, v in spec.did.items()}
    truth_path = args.truth or args.out.parent / "truth.json"
    codebook = load_codebook(args.codebook)
    unknown = set(spec.intercept_shift) - {item.id for item in codebook.items}
    if unknown:
        parser.error(f"--intercept-shift: {', '.join(sorted(unknown))} is not an item of {args.codebook}")
    truth = simulate_study(spec, codebook, args.out, truth_path)
    print(f"wrote {len(FILES)} files to {args.out}; ground truth in {truth_path}: "
          f"{truth['participants']['enrolled']} participants, "
          f"{truth['institutions']['schools']} schools")
