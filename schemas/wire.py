"""Wire constants of the contract, importable without pydantic (the relay process uses them)."""

CONTENT_TYPE = "application/cloudevents+json; charset=UTF-8"
CONTENT_TYPE_HEADER = "content-type"
