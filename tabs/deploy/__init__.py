"""Deploy tab: the REST API, its snippets, and the model exported as a server."""
