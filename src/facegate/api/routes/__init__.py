"""One router per resource of the seed API, plus the operations endpoints."""
