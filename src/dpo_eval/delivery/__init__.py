"""Delivery of the reports by e-mail: recipients, a deterministic outbox, and an SMTP sender with
a persistent ledger so that no institution gets a message twice, a stale one, or another's report.

The default DAG only writes the outbox (``results/outbox/``: one ``.eml`` per recipient, the
``manifest.csv`` of who gets what with the SHA-256 of every message and attachment, and
``inputs.csv``, the SHA-256 of every input the outbox was built from). Sending is a separate,
explicit step (``snakemake --cores 1 send`` or ``python -m dpo_eval.delivery send``) that

* holds an exclusive lock (``fcntl.flock`` on ``<ledger>.lock``) for the whole send, so that two
  senders started at once cannot both deliver a message;
* refuses an outbox that does not match the current inputs, configuration and code (a rerun that
  failed after an input changed leaves the previous run's outbox behind: it is not sent);
* stamps each message with the send date and a fresh Message-ID, both kept in the ledger.

One module per concern, each importable alone (a rule's code inputs are the modules it imports,
so the outbox step does not depend on the SMTP code):

* ``errors``: the errors that stop delivery, each with its exit status;
* ``project``: the project folder, its configuration (checked against the pipeline's schema);
* ``recipients``: which report each recipient gets, under which name, and that every school
  with a report has a recipient (the recipients file itself is read by ``dpo_eval.core.registry``);
* ``message``: the e-mail itself (transliterated file names, RFC 2047 display names, the send
  date and Message-ID stamped at sending);
* ``outbox``: writing the outbox and checking that it is still the product of the inputs;
* ``ledger``: the append-only record of every send and the lock of the single sender;
* ``smtp``: connection settings, TLS, login and one SMTP transaction;
* ``sending``: the plan (send, skip, changed, unresolved) and the send loop with its retries;
* ``cli``: ``python -m dpo_eval.delivery plan|send|resolve``.

Exit codes of ``python -m dpo_eval.delivery`` (also in README.md): 0 done, 1 some messages not
delivered (failed, deferred or unresolved), 2 invalid command line, configuration or
recipients, 3 stale outbox, 4 reports changed since they were sent, 5 another sender holds the
lock, 6 cannot connect, 7 TLS failure (untrusted certificate, no STARTTLS), 8 CA file missing or
unreadable, 9 login refused or password missing.
"""
