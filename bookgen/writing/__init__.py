"""Writing a section's text: prompts, the section job, plans and parts for long sections,
quality checks and repairs, JSON replies, the outline of a book from a topic, and every
finished text kept by the section's key."""
