"""convintel NLP library: schemas, encoder, heads, text processing, conversation
summary, escalation policy and the analyzer that ties them. Imports no web code."""

__version__ = "0.1.0"
