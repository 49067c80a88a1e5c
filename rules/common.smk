# The section table and the helpers the rules share. Logic lives in the bookgen package.

import inspect
import sys
from pathlib import Path

from bookgen import interrupt, jobs, paths
from bookgen.bookdir import book_layer
from bookgen.config import (
    ConfigError,
    book_fingerprint,
    check_config,
    missing_api_key_message,
    resolve_prompt_paths,
    section_fingerprint,
    validate_config,
)
from bookgen.locks import LockBusy, hold_run_lock
from bookgen.money.budget import check_budget_config, exhausted_message
from bookgen.run import live
from bookgen.run.cluster import ProgressWatcher, kept_job_logs, slurm_job_line, stop_when_orphaned
from bookgen.run.progress import start_count
from bookgen.run.status import failure_summary
from bookgen.simulator import validate_config as validate_simulator_config
from bookgen.writing import history, planning
from bookgen.writing.outline import (
    apply_topic_layering,
    book_sections,
    cost_report_inputs,
    outline_failure,
    outline_fingerprint,
    section_index,
    topic_mode,
)
from bookgen.writing.prompts import check_templates

try:
    validate_config(config)
    apply_topic_layering(
        config, book_layer(workflow.basedir, workflow.config_settings.overwrite_config)
    )
    resolve_prompt_paths(config, workflow.basedir)
    check_config(config)
    check_templates(config)
    check_budget_config(config)
    validate_simulator_config(config["simulator"])
    # Topic mode: the sections come from output/outline.json (the `outline` checkpoint); until
    # it exists they are unknown, and every helper below asks the checkpoint for them.
    TOPIC_MODE = topic_mode(config)
    OUTLINE_PARAMS = outline_fingerprint(config) if TOPIC_MODE else {}
    HAVE_OUTLINE = not TOPIC_MODE or paths.outline_file().exists()
    SECTIONS = book_sections(config) if HAVE_OUTLINE else []
except (ConfigError, ValueError) as err:
    sys.exit(str(err))

# Every Snakemake of a SLURM job (the batch step's and the one srun starts for the job) ends
# once the process that started it is gone: a cancelled job's processes otherwise outlive it.
if workflow.remote_exec and slurm_job_line():
    stop_when_orphaned()

SECTION_BY_ID = {s.id: s for s in SECTIONS}
SECTION_BY_KEY = {s.key: s for s in SECTIONS}
BOOK_FINGERPRINT = book_fingerprint(config)
WATCHERS = []  # the main process's ProgressWatcher while jobs run on a cluster
# Sections that moved to another file number get their text back from .bookgen/history at $0.
for line in history.moved_lines(config, SECTIONS, BOOK_FINGERPRINT):
    print(line, file=sys.stderr)


wildcard_constraints:
    sid=r"\d\d+",
    key=r"(?:id|spec)-[a-z0-9_-]+",
    k=r"[1-9]\d*",


def current_sections():
    """The section table; in topic mode the outline's, once the checkpoint has written it
    (only call this inside an input or params function)."""
    if not TOPIC_MODE:
        return SECTIONS
    checkpoints.outline.get()
    return book_sections(config)


def section_files():
    if TOPIC_MODE:
        return lambda wildcards: [str(paths.section_md(s.id)) for s in current_sections()]
    return [str(paths.section_md(s.id)) for s in SECTIONS]


def usage_files():
    """Every usage file the cost report merges (bookgen.writing.outline.cost_report_inputs)."""
    if TOPIC_MODE:
        return lambda wildcards: [
            str(p) for p in cost_report_inputs(config, current_sections())
        ]
    return [str(p) for p in cost_report_inputs(config, SECTIONS)]


def section_titles():
    """``N. Title`` of every section (a params function in topic mode)."""
    if TOPIC_MODE:
        return lambda wildcards: [f"{s.number}. {s.title}" for s in current_sections()]
    return [f"{s.number}. {s.title}" for s in SECTIONS]


def presigned(fn):
    """Snakemake inspects an input or params function's signature each time it calls it (about
    20 times per section in a dry run); a precomputed one makes that 5x cheaper for big books."""
    fn.__signature__ = inspect.signature(fn)
    return fn


def book_files():
    """book.md and the formats the config asks for by default (`formats`)."""
    return [str(paths.book_file(f)) for f in ("md", *config["formats"])]


