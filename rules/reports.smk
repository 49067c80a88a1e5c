# Reports built from the section files; they never call the API.


localrules:
    cost_report,


rule cost_report:
    input:
        usage_files(),
    output:
        json="output/cost_report.json",
        md=report(
            "output/cost_report.md", caption="../report/cost.rst", category="Costs"
        ),
    log:
        "output/logs/cost_report.log",
    params:
        title=config["book"]["title"],
    run:
        jobs.cost_report(config, input, output, params, log)
