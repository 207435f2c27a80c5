"""A throw-away single-node Slurm cluster on this machine, for the tests of the Slurm profile.

    python tests/slurm/cluster.py start DIR   # prints: export SLURM_CONF=DIR/slurm.conf
    python tests/slurm/cluster.py stop DIR

``start`` (as root) writes ``DIR/slurm.conf`` naming this host as the controller and the only
compute node (partition ``main``), with its own munge key and socket, free ports, and the
plugins that need neither cgroups nor a database (``ProctrackType=proctrack/linuxproc``,
``TaskPlugin=task/none``, ``SelectType=select/cons_tres``, no accounting storage); then starts
``munged``, ``slurmctld`` and ``slurmd`` and waits until ``sinfo`` shows the node idle. ``stop``
ends exactly the daemons whose pid files are in DIR, so a system Slurm or another test cluster
on the same machine is never touched. Slurm's clients find this cluster through the
environment variable ``SLURM_CONF``, and inside a job (where the Snakemake executor drops every
``SLURM_*`` variable before its ``srun``) through ``/run/slurm/conf``, the folder that Slurm's
clients read on a compute node of a "configless" cluster: ``start`` links it to DIR while no
other live cluster owns it, ``stop`` removes the link if it is DIR's.

Without accounting there is no ``sacct``: the Snakemake profile asks ``squeue`` for job states,
and ``MinJobAge`` keeps finished jobs visible to it for a day.

Needs the Debian packages ``slurmctld slurmd slurm-client munge`` (Slurm 22.05 tested).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

DAEMONS = ("slurmd", "slurmctld", "munged")  # stop order: the reverse of the start order
PROGRAMS = ("munged", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue", "scancel")
PARTITION = "main"
# CPUs the node offers at least, whatever the machine has: rules ask for up to 4 threads (the
# school reports' pool), which a real cluster node has; on a 2-core CI machine the node
# oversubscribes its cores instead of leaving such a job pending for ever.
MIN_NODE_CPUS = 8
# Where Slurm's clients look for slurm.conf after SLURM_CONF and /etc/slurm/slurm.conf.
NODE_CONF_LINK = Path("/run/slurm/conf")


class ClusterUnavailable(RuntimeError):
    """This machine cannot run the test cluster; the message says why and what to install."""


@dataclass(frozen=True)
class Cluster:
    folder: Path

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    def environment(self) -> dict[str, str]:
        """The caller's environment pointing Slurm's clients (sbatch, squeue...) at this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}


def missing_requirements() -> str | None:
    """Why the cluster cannot start here (None when it can)."""
    missing = [name for name in PROGRAMS if shutil.which(name) is None
               and not Path("/usr/sbin", name).exists()]
    if missing:
        return (f"Slurm/munge programs not found: {', '.join(missing)} (install the Debian packages "
                "slurmctld slurmd slurm-client munge)")
    if Path("/etc/slurm/slurm.conf").exists():
        return ("/etc/slurm/slurm.conf exists: this machine belongs to a Slurm cluster already, "
                "whose configuration jobs would read instead of the test cluster's")
    if os.geteuid() != 0:
        return "starting slurmctld, slurmd and munged needs root (run the tests as root, as CI does)"
    return None


def _program(name: str) -> str:
    return shutil.which(name) or str(Path("/usr/sbin", name))


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def node_line() -> tuple[str, str]:
    """This machine's node name and its CPUs and memory for slurm.conf: slurmd's detection
    (``slurmd -C``), with at least MIN_NODE_CPUS CPUs."""
    detected = subprocess.run([_program("slurmd"), "-C"], capture_output=True, text=True, check=True)
    line = detected.stdout.splitlines()[0]
    name = re.search(r"NodeName=(\S+)", line).group(1)
    cpus = max(int(re.search(r"CPUs=(\d+)", line).group(1)), MIN_NODE_CPUS)
    memory = re.search(r"RealMemory=(\d+)", line).group(1)
    return name, f"CPUs={cpus} RealMemory={memory}"


def slurm_conf(folder: Path, node: str, hardware: str, ports: tuple[int, int]) -> str:
    return "\n".join([
        "# Test cluster written by tests/slurm/cluster.py: this host is controller and only node.",
        "ClusterName=dpoevaltest",
        f"SlurmctldHost={node}(127.0.0.1)",
        f"SlurmctldPort={ports[0]}",
        f"SlurmdPort={ports[1]}",
        "SlurmUser=root",
        "SlurmdUser=root",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={folder / 'munge' / 'munge.socket'}",
        f"StateSaveLocation={folder / 'state'}",
        f"SlurmdSpoolDir={folder / 'spool'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}",
        f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'slurmctld.log'}",
        f"SlurmdLogFile={folder / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core_Memory",
        "AccountingStorageType=accounting_storage/none",
        "JobAcctGatherType=jobacct_gather/none",
        "JobCompType=jobcomp/none",
        "MpiDefault=none",
        "ReturnToService=2",
        # Take the node's CPUs from this file (more than the machine may have, see node_line).
        "SlurmdParameters=config_overrides",
        # Finished jobs stay visible to squeue (the job-state source without accounting).
        "MinJobAge=86400",
        "SchedulerParameters=sched_interval=2",
        f"NodeName={node} NodeAddr=127.0.0.1 {hardware} State=UNKNOWN",
        f"PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP",
        "",
    ])


