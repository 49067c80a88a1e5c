# One job per section. The params are what determines the section's text: when one of them
# changes, the section is regenerated and `snakemake --dry-run` shows the old and new value.
# Code, prices and report settings are deliberately not among them (no re-billing on upgrade).
# A planned section (planning.min_words) is a checkpoint `plan`, then one `part` job per part
# (at the same time, or one after another with planning.parallel_parts: false), then its
# section job assembles, checks and repairs them. Plans and parts are named by the section's
# key, so they follow the section when it moves.


rule section:
    input:
        section_inputs,
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


checkpoint plan:
    output:
        plan="output/plans/section_{key}.json",
    log:
        "output/logs/parts/section_{key}.plan.log",
    params:
        spec=fingerprint("spec"),
        book=fingerprint("book"),
        model=fingerprint("model"),
        generation=fingerprint("generation"),
        prompts=fingerprint("prompts"),
    resources:
        api=1,
    message:
        "Planning a long section (log: {log})"
    run:
        jobs.plan(config, wildcards.key, params, output, log)


rule part:
    input:
        part_inputs,
    output:
        md="output/parts/section_{key}/part_{k}.md",
        usage="output/parts/section_{key}/part_{k}.json",
    log:
        "output/logs/parts/section_{key}.part_{k}.log",
    params:
        spec=fingerprint("spec"),
        book=fingerprint("book"),
        model=fingerprint("model"),
        generation=fingerprint("generation"),
        prompts=fingerprint("prompts"),
    resources:
        api=1,
    message:
        "Writing part {wildcards.k} of a long section (log: {log})"
    run:
        jobs.part(config, wildcards.key, int(wildcards.k), params, output, log)