def section_of(wildcards):
    """The section a job is for: by file number (`sid`) or, for plans and parts, by key."""
    if TOPIC_MODE:
        checkpoints.outline.get()
    if "key" in wildcards.keys():
        table = {s.key: s for s in current_sections()} if TOPIC_MODE else SECTION_BY_KEY
        section = table.get(wildcards.key)
        if section is None:
            raise ValueError(f"no section of the book has the key {wildcards.key}")
        return section
    table = section_index(config) if TOPIC_MODE else SECTION_BY_ID
    section = table.get(wildcards.sid)
    if section is None:
        ids = sorted(table)
        raise ValueError(
            f"there is no section {wildcards.sid}: the book has sections {ids[0]}..{ids[-1]}"
        )
    return section


def fingerprint(part):
    """A params function: one part of what determines a section's text (see bookgen.config)."""

    def get(wildcards):
        return section_fingerprint(BOOK_FINGERPRINT, section_of(wildcards))[part]

    return presigned(get)


def known_sections():
    """The book's sections, as far as they are known (a topic needs its outline)."""
    if TOPIC_MODE and not paths.outline_file().exists():
        return []
    return book_sections(config)


def known_section_ids():
    return [s.id for s in known_sections()]


@presigned
def section_inputs(wildcards):
    """A planned section's plan and parts (bookgen.writing.parts); nothing for the others. In topic
    mode a section job waits for the outline checkpoint (section_of asks it), but the outline
    is deliberately not an input file: editing one entry must not regenerate every section."""
    section = section_of(wildcards)
    if not planning.is_planned(config, section):
        return []
    if not planning.parts_needed(config, section, section_fingerprint(BOOK_FINGERPRINT, section)):
        return []  # finished before its parts were jobs, or restored from history: no call
    plan = checkpoints.plan.get(key=section.key).output.plan
    count = planning.part_count(config, planning.read_plan(Path(plan)))
    return [plan, *(str(paths.part_md(section.key, k)) for k in range(1, count + 1))]


@presigned
def part_inputs(wildcards):
    """A part needs its section's plan; written one after another, also the part before."""
    plan = str(paths.section_plan(wildcards.key))
    k = int(wildcards.k)
    if planning.parallel(config) or k == 1:
        return [plan]
    return [plan, str(paths.part_md(wildcards.key, k - 1))]


def on_start(workflow):
    """Before any job: stop if a section needs the API and no key is set; clear old halts;
    take the run lock; start the count of finished sections; make Ctrl-C stop the sections in
    flight (bookgen.interrupt). When the jobs run on a cluster, print each finished section here
    (bookgen.run.cluster)."""
    needrun = [j for j in workflow.dag.needrun_jobs() if j.rule.name in ("section", "outline")]
    writes_sections = bool(needrun)
    message = missing_api_key_message(config) if writes_sections else None
    if writes_sections and not message:
        message = exhausted_message(config, SECTIONS)
    if message:
        sys.exit(message)
    try:
        hold_run_lock()
    except LockBusy as err:
        sys.exit(str(err))
    paths.halt_file().unlink(missing_ok=True)
    rewriting = {j.wildcards.sid for j in needrun if j.rule.name == "section"}
    # Only this book's current texts count as kept: not another book's files in output/.
    kept = sum(
        s.id not in rewriting and history.in_place(s, section_fingerprint(BOOK_FINGERPRINT, s))
        for s in SECTIONS
    )
    start_count(kept, len(SECTIONS))
    api = workflow.global_resources.get("api")
    api = getattr(api, "value", api) or workflow.cores
    live.register_run(config, SECTIONS, min(workflow.cores, int(api)))
    for line in history.adopt_bookkeeping(SECTIONS):
        print(line, file=sys.stderr)
    interrupt.install()
    if not workflow.local_exec:
        WATCHERS.append(ProgressWatcher(config, known_section_ids))
        WATCHERS[-1].start()
    if writes_sections and config["provider"] == "simulator":
        print(
            "bookgen: provider=simulator: sections are SIMULATED offline by bookgen's built-in "
            f"simulator (no API calls, nothing billed); costs show what {config['model']} "
            "would charge for these tokens.",
            file=sys.stderr,
        )


def on_end():
    """After the last job: let the process exit at once (see bookgen.jobs.release_exit)."""
    for watcher in WATCHERS:
        watcher.stop()
    jobs.release_exit()


def on_error():
    on_end()
    sections = known_sections()
    job_logs = None
    if not workflow.local_exec:  # the logs the SLURM plugin keeps for failed jobs
        ids = [s.id for s in sections]
        job_logs = kept_job_logs(ids, getattr(workflow.executor_settings, "logdir", None))
    summary = "\n".join(
        filter(None, [outline_failure(), failure_summary(sections, job_logs=job_logs)])
    )
    if summary:
        print(summary, file=sys.stderr)
