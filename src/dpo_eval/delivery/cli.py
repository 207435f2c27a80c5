"""The command line ``python -m dpo_eval.delivery plan|send|resolve`` and its exit codes
(listed in the package docstring and README.md)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from dpo_eval.delivery.errors import ChangedReportsError, DeliveryError
from dpo_eval.delivery.ledger import Ledger
from dpo_eval.delivery.outbox import check_outbox_current
from dpo_eval.delivery.project import DEFAULT_MANIFEST, find_project, in_project, load_delivery_config
from dpo_eval.delivery.sending import plan, send_outbox
from dpo_eval.delivery.smtp import smtp_settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m dpo_eval.delivery",
        description="Send the outbox by SMTP, show who would get what, or settle an unresolved send. "
                    "Exit codes: 0 done, 1 not all delivered, 2 invalid command/configuration, 3 stale "
                    "outbox, 4 changed reports, 5 another sender running, 6 cannot connect, 7 TLS failure, "
                    "8 CA file problem, 9 login refused.")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--project", type=Path,
                        help="project directory (default: the one containing the current directory)")
    common.add_argument("--config", type=Path, help="default: config/config.yaml of the project")
    common.add_argument("--manifest", type=Path, help="default: results/outbox/manifest.csv of the project")
    common.add_argument("--ledger", type=Path, help="default: delivery.ledger of the config, in the project")
    commands = parser.add_subparsers(dest="command", required=True, metavar="{plan,send,resolve}")
    for name, text in (("plan", "list per message and address: send, skip, changed, unresolved"),
                       ("send", "send what has not been delivered")):
        sub = commands.add_parser(name, parents=[common], help=text)
        changed = sub.add_mutually_exclusive_group()
        changed.add_argument("--resend-changed", action="store_true",
                             help="resend to institutions whose report changed since it was sent")
        changed.add_argument("--skip-changed", action="store_true",
                             help="leave institutions whose report changed since it was sent")
        if name == "send":
            sub.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                             help="wait this long for another running sender to finish (default: stop at once)")
    resolve = commands.add_parser("resolve", parents=[common], help="record the outcome of an unresolved send")
    resolve.add_argument("--institution", required=True)
    resolve.add_argument("--recipient", required=True, help="the address as in the plan")
    resolve.add_argument("--status", required=True, choices=["sent", "failed"],
                         help="sent: it arrived (never resend); failed: it did not (send again)")
    resolve.add_argument("--note", default="", help="how this was established (kept in the ledger)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        project = args.project.resolve() if args.project else find_project()
        config = load_delivery_config(project, args.config)
        ledger_path = args.ledger or in_project(project, config["delivery"]["ledger"])
        manifest_path = args.manifest or project / DEFAULT_MANIFEST
        if args.command == "resolve":
            Ledger(ledger_path).resolve(args.institution, args.recipient, args.status, args.note)
            print(f"recorded: {args.institution} <{args.recipient}> {args.status}")
            return 0
        if args.command == "plan":
            manifest = check_outbox_current(manifest_path, project, config)
            actions = plan(manifest, Ledger(ledger_path), args.resend_changed, args.skip_changed)
            for action in actions:
                # A school report with only the team's participation: worth a word in the e-mail.
                flag = ("  [no score figure of its own team or municipality]"
                        if action.get("own_figure") == "no" else "")
                print(f"{action['action']:<12} {action['institution']:<12} {action['address']:<40} "
                      f"{Path(action['attachment']).name} ({action['report']}, {action['language']}){flag}")
            return ChangedReportsError.exit_code if any(a["action"] == "changed" for a in actions) else 0
        settings = smtp_settings(config, project)
        summary = send_outbox(manifest_path, ledger_path, settings, args.resend_changed,
                              skip_changed=args.skip_changed, wait=args.wait,
                              verify=lambda: check_outbox_current(manifest_path, project, config))
    except DeliveryError as exc:
        print(f"ERROR: {exc}", file=sys.stderr)
        return exc.exit_code
    print("\n".join(summary.lines()))
    return 1 if summary.failed or summary.deferred or summary.unresolved else 0


