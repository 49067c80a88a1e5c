# The quality report: every section's checks and repairs, the overlap between sections and the
# outline items no section covers. It never calls the API; its params are the thresholds it
# applies itself, so changing them rebuilds only the report.


localrules:
    quality_report,


rule quality_report:
    input:
        md=section_files(),
        usage=usage_files(),
    output:
        json="output/quality_report.json",
        md=report(
            "output/quality_report.md", caption="../report/quality.rst", category="Quality"
        ),
    log:
        "output/logs/quality_report.log",
    params:
        title=config["book"]["title"],
        thresholds={k: config["qc"][k] for k in ("overlap_threshold", "shingle_words")},
    run:
        jobs.quality_report(config, input, output, log)
