"""`python -m dpo_eval.cli` is the `dpo-eval` command."""

from dpo_eval.cli import main

raise SystemExit(main())
