# A book from a topic: with `topic` set and `sections` empty, the model writes the outline first.
# It is a checkpoint: the section targets are known once output/outline.json exists. The params
# are what determines the outline (a change rewrites it, replacing any hand edits). Without a
# topic (or once the outline is copied into `sections`) the rule does not exist, so nothing can
# rewrite a frozen outline.

if TOPIC_MODE:

    checkpoint outline:
        output:
            outline="output/outline.json",
            usage="output/usage/outline.json",
        log:
            "output/logs/outline.log",
        params:
            **OUTLINE_PARAMS,
        resources:
            api=1,
        message:
            "Writing the book's outline from its topic (log: {log})"
        run:
            jobs.outline(config, output, log)
