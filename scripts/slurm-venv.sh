#!/usr/bin/env bash
# The virtualenv the SLURM test runs Snakemake from (tests/test_slurm.py): .venv-slurm, layered on
# the test venv (.venv, made first) plus the `slurm` extra, the executor plugin. Not in .venv
# itself: Snakemake imports every installed executor plugin at each start (0.8 s for this one),
# which every other test would pay. Layered, it installs in seconds instead of a whole venv's
# minute: .venv's packages (bookgen's editable install included) come in through a .pth line.
set -euo pipefail
cd "$(dirname "$0")/.."
base=$(.venv/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
rm -rf .venv-slurm
python3 -m venv .venv-slurm
own=$(.venv-slurm/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')
echo "import site; site.addsitedir('$base')" > "$own/bookgen-test-venv.pth"
# the `slurm` extra's requirements, as pyproject.toml states them (bookgen itself comes from .venv)
extra=$(.venv/bin/python -c 'import tomllib
project = tomllib.load(open("pyproject.toml", "rb"))["project"]
print("\n".join(project["optional-dependencies"]["slurm"]))')
mapfile -t requirements <<< "$extra"
.venv-slurm/bin/pip install -q "${requirements[@]}"
.venv-slurm/bin/python -c 'import bookgen, snakemake_executor_plugin_slurm'
echo "slurm-venv: .venv-slurm ready (.venv plus the SLURM executor plugin)"
