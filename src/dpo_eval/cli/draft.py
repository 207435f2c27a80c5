"""`dpo-eval draft-codebook EXPORTS...`: the command line of the codebook drafter
(dpo_eval.cli.drafting), imported only when a draft is made so that `--help` stays fast."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from dpo_eval.cli import add_project_option
from dpo_eval.core.errors import UserError


def _configured_waves(config_path: Path) -> dict[str, str]:
    """File -> wave, as config/config.yaml lists them (paths as written there)."""
    import yaml

    if not config_path.is_file():
        return {}
    try:
        config = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError:
        return {}
    waves = config.get("waves") or {}
    return {str(Path(f)): wave for wave, spec in waves.items() if isinstance(spec, dict)
            for f in spec.get("files") or []}


def run(args: argparse.Namespace) -> int:
    from dpo_eval.cli import project_of
    from dpo_eval.cli.draft_yaml import render_codebook, update_config_block
    from dpo_eval.cli.drafting import TEMPLATE_FIELDS, build_draft

    project = project_of(args)
    paths = [Path(p) for p in args.exports]
    # Paths are written into the configuration relative to the project, as it reads them.
    relative = [p.resolve().relative_to(project) if p.resolve().is_relative_to(project) else p.resolve()
                for p in paths]
    config_path = project / "config" / "config.yaml"
    output = Path(args.output) if args.output else project / "config" / "codebook.yaml"
    if str(output) != "-" and output.exists() and not args.force:
        raise UserError(f"{output} exists. What to do: give --force to replace it, or --output "
                        "another file (- for the terminal)")
    os.chdir(project)
    draft, template = build_draft(relative, _configured_waves(config_path))
    text = render_codebook(draft, template, TEMPLATE_FIELDS.read_text(encoding="utf-8"),
                           [str(p) for p in relative])
    if str(output) == "-":
        sys.stdout.write(text)
        return 0
    output.write_text(text, encoding="utf-8")
    guesses = text.count("GUESS")
    print(f"wrote {output}: {len(draft.items)} items in {len(draft.domains)} candidate domains, "
          f"scales {', '.join(draft.scales)}, waves {', '.join(draft.waves)}"
          + (f", {len(draft.need_areas)} need areas" if draft.need_areas else "")
          + f"; {guesses} GUESS and {text.count('TODO')} TODO marks to confirm")
    if not args.no_config:
        for line in update_config_block(config_path, draft):
            print(line)
    return 0


def add_parser(commands) -> None:
    parser = commands.add_parser(
        "draft-codebook", help="draft config/codebook.yaml from the survey exports",
        description="Read the exports of each wave (CSV/XLSX, any supported encoding), the needs "
                    "assessment and the institutions registry, and draft the codebook: items "
                    "grouped into candidate domains, scales, reverse-keyed and retrospective "
                    "items, per-wave fields, not_asked and retrospective lists. Every guess is "
                    "marked GUESS. Also writes the file lists of config/config.yaml (between its "
                    "'# >>> files' and '# <<< files' lines) and, when missing, "
                    "config/recipients.csv from the registry.")
    parser.add_argument("exports", nargs="+", metavar="EXPORT", help="survey exports and registry")
    add_project_option(parser)
    parser.add_argument("--output", "-o", help="where to write the draft (default: config/codebook.yaml "
                        "of the project; - for the terminal)")
    parser.add_argument("--force", action="store_true", help="replace an existing codebook")
    parser.add_argument("--no-config", action="store_true",
                        help="leave config/config.yaml and config/recipients.csv alone")
    parser.set_defaults(run=run)
