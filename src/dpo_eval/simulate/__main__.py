"""``python -m dpo_eval.simulate``: see ``dpo_eval.simulate.cli``."""

from dpo_eval.simulate.cli import main

main()
