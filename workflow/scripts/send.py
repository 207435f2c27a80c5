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
        status = main(["send", "--project", str(Path.cwd()), "--config", config.name,
                       "--manifest", str(Path(snakemake.input.outbox) / "manifest.csv")])
# The summary goes to the terminal and to the log (like `tee`).
Path(snakemake.log[0]).parent.mkdir(parents=True, exist_ok=True)
Path(snakemake.log[0]).write_text(captured.getvalue(), encoding="utf-8")
print(captured.getvalue(), end="", file=sys.stderr if status else sys.stdout)
sys.exit(status)
