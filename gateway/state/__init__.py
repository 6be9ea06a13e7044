"""State beyond one request: conversations of the Responses API, the response cache."""
