# The book: the sections assembled into output/book.md, then converted to the formats listed in
# `formats` (html by default; epub and pdf on request: `snakemake output/book.pdf`). They never
# call the API. The params are what shapes book.md beyond the section files themselves.
# book.md -> book.html is the longest chain after the last section, so it goes first
# (`priority`); the cost and quality reports take the slots that are left.


localrules:
    book_md,
    book_format,


wildcard_constraints:
    fmt="html|epub|pdf",


rule book_md:
    input:
        section_files(),
    output:
        "output/book.md",
    log:
        "output/logs/book_md.log",
    priority: 1
    params:
        title_page={k: v for k, v in config["book"].items() if k != "style"},
        model=f"{config['provider']}:{config['model']}",
        outline=section_titles(),
    run:
        jobs.book_md(config, input, output, log)


rule book_format:
    input:
        "output/book.md",
    output:
        report(
            "output/book.{fmt}",
            caption="../report/book.rst",
            category="Book",
            labels={"format": "{fmt}"},
        ),
    log:
        "output/logs/book_{fmt}.log",
    priority: 1
    run:
        jobs.book_format(wildcards.fmt, input, output, log)
