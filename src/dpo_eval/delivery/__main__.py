"""``python -m dpo_eval.delivery``: see dpo_eval.delivery.cli."""

import sys

from dpo_eval.delivery.cli import main

sys.exit(main())
