"""A loopback fake of the Gemini Developer API for tests that drive the real google-genai SDK."""

from .responder import (
    FakeApiError,
    Responder,
    default_responder,
    example_for_schema,
    schema_violating_json,
)
from .server import (
    API_KEY_HEADER,
    DEFAULT_DIM,
    ROUTES,
    BatchJob,
    FakeGemini,
    Fault,
    JobPlan,
    RecordedRequest,
    StoredFile,
    count_tokens,
    fake_embedding,
    prompt_text_of,
)

__all__ = [
    "API_KEY_HEADER",
    "DEFAULT_DIM",
    "ROUTES",
    "BatchJob",
    "FakeApiError",
    "FakeGemini",
    "Fault",
    "JobPlan",
    "RecordedRequest",
    "Responder",
    "StoredFile",
    "count_tokens",
    "default_responder",
    "example_for_schema",
    "fake_embedding",
    "prompt_text_of",
    "schema_violating_json",
]
