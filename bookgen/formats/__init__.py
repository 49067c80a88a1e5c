"""The book in its formats: the sections assembled into Markdown, then HTML, EPUB and PDF, with
the model's text made inert first."""
