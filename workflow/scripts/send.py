import contextlib
import io
import sys
import tempfile
from pathlib import Path

import yaml

from dpo_eval.delivery.cli import main

# The configuration of this Snakemake run (with any --config/--configfile), checked by the
# sender against the schema and against the configuration the outbox was built with.
with tempfile.NamedTemporaryFile("w", suffix=".yaml", encoding="utf-8") as config:
    yaml.safe_dump(dict(snakemake.config), config, allow_unicode=True)
    config.flush()
    captured = io.StringIO()
    with contextlib.redirect_stdout(captured), contextlib.redirect_stderr(captured):
        # The project's outbox as the latest successful run left it (not an input of the rule:
        # sending never rebuilds it); the sender refuses it when it is stale.
        status = main(["send", "--project", str(Path.cwd()), "--config", config.name])
# The summary goes to the terminal and to the log (like `tee`); the status to the workflow's
# onerror handler, which makes it Snakemake's exit status.
Path(snakemake.log.summary).parent.mkdir(parents=True, exist_ok=True)
Path(snakemake.log.summary).write_text(captured.getvalue(), encoding="utf-8")
Path(snakemake.log.status).write_text(f"{status}\n", encoding="utf-8")
print(captured.getvalue(), end="", file=sys.stderr if status else sys.stdout)
sys.exit(status)
