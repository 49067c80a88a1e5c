"""An older commit of bookgen to run next to the current code in the same bench run.

Its tree comes from ``git archive``; its interpreter is a venv without pip whose only
site-packages entries are that tree and this venv's installed packages (a ``.pth`` file lists
them), so the same Snakemake and libraries run the reference's own ``bookgen``. The editable
install of this checkout is not on its path: Snakemake imports every installed logger plugin at
start-up, and bookgen's would import this checkout's ``bookgen`` before the reference's
Snakefile could import its own.
"""

from __future__ import annotations

import io
import subprocess
import sysconfig
import tarfile
import venv
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import REPO

PROBE = """import bookgen
print("bookgen imported from", bookgen.__file__)


rule probe:
    run:
        pass
"""


@dataclass(frozen=True)
class Reference:
    """A checked-out commit: its tree and the command that runs Snakemake on it."""

    commit: str
    root: Path
    python: Path

    @property
    def snakemake(self) -> tuple[str, ...]:
        return (str(self.python), "-m", "snakemake")


def checkout(commit: str, dest: Path) -> Reference:
    """``commit`` of this repository as a tree in ``dest/tree`` with its interpreter."""
    full = subprocess.run(
        ["git", "rev-parse", "--short", f"{commit}^{{commit}}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    tree, env = dest / "tree", dest / "venv"
    archive = subprocess.run(["git", "archive", full], cwd=REPO, capture_output=True, check=True)
    tree.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(tree, filter="data")
    venv.EnvBuilder(with_pip=False).create(env)
    python = env / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    ours = sysconfig.get_paths()["purelib"]  # this venv's packages: the same Snakemake, openai
    (Path(site) / "bench-reference.pth").write_text(f"{tree}\n{ours}\n")
    return Reference(full, tree, python)


def imported_bookgen(snakemake: tuple[str, ...], book: Path) -> str:
    """Where ``import bookgen`` finds the package inside a Snakemake run in ``book`` with
    ``snakemake``: a Snakefile next to the book's own prints it while Snakemake parses it."""
    probe = book / "probe.smk"
    probe.write_text(PROBE)
    proc = subprocess.run(
        [*snakemake, "-s", probe.name, "--cores", "1", "--dry-run"],
        cwd=book,
        capture_output=True,
        text=True,
    )
    probe.unlink()
    for line in (proc.stdout + proc.stderr).splitlines():
        if line.startswith("bookgen imported from "):
            return line.removeprefix("bookgen imported from ")
    raise RuntimeError(f"probe run in {book} printed no bookgen path:\n{proc.stderr[-2000:]}")
