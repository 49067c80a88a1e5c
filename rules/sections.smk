# One job per section. The params are what determines the section's text: when one of them
# changes, the section is regenerated and `snakemake --dry-run` shows the old and new value.
# Code, prices and report settings are deliberately not among them (no re-billing on upgrade).


rule section:
    input:
        outline_gate,
    output:
        md="output/section_{sid}.md",
        usage="output/usage/section_{sid}.json",
    log:
        "output/logs/section_{sid}.log",
    params:
        spec=fingerprint("spec"),
        book=fingerprint("book"),
        model=fingerprint("model"),
        generation=fingerprint("generation"),
        prompts=fingerprint("prompts"),
    resources:
        api=1,
    message:
        "Writing section {wildcards.sid} (log: {log})"
    run:
        jobs.section(config, wildcards.sid, params, output, log)
