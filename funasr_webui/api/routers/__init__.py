"""One router per surface: health, native (/api/v1/transcriptions), history (/api/v1/history), OpenAI (/v1),
docs (/docs and the API's 404)."""