def _pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _alive(pid: int, name: str) -> bool:
    try:
        return name in Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False


def _wait(predicate, timeout: float, what: str, folder: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.5)
    logs = "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')[-2000:]}"
                     for log in sorted(folder.glob("*.log")))
    raise ClusterUnavailable(f"{what} within {timeout:.0f} s; logs in {folder}:\n{logs}")


def _run(command: list[str], folder: Path, env: dict[str, str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True, env=env)
    if result.returncode != 0:
        raise ClusterUnavailable(f"{' '.join(command)} failed ({result.returncode}): "
                                 f"{result.stderr.strip() or result.stdout.strip()}; logs in {folder}")


def _link_node_conf(folder: Path, timeout: float) -> None:
    """Point /run/slurm/conf at ``folder``, waiting while another live test cluster owns it."""
    deadline = time.monotonic() + timeout
    while NODE_CONF_LINK.is_symlink() or NODE_CONF_LINK.exists():
        owner = Path(os.readlink(NODE_CONF_LINK)) if NODE_CONF_LINK.is_symlink() else None
        if owner is None:
            raise ClusterUnavailable(f"{NODE_CONF_LINK} is not a link of a test cluster: a Slurm "
                                     "node runs on this machine already")
        if owner == folder or not _alive(_pid(owner / "slurmctld.pid") or 0, "slurmctld"):
            NODE_CONF_LINK.unlink()  # ours, or left behind by a cluster that is gone
            break
        if time.monotonic() > deadline:
            raise ClusterUnavailable(f"another test cluster ({owner}) is still running")
        time.sleep(2)
    NODE_CONF_LINK.parent.mkdir(parents=True, exist_ok=True)
    NODE_CONF_LINK.symlink_to(folder)


def node_state(cluster: Cluster) -> str:
    result = subprocess.run(["sinfo", "--noheader", "--partition", PARTITION, "--format", "%t"],
                            capture_output=True, text=True, env=cluster.environment())
    return result.stdout.strip() if result.returncode == 0 else ""


def start(folder: Path, timeout: float = 60.0, wait_for_other: float = 900.0) -> Cluster:
    """Write the configuration, start munged, slurmctld and slurmd, and wait for an idle node."""
    reason = missing_requirements()
    if reason:
        raise ClusterUnavailable(reason)
    folder = Path(folder).resolve()
    cluster = Cluster(folder)
    for sub in ("munge", "state", "spool"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    # munged refuses folders that others can write to.
    for path in (folder, folder / "munge"):
        path.chmod(0o700 if path == folder / "munge" else 0o755)
    key = folder / "munge" / "munge.key"
    if not key.exists():
        key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o400)
    _link_node_conf(folder, wait_for_other)
    node, hardware = node_line()
    cluster.conf.write_text(slurm_conf(folder, node, hardware, tuple(_free_ports(2))), encoding="utf-8")
    env = cluster.environment()
    try:
        munge = folder / "munge"
        _run([_program("munged"), f"--socket={munge / 'munge.socket'}", f"--key-file={key}",
              f"--pid-file={folder / 'munged.pid'}", f"--log-file={folder / 'munged.log'}",
              f"--seed-file={munge / 'munged.seed'}", "--force"], folder, env)
        _wait(lambda: (munge / "munge.socket").exists(), timeout, "munged did not open its socket", folder)
        _run([_program("slurmctld"), "-f", str(cluster.conf)], folder, env)
        _wait(lambda: node_state(cluster) != "", timeout, "slurmctld did not answer sinfo", folder)
        _run([_program("slurmd"), "-f", str(cluster.conf)], folder, env)
        _wait(lambda: node_state(cluster) == "idle", timeout,
              f"node {node} did not become idle in partition {PARTITION}", folder)
    except BaseException:
        stop(folder)
        raise
    return cluster


def stop(folder: Path, timeout: float = 30.0) -> list[str]:
    """End the daemons whose pid files are in ``folder`` (only those); returns what was stopped."""
    folder = Path(folder).resolve()
    stopped = []
    for name in DAEMONS:
        pid = _pid(folder / f"{name}.pid")
        if pid is None or not _alive(pid, name):
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while _alive(pid, name) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(pid, name):
            os.kill(pid, signal.SIGKILL)
        stopped.append(f"{name} ({pid})")
    if NODE_CONF_LINK.is_symlink() and Path(os.readlink(NODE_CONF_LINK)) == folder:
        NODE_CONF_LINK.unlink()
    return stopped


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("action", choices=("start", "stop"))
    parser.add_argument("folder", type=Path, help="folder for configuration, state, logs and pid files")
    args = parser.parse_args(argv)
    try:
        if args.action == "start":
            cluster = start(args.folder)
            print(f"export SLURM_CONF={cluster.conf}")
        else:
            print("stopped: " + (", ".join(stop(args.folder)) or "nothing"), file=sys.stderr)
    except ClusterUnavailable as error:
        sys.exit(f"cluster.py: {error}")


if __name__ == "__main__":
    main()
