"""bookgen: write whole textbooks with an LLM, one Snakemake target per section."""

__version__ = "0.1.0"
