"""Talking to the chat API: the streamed call, retries, what counts as the same request, the
journal of every call and the response cache, and keeping keys out of everything written."""
