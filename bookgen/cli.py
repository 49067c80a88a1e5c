"""The ``bookgen`` command: ``estimate``, ``status`` and ``reprice`` for a book directory.

Each reads the config the way ``snakemake`` does (the workflow's ``config/config.yaml``, the
book directory's own when it has one, then each ``--configfile``, then ``--config key=value``)
and validates it the same way. None calls the API
or needs a key: ``estimate`` and ``status`` only read files; ``reprice`` rewrites the recorded
costs (bookgen.money.reprice).

Each subcommand imports what it uses (Snakemake's CLI alone takes 0.7 s), so ``bookgen --help``
and a mistyped argument answer in a quarter of a second; no import circle is involved.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from bookgen.config import ConfigError, Section
from bookgen.locks import LockBusy, hold_run_lock, run_busy

PROFILE = Path("profiles/default/config.yaml")


def workflow_dir(book_dir: Path, invoked_in: Path) -> Path:
    """The workflow (the folder of the ``Snakefile``) a book is written with: the book's
    directory or the nearest one above it that holds a Snakefile (a book in ``demo/``), else
    the directory bookgen was started in (as snakemake finds its Snakefile there)."""
    for folder in [book_dir.resolve(), *book_dir.resolve().parents]:
        if (folder / "Snakefile").is_file():
            return folder
    return invoked_in.resolve()


def load_book_config(
    configfiles: list[str], overrides: list[str], workflow: Path | None = None
) -> dict[str, Any]:
    """The validated config of the book in the working directory, as a run would see it
    (``workflow``: the folder of the Snakefile, default the working directory)."""
    from snakemake.cli import parse_config
    from snakemake.utils import update_config

    from bookgen.bookdir import book_layer, config_files
    from bookgen.config import check_config, resolve_prompt_paths, validate_config
    from bookgen.money.budget import check_budget_config
    from bookgen.simulator import validate_config as validate_simulator_config
    from bookgen.writing.outline import apply_topic_layering
    from bookgen.writing.prompts import check_templates

    workflow = workflow or Path.cwd()
    config: dict[str, Any] = {}
    command_line: dict[str, Any] = {}  # what snakemake calls the overwrite config
    given = [Path(f) for f in configfiles]
    for path in [*config_files(workflow), *given]:
        if not path.is_file():
            raise ConfigError(
                f"config file {str(path)!r} not found in {os.getcwd()}: run bookgen in the book's "
                "directory or pass it with --directory"
            )
        update_config(config, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    for path in given:  # snakemake layers every --configfile again, as the overwrite config
        update_config(command_line, yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    try:
        cli_layer = parse_config(overrides)
        update_config(config, cli_layer)
        update_config(command_line, cli_layer)
    except ValueError as e:  # a --config entry that is not KEY=VALUE
        raise ConfigError(f"config error: {e}") from None
    validate_config(config)
    apply_topic_layering(config, book_layer(workflow, command_line))
    resolve_prompt_paths(config, workflow)
    check_config(config)
    check_templates(config)
    check_budget_config(config)
    validate_simulator_config(config["simulator"])
    return config


def book_table(config: dict[str, Any]) -> tuple[list[Section], str | None]:
    """The sections, and a note when a topic's outline is not written yet: then the estimate
    assumes ``section_count`` sections of ``section_words`` words each."""
    from bookgen import paths
    from bookgen.writing.outline import book_sections, topic_mode

    if not topic_mode(config) or paths.outline_file().exists():
        return book_sections(config), None
    count, words = int(config["section_count"]), int(config["section_words"])
    sections = [
        Section(
            id=paths.section_id(n, count),
            number=n,
            title=f"Section {n} of {config['topic']}",
            key_points=(config["topic"],),
            words=words,
        )
        for n in range(1, count + 1)
    ]
    note = (
        f"The outline ({paths.outline_file()}) is not written yet: assuming section_count={count} "
        f"sections of section_words={words} words."
    )
    return sections, note


def profile_defaults(workflow: Path) -> tuple[int, int | None]:
    """``cores`` and the ``api`` resource cap from the workflow profile, if there is one."""
    try:
        profile = yaml.safe_load((workflow / PROFILE).read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        return 1, None
    api = (profile.get("resources") or {}).get("api")
    return int(profile.get("cores", 1)), int(api) if api else None


def cmd_estimate(args: argparse.Namespace, config: dict[str, Any]) -> str:
    from bookgen.money.estimate import estimate_book, render_estimate
    from bookgen.run.status import section_states

    sections, note = book_table(config)
    cores, api = profile_defaults(args.workflow)
    states = section_states(config, sections)
    est = estimate_book(
        config, sections, states, args.cores or cores, api, outline_pending=bool(note)
    )
    est["outline_note"] = note
    if args.json:
        return json.dumps(est, indent=2) + "\n"
    return (f"{note}\n" if note else "") + render_estimate(est)


def cmd_status(args: argparse.Namespace, config: dict[str, Any]) -> str:
    from bookgen.run.status import render_status, section_states, status_report
    from bookgen.run.watch import Watch, watch

    def read() -> dict[str, Any]:
        sections, note = book_table(config)  # a topic's outline may appear during the run
        report = status_report(config, [] if note else section_states(config, sections))
        report["outline_note"] = note
        return report

    def text() -> str:
        report = read()
        note = report["outline_note"]
        return (f"{note}\n" if note else "") + render_status(report)

    if args.watch:
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends a watch: exit 0, no traceback
            watch(Watch(text, run_busy, args.interval), sys.stdout)
        return ""
    if args.json:
        return json.dumps(read(), indent=2) + "\n"
    return text()


def cmd_reprice(args: argparse.Namespace, config: dict[str, Any]) -> str:
    from bookgen.money.budget import book_spending
    from bookgen.money.pricing import format_usd
    from bookgen.money.reprice import reprice_book
    from bookgen.writing.outline import cost_report_inputs

    sections, note = book_table(config)
    hold_run_lock()  # no run may append to a journal while it is rewritten
    before, before_sim = book_spending(), book_spending(simulated=True)
    done = reprice_book(config, [] if note else cost_report_inputs(config, sections), sections)
    after, after_sim = book_spending(), book_spending(simulated=True)
    if args.json:
        return (
            json.dumps(
                {
                    **asdict(done),
                    "unpriced_models": sorted(done.unpriced_models),
                    "spent_before_usd": before.cost_usd,
                    "spent_usd": after.cost_usd,
                    "simulated_before_usd": before_sim.cost_usd,
                    "simulated_usd": after_sim.cost_usd,
                },
                indent=2,
            )
            + "\n"
        )
    lines = []
    if done.calls or done.usage_files or done.cost_report:
        lines.append(
            f"bookgen reprice: {done.calls} call(s) repriced at the current prices, each in the "
            "period it started in."
        )
        rewritten = [
            f"{len(done.journals)} call journal(s) under .bookgen/calls" if done.journals else "",
            f"{len(done.usage_files)} usage file(s) under output/usage" if done.usage_files else "",
            "output/cost_report.json and .md" if done.cost_report else "",
        ]
        lines.append("  rewritten: " + ", ".join(r for r in rewritten if r))
        lines.append(
            f"  spent on this book: {format_usd(before.cost_usd)} -> {format_usd(after.cost_usd)}"
        )
        if after_sim.calls:
            lines.append(
                f"  simulated calls (never billed) would have cost: "
                f"{format_usd(before_sim.cost_usd)} -> {format_usd(after_sim.cost_usd)}"
            )
    else:
        lines.append("bookgen reprice: every call already has the current prices; nothing changed.")
    if done.missing_usage:
        lines.append(
            f"  the cost report is built by the next run ({len(done.missing_usage)} usage "
            "file(s) it merges are not written yet)"
        )
    lines += [
        f"  warning: no price for model {m!r} under `prices:`: its calls stay at an unknown cost"
        for m in sorted(done.unpriced_models)
    ]
    return "\n".join(lines) + "\n"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bookgen",
        description="Look at a bookgen book without calling the API. Writing it is "
        "`snakemake --cores 2` (see README.md).",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-d", "--directory", default=".", help="the book's directory")
    common.add_argument(
        "--configfile", nargs="+", default=[], help="config files layered over config.yaml"
    )
    common.add_argument(
        "--config", nargs="+", default=[], metavar="KEY=VALUE", help="like snakemake --config"
    )
    common.add_argument("--json", action="store_true", help="print JSON instead of a table")
    est = sub.add_parser(
        "estimate",
        parents=[common],
        help="tokens, cost and time of the pending sections",
        description="Expected tokens, cost (low-high, peak vs off-peak) and wall time of the "
        "sections still pending, from the outline and from the finished sections.",
    )
    est.add_argument("--cores", type=int, help="sections at a time (default: the profile's)")
    est.set_defaults(func=cmd_estimate)
    st = sub.add_parser(
        "status",
        parents=[common],
        help="state, words, cost and time of every section",
        description="Every section's state (done / pending / failed / flagged / running), "
        "words, cost so far and time, with totals. Reads only files.",
    )
    st.add_argument(
        "--watch",
        action="store_true",
        help="refresh while a run goes (in place in a terminal; else a block per change); "
        "ends when the run ends, or on Ctrl-C",
    )
    st.add_argument(
        "--interval", type=float, default=2.0, help="seconds between refreshes (default 2)"
    )
    st.set_defaults(func=cmd_status)
    rp = sub.add_parser(
        "reprice",
        parents=[common],
        help="recompute past calls' costs from the current prices",
        description="Recompute the cost of every call already made from the config's current "
        "`prices` (each call in the period it started in), rewrite the call journals and usage "
        "files, and rebuild the cost report. Calls nothing; not while a run writes the book.",
    )
    rp.set_defaults(func=cmd_reprice)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "estimate" and args.cores is not None and args.cores < 1:
        print("bookgen: --cores must be 1 or more", file=sys.stderr)
        return 2
    args.workflow = workflow_dir(Path(args.directory), Path.cwd())
    args.configfile = [str(Path(f).resolve()) for f in args.configfile]  # given from here
    if args.command == "status" and args.watch and (args.json or args.interval <= 0):
        print("bookgen: --watch takes no --json, and --interval must be above 0", file=sys.stderr)
        return 2
    try:
        os.chdir(args.directory)
    except OSError as e:
        print(f"bookgen: cannot enter the book directory {args.directory!r}: {e}", file=sys.stderr)
        return 2
    try:
        config = load_book_config(args.configfile, args.config, args.workflow)
    except ConfigError as e:
        print(f"bookgen: {e}", file=sys.stderr)
        return 2
    try:
        sys.stdout.write(args.func(args, config))
    except LockBusy as e:
        print(e, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
