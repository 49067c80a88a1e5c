# bookgen: a textbook as a build graph. Every section is a target (output/section_NN.md)
# written by an OpenAI-compatible chat API; a final rule merges the usage into a cost report.
#   snakemake --cores 2                              write everything pending
#   snakemake output/section_05.md                   (re)build one section
#   snakemake --dry-run                              what is pending, and why
#   snakemake --cores 2 --config provider=simulator  the whole book offline, no key
#   snakemake --cores 2 --configfile my-topic.yaml   a book from a topic: outline first
# Defaults users should not have to type live in profiles/default/config.yaml.

import sys

from snakemake.utils import min_version, validate

from bookgen.config import ConfigError, check_api_key_env

min_version("9.0")


configfile: "config/config.yaml"


try:
    check_api_key_env(config)  # before the schema, whose message would quote a pasted key
except ConfigError as err:
    sys.exit(str(err))
validate(config, "bookgen/schemas/config.schema.yaml")


include: "rules/common.smk"
include: "rules/outline.smk"
include: "rules/sections.smk"
include: "rules/reports.smk"
include: "rules/quality.smk"
include: "rules/book.smk"


onstart:
    on_start(workflow)


onsuccess:
    on_end()


onerror:
    on_error()


rule all:
    input:
        section_files(),
        "output/cost_report.json",
        "output/cost_report.md",
        "output/quality_report.json",
        "output/quality_report.md",
        book_files(),
    default_target: True
