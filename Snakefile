# bookgen: a textbook as a build graph. Every section is a target (output/section_NN.md)
# written by an OpenAI-compatible chat API; a final rule merges the usage into a cost report.
#   snakemake --cores 2                              write everything pending
#   snakemake output/section_05.md                   one section, if pending (--force: anyway)
#   snakemake --dry-run                              what is pending, and why
#   snakemake --cores 2 --directory demo             the demo book offline in demo/, no key
#   snakemake --cores 2 --configfile my-topic.yaml   a book from a topic: outline first
# Defaults users should not have to type live in profiles/default/config.yaml.

from snakemake.utils import min_version

from bookgen.bookdir import config_files

min_version("9.0")


# The workflow's config/config.yaml (the demo book and every default), then the book directory's
# own config/config.yaml when it has one: a book lives in any directory (--directory DIR), as
# the offline demo does in demo/ (its config sets provider: simulator).
for book_config in config_files(workflow.basedir):

    configfile: book_config



# The config is validated first thing in rules/common.smk (bookgen.config.validate_config,
# against bookgen/schemas/config.schema.yaml): defaults filled, a one-line error naming the field.
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
