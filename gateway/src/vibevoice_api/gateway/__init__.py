"""The API gateway: one OpenAI base URL in front of the ASR and TTS services."""
